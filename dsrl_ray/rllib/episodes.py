"""Flat latent-action transitions for :class:`FlatReplay`, from runner episodes or from demos.

Layout (``N`` transitions; ``O`` obs length, ``A = chunk_len * act_dim`` the executed chunk's
length, ``D`` the latent noise's: ``A`` with ``noise_mode="full"``, ``act_dim`` with ``"shared"``)::

    obs (N, O), noise (N, D), executed (N, A), reward (N,), next_obs (N, O),
    terminated (N,) bool, truncated (N,) bool, weights_seq_no (N,) int64

plus, where the runners ship aliasing pairs (DSRL-NA, ``K`` pairs per step)::

    pair_noise (N, K, D), pair_executed (N, K, A), pair_valid (N,) bool (false: offline rows, no pairs)
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO

from dsrl_ray.rllib.module import EXECUTED, PAIR_EXECUTED, PAIR_NOISE
from dsrl_ray.envs import SIM_ERROR, DemoDataset
from dsrl_ray.policies import Normalizer

OFFLINE_WEIGHTS_SEQ_NO = -1
"""``weights_seq_no`` of offline transitions (their noise is NaN: they have no latent action)."""

PAIR_VALID = "pair_valid"
"""Transition field: the row carries aliasing pairs (false for offline rows)."""


def empty_transitions(obs_dim: int, noise_dim: int, executed_dim: int) -> dict[str, np.ndarray]:
    """Zero transitions in the flat layout (handy for concatenation): ``noise (0, D)``, ``executed (0, A)``."""
    return {
        "obs": np.zeros((0, obs_dim), np.float32),
        "noise": np.zeros((0, noise_dim), np.float32),
        "executed": np.zeros((0, executed_dim), np.float32),
        "reward": np.zeros((0,), np.float32),
        "next_obs": np.zeros((0, obs_dim), np.float32),
        "terminated": np.zeros((0,), bool),
        "truncated": np.zeros((0,), bool),
        WEIGHTS_SEQ_NO: np.zeros((0,), np.int64),
    }


def concat_transitions(parts: Iterable[dict[str, np.ndarray]]) -> dict[str, np.ndarray] | None:
    """Row-wise concatenation of transition dicts (``None`` for no parts)."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def num_transitions(transitions: dict[str, np.ndarray] | None) -> int:
    return 0 if transitions is None else len(transitions["obs"])


def episodes_to_transitions(episodes: Iterable[SingleAgentEpisode]) -> dict[str, np.ndarray] | None:
    """Flatten episode chunks from env runners into transitions (``None`` if there are none).

    The executed chunk is read from ``extra_model_outputs["executed"]``, never from infos
    (RLlib's infos connector is off by one for transitions). A continuing chunk starts with
    the previous chunk's last observation, so ``obs[t] -> next_obs[t]`` pairs are exact.
    Aliasing pairs, where the runner's module made them, come from ``extra_model_outputs`` too.

    An episode that ended in a simulator error (truncated, last info ``sim_error``) loses its
    last transition: that chunk ran only in part and its next observation is not a state the
    simulator reached by executing it. The transitions before it are kept (not terminal).
    """
    return concat_transitions(_episode_transitions(ep) for ep in episodes)


def _episode_transitions(ep: SingleAgentEpisode) -> dict[str, np.ndarray] | None:
    """The transitions of one episode chunk (see :func:`episodes_to_transitions`), ``None`` if it has none."""
    n = len(ep)
    failed = n > 0 and ep.is_truncated and bool(ep.get_infos(-1).get(SIM_ERROR, False))
    if failed:
        n -= 1
    if n == 0:
        return None
    o = np.asarray(ep.get_observations(slice(0, n + 1)), dtype=np.float32)
    terminated = np.zeros(n, bool)
    truncated = np.zeros(n, bool)
    if not failed:
        terminated[-1] = ep.is_terminated
        truncated[-1] = ep.is_truncated
    part = {
        "obs": o[:-1],
        "noise": np.asarray(ep.get_actions(slice(0, n)), dtype=np.float32).reshape(n, -1),
        "executed": np.asarray(ep.get_extra_model_outputs(EXECUTED, slice(0, n)), dtype=np.float32).reshape(n, -1),
        "reward": np.asarray(ep.get_rewards(slice(0, n)), dtype=np.float32),
        "next_obs": o[1:],
        "terminated": terminated,
        "truncated": truncated,
        WEIGHTS_SEQ_NO: np.asarray(ep.get_extra_model_outputs(WEIGHTS_SEQ_NO, slice(0, n)), dtype=np.int64).reshape(n),
    }
    if PAIR_NOISE in ep.extra_model_outputs:
        part.update(_episode_pairs(ep, n))
    return part


def _episode_pairs(ep: SingleAgentEpisode, n: int) -> dict[str, np.ndarray]:
    """The aliasing pairs of the first ``n`` steps: ``pair_noise (n, K, D)``, ``pair_executed (n, K, A)``."""
    noise = np.asarray(ep.get_extra_model_outputs(PAIR_NOISE, slice(0, n)), dtype=np.float32)
    executed = np.asarray(ep.get_extra_model_outputs(PAIR_EXECUTED, slice(0, n)), dtype=np.float32)
    return {
        PAIR_NOISE: noise.reshape(n, noise.shape[-2], -1),
        PAIR_EXECUTED: executed.reshape(n, executed.shape[-2], -1),
        PAIR_VALID: np.ones(n, bool),
    }


def without_pairs(
    transitions: dict[str, np.ndarray], k: int, noise_dim: int, executed_dim: int
) -> dict[str, np.ndarray]:
    """``transitions`` (e.g. offline ones) with empty aliasing-pair columns: NaN pairs, ``pair_valid`` false.

    ``k`` pairs per row in the replay's layout: ``pair_noise (N, k, noise_dim)`` (latent ``D``),
    ``pair_executed (N, k, executed_dim)`` (``A``).
    """
    n = len(transitions["obs"])
    return {
        **transitions,
        PAIR_NOISE: np.full((n, k, noise_dim), np.nan, np.float32),
        PAIR_EXECUTED: np.full((n, k, executed_dim), np.nan, np.float32),
        PAIR_VALID: np.zeros(n, bool),
    }


def demos_to_transitions(
    dataset: DemoDataset, normalizer: Normalizer, chunk_len: int, reward_offset: float, noise_dim: int
) -> dict[str, np.ndarray]:
    """Chunk-level offline transitions for DSRL-NA's Q_A, one per demo step.

    For every step ``t`` of every demo: ``obs = norm(o_t)``, ``executed`` = the normalised
    actions ``a_t .. a_{t+chunk_len-1}`` flattened (past the demo's end the last action is
    repeated, as in behaviour cloning; the env would have stopped there), ``reward`` = the
    sum of the env rewards ``r_stored - reward_offset`` over the ``k = min(chunk_len, T - t)``
    steps executed, ``next_obs = norm(o_{t+k})`` (from ``next_obs`` when the file has it),
    ``terminated`` = the demo's ``dones`` flag at step ``t+k-1`` (robomimic's convention: set
    where the demo ended). ``noise`` is NaN, of the replay's latent length, and ``weights_seq_no`` is -1.

    Args:
        dataset: loaded demos (environment units).
        normalizer: the base policy's normaliser.
        chunk_len: the base policy's chunk length.
        reward_offset: the task's per-step reward offset (robomimic rewards are stored without it).
        noise_dim: the latent noise length ``D`` (``chunk_len * act_dim``, or ``act_dim`` for shared noise).
    """
    parts = []
    for ep in dataset.episodes:
        length = len(ep)
        t = np.arange(length)
        window = np.minimum(t[:, None] + np.arange(chunk_len)[None, :], length - 1)  # (T, chunk_len)
        executed_steps = np.minimum(chunk_len, length - t)  # (T,)
        last = t + executed_steps - 1
        rewards = ep.rewards.astype(np.float64) - reward_offset
        cumulative = np.concatenate([[0.0], np.cumsum(rewards)])
        next_raw = ep.next_obs[last] if ep.next_obs is not None else ep.obs[np.minimum(last + 1, length - 1)]
        actions = normalizer.normalize_action(ep.actions.astype(np.float32))
        parts.append(
            {
                "obs": normalizer.normalize_obs(ep.obs.astype(np.float32)),
                "noise": np.full((length, noise_dim), np.nan, np.float32),
                "executed": actions[window].reshape(length, -1),
                "reward": (cumulative[last + 1] - cumulative[t]).astype(np.float32),
                "next_obs": normalizer.normalize_obs(next_raw.astype(np.float32)),
                "terminated": ep.dones[last].astype(bool),
                "truncated": np.zeros(length, bool),
                WEIGHTS_SEQ_NO: np.full(length, OFFLINE_WEIGHTS_SEQ_NO, np.int64),
            }
        )
    out = concat_transitions(parts)
    assert out is not None  # DemoDataset always has at least one episode
    return {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in out.items()}
