"""Build task environments: the raw per-step env (:func:`make_task`) and its chunked, normalised form."""

from __future__ import annotations

import gymnasium

from dsrl_ray.envs.chunking import ChunkedEnv
from dsrl_ray.envs.tasks import get_task_spec
from dsrl_ray.policies.base import BasePolicy
from dsrl_ray.policies.normalizer import Normalizer


def make_task(name: str, *, seed: int | None = None, render_mode: str | None = None) -> gymnasium.Env:
    """Build the raw per-step environment of task ``name``.

    Args:
        name: a key of :data:`TASKS`.
        seed: seeds the first ``reset()`` that is called without its own seed.
        render_mode: ``None`` or ``"rgb_array"`` (``render()`` then returns an ``(H, W, 3)`` uint8 image).

    Returns:
        A ``gymnasium.Env`` whose observations are flat float32 ``(obs_dim,)`` arrays, whose actions
        are ``(act_dim,)`` arrays in environment units, whose ``info`` has ``"success"`` (bool) on
        every step, and which truncates at ``max_episode_steps``.
    """
    spec = get_task_spec(name)
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode={render_mode!r} is not supported; expected None or 'rgb_array'")
    if spec.kind == "robomimic":
        from dsrl_ray.envs.robomimic_tasks import make_robomimic_env

        env: gymnasium.Env = make_robomimic_env(spec, seed=seed, render_mode=render_mode)
    elif spec.kind == "gym":
        from dsrl_ray.envs.gym_tasks import make_gym_env

        return make_gym_env(spec, seed=seed, render_mode=render_mode)
    else:
        from dsrl_ray.envs.twogoal import TwoGoalEnv

        env = TwoGoalEnv(seed=seed, render_mode=render_mode)
    return gymnasium.wrappers.TimeLimit(env, max_episode_steps=spec.max_episode_steps)


def make_chunked_env(
    task_name: str,
    normalizer: Normalizer,
    *,
    seed: int | None = None,
    chunk_len: int | None = None,
    render_mode: str | None = None,
) -> ChunkedEnv:
    """``ChunkedEnv(make_task(task_name), chunk_len or the task's chunk_len, normalizer)``."""
    spec = get_task_spec(task_name)
    if (normalizer.obs_dim, normalizer.act_dim) != (spec.obs_dim, spec.act_dim):
        raise ValueError(
            f"normalizer has obs_dim={normalizer.obs_dim}, act_dim={normalizer.act_dim} but task {task_name!r} "
            f"has obs_dim={spec.obs_dim}, act_dim={spec.act_dim}"
        )
    env = make_task(task_name, seed=seed, render_mode=render_mode)
    return ChunkedEnv(env, spec.chunk_len if chunk_len is None else chunk_len, normalizer)


def check_policy_fits(policy: BasePolicy, obs_dim: int, act_dim: int, where: str) -> None:
    """Raise ``ValueError`` naming both sides unless the policy's obs/act dims equal the env's."""
    if (policy.obs_dim, policy.act_dim) != (obs_dim, act_dim):
        raise ValueError(
            f"base policy has obs_dim={policy.obs_dim}, act_dim={policy.act_dim} but {where} has "
            f"obs_dim={obs_dim}, act_dim={act_dim}"
        )
