"""Behaviour-cloning pairs ``obs history -> action chunk`` from plain episode arrays."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Episode = tuple[np.ndarray, np.ndarray]


def check_episodes(episodes: Sequence[Episode], obs_dim: int, act_dim: int) -> None:
    """Raise ``ValueError`` naming the episode and shape unless every episode is
    ``(obs (T, obs_dim), actions (T, act_dim))`` with ``T >= 1``."""
    if len(episodes) == 0:
        raise ValueError("no episodes given; expected at least one (obs, actions) pair")
    for i, episode in enumerate(episodes):
        if len(episode) != 2:
            raise ValueError(f"episode {i} has {len(episode)} parts; expected (obs, actions)")
        obs, actions = np.shape(episode[0]), np.shape(episode[1])
        if len(obs) != 2 or obs[1] != obs_dim or obs[0] < 1:
            raise ValueError(f"episode {i} obs has shape {obs}; expected (T >= 1, obs_dim={obs_dim})")
        if len(actions) != 2 or actions != (obs[0], act_dim):
            raise ValueError(f"episode {i} actions have shape {actions}; expected (T={obs[0]}, act_dim={act_dim})")


def make_training_pairs(
    episodes: Sequence[Episode], chunk_len: int, cond_steps: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """All pairs ``obs[t - cond_steps + 1 .. t] -> actions[t .. t + chunk_len - 1]``.

    Chunks running past an episode's end repeat its last action; histories reaching before its
    start repeat its first observation.

    Args:
        episodes: ``(obs (T, obs_dim), actions (T, act_dim))`` per episode, raw units.
        chunk_len: actions per chunk.
        cond_steps: observations per history (oldest first).

    Returns:
        ``obs (N, cond_steps, obs_dim)`` and ``actions (N, chunk_len, act_dim)`` float32, where
        ``N`` is the total number of steps.
    """
    all_obs, all_actions = [], []
    for obs, actions in episodes:
        obs = np.asarray(obs, dtype=np.float32)
        actions = np.asarray(actions, dtype=np.float32)
        t = np.arange(len(obs))[:, None]
        obs_index = np.maximum(t + np.arange(1 - cond_steps, 1)[None, :], 0)
        action_index = np.minimum(t + np.arange(chunk_len)[None, :], len(obs) - 1)
        all_obs.append(obs[obs_index])
        all_actions.append(actions[action_index])
    return np.concatenate(all_obs), np.concatenate(all_actions)
