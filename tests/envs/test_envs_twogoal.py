"""TwoGoal: observation and cue semantics, rewards, limit, and its cue-blind demonstrator."""

import numpy as np
import pytest

from dsrl_ray.envs import TwoGoalDemonstrator, make_task, twogoal


def _run_demo(env, demo, seed, chunk_len=1):
    """Run the demonstrator, re-planning every ``chunk_len`` steps (its action is held open loop
    in between, as a chunked policy would); returns (success, steps)."""
    obs, _ = env.reset(seed=seed)
    demo.reset(obs, np.random.default_rng(seed + 10_000))  # independent of the env's own draws
    steps, done = 0, False
    while not done:
        if steps % chunk_len == 0:
            action = demo.act(obs)
        obs, _, terminated, truncated, info = env.step(action)
        steps += 1
        done = terminated or truncated
    return info["success"], steps


def test_observation_layout_and_cue():
    env = make_task("twogoal", seed=0)
    cues = []
    for seed in range(40):
        obs, info = env.reset(seed=seed)
        assert obs.dtype == np.float32 and obs.shape == (4,)
        goal = env.unwrapped.rewarded_goal
        np.testing.assert_array_equal(obs[2:], np.eye(2)[goal])
        assert np.all(np.abs(obs[:2] - twogoal.START_CENTER) <= twogoal.START_HALF_WIDTH + 1e-6)
        cues.append(goal)
        assert info["success"] is False
    assert 0 < sum(cues) < 40  # both goals get rewarded


def test_seed_reproduces_episode_start():
    a = make_task("twogoal", seed=5).reset()[0]
    b = make_task("twogoal", seed=5).reset()[0]
    np.testing.assert_array_equal(a, b)


def test_limit_and_per_step_reward():
    env = make_task("twogoal", seed=1)
    env.reset()
    rewards, truncations = [], []
    for _ in range(50):
        _, reward, terminated, truncated, info = env.step(np.zeros(2))
        rewards.append(reward)
        truncations.append(truncated)
        assert not terminated and info["success"] is False
    assert rewards == [-1.0] * 50
    assert truncations == [False] * 49 + [True]


def test_success_terminates_with_zero_reward_and_wrong_goal_does_not():
    env = make_task("twogoal", seed=2)
    obs, _ = env.reset()
    cue = int(np.argmax(obs[2:]))
    for target, expect_success in ((1 - cue, False), (cue, True)):
        demo = TwoGoalDemonstrator(sigma=0.0)
        demo.reset(obs, np.random.default_rng(0))
        demo.goal = target
        for _ in range(40):
            obs, reward, terminated, _, info = env.step(demo.act(obs))
            if np.linalg.norm(obs[:2] - twogoal.GOALS[target]) <= twogoal.GOAL_RADIUS:
                break
        assert info["success"] is expect_success and terminated is expect_success
        assert reward == (0.0 if expect_success else -1.0)


@pytest.mark.parametrize("chunk_len", [1, 4])
def test_demonstrator_reaches_its_goal_well_inside_the_limit(chunk_len):
    env = make_task("twogoal")
    for seed in range(20):
        demo = TwoGoalDemonstrator(sigma=0.0)
        success, steps = _run_demo(env, demo, seed, chunk_len)
        cue = env.unwrapped.rewarded_goal
        if demo.goal == cue:
            assert success and steps <= 20
        else:
            assert not success and steps == 50


def test_demonstrator_ignores_the_cue_so_it_succeeds_about_half_the_time():
    env = make_task("twogoal")
    outcomes, goals_when_cue = [], {0: [], 1: []}
    for seed in range(200):
        demo = TwoGoalDemonstrator(sigma=0.1)
        success, _ = _run_demo(env, demo, seed)
        outcomes.append(success)
        goals_when_cue[env.unwrapped.rewarded_goal].append(demo.goal)
    assert 0.38 <= np.mean(outcomes) <= 0.62
    for goals in goals_when_cue.values():  # its choice is independent of the cue
        assert 0.3 <= np.mean(goals) <= 0.7


def test_demonstrator_noise_is_clipped_and_seeded():
    demo = TwoGoalDemonstrator(sigma=5.0)
    obs = np.array([0.0, -0.2, 1.0, 0.0], dtype=np.float32)
    demo.reset(obs, np.random.default_rng(3))
    actions = np.stack([demo.act(obs) for _ in range(50)])
    assert np.all(np.abs(actions) <= 1.0) and np.any(np.abs(actions) == 1.0)
    again = TwoGoalDemonstrator(sigma=5.0)
    again.reset(obs, np.random.default_rng(3))
    np.testing.assert_array_equal(actions, np.stack([again.act(obs) for _ in range(50)]))
    with pytest.raises(ValueError, match="sigma=-1"):
        TwoGoalDemonstrator(sigma=-1)


def test_render_shows_goals_and_agent():
    env = make_task("twogoal", seed=0, render_mode="rgb_array")
    env.reset()
    image = env.render()
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert (image == (210, 30, 30)).all(axis=-1).any() and (image == (40, 170, 60)).all(axis=-1).any()


def test_action_shape_is_checked():
    env = make_task("twogoal", seed=0)
    env.reset()
    with pytest.raises(ValueError, match=r"shape \(3,\); expected \(2,\)"):
        env.step(np.zeros(3))
