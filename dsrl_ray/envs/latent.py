"""The latent-action MDP of DSRL: the action is the base policy's initial noise ``w``."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
import torch

from dsrl_ray.envs.chunking import ChunkedEnv
from dsrl_ray.envs.registry import get_task_spec, make_task
from dsrl_ray.policies.base import BasePolicy
from dsrl_ray.policies.normalizer import Normalizer


def policy_device(policy: torch.nn.Module) -> torch.device:
    """The device of the policy's first parameter or buffer (CPU if it has neither)."""
    tensor = next(policy.parameters(), None)
    if tensor is None:
        tensor = next(policy.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def check_policy_fits(policy: BasePolicy, obs_dim: int, act_dim: int, where: str) -> None:
    """Raise ``ValueError`` naming both sides unless the policy's obs/act dims equal the env's."""
    if (policy.obs_dim, policy.act_dim) != (obs_dim, act_dim):
        raise ValueError(
            f"base policy has obs_dim={policy.obs_dim}, act_dim={policy.act_dim} but {where} has "
            f"obs_dim={obs_dim}, act_dim={act_dim}"
        )


class LatentActionEnv(gymnasium.Wrapper):
    """Wraps a :class:`ChunkedEnv` so that the action is the flattened initial noise ``w``.

    Observation: the chunked env's normalised ``(obs_dim,)`` float32 observation.
    Action: ``(chunk_len * act_dim,)`` float32; the action space is
    ``Box(-action_magnitude, action_magnitude)``, the range of DSRL's noise policy, but actions are
    used as given (standard deployment draws ``w ~ N(0, I)``, which may exceed it).
    ``step``: ``chunk = base_policy.sample(obs, w)`` (no grad, on the policy's device), then one
    chunked step. ``info`` adds ``executed_action`` (the chunk, flattened, normalised, float32)
    and ``noise`` (``w``, ``(chunk_len, act_dim)`` float32).
    """

    def __init__(self, chunked_env: ChunkedEnv, base_policy: BasePolicy, action_magnitude: float = 1.5) -> None:
        if not isinstance(chunked_env, ChunkedEnv):
            raise TypeError(f"LatentActionEnv wraps a ChunkedEnv; got {type(chunked_env).__name__}")
        super().__init__(chunked_env)
        if action_magnitude <= 0:
            raise ValueError(f"action_magnitude={action_magnitude}; expected a positive number")
        check_policy_fits(base_policy, chunked_env.obs_dim, chunked_env.act_dim, "the chunked env")
        if base_policy.chunk_len != chunked_env.chunk_len:
            raise ValueError(
                f"base policy has chunk_len={base_policy.chunk_len} "
                f"but the chunked env has chunk_len={chunked_env.chunk_len}"
            )
        self.base_policy = base_policy
        self.noise_shape = tuple(base_policy.noise_shape)
        self.action_magnitude = float(action_magnitude)
        self._device = policy_device(base_policy)
        size = int(np.prod(self.noise_shape))
        self.action_space = gymnasium.spaces.Box(-self.action_magnitude, self.action_magnitude, (size,), np.float32)
        self._obs: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = obs
        return obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Denoise ``action`` (flattened ``w``) into a chunk with the base policy and execute it."""
        if self._obs is None:
            raise RuntimeError("LatentActionEnv.step() called before reset()")
        w = np.asarray(action, dtype=np.float32)
        if w.shape != self.action_space.shape:
            raise ValueError(
                f"latent action has shape {w.shape}; expected {self.action_space.shape} "
                f"(the flattened noise of shape {self.noise_shape})"
            )
        w = w.reshape(self.noise_shape)
        with torch.no_grad():
            obs_t = torch.as_tensor(self._obs, device=self._device).unsqueeze(0)
            chunk = self.base_policy.sample(obs_t, torch.as_tensor(w, device=self._device).unsqueeze(0))
        chunk = chunk[0].to("cpu", torch.float32).numpy()
        obs, reward, terminated, truncated, info = self.env.step(chunk)
        self._obs = obs
        info = {**info, "executed_action": chunk.reshape(-1).copy(), "noise": w}
        return obs, reward, terminated, truncated, info


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


def make_latent_env(
    task_name: str,
    base_policy: BasePolicy,
    *,
    action_magnitude: float = 1.5,
    seed: int | None = None,
    render_mode: str | None = None,
) -> LatentActionEnv:
    """The latent-action env of ``task_name`` for ``base_policy`` (its normaliser and chunk length)."""
    spec = get_task_spec(task_name)
    check_policy_fits(base_policy, spec.obs_dim, spec.act_dim, f"task {task_name!r}")
    chunked = make_chunked_env(
        task_name, base_policy.normalizer, seed=seed, chunk_len=base_policy.chunk_len, render_mode=render_mode
    )
    return LatentActionEnv(chunked, base_policy, action_magnitude)
