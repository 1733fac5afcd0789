"""The driver of a cluster job: ``dsrl-ray train --address auto`` from the project checkout (docs/cluster.md).

    ray submit cluster/aws.yaml cluster/train_job.py -- --config lift_na --num-env-runners 32

Flags are those of ``dsrl-ray train`` (sizing flags included); the defaults differ only in
``--address auto``, ``--workdir`` (the checkout holding the installed ``dsrl_ray``) and
``--no-progress`` (one log line per job). Flags given here override those defaults.
"""

from __future__ import annotations

import sys
from pathlib import Path


def project_root() -> Path:
    """The checkout the installed ``dsrl_ray`` package lives in (``pip install -e``)."""
    import dsrl_ray

    if dsrl_ray.__file__ is None:  # a namespace package: some directory named dsrl_ray on sys.path
        raise RuntimeError(f"'import dsrl_ray' found the directory {list(dsrl_ray.__path__)}, not the installed "
                           "package; move that directory (cluster YAMLs mount the checkout at ~/dsrl-ray for "
                           "this reason)")
    return Path(dsrl_ray.__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> None:
    from dsrl_ray.app.cli import main as dsrl_ray_main

    defaults = ["--address", "auto", "--workdir", str(project_root()), "--no-progress"]
    dsrl_ray_main(["train", *defaults, *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
