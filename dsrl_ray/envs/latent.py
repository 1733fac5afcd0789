"""The latent-action MDP of DSRL: the action is the base policy's initial noise ``w``."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from dsrl_ray.envs.chunking import ChunkedEnv
from dsrl_ray.core.steering import NoiseMode, Steering
from dsrl_ray.envs.make import check_policy_fits, make_chunked_env
from dsrl_ray.envs.tasks import get_task_spec
from dsrl_ray.policies.base import BasePolicy


class LatentActionEnv(gymnasium.Wrapper):
    """Wraps a :class:`ChunkedEnv` so that the action is the latent initial noise ``w``.

    Observation: the chunked env's normalised ``(obs_dim,)`` float32 observation.
    Action: the latent noise, float32: ``(chunk_len * act_dim,)`` (the flattened chunk noise) with
    ``noise_mode="full"``, ``(act_dim,)`` (shared by every step of the chunk) with ``"shared"``;
    the action space is ``Box(-action_magnitude, action_magnitude)``, the range of DSRL's noise
    policy, but actions are used as given (standard deployment draws ``w ~ N(0, I)``, which may
    exceed it). ``step``: ``chunk = base_policy.sample(obs, noise)`` with ``noise`` the chunk noise
    of ``w`` (no grad, on the policy's device), then one chunked step. ``info`` adds
    ``executed_action`` (the chunk, flattened, normalised, float32) and ``noise`` (the chunk noise
    pi_dp received, ``(chunk_len, act_dim)`` float32).
    """

    def __init__(
        self,
        chunked_env: ChunkedEnv,
        base_policy: BasePolicy,
        action_magnitude: float = 1.5,
        noise_mode: NoiseMode = "full",
    ) -> None:
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
        self._steering = Steering(base_policy, noise_mode)
        self.noise_mode = noise_mode
        self.noise_shape = self._steering.noise_shape
        self.action_magnitude = float(action_magnitude)
        size = self._steering.latent_dim
        self.action_space = gymnasium.spaces.Box(-self.action_magnitude, self.action_magnitude, (size,), np.float32)
        self._obs: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._obs = obs
        return obs, info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Denoise ``action`` (latent ``w``) into a chunk with the base policy and execute it."""
        if self._obs is None:
            raise RuntimeError("LatentActionEnv.step() called before reset()")
        w = np.asarray(action, dtype=np.float32)
        if w.shape != self.action_space.shape:
            raise ValueError(
                f"latent action has shape {w.shape}; expected {self.action_space.shape} "
                f"(noise_mode={self.noise_mode!r}, chunk noise of shape {self.noise_shape})"
            )
        noise = self._steering.chunk_noise_np(w[None])  # (1, chunk_len, act_dim)
        chunk = self._steering.chunks_np(self._obs[None], noise)[0]
        obs, reward, terminated, truncated, info = self.env.step(chunk)
        self._obs = obs
        info = {**info, "executed_action": chunk.reshape(-1).copy(), "noise": noise[0]}
        return obs, reward, terminated, truncated, info


def make_latent_env(
    task_name: str,
    base_policy: BasePolicy,
    *,
    action_magnitude: float = 1.5,
    noise_mode: NoiseMode = "full",
    seed: int | None = None,
    render_mode: str | None = None,
) -> LatentActionEnv:
    """The latent-action env of ``task_name`` for ``base_policy`` (its normaliser and chunk length).

    ``noise_mode``: the latent action is the full chunk noise or one shared ``act_dim`` vector.
    """
    spec = get_task_spec(task_name)
    check_policy_fits(base_policy, spec.obs_dim, spec.act_dim, f"task {task_name!r}")
    chunked = make_chunked_env(
        task_name, base_policy.normalizer, seed=seed, chunk_len=base_policy.chunk_len, render_mode=render_mode
    )
    return LatentActionEnv(chunked, base_policy, action_magnitude, noise_mode)
