"""Register DSRL with Tune and the ``"dsrl/<task>"`` envs with RLlib (idempotent).

After :func:`register`, ``tune.Tuner("DSRL", param_space=DSRLConfig()...)`` and
``DSRLConfig().environment("dsrl/lift")`` work. Registrations made before ``ray.init`` are
flushed to the cluster when Ray starts, so env-runner processes find the env creators;
the creators themselves are importable functions of :mod:`dsrl_ray.algorithm.env`.
"""

from __future__ import annotations

ALGORITHM_NAME = "DSRL"


def register() -> list[str]:
    """Register ``"DSRL"`` (Tune trainable) and every ``"dsrl/<task>"`` env; returns the env names."""
    from ray.tune.registry import register_trainable

    from dsrl_ray.algorithm.algorithm import DSRL
    from dsrl_ray.algorithm.env import register_envs

    register_trainable(ALGORITHM_NAME, DSRL)
    return register_envs()
