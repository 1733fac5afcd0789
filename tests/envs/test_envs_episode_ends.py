"""Task options: episodes that run on after success, the horizon as a true terminal, gym versions."""

from __future__ import annotations

import numpy as np
import pytest

from dsrl_ray.envs import LiftDemonstrator, get_task_spec, make_chunked_env, make_task, twogoal
from dsrl_ray.envs.tasks import GYM_VERSIONS, TaskOptions
from dsrl_ray.policies.normalizer import Normalizer

RELEASED = TaskOptions(terminate_on_success=False, horizon_is_terminal=True)
"""The released DSRL robomimic semantics."""


def _twogoal_chunk(pos: np.ndarray, goal: np.ndarray, chunk_len: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A chunk ``(chunk_len, 2)`` heading straight for ``goal`` (stopping on it) from ``pos``, and the end position."""
    actions = []
    for _ in range(chunk_len):
        velocity = (goal - pos) / twogoal.STEP_SIZE
        action = velocity / max(1.0, float(np.abs(velocity).max()))
        pos = pos + twogoal.STEP_SIZE * action
        actions.append(action)
    return np.asarray(actions, np.float32), pos


def _twogoal_episode(options: TaskOptions | None) -> list[tuple[float, bool, bool, bool, int]]:
    """Chunks ``(reward, terminated, truncated, success, env_steps)`` of one TwoGoal episode that
    heads for the rewarded goal and stays on it."""
    env = make_chunked_env("twogoal", Normalizer.identity(4, 2), seed=3, options=options)
    obs, _ = env.reset()
    goal = twogoal.GOALS[int(np.argmax(obs[2:]))]
    pos, chunks, done = obs[:2].astype(np.float64), [], False
    while not done:
        chunk, pos = _twogoal_chunk(pos, goal)
        obs, reward, terminated, truncated, info = env.step(chunk)
        chunks.append((reward, terminated, truncated, info["success"], info["env_steps"]))
        done = terminated or truncated
    return chunks


def test_twogoal_success_terminates_by_default():
    chunks = _twogoal_episode(None)
    reward, terminated, truncated, success, _ = chunks[-1]
    assert terminated and not truncated and success
    assert sum(c[4] for c in chunks) < get_task_spec("twogoal").max_episode_steps
    assert not any(c[3] for c in chunks[:-1])


def test_twogoal_runs_to_the_horizon_after_success_with_zero_reward_per_chunk():
    chunks = _twogoal_episode(RELEASED)
    assert sum(c[4] for c in chunks) == get_task_spec("twogoal").max_episode_steps  # 12 chunks of 4, then 2 steps
    first = next(i for i, c in enumerate(chunks) if c[3])
    assert 0 < first < len(chunks) - 3, "the goal is reached well before the horizon"
    assert all(reward == 0.0 and success for reward, _, _, success, _ in chunks[first + 1 :])
    assert all(reward == -4.0 for reward, *_ in chunks[:first])
    assert not any(terminated or truncated for _, terminated, truncated, _, _ in chunks[:-1])


def test_horizon_is_terminal_at_the_chunk_step_that_reaches_the_limit():
    for options, expected in ((RELEASED, (True, False)), (TaskOptions(terminate_on_success=False), (False, True))):
        *_, (_, terminated, truncated, _, env_steps) = _twogoal_episode(options)
        assert (terminated, truncated) == expected and env_steps == 2  # the limit falls inside the last chunk


def test_horizon_is_terminal_for_an_episode_without_success():
    env = make_chunked_env("twogoal", Normalizer.identity(4, 2), seed=0, options=TaskOptions(horizon_is_terminal=True))
    env.reset()
    ends = []
    for _ in range(13):
        _, _, terminated, truncated, _ = env.step(np.zeros((4, 2), np.float32))
        ends.append((terminated, truncated))
    assert ends == [(False, False)] * 12 + [(True, False)]


def test_lift_runs_on_after_success_with_reward_zero_while_solved():
    """Robosuite's Lift steps are slow: run 20 steps past the first success (the horizon wrapper is the
    one TwoGoal's tests check)."""
    env = make_task("lift", seed=0, options=RELEASED)
    try:
        obs, _ = env.reset(seed=3)
        demo = LiftDemonstrator(sigma=0.0)
        demo.reset(obs, np.random.default_rng(0))
        steps: list[tuple[float, bool, bool, bool]] = []
        while sum(s[3] for s in steps) < 20 and len(steps) < 150:
            obs, reward, terminated, truncated, info = env.step(demo.act(obs))
            steps.append((reward, terminated, truncated, info["success"]))
    finally:
        env.close()
    first = next(i for i, s in enumerate(steps) if s[3])
    assert first < 100 and steps[first][0] == 0.0
    assert not any(terminated or truncated for _, terminated, truncated, _ in steps)
    assert all(reward == (0.0 if success else -1.0) for reward, _, _, success in steps)
    assert sum(s[3] for s in steps) == 20


@pytest.mark.parametrize("version", GYM_VERSIONS)
def test_gym_task_builds_the_chosen_version_and_steps(version):
    env = make_task("hopper", seed=0, options=TaskOptions(gym_version=version, horizon_is_terminal=True))
    try:
        assert env.unwrapped.spec.id == f"Hopper-{version}"
        obs, _ = env.reset()
        for _ in range(20):
            obs, reward, terminated, truncated, info = env.step(np.full(3, 0.1, np.float32))
        assert obs.shape == (11,) and np.isfinite(obs).all() and np.isfinite(reward) and info["success"] is False
    finally:
        env.close()


def test_gym_default_is_v4_closest_to_the_dppo_checkpoints_data():
    env = make_task("hopper")
    try:
        assert env.unwrapped.spec.id == "Hopper-v4" == get_task_spec("hopper").gym_id()
    finally:
        env.close()


@pytest.mark.parametrize(
    "task, options, message",
    [
        ("hopper", TaskOptions(terminate_on_success=False), "task 'hopper' has no notion of success"),
        ("twogoal", TaskOptions(gym_version="v5"), "task 'twogoal' is a 'toy' task"),
        ("hopper", TaskOptions(gym_version="v3"), r"gym_version='v3'; expected one of \['v4', 'v5'\]"),
        ("twogoal", TaskOptions(horizon_is_terminal="yes"), "horizon_is_terminal='yes'; expected true or false"),
    ],
)
def test_options_that_do_not_fit_the_task_are_refused(task, options, message):
    with pytest.raises(ValueError, match=message):
        make_task(task, options=options)


def test_options_from_an_env_config_ignore_other_keys():
    options = TaskOptions.from_mapping({"base_policy": {}, "horizon_is_terminal": True})
    assert options == TaskOptions(horizon_is_terminal=True)
    assert options.given() == {"horizon_is_terminal": True}
    assert options.for_task(get_task_spec("lift")) == TaskOptions(True, True, None)
