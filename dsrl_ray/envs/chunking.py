"""Action chunking: one step of ``ChunkedEnv`` executes a whole chunk of normalised actions."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from dsrl_ray.policies.normalizer import Normalizer


class ChunkedEnv(gymnasium.Wrapper):
    """Wraps a raw per-step env so that observations are normalised and actions are chunks.

    Observation: ``normalizer.normalize_obs(raw_obs)``, ``(obs_dim,)`` float32.
    Action: ``(chunk_len, act_dim)`` normalised actions (the base policy's units, nominally in
    ``[-1, 1]``; passed on unclipped). ``step`` unnormalises and executes them one by one, sums
    the rewards (undiscounted), and stops early at the first terminated or truncated step.
    ``info``: ``success`` (any executed step succeeded), ``env_steps`` (steps executed in this
    chunk), ``raw_obs`` (the last raw observation, environment units).
    """

    def __init__(self, env: gymnasium.Env, chunk_len: int, normalizer: Normalizer) -> None:
        super().__init__(env)
        obs_shape, act_shape = env.observation_space.shape, env.action_space.shape
        if chunk_len < 1:
            raise ValueError(f"chunk_len={chunk_len}; expected a positive integer")
        if obs_shape != (normalizer.obs_dim,):
            raise ValueError(f"normalizer has obs_dim={normalizer.obs_dim} but the env's observations are {obs_shape}")
        if act_shape != (normalizer.act_dim,):
            raise ValueError(f"normalizer has act_dim={normalizer.act_dim} but the env's actions are {act_shape}")
        self.chunk_len = int(chunk_len)
        self.act_dim = normalizer.act_dim
        self.obs_dim = normalizer.obs_dim
        self.normalizer = normalizer
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(self.obs_dim,), dtype=np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, shape=(self.chunk_len, self.act_dim), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Reset the raw env; ``info["raw_obs"]`` holds the raw first observation."""
        raw_obs, info = self.env.reset(seed=seed, options=options)
        return self._normalize(raw_obs), {**info, "raw_obs": raw_obs}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Execute the chunk ``action`` ``(chunk_len, act_dim)``; returns the last observation."""
        chunk = np.asarray(action, dtype=np.float32)
        if chunk.shape != (self.chunk_len, self.act_dim):
            raise ValueError(
                f"action chunk has shape {chunk.shape}; "
                f"expected (chunk_len, act_dim) = ({self.chunk_len}, {self.act_dim})"
            )
        env_actions = self.normalizer.unnormalize_action(chunk)
        total_reward, success, steps = 0.0, False, 0
        for env_action in env_actions:
            raw_obs, reward, terminated, truncated, info = self.env.step(env_action)
            total_reward += float(reward)
            success = success or bool(info["success"])
            steps += 1
            if terminated or truncated:
                break
        info = {**info, "success": success, "env_steps": steps, "raw_obs": raw_obs}
        return self._normalize(raw_obs), total_reward, terminated, truncated, info

    def _normalize(self, raw_obs: np.ndarray) -> np.ndarray:
        return np.asarray(self.normalizer.normalize_obs(np.asarray(raw_obs, dtype=np.float32)), dtype=np.float32)
