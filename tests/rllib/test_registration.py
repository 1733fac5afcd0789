"""`import dsrl_ray` registers "DSRL" and the "dsrl/<task>" envs, whatever is imported first, without importing Ray.

Each case runs in a fresh interpreter: registration happens at import time, once per process.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = (
    "from ray.tune.registry import ENV_CREATOR, _global_registry, get_trainable_cls\n"
    "from dsrl_ray.rllib.algorithm import DSRL\n"
    "assert get_trainable_cls('DSRL') is DSRL\n"
    "assert all(_global_registry.contains(ENV_CREATOR, f'dsrl/{t}') for t in ('lift', 'hopper', 'twogoal'))\n"
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "imports",
    [
        "import dsrl_ray\n",  # Ray's registries load after dsrl_ray
        "import ray.tune.registry\nimport ray.rllib.algorithms.registry\nimport dsrl_ray\n",  # ... or before
    ],
    ids=["dsrl_ray_first", "ray_first"],
)
def test_import_registers_algorithm_and_envs(imports):
    result = _run(imports + CHECK)
    assert result.returncode == 0, result.stderr[-2000:]


def test_pure_parts_import_without_ray():
    code = (
        "import sys\n"
        "import dsrl_ray, dsrl_ray.core.losses, dsrl_ray.core.replay, dsrl_ray.core.steering, dsrl_ray.core.settings\n"
        "import dsrl_ray.policies, dsrl_ray.envs, dsrl_ray.experiment\n"
        "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')], 'ray was imported'\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr[-2000:]
