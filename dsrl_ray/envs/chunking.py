"""Action chunking: one step of ``ChunkedEnv`` executes a whole chunk of normalised actions."""

from __future__ import annotations

import logging
from typing import Any

import gymnasium
import numpy as np

from dsrl_ray.policies.normalizer import Normalizer

logger = logging.getLogger(__name__)

SIM_ERROR = "sim_error"
"""Info key set (``True``) on the chunk step whose simulator raised :class:`SimulatorError`."""


class SimulatorError(RuntimeError):
    """The simulator failed mid-episode (e.g. MuJoCo reported an unstable simulation).

    A per-step env raises it from ``step()`` when its state can no longer be trusted but a
    ``reset()`` brings it back. :class:`ChunkedEnv` turns it into the end of the episode
    (truncated, ``info["sim_error"] = True``) instead of letting it crash the process. Any other
    exception from ``step()`` propagates unchanged, so programming errors are never swallowed.
    """


class ChunkedEnv(gymnasium.Wrapper):
    """Wraps a raw per-step env so that observations are normalised and actions are chunks.

    Observation: ``normalizer.normalize_obs(raw_obs)``, ``(obs_dim,)`` float32.
    Action: ``(chunk_len, act_dim)`` normalised actions (the base policy's units, nominally in
    ``[-1, 1]``; passed on unclipped). ``step`` unnormalises and executes them one by one, sums
    the rewards (undiscounted), and stops early at the first terminated or truncated step.
    ``info``: ``success`` (any executed step succeeded), ``env_steps`` (steps executed in this
    chunk), ``raw_obs`` (the last raw observation, environment units).

    Simulator errors: if the raw env raises :class:`SimulatorError` during the chunk, the chunk
    step ends the episode with ``truncated=True`` and ``info["sim_error"] = True``. It returns
    the last observation the simulator produced before the failure, the reward summed over the
    steps completed before it, and ``env_steps`` counting only those steps. That transition is
    not a real one (the chunk ran only in part); consumers must drop it (the DSRL driver does).
    The env must be reset before the next ``step``.
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
        self._last_raw_obs: np.ndarray | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        """Reset the raw env; ``info["raw_obs"]`` holds the raw first observation."""
        raw_obs, info = self.env.reset(seed=seed, options=options)
        self._last_raw_obs = raw_obs
        return self._normalize(raw_obs), {**info, "raw_obs": raw_obs}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Execute the chunk ``action`` ``(chunk_len, act_dim)``; returns the last observation."""
        chunk = np.asarray(action, dtype=np.float32)
        if chunk.shape != (self.chunk_len, self.act_dim):
            raise ValueError(
                f"action chunk has shape {chunk.shape}; "
                f"expected (chunk_len, act_dim) = ({self.chunk_len}, {self.act_dim})"
            )
        if self._last_raw_obs is None:
            raise RuntimeError("ChunkedEnv.step() called before reset() (or after a simulator error)")
        env_actions = self.normalizer.unnormalize_action(chunk)
        total_reward, success, steps = 0.0, False, 0
        for env_action in env_actions:
            try:
                raw_obs, reward, terminated, truncated, info = self.env.step(env_action)
            except SimulatorError as err:
                return self._end_on_sim_error(err, total_reward, success, steps)
            self._last_raw_obs = raw_obs
            total_reward += float(reward)
            success = success or bool(info["success"])
            steps += 1
            if terminated or truncated:
                break
        info = {**info, "success": success, "env_steps": steps, "raw_obs": raw_obs}
        return self._normalize(raw_obs), total_reward, terminated, truncated, info

    def _end_on_sim_error(
        self, err: SimulatorError, total_reward: float, success: bool, steps: int
    ) -> tuple[np.ndarray, float, bool, bool, dict]:
        """Truncate the episode at a simulator failure (see the class docstring)."""
        logger.warning("simulator error after %d of %d steps of a chunk; truncating the episode: %s",
                       steps, self.chunk_len, err)
        raw_obs, self._last_raw_obs = self._last_raw_obs, None
        info = {"success": success, "env_steps": steps, "raw_obs": raw_obs, SIM_ERROR: True}
        return self._normalize(raw_obs), total_reward, False, True, info

    def _normalize(self, raw_obs: np.ndarray) -> np.ndarray:
        return np.asarray(self.normalizer.normalize_obs(np.asarray(raw_obs, dtype=np.float32)), dtype=np.float32)
