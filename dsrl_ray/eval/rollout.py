"""Evaluate a base policy as deployed: noise ``w`` from ``N(0, I)`` (or a given noise function)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from dsrl_ray.envs.chunking import ChunkedEnv
from dsrl_ray.core.steering import Steering
from dsrl_ray.envs.make import check_policy_fits, make_chunked_env
from dsrl_ray.envs.tasks import get_task_spec
from dsrl_ray.policies.base import BasePolicy

NoiseFn = Callable[[np.ndarray, Sequence[np.random.Generator]], np.ndarray]
"""``noise_fn(obs, rngs)``: normalised observations ``(B, obs_dim)`` -> noise ``(B, chunk_len, act_dim)``.

``rngs`` holds each row's episode generator (``B`` of them); a noise function that samples draws
from them, so an episode's noise does not depend on which episodes share its batch or worker.
"""


@dataclass(frozen=True)
class EpisodeResult:
    """One evaluation episode: its env seed, undiscounted return, length in env steps, success."""

    seed: int
    episode_return: float
    length: int
    success: bool


@dataclass(frozen=True)
class EvalResult:
    """Summary of ``evaluate_policy``.

    Attributes:
        success_rate: fraction of episodes that succeeded.
        success_ci95: Wilson 95 % interval ``(low, high)`` for the success rate.
        mean_return: mean undiscounted episode return (environment reward units).
        std_return: population standard deviation of the returns.
        episode_lengths: environment steps per episode.
        episodes: per-episode results, in episode order.
    """

    success_rate: float
    success_ci95: tuple[float, float]
    mean_return: float
    std_return: float
    episode_lengths: list[int]
    episodes: list[EpisodeResult]

    @property
    def return_ci95(self) -> tuple[float, float]:
        """Normal-approximation 95 % interval of the mean return."""
        half = 1.959964 * self.std_return / max(len(self.episodes), 1) ** 0.5
        return self.mean_return - half, self.mean_return + half

    def summary(self, with_success: bool = True) -> str:
        """One line: success rate with its 95 % interval (unless ``with_success`` is false: a task without
        success), episodes used, return mean and 95 % interval, mean episode length."""
        n = len(self.episodes)
        low, high = self.success_ci95
        half = self.mean_return - self.return_ci95[0]
        success = f"success {self.success_rate:.1%} (95% CI {low:.1%}-{high:.1%}, {n} episodes), " if with_success else ""
        episodes = "" if with_success else f", {n} episodes"
        return (
            f"{success}return {self.mean_return:.2f} +/- {half:.2f} (95% CI of the mean{episodes}), "
            f"mean length {sum(self.episode_lengths) / max(n, 1):.1f} steps"
        )

    def to_dict(self) -> dict:
        """Plain-value dict (JSON-serialisable)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> EvalResult:
        """The result :meth:`to_dict` wrote (other keys are ignored)."""
        return cls(
            success_rate=values["success_rate"],
            success_ci95=tuple(values["success_ci95"]),
            mean_return=values["mean_return"],
            std_return=values["std_return"],
            episode_lengths=list(values["episode_lengths"]),
            episodes=[EpisodeResult(**episode) for episode in values["episodes"]],
        )


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95 % for the default ``z``)."""
    if n <= 0:
        raise ValueError(f"n={n}; expected at least one trial")
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


@dataclass
class _Slot:
    """An env and the episode it is running."""

    env: ChunkedEnv
    episode: int = -1
    obs: np.ndarray | None = None
    rng: np.random.Generator | None = None
    episode_return: float = 0.0
    length: int = 0
    success: bool = False


def evaluate_policy(
    task_name: str,
    base_policy: BasePolicy,
    n_episodes: int,
    *,
    seed: int,
    noise_fn: NoiseFn | None = None,
    num_envs: int = 1,
    progress: bool = True,
) -> EvalResult:
    """Roll out ``base_policy`` on ``task_name`` for ``n_episodes`` episodes, in this process.

    Each chunk is ``base_policy.sample(obs, w)`` executed open loop, as in the latent-action env.
    Episode ``i`` uses env seed ``seed + i`` and a generator seeded with ``(seed, i)`` for its
    noise (``w ~ N(0, I)`` by default, or whatever ``noise_fn`` draws from it), so results do not
    depend on ``num_envs`` (nor on workers: :func:`dsrl_ray.rllib.eval_workers.evaluate_on_workers`).

    Args:
        task_name: the task.
        base_policy: the frozen policy (its normaliser and chunk length are used).
        n_episodes: number of episodes.
        seed: base seed.
        noise_fn: optional noise for a batch of normalised observations (e.g. a trained noise
            policy), see :data:`NoiseFn`; default ``N(0, I)``.
        num_envs: envs stepped in lockstep, their policy calls batched (robosuite envs cost
            ~0.5 GB each).
        progress: show a tqdm progress bar with the success count.
    """
    check_evaluation(task_name, base_policy, n_episodes)
    done: list[EpisodeResult] = []
    with tqdm(total=n_episodes, desc=f"evaluate {task_name}", disable=not progress) as bar:

        def count(result: EpisodeResult) -> None:
            done.append(result)
            bar.update(1)
            bar.set_postfix(progress_postfix(task_name, done))

        episodes = run_episodes(task_name, base_policy, range(n_episodes), seed=seed, noise_fn=noise_fn,
                                num_envs=num_envs, on_episode=count)
    return summarize(episodes)


def progress_postfix(task_name: str, results: Sequence[EpisodeResult]) -> dict[str, str]:
    """What an evaluation's progress bar shows so far: the successes, or the mean return for a task without
    success (gym locomotion)."""
    if get_task_spec(task_name).has_success:
        return {"successes": str(sum(r.success for r in results))}
    return {"mean_return": f"{sum(r.episode_return for r in results) / max(len(results), 1):.1f}"}


def check_evaluation(task_name: str, base_policy: BasePolicy, n_episodes: int) -> None:
    """``ValueError`` unless ``base_policy`` fits ``task_name`` and ``n_episodes >= 1``."""
    spec = get_task_spec(task_name)
    check_policy_fits(base_policy, spec.obs_dim, spec.act_dim, f"task {task_name!r}")
    if n_episodes < 1:
        raise ValueError(f"n_episodes={n_episodes}; expected at least 1")


def summarize(episodes: Sequence[EpisodeResult]) -> EvalResult:
    """The :class:`EvalResult` of ``episodes`` (in episode order)."""
    returns = np.array([r.episode_return for r in episodes])
    successes = sum(r.success for r in episodes)
    return EvalResult(
        success_rate=successes / len(episodes),
        success_ci95=wilson_interval(successes, len(episodes)),
        mean_return=float(returns.mean()),
        std_return=float(returns.std()),
        episode_lengths=[r.length for r in episodes],
        episodes=list(episodes),
    )


def run_episodes(
    task_name: str,
    base_policy: BasePolicy,
    episode_ids: Sequence[int],
    *,
    seed: int,
    noise_fn: NoiseFn | None = None,
    num_envs: int = 1,
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> list[EpisodeResult]:
    """Run the episodes ``episode_ids`` (env seed ``seed + i``, noise generator ``(seed, i)``).

    Returns their results in the order of ``episode_ids``; ``on_episode`` is called with each
    result as its episode ends.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs={num_envs}; expected at least 1")
    steering = Steering(base_policy)
    noise_shape = steering.noise_shape
    slots = [
        _Slot(make_chunked_env(task_name, base_policy.normalizer, chunk_len=base_policy.chunk_len))
        for _ in range(min(num_envs, len(episode_ids)))
    ]
    results: dict[int, EpisodeResult] = {}
    pending = iter(episode_ids)

    def start(slot: _Slot) -> bool:
        slot.episode = next(pending, -1)
        if slot.episode < 0:
            return False
        slot.obs, _ = slot.env.reset(seed=seed + slot.episode)
        slot.rng = np.random.default_rng((seed, slot.episode))
        slot.episode_return, slot.length, slot.success = 0.0, 0, False
        return True

    active = [slot for slot in slots if start(slot)]
    try:
        while active:
            obs = np.stack([slot.obs for slot in active])
            rngs = [slot.rng for slot in active]
            if noise_fn is None:
                noise = np.stack([rng.standard_normal(noise_shape, dtype=np.float32) for rng in rngs])
            else:
                noise = np.asarray(noise_fn(obs, rngs), dtype=np.float32)
                expected = (len(active), *noise_shape)
                if noise.shape != expected:
                    raise ValueError(f"noise_fn returned shape {noise.shape}; expected {expected}")
            chunks = steering.chunks_np(obs, noise)
            still_active = []
            for slot, chunk in zip(active, chunks, strict=True):
                slot.obs, reward, terminated, truncated, info = slot.env.step(chunk)
                slot.episode_return += reward
                slot.length += info["env_steps"]
                slot.success = slot.success or info["success"]
                if not (terminated or truncated):
                    still_active.append(slot)
                    continue
                result = EpisodeResult(seed + slot.episode, slot.episode_return, slot.length, slot.success)
                results[slot.episode] = result
                if on_episode is not None:
                    on_episode(result)
                if start(slot):
                    still_active.append(slot)
            active = still_active
    finally:
        for slot in slots:
            slot.env.close()
    return [results[i] for i in episode_ids]
