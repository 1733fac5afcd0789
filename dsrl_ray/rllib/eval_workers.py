"""Evaluation episodes spread over Ray workers (the Ray side of :mod:`dsrl_ray.eval.rollout`).

Episodes are cut into shards of consecutive indices; each shard runs in a Ray task (one CPU)
with its own envs, at most ``workers`` at a time, and the results are merged in episode order.
Episode ``i`` uses env seed ``seed + i`` and the noise generator ``(seed, i)`` wherever it runs,
so the result equals :func:`~dsrl_ray.eval.rollout.evaluate_policy`'s in one process.
"""

from __future__ import annotations

import math

from tqdm import tqdm

from dsrl_ray.eval.rollout import (
    EpisodeResult,
    EvalResult,
    NoiseFn,
    check_evaluation,
    progress_postfix,
    run_episodes,
    summarize,
)
from dsrl_ray.policies.base import BasePolicy

SHARDS_PER_WORKER = 3
"""Shards per worker: small enough for a live progress bar and for balancing long and short episodes."""


def _run_shard(
    task_name: str, base_policy: BasePolicy, episode_ids: list[int], seed: int, noise_fn: NoiseFn | None
) -> list[EpisodeResult]:
    return run_episodes(task_name, base_policy, episode_ids, seed=seed, noise_fn=noise_fn)


def evaluation_workers(requested: int | None) -> int:
    """Workers to use: ``requested``, or (None) the CPUs of the running Ray cluster (1 without Ray)."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"evaluation workers={requested}; expected at least 1")
        return requested
    import ray

    return max(1, int(ray.cluster_resources().get("CPU", 1))) if ray.is_initialized() else 1


def evaluate_on_workers(
    task_name: str,
    base_policy: BasePolicy,
    n_episodes: int,
    *,
    seed: int,
    workers: int,
    noise_fn: NoiseFn | None = None,
    progress: bool = True,
) -> EvalResult:
    """:func:`~dsrl_ray.eval.rollout.evaluate_policy` with the episodes spread over ``workers`` Ray tasks.

    Needs a running Ray (``ray.init``) when ``workers > 1``; ``workers == 1`` runs here.
    ``base_policy`` and ``noise_fn`` are sent to the workers once (they must pickle).
    """
    if evaluation_workers(workers) == 1:
        from dsrl_ray.eval.rollout import evaluate_policy

        return evaluate_policy(task_name, base_policy, n_episodes, seed=seed, noise_fn=noise_fn, progress=progress)
    check_evaluation(task_name, base_policy, n_episodes)
    import ray

    if not ray.is_initialized():
        raise RuntimeError(f"evaluation on {workers} workers needs a running Ray (call ray.init first)")
    size = max(1, math.ceil(n_episodes / (SHARDS_PER_WORKER * workers)))
    shards = [list(range(first, min(first + size, n_episodes))) for first in range(0, n_episodes, size)]
    task = ray.remote(num_cpus=1)(_run_shard)
    policy_ref, noise_ref = ray.put(base_policy), ray.put(noise_fn)
    results: list[EpisodeResult] = []
    running: list[ray.ObjectRef] = []
    queued = iter(shards)
    with tqdm(total=n_episodes, desc=f"evaluate {task_name} ({workers} workers)", disable=not progress) as bar:
        while True:
            while len(running) < workers and (shard := next(queued, None)) is not None:
                running.append(task.remote(task_name, policy_ref, shard, seed, noise_ref))
            if not running:
                break
            done, running = ray.wait(running, num_returns=1)
            finished = ray.get(done[0])
            results.extend(finished)
            bar.update(len(finished))
            bar.set_postfix(progress_postfix(task_name, results))
    return summarize(sorted(results, key=lambda r: r.seed))
