"""Train one DSRL experiment on a running Ray cluster (the driver of a cluster job).

It attaches to the cluster (``ray.init(address="auto")``), prints what the cluster offers and
what the run asks for, and trains with :func:`dsrl_ray.app.train.train_from_experiment`: the run
directory (``progress.csv``, TensorBoard, checkpoints) is written on the node running this script.

Run it on the head node, either way::

    ray submit cluster/aws.yaml cluster/train_job.py -- --config configs/lift_na.yaml --num-env-runners 32
    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 -- bash -c \\
        '$HOME/dsrl-ray/.venv/bin/python $HOME/dsrl-ray/cluster/train_job.py --config configs/lift_na.yaml'

``ray submit`` copies this file to the head and runs it there with the head's ``python`` (the
project's venv, see ``setup_node.sh``). Relative paths (``--config``, ``--base-policy``,
``--run-dir`` and the YAML's ``base_policy``) are taken relative to the project checkout on the
head, the directory holding the installed ``dsrl_ray`` package (``--workdir`` changes it).
Every runner loads the base policy from the same absolute path, so it must exist on every node
(the cluster YAMLs copy the repository, including ``runs/``, to each node).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any


def project_root() -> Path:
    """The checkout the installed ``dsrl_ray`` package lives in (``pip install -e``)."""
    import dsrl_ray

    if dsrl_ray.__file__ is None:  # a namespace package: some directory named dsrl_ray on sys.path
        raise RuntimeError(
            f"'import dsrl_ray' found the directory {list(dsrl_ray.__path__)}, not the installed package; "
            "move that directory (cluster YAMLs mount the checkout at ~/dsrl-ray for this reason)"
        )
    return Path(dsrl_ray.__file__).resolve().parent.parent


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train_job.py",
        description="Train DSRL on the Ray cluster this node belongs to (see docs/cluster.md). "
        "Flags override the experiment YAML.",
    )
    parser.add_argument("--config", type=Path, required=True, help="experiment YAML, e.g. configs/lift_na.yaml")
    parser.add_argument("--profile", default=None, help="a profile of the YAML merged over it, e.g. cpu")
    parser.add_argument("--run-dir", type=Path, default=None,
                        help="output directory (default: runs/<task>/dsrl_<variant>[_<profile>])")
    parser.add_argument("--base-policy", type=Path, default=None, help="base-policy checkpoint or pretrain directory")
    parser.add_argument("--env-steps", type=int, default=None,
                        help="env-step budget; 1 trains exactly one iteration (a smoke test)")
    parser.add_argument("--mode", choices=["sync", "async"], default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=None, help="iterations between checkpoints")
    sizing = parser.add_argument_group("cluster sizing (docs/cluster.md)")
    sizing.add_argument("--num-env-runners", type=int, default=None, help="env-runner actors")
    sizing.add_argument("--num-envs-per-env-runner", type=int, default=None,
                        help="envs each runner steps in lockstep (one batched pi_dp call for all)")
    sizing.add_argument("--num-cpus-per-env-runner", type=float, default=None, help="CPUs each runner reserves (1)")
    sizing.add_argument("--num-gpus-per-env-runner", type=float, default=None,
                        help="GPU share per runner for its pi_dp replica, fractions allowed (0)")
    sizing.add_argument("--num-learners", type=int, choices=[0, 1], default=None,
                        help="0: the learner runs in this driver; 1: in its own actor")
    sizing.add_argument("--num-gpus-per-learner", type=float, default=None, help="GPUs for the learner (0 or 1)")
    parser.add_argument("--address", default="auto",
                        help="Ray cluster to attach to (default: auto, the cluster this node runs); with another "
                        "address the token in ~/.ray/auth_token, if any, is presented")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="directory relative paths are resolved against (default: the project checkout)")
    parser.add_argument("--resume", action="store_true", help="continue the run in RUN_DIR from its latest checkpoint")
    parser.add_argument("--progress", action="store_true", help="show a progress bar (off: one log line per job)")
    return parser


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The experiment overrides (YAML nesting) the flags ask for."""
    from dsrl_ray.experiment import flag_overrides

    return flag_overrides(
        base_policy=args.base_policy,
        seed=args.seed,
        checkpoint_every=args.checkpoint_every,
        env_steps=args.env_steps,
        mode=args.mode,
        num_env_runners=args.num_env_runners,
        num_envs_per_env_runner=args.num_envs_per_env_runner,
        num_cpus_per_env_runner=args.num_cpus_per_env_runner,
        num_gpus_per_env_runner=args.num_gpus_per_env_runner,
        num_learners=args.num_learners,
        num_gpus_per_learner=args.num_gpus_per_learner,
    )


def describe_plan(config: Any, resources: dict[str, float], nodes: int) -> str:
    """Two lines: what the cluster offers and what the run (a ``DSRLConfig``) reserves, in Ray CPUs/GPUs."""
    n = config.num_env_runners
    cpus, gpus = float(config.num_cpus_per_env_runner), float(config.num_gpus_per_env_runner)
    where = "its own actor" if config.num_learners else "this driver"
    return (
        f"cluster: {nodes} alive nodes, {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs\n"
        f"run: {n} env runners x ({cpus:g} CPU + {gpus:g} GPU), {config.num_envs_per_env_runner} envs each "
        f"= {n * cpus:g} CPUs, {n * gpus:g} GPUs; learner in {where} with {float(config.num_gpus_per_learner):g} GPU"
    )


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.address != "auto" and (Path.home() / ".ray" / "auth_token").is_file():
        # Ray enables token auth by itself only for address="auto"; present the token to a named cluster too
        # (read when Ray is first imported, so this comes before any import of ray).
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    from dsrl_ray.experiment import ExperimentError, load_experiment
    from dsrl_ray.app.train import train_from_experiment

    os.chdir(args.workdir if args.workdir is not None else project_root())
    try:
        experiment = load_experiment(args.config, profile=args.profile)
        overrides = overrides_from_args(args)
        if overrides:
            experiment = experiment.override(overrides, "command line")
        config = experiment.to_dsrl_config()
    except (ExperimentError, FileNotFoundError) as err:
        raise SystemExit(f"error: {err}") from None

    ray.init(address=args.address, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        nodes = sum(1 for node in ray.nodes() if node["Alive"])
        print(describe_plan(config, ray.cluster_resources(), nodes), flush=True)
        result = train_from_experiment(experiment, args.run_dir, resume=args.resume, progress=args.progress)
    except (ExperimentError, FileNotFoundError, FileExistsError) as err:
        raise SystemExit(f"error: {err}") from None
    finally:
        ray.shutdown()
    summary = ", ".join(f"{k}={v}" for k, v in result.metrics.items() if v is not None)
    print(f"run directory: {Path(result.run_dir).resolve()}")
    print(f"final checkpoint: {Path(result.checkpoint).resolve()}")
    print(f"after {result.iterations} iterations, {result.env_steps} env steps: {summary}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
