"""The environments RLlib env runners step: ``"dsrl/<task>"`` for every task in ``dsrl_ray.envs.TASKS``.

Each is the task's :class:`~dsrl_ray.envs.ChunkedEnv` (normalised observations, one step =
one open-loop action chunk) built with the base policy's normaliser and chunk length, with
the chunk flattened so RLlib sees plain boxes:

- observation ``Box(-inf, inf, (obs_dim,))``: the normalised observation pi_dp and the
  noise policy see;
- action ``Box(-1, 1, (chunk_len * act_dim,))``: the executed chunk in pi_dp's normalised
  units, passed on unclipped (the RLModule computes it as ``pi_dp(s, w)``).

The base policy is named in ``env_config["base_policy"]`` (a :class:`BasePolicySpec` dict);
``DSRLConfig`` fills it in from its ``base_policy_path``. The task options
(:data:`~dsrl_ray.envs.tasks.TASK_OPTIONS`: ``terminate_on_success``, ``horizon_is_terminal``,
``gym_version``) are read from ``env_config`` too; ``DSRLConfig`` fills in those set in its
settings, and the ones left out keep the task's defaults.
"""

from __future__ import annotations

import functools

import gymnasium
import numpy as np

from dsrl_ray.policies.spec import BasePolicySpec, load_base_policy
from dsrl_ray.envs import TASKS, ChunkedEnv
from dsrl_ray.envs.make import check_policy_fits, make_chunked_env
from dsrl_ray.envs.tasks import TaskOptions

ENV_PREFIX = "dsrl/"


def env_name(task: str) -> str:
    """The registered RLlib env name of ``task`` (``"lift"`` -> ``"dsrl/lift"``)."""
    return ENV_PREFIX + task


def task_of(env: object) -> str | None:
    """The task behind a registered env name, or ``None`` for anything else."""
    if isinstance(env, str) and env.startswith(ENV_PREFIX) and env[len(ENV_PREFIX) :] in TASKS:
        return env[len(ENV_PREFIX) :]
    return None


class FlatChunkEnv(gymnasium.ActionWrapper):
    """A :class:`ChunkedEnv` whose action is the chunk flattened to ``(chunk_len * act_dim,)``."""

    def __init__(self, env: ChunkedEnv) -> None:
        super().__init__(env)
        self.chunk_shape = (env.chunk_len, env.act_dim)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (env.chunk_len * env.act_dim,), np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        """``(chunk_len * act_dim,)`` -> ``(chunk_len, act_dim)``."""
        return np.asarray(action, dtype=np.float32).reshape(self.chunk_shape)


def make_env(env_config: dict, *, task: str) -> FlatChunkEnv:
    """Env creator registered as ``"dsrl/<task>"`` (``env_config`` is RLlib's ``EnvContext``).

    Args:
        env_config: must hold ``"base_policy"``: ``{"path", "sha256", "dppo_kwargs"}``; may hold the
            task options (``terminate_on_success``, ``horizon_is_terminal``, ``gym_version``).
        task: a key of ``dsrl_ray.envs.TASKS``.
    """
    if "base_policy" not in env_config:
        raise KeyError(
            f"env {env_name(task)!r} needs env_config['base_policy'] (set DSRLConfig.training(base_policy_path=...)); "
            f"got env_config keys {sorted(env_config)}"
        )
    policy = load_base_policy(BasePolicySpec.from_dict(env_config["base_policy"]))
    check_policy_fits(policy, TASKS[task].obs_dim, TASKS[task].act_dim, f"task {task!r}")
    options = TaskOptions.from_mapping(env_config)
    return FlatChunkEnv(make_chunked_env(task, policy.normalizer, chunk_len=policy.chunk_len, options=options))


def register_envs() -> list[str]:
    """``register_env("dsrl/<task>", ...)`` for every task; returns the names registered."""
    from ray.tune.registry import register_env

    names = []
    for task in TASKS:
        register_env(env_name(task), functools.partial(make_env, task=task))
        names.append(env_name(task))
    return names
