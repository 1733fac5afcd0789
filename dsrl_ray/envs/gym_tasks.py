"""gymnasium MuJoCo locomotion tasks (Hopper, Walker2d, HalfCheetah), used as they are.

Each can be built as ``-v4`` (the task default: the MuJoCo models closest to the gym v3 models of
the D4RL data the DSRL paper's DPPO base policies were trained on) or ``-v5`` (gymnasium's
current models); see :class:`~dsrl_ray.envs.tasks.TaskOptions`.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from dsrl_ray.envs.headless import ensure_headless_gl
from dsrl_ray.envs.tasks import TaskSpec


class GymTaskEnv(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """A gymnasium MuJoCo task with float32 observations and ``info["success"] = False`` on every step.

    Rewards, terminations and the episode limit are gymnasium's own (``make_gym_env`` sets the
    limit to ``spec.max_episode_steps``); these tasks have no notion of success.
    """

    def __init__(self, env: gymnasium.Env, *, seed: int | None = None) -> None:
        """``seed`` seeds the first ``reset()`` called without a seed of its own."""
        gymnasium.utils.RecordConstructorArgs.__init__(self, seed=seed)
        gymnasium.Wrapper.__init__(self, env)
        space = env.observation_space
        self.observation_space = gymnasium.spaces.Box(
            space.low.astype(np.float32), space.high.astype(np.float32), dtype=np.float32
        )
        self._pending_seed = seed

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        obs, info = self.env.reset(seed=seed, options=options)
        return np.asarray(obs, dtype=np.float32), {**info, "success": False}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action)
        if action.shape != self.env.action_space.shape:
            raise ValueError(f"action has shape {action.shape}; expected {self.env.action_space.shape}")
        obs, reward, terminated, truncated, info = self.env.step(action)
        return np.asarray(obs, dtype=np.float32), float(reward), terminated, truncated, {**info, "success": False}


def make_gym_env(
    spec: TaskSpec, *, seed: int | None = None, render_mode: str | None = None, version: str | None = None
) -> GymTaskEnv:
    """Build gymnasium env ``spec.gym_id(version)`` (e.g. ``Hopper-v4``) with its episode limit of
    ``spec.max_episode_steps``; ``version`` ``None``: the task's default."""
    if spec.kind != "gym":
        raise ValueError(f"task {spec.name!r} is a {spec.kind!r} task; expected a gym task")
    if render_mode is not None:
        ensure_headless_gl()
    env = gymnasium.make(spec.gym_id(version), max_episode_steps=spec.max_episode_steps, render_mode=render_mode)
    return GymTaskEnv(env, seed=seed)
