"""Replay sampling: our ``FlatReplay`` vs RLlib's ``EpisodeReplayBuffer`` on the same transitions.

Both buffers hold the same ``--transitions`` latent-action transitions (default 100k), cut into
episodes of 50-100 chunk steps: observation length 19, noise (RLlib's action) length 28, the
executed chunk (length 28) as an extra model output. One sample = one train batch of 256
transitions:

- ``flat``: ``FlatReplay.sample(256)``: a dict of CPU torch tensors with every column
  (obs, noise, executed, reward, next_obs, terminated, truncated);
- ``episode``: ``EpisodeReplayBuffer.sample(num_items=256, n_step=1, sample_episodes=True,
  include_extra_model_outputs=True)``, the call RLlib's SAC/DQN make (the executed chunk is
  an extra model output, so it is requested). RLlib still has to run its learner connector on
  the returned 1-step episodes to get a train batch; that cost is not counted here.

Both contenders run in alternating rounds after a warm-up; each reports its best round.
Goal: ``episode / flat >= 20``.

Usage: ``python bench/bench_replay.py [--quick] [--transitions 100000]``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from dsrl_ray.core.replay import FlatReplay
from ray.rllib.env.single_agent_episode import SingleAgentEpisode
from ray.rllib.utils.replay_buffers.episode_replay_buffer import EpisodeReplayBuffer

OBS_DIM = 19
NOISE_DIM = 28
BATCH = 256
GOAL = 20.0


def make_episodes(total: int, rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """Random episodes of 50-100 steps, ``total`` steps in all (the last one may be shorter).

    Each is ``{"obs": (L+1, O), "noise": (L, D), "executed": (L, D), "reward": (L,)}`` plus the
    flags ``terminated``/``truncated`` of its last step.
    """
    episodes, left = [], total
    while left > 0:
        length = min(left, int(rng.integers(50, 101)))
        terminated = bool(rng.random() < 0.5)
        episodes.append(
            {
                "obs": rng.standard_normal((length + 1, OBS_DIM), dtype=np.float32),
                "noise": rng.uniform(-1.5, 1.5, (length, NOISE_DIM)).astype(np.float32),
                "executed": rng.uniform(-1.0, 1.0, (length, NOISE_DIM)).astype(np.float32),
                "reward": rng.standard_normal(length, dtype=np.float32),
                "terminated": np.array(terminated),
                "truncated": np.array(not terminated),
            }
        )
        left -= length
    return episodes


def fill_flat(episodes: list[dict[str, np.ndarray]], total: int) -> FlatReplay:
    """A :class:`FlatReplay` holding every step of ``episodes`` as a flat transition."""
    replay = FlatReplay(total, OBS_DIM, NOISE_DIM, NOISE_DIM, seed=0)
    for ep in episodes:
        n = len(ep["reward"])
        last = np.zeros(n, bool)
        last[-1] = True
        replay.add(
            {
                "obs": ep["obs"][:-1],
                "noise": ep["noise"],
                "executed": ep["executed"],
                "reward": ep["reward"],
                "next_obs": ep["obs"][1:],
                "terminated": last & ep["terminated"],
                "truncated": last & ep["truncated"],
            }
        )
    return replay


def fill_episode_buffer(episodes: list[dict[str, np.ndarray]], total: int) -> EpisodeReplayBuffer:
    """An :class:`EpisodeReplayBuffer` holding ``episodes`` as numpy'd ``SingleAgentEpisode`` objects."""
    obs_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
    act_space = gym.spaces.Box(-1.5, 1.5, (NOISE_DIM,), np.float32)
    buffer = EpisodeReplayBuffer(capacity=total)
    buffer.rng = np.random.default_rng(0)
    for ep in episodes:
        episode = SingleAgentEpisode(
            observations=list(ep["obs"]),
            observation_space=obs_space,
            actions=list(ep["noise"]),
            action_space=act_space,
            rewards=list(ep["reward"]),
            extra_model_outputs={"executed": list(ep["executed"])},
            terminated=bool(ep["terminated"]),
            truncated=bool(ep["truncated"]),
            len_lookback_buffer=0,
        )
        buffer.add(episode.to_numpy())
    return buffer


def ms_per_call(fn: Callable[[], object], calls: int) -> float:
    """Mean wall time of ``fn()`` over ``calls`` calls, in ms."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return 1e3 * (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds (under a minute)")
    parser.add_argument("--transitions", type=int, default=100_000, help="transitions in each buffer")
    args = parser.parse_args()
    torch.set_num_threads(1)
    flat_calls, episode_calls, rounds = (200, 10, 2) if args.quick else (2000, 50, 5)

    episodes = make_episodes(args.transitions, np.random.default_rng(0))
    start = time.perf_counter()
    flat = fill_flat(episodes, args.transitions)
    fill_flat_s = time.perf_counter() - start
    start = time.perf_counter()
    episode_buffer = fill_episode_buffer(episodes, args.transitions)
    fill_episode_s = time.perf_counter() - start
    print(
        f"torch={torch.__version__} threads={torch.get_num_threads()} transitions={len(flat)} "
        f"episodes={len(episodes)} obs={OBS_DIM} noise={NOISE_DIM} executed={NOISE_DIM} batch={BATCH}"
    )
    print(f"fill time: flat {fill_flat_s:.2f} s, episode {fill_episode_s:.2f} s")

    def sample_episode() -> list[SingleAgentEpisode]:
        return episode_buffer.sample(
            num_items=BATCH, n_step=1, gamma=0.99, sample_episodes=True, include_extra_model_outputs=True
        )

    contenders = {"flat": (lambda: flat.sample(BATCH), flat_calls), "episode": (sample_episode, episode_calls)}
    for fn, _ in contenders.values():
        fn()
    best = dict.fromkeys(contenders, float("inf"))
    for _ in range(rounds):
        for name, (fn, calls) in contenders.items():
            best[name] = min(best[name], ms_per_call(fn, calls))
    print("unit: ms per sampled batch of 256 transitions (best round)")
    print(f"{'buffer':<28} {'calls':>6} {'ms/batch':>10}")
    print(f"{'FlatReplay':<28} {flat_calls:>6} {best['flat']:>10.3f}")
    print(f"{'EpisodeReplayBuffer':<28} {episode_calls:>6} {best['episode']:>10.3f}")
    ratio = best["episode"] / best["flat"]
    verdict = "met" if ratio >= GOAL else "MISSED"
    print(f"ratio {ratio:.1f}x  (EpisodeReplayBuffer / FlatReplay time; goal >= {GOAL:.0f}x: {verdict})")


if __name__ == "__main__":
    main()
