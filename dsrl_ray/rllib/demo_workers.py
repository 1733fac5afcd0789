"""Demonstration attempts spread over Ray workers (the Ray side of :mod:`dsrl_ray.envs.demos.collect`).

Attempts are cut into shards of consecutive indices; each shard runs in a Ray task (one CPU) with
its own env and demonstrator, at most ``workers`` at a time, and the results come back in attempt
order. Attempt ``i`` is seeded by ``attempt_seed(seed, i)`` wherever it runs, so the file written
equals the one a collection in one process writes.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Generator

from dsrl_ray.envs.demos.collect import CollectSummary, collect_demos, run_attempts
from dsrl_ray.envs.demos.datasets import EpisodeRecord
from dsrl_ray.envs.demos.scripted import make_demonstrator
from dsrl_ray.envs.make import make_task
from dsrl_ray.envs.tasks import get_task_spec

SHARD_SIZE = 3
"""Attempts per Ray task: enough to pay for building the env, few enough to waste little at the end."""


def _run_shard(task_name: str, attempts: list[int], sigma: float, seed: int) -> list[tuple[EpisodeRecord, bool]]:
    return list(run_attempts(task_name, attempts, sigma=sigma, seed=seed))


def attempts_on_workers(
    task_name: str, *, sigma: float, seed: int, workers: int, shard_size: int = SHARD_SIZE
) -> Generator[tuple[EpisodeRecord, bool], None, None]:
    """``(record, success)`` of attempts 0, 1, 2, ... in order, run ``shard_size`` at a time in up to
    ``workers`` Ray tasks ahead of the consumer. Closing the iterator cancels the shards still running.

    Needs a running Ray (``ray.init``).
    """
    import ray

    if not ray.is_initialized():
        raise RuntimeError(f"demos on {workers} workers need a running Ray (call ray.init first)")
    task = ray.remote(num_cpus=1)(_run_shard)
    starts = itertools.count(0, shard_size)
    running: deque[ray.ObjectRef] = deque()
    try:
        while True:
            while len(running) < workers:
                first = next(starts)
                running.append(task.remote(task_name, list(range(first, first + shard_size)), sigma, seed))
            yield from ray.get(running.popleft())
    finally:
        for ref in running:
            ray.cancel(ref)


def collect_demos_on_workers(
    task_name: str,
    n_demos: int,
    *,
    sigma: float,
    seed: int,
    out_path: str | os.PathLike,
    workers: int,
    keep_failures: bool = False,
    progress: bool = True,
) -> CollectSummary:
    """:func:`~dsrl_ray.envs.demos.collect.collect_demos` with the attempts spread over ``workers``
    Ray tasks; ``workers == 1`` runs here. The file and the summary equal the one-process collection's.

    A learned demonstrator (``TaskSpec.demo_target_return``) is trained or loaded here first, so the
    workers load it from its cache instead of each training one.
    """
    if workers < 1:
        raise ValueError(f"demo workers={workers}; expected at least 1")
    if workers == 1:
        return collect_demos(task_name, n_demos, sigma=sigma, seed=seed, out_path=out_path,
                             keep_failures=keep_failures, progress=progress)
    if get_task_spec(task_name).preset.demo_target_return is not None:
        env = make_task(task_name)
        try:
            make_demonstrator(task_name, env, sigma)
        finally:
            env.close()
    return collect_demos(task_name, n_demos, sigma=sigma, seed=seed, out_path=out_path, keep_failures=keep_failures,
                         progress=progress, attempts=attempts_on_workers(task_name, sigma=sigma, seed=seed,
                                                                         workers=workers))
