"""Fixtures of the DSRL-on-RLlib tests: one local Ray instance per session and small TwoGoal configs."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_local():
    """``ray.init(num_cpus=2)`` without dashboard, workers pinned to one thread; shut down at the end."""
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}},
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()


@pytest.fixture
def twogoal_config(twogoal_policy_path, tmp_path):
    """Factory of small :class:`DSRLConfig` objects on ``dsrl/twogoal`` (cheap nets, short fragments).

    Keyword arguments go to ``training()``; ``runners``/``envs`` set the env-runner count and
    envs per runner; ``fragment`` the rollout fragment length.
    """
    import dsrl_ray

    dsrl_ray.register()
    from dsrl_ray.algorithm import DSRLConfig

    def make(*, runners: int = 1, envs: int = 2, fragment: int = 10, seed: int = 0, **training):
        defaults = dict(
            base_policy_path=str(twogoal_policy_path),
            hidden_sizes=[32, 32],
            utd=1,
            init_rollout_steps=20,
            train_batch_size_per_learner=32,
            tensorboard_dir=os.fspath(tmp_path / "tensorboard"),
        )
        return (
            DSRLConfig()
            .environment("dsrl/twogoal")
            .training(**{**defaults, **training})
            .env_runners(num_env_runners=runners, num_envs_per_env_runner=envs, rollout_fragment_length=fragment)
            .debugging(seed=seed)
        )

    return make
