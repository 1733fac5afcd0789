"""The tasks dsrl_ray knows, their fixed facts, and ``make_task`` to build one.

Every task built here is a raw per-step ``gymnasium.Env`` in environment units with a flat
float32 observation, ``info["success"]`` (bool) on every step, and its episode limit built in
(``truncated=True`` on the step that reaches it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import gymnasium
import numpy as np

TaskKind = Literal["robomimic", "gym", "toy"]


@dataclass(frozen=True)
class TaskSpec:
    """Fixed facts about one task.

    Attributes:
        name: our short name (``"lift"``, ``"hopper"``, ...).
        kind: ``"robomimic"`` (robosuite 1.4.1), ``"gym"`` (gymnasium MuJoCo v5) or ``"toy"``.
        env_name: the simulator's own name, as written into dataset ``env_args``
            (``"Lift"``, ``"Hopper-v5"``, ``"TwoGoal"``).
        obs_dim: length of the flat observation.
        act_dim: length of one action.
        chunk_len: actions per chunk executed open loop.
        max_episode_steps: episode limit in environment steps.
        obs_keys: names of the observation parts, in the order they are concatenated.
        obs_key_dims: length of each part; sums to ``obs_dim``.
        reward_offset: subtracted from the sparse success reward on every step (1 for the
            sparse-success tasks, 0 for locomotion).
    """

    name: str
    kind: TaskKind
    env_name: str
    obs_dim: int
    act_dim: int
    chunk_len: int
    max_episode_steps: int
    obs_keys: tuple[str, ...]
    obs_key_dims: tuple[int, ...]
    reward_offset: float

    def __post_init__(self) -> None:
        if len(self.obs_keys) != len(self.obs_key_dims):
            raise ValueError(
                f"task {self.name!r}: {len(self.obs_keys)} obs_keys but {len(self.obs_key_dims)} obs_key_dims"
            )
        if sum(self.obs_key_dims) != self.obs_dim:
            raise ValueError(
                f"task {self.name!r}: obs_key_dims {self.obs_key_dims} sum to {sum(self.obs_key_dims)}, "
                f"expected obs_dim={self.obs_dim}"
            )

    def split_obs(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        """Split flat observations ``(..., obs_dim)`` into ``{key: (..., dim_of_key)}``."""
        obs = np.asarray(obs)
        if obs.shape[-1] != self.obs_dim:
            raise ValueError(f"task {self.name!r}: observation has shape {obs.shape}; expected (..., {self.obs_dim})")
        bounds = np.cumsum((0,) + self.obs_key_dims)
        return {key: obs[..., lo:hi] for key, lo, hi in zip(self.obs_keys, bounds[:-1], bounds[1:], strict=True)}


_ARM_KEYS = ("eef_pos", "eef_quat", "gripper_qpos")
_ARM_DIMS = (3, 4, 2)


def _robomimic(name: str, env_name: str, object_dim: int, limit: int, *, arms: int = 1, chunk_len: int = 4) -> TaskSpec:
    keys = tuple(f"robot{i}_{k}" for i in range(arms) for k in _ARM_KEYS) + ("object",)
    dims = _ARM_DIMS * arms + (object_dim,)
    return TaskSpec(
        name=name,
        kind="robomimic",
        env_name=env_name,
        obs_dim=sum(dims),
        act_dim=7 * arms,
        chunk_len=chunk_len,
        max_episode_steps=limit,
        obs_keys=keys,
        obs_key_dims=dims,
        reward_offset=1.0,
    )


def _gym(name: str, env_name: str, obs_dim: int, act_dim: int) -> TaskSpec:
    return TaskSpec(
        name=name,
        kind="gym",
        env_name=env_name,
        obs_dim=obs_dim,
        act_dim=act_dim,
        chunk_len=4,
        max_episode_steps=1000,
        obs_keys=("state",),
        obs_key_dims=(obs_dim,),
        reward_offset=0.0,
    )


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        _robomimic("lift", "Lift", 10, 300),
        _robomimic("can", "PickPlaceCan", 14, 300),
        _robomimic("square", "NutAssemblySquare", 14, 400),
        _robomimic("transport", "TwoArmTransport", 41, 800, arms=2, chunk_len=8),
        _gym("hopper", "Hopper-v5", 11, 3),
        _gym("walker2d", "Walker2d-v5", 17, 6),
        _gym("halfcheetah", "HalfCheetah-v5", 17, 6),
        TaskSpec(
            name="twogoal",
            kind="toy",
            env_name="TwoGoal",
            obs_dim=4,
            act_dim=2,
            chunk_len=4,
            max_episode_steps=50,
            obs_keys=("agent_pos", "goal_cue"),
            obs_key_dims=(2, 2),
            reward_offset=1.0,
        ),
    )
}


def get_task_spec(name: str) -> TaskSpec:
    """Return the :class:`TaskSpec` of ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}") from None


def task_for_env_name(env_name: str) -> TaskSpec | None:
    """The task whose simulator name is ``env_name`` (e.g. ``"PickPlaceCan"``), or ``None``."""
    return next((spec for spec in TASKS.values() if spec.env_name == env_name), None)


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
