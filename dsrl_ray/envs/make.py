"""Build task environments: the raw per-step env (:func:`make_task`) and its chunked, normalised form."""

from __future__ import annotations

import gymnasium
import numpy as np

from dsrl_ray.envs.chunking import ChunkedEnv
from dsrl_ray.envs.tasks import TaskOptions, get_task_spec
from dsrl_ray.policies.base import BasePolicy
from dsrl_ray.policies.normalizer import Normalizer


class HorizonIsTerminal(gymnasium.Wrapper):
    """Reports the episode limit as a true end: a step with ``truncated=True`` returns
    ``terminated=True, truncated=False`` instead (the env's limit is its only source of truncation)."""

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, reward, terminated or truncated, False, info


def make_task(
    name: str,
    *,
    seed: int | None = None,
    render_mode: str | None = None,
    options: TaskOptions | None = None,
) -> gymnasium.Env:
    """Build the raw per-step environment of task ``name``.

    Args:
        name: a key of :data:`TASKS`.
        seed: seeds the first ``reset()`` that is called without its own seed.
        render_mode: ``None`` or ``"rgb_array"`` (``render()`` then returns an ``(H, W, 3)`` uint8 image).
        options: episode-end semantics and gymnasium version; unset ones take the task's defaults.

    Returns:
        A ``gymnasium.Env`` whose observations are flat float32 ``(obs_dim,)`` arrays, whose actions
        are ``(act_dim,)`` arrays in environment units, whose ``info`` has ``"success"`` (bool) on
        every step, and which ends at ``max_episode_steps`` (truncated, or terminated with
        ``horizon_is_terminal``).

    Raises:
        ValueError: an unknown task or render mode, or options that do not fit the task.
    """
    spec = get_task_spec(name)
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode={render_mode!r} is not supported; expected None or 'rgb_array'")
    opts = (options or TaskOptions()).for_task(spec)
    if spec.kind == "robomimic":
        from dsrl_ray.envs.robomimic_tasks import make_robomimic_env

        env: gymnasium.Env = make_robomimic_env(
            spec, seed=seed, render_mode=render_mode, terminate_on_success=bool(opts.terminate_on_success)
        )
    elif spec.kind == "gym":
        from dsrl_ray.envs.gym_tasks import make_gym_env

        env = make_gym_env(spec, seed=seed, render_mode=render_mode, version=opts.gym_version)
    else:
        from dsrl_ray.envs.twogoal import TwoGoalEnv

        env = TwoGoalEnv(seed=seed, render_mode=render_mode, terminate_on_success=bool(opts.terminate_on_success))
    if spec.kind != "gym":  # gymnasium.make already added the limit
        env = gymnasium.wrappers.TimeLimit(env, max_episode_steps=spec.max_episode_steps)
    return HorizonIsTerminal(env) if opts.horizon_is_terminal else env


def make_chunked_env(
    task_name: str,
    normalizer: Normalizer,
    *,
    seed: int | None = None,
    chunk_len: int | None = None,
    render_mode: str | None = None,
    options: TaskOptions | None = None,
) -> ChunkedEnv:
    """``ChunkedEnv(make_task(task_name, options=options), chunk_len or the task's chunk_len, normalizer)``."""
    spec = get_task_spec(task_name)
    if (normalizer.obs_dim, normalizer.act_dim) != (spec.obs_dim, spec.act_dim):
        raise ValueError(
            f"normalizer has obs_dim={normalizer.obs_dim}, act_dim={normalizer.act_dim} but task {task_name!r} "
            f"has obs_dim={spec.obs_dim}, act_dim={spec.act_dim}"
        )
    env = make_task(task_name, seed=seed, render_mode=render_mode, options=options)
    return ChunkedEnv(env, spec.chunk_len if chunk_len is None else chunk_len, normalizer)


def check_policy_fits(policy: BasePolicy, obs_dim: int, act_dim: int, where: str) -> None:
    """Raise ``ValueError`` naming both sides unless the policy's obs/act dims equal the env's."""
    if (policy.obs_dim, policy.act_dim) != (obs_dim, act_dim):
        raise ValueError(
            f"base policy has obs_dim={policy.obs_dim}, act_dim={policy.act_dim} but {where} has "
            f"obs_dim={obs_dim}, act_dim={act_dim}"
        )
