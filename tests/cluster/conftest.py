"""Fixtures of the multi-node tests: several raylets on this machine (``ray.cluster_utils.Cluster``).

The cluster mirrors the launcher YAMLs in ``cluster/``: the head node runs the driver (and a
learner, if it is an actor) and offers no CPUs, so every env runner lands on a worker node;
each worker node offers one CPU, i.e. room for exactly one runner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .helpers import LEARNER_RESOURCE


@pytest.fixture
def cluster() -> Iterator[Any]:
    """A head node (0 CPUs, ``{LEARNER_RESOURCE: 1}``) with the driver connected; tests add worker nodes.

    A Ray instance already running in this process (another test directory's session fixture)
    is shut down first. Everything is shut down at the end.
    """
    import ray
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    env = {"OMP_NUM_THREADS": "1"}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 0, "resources": {LEARNER_RESOURCE: 1}, "include_dashboard": False, "env_vars": env},
    )
    try:
        ray.init(address=cluster.address, runtime_env={"env_vars": env}, log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture
def local_ray() -> Iterator[Any]:
    """A single-node Ray instance (the one already running in this process, if any)."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
             log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def small_config(twogoal_config) -> Callable[..., Any]:
    """Factory of small :class:`DSRLConfig` objects on ``dsrl/twogoal`` (``twogoal_config`` of tests/conftest.py).

    ``runners`` sets the env-runner count (1 CPU each), ``envs`` the envs per runner; other
    keyword arguments go to ``training()``. Sync mode, utd 1, warm-up 20 transitions, batch 32,
    no TensorBoard.
    """

    def make(*, runners: int = 2, envs: int = 2, fragment: int = 10, **training: Any) -> Any:
        config = twogoal_config(runners=runners, envs=envs, fragment=fragment, log_tensorboard=False, **training)
        return config.env_runners(num_cpus_per_env_runner=1)

    return make
