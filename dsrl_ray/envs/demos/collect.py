"""Collect demonstrations (scripted or learned demonstrators) into a robomimic-layout HDF5 file."""

from __future__ import annotations

import itertools
import os
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
from tqdm import tqdm

from dsrl_ray.envs.demos.datasets import EpisodeRecord, file_sha256, write_demos
from dsrl_ray.envs.make import make_task
from dsrl_ray.envs.tasks import TaskSpec, get_task_spec
from dsrl_ray.envs.robomimic_tasks import RobomimicTaskEnv, load_env_meta
from dsrl_ray.envs.demos.scripted import ScriptedDemonstrator, make_demonstrator

_ROBOMIMIC_GYM_TYPE = 2  # robomimic's EnvType.GYM_TYPE, used for every task that is not robosuite


@dataclass(frozen=True)
class CollectSummary:
    """What ``collect_demos`` did.

    Attributes:
        task_name: the task.
        out_path: the file written.
        sha256: hex digest of the file written.
        n_demos: demos written.
        n_attempts: episodes run.
        n_successes: successful episodes among them.
        success_rate: ``n_successes / n_attempts``.
        mean_length: mean number of environment steps of the demos written.
        mean_return: mean return of the demos written, in the stored (robomimic) reward convention:
            the env's own return for gym tasks, the number of success steps for sparse-success tasks.
        sigma: the demonstrator's action-noise standard deviation.
        seed: the seed of the whole collection.
    """

    task_name: str
    out_path: str
    sha256: str
    n_demos: int
    n_attempts: int
    n_successes: int
    success_rate: float
    mean_length: float
    mean_return: float
    sigma: float
    seed: int


def task_env_args(task_name: str) -> dict[str, Any]:
    """``env_args`` for a dataset of ``task_name``: the robomimic env metadata for robomimic tasks,
    else ``{"env_name": <simulator name>, "type": 2, "env_kwargs": {}}``."""
    spec = get_task_spec(task_name)
    if spec.kind == "robomimic":
        return load_env_meta(task_name)
    return {"env_name": spec.env_name, "type": _ROBOMIMIC_GYM_TYPE, "env_kwargs": {}}


def _run_episode(
    env: gymnasium.Env, spec: TaskSpec, demonstrator: ScriptedDemonstrator, env_seed: int, rng: np.random.Generator
) -> tuple[EpisodeRecord, bool]:
    """One demonstrator episode; returns its record and whether it succeeded."""
    sim = env.unwrapped if isinstance(env.unwrapped, RobomimicTaskEnv) else None
    obs, info = env.reset(seed=env_seed)
    demonstrator.reset(obs, rng)
    model_file = sim.get_model_xml() if sim is not None else None
    observations, next_observations, actions, rewards, dones, states = [], [], [], [], [], []
    while True:
        if sim is not None:
            states.append(sim.get_sim_state())
        action = demonstrator.act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        next_observations.append(next_obs)
        actions.append(action)
        rewards.append(reward + spec.reward_offset)
        finished = terminated or truncated or demonstrator.finished(next_obs)
        dones.append(finished)
        obs = next_obs
        if finished:
            break
    record = EpisodeRecord(
        obs=spec.split_obs(np.stack(observations)),
        next_obs=spec.split_obs(np.stack(next_observations)),
        actions=np.stack(actions),
        rewards=np.asarray(rewards, dtype=np.float64),
        dones=np.asarray(dones, dtype=np.int64),
        states=np.stack(states) if sim is not None else None,
        model_file=model_file,
    )
    return record, bool(info["success"])


def attempt_seed(seed: int, attempt: int) -> np.random.SeedSequence:
    """Seed sequence of attempt ``attempt`` (0-based) of a collection seeded ``seed``: its
    ``attempt``-th child, so an attempt's episode does not depend on where or after what it runs."""
    return np.random.SeedSequence(seed, spawn_key=(attempt,))


def run_attempts(
    task_name: str,
    attempts: Iterable[int],
    *,
    sigma: float,
    seed: int,
    demonstrator: ScriptedDemonstrator | None = None,
) -> Generator[tuple[EpisodeRecord, bool], None, None]:
    """Demonstrator episodes ``attempts`` of a collection seeded ``seed``, in that order, on one env.

    Yields ``(record, success)`` per attempt. ``demonstrator``: the one to run (default: the
    task's own, ``make_demonstrator(task_name, env, sigma)``).
    """
    spec = get_task_spec(task_name)
    env = make_task(task_name)
    try:
        if demonstrator is not None and demonstrator.sigma != sigma:
            raise ValueError(f"demonstrator has sigma={demonstrator.sigma}; expected the sigma={sigma} given")
        demonstrator = demonstrator or make_demonstrator(task_name, env, sigma)
        for attempt in attempts:
            child = attempt_seed(seed, attempt)
            yield _run_episode(env, spec, demonstrator, int(child.generate_state(1)[0]), np.random.default_rng(child))
    finally:
        env.close()


def collect_demos(
    task_name: str,
    n_demos: int,
    *,
    sigma: float,
    seed: int,
    out_path: str | os.PathLike,
    keep_failures: bool = False,
    max_attempts: int | None = None,
    progress: bool = True,
    demonstrator: ScriptedDemonstrator | None = None,
    attempts: Generator[tuple[EpisodeRecord, bool], None, None] | None = None,
) -> CollectSummary:
    """Run the demonstrator of ``task_name`` and write ``n_demos`` episodes to ``out_path``.

    Episodes are seeded from ``seed`` (attempt ``i`` by ``attempt_seed(seed, i)``), so a collection
    is reproducible, and the first ``n_demos`` kept attempts are written whoever ran them. Rewards
    are stored in robomimic's convention (the env's reward plus the task's reward offset, i.e. 1 on
    success steps), ``dones`` is 1 on each episode's last step, and
    robosuite episodes also store ``states`` and ``model_file`` for replay.

    Args:
        task_name: a task with a demonstrator (``TaskSpec.demonstrator``; see ``demo_tasks()``).
        n_demos: number of episodes to write.
        sigma: action-noise standard deviation of the demonstrator.
        seed: seed of the whole collection.
        out_path: destination ``.hdf5`` (written atomically).
        keep_failures: also write unsuccessful episodes.
        max_attempts: episodes to try at most (default ``4 * n_demos + 10``); if fewer than
            ``n_demos`` are kept by then, ``RuntimeError`` and no file is written.
        progress: show a tqdm progress bar with the mean return (and the success count, for tasks with success).
        demonstrator: the demonstrator to run (default: ``make_demonstrator(task_name, env, sigma)``,
            the task's own; a learned one is loaded from its cache or trained first).
        attempts: the ``(record, success)`` of attempts 0, 1, 2, ... in order, from wherever they
            run (``dsrl_ray.rllib.demo_workers`` runs them on Ray workers); default: ``run_attempts``
            here. Only as many as needed are drawn; the generator is closed afterwards.
    """
    spec = get_task_spec(task_name)
    if n_demos < 1:
        raise ValueError(f"n_demos={n_demos}; expected at least 1")
    if attempts is not None and demonstrator is not None:
        raise ValueError("collect_demos got both attempts and a demonstrator; the demonstrator runs only here")
    max_attempts = 4 * n_demos + 10 if max_attempts is None else max_attempts
    if attempts is None:
        attempts = run_attempts(task_name, itertools.count(), sigma=sigma, seed=seed, demonstrator=demonstrator)
    kept: list[EpisodeRecord] = []
    n_attempts = successes = 0
    try:
        with tqdm(total=n_demos, desc=f"collect {task_name}", disable=not progress) as bar:
            while len(kept) < n_demos and n_attempts < max_attempts:
                record, success = next(attempts)
                n_attempts += 1
                successes += success
                if success or keep_failures:
                    kept.append(record)
                    bar.update(1)
                postfix = {"mean_return": f"{np.mean([r.rewards.sum() for r in kept]):.1f}" if kept else "-"}
                if spec.has_success:  # gym tasks have no success to count
                    postfix["successes"] = f"{successes}/{n_attempts}"
                bar.set_postfix(postfix)
    finally:
        attempts.close()
    if len(kept) < n_demos:
        raise RuntimeError(
            f"collected only {len(kept)} of {n_demos} {task_name} demos in {n_attempts} attempts "
            f"(success rate {successes / n_attempts:.0%} at sigma={sigma}); raise max_attempts or lower sigma"
        )
    write_demos(out_path, kept, task_env_args(task_name), spec.obs_keys)
    return CollectSummary(
        task_name=task_name,
        out_path=str(out_path),
        sha256=file_sha256(out_path),
        n_demos=len(kept),
        n_attempts=n_attempts,
        n_successes=successes,
        success_rate=successes / n_attempts,
        mean_length=float(np.mean([len(r.actions) for r in kept])),
        mean_return=float(np.mean([r.rewards.sum() for r in kept])),
        sigma=float(sigma),
        seed=seed,
    )
