"""ChunkedEnv: normalised observations, unnormalised actions, summed rewards, early stop."""

import gymnasium
import numpy as np
import pytest

from dsrl_ray.envs import ChunkedEnv, make_chunked_env, make_task
from dsrl_ray.policies.normalizer import Normalizer


class _EchoEnv(gymnasium.Env):
    """Test double: the observation is the step count; the reward is the first action component
    (environment units); success and termination at step ``terminate_at``; truncation at
    ``truncate_at``."""

    def __init__(self, terminate_at=100, truncate_at=100):
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gymnasium.spaces.Box(0.0, 10.0, (1,), np.float32)
        self.terminate_at, self.truncate_at = terminate_at, truncate_at
        self.t = 0
        self.actions = []

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.array([0.0, 1.0], np.float32), {"success": False}

    def step(self, action):
        self.t += 1
        self.actions.append(np.asarray(action).copy())
        success = self.t == self.terminate_at
        obs = np.array([self.t, 1.0], np.float32)
        return obs, float(action[0]), success, self.t == self.truncate_at, {"success": success}


_NORMALIZER = Normalizer(np.array([0.0, 0.0]), np.array([10.0, 2.0]), np.array([0.0]), np.array([10.0]))


def test_chunk_executes_unnormalised_actions_and_sums_rewards():
    env = ChunkedEnv(_EchoEnv(), 4, _NORMALIZER)
    obs, info = env.reset()
    np.testing.assert_allclose(obs, [-1.0, 0.0], atol=1e-5)
    np.testing.assert_array_equal(info["raw_obs"], [0.0, 1.0])
    chunk = np.array([[-1.0], [0.0], [0.5], [1.0]], np.float32)  # env units 0, 5, 7.5, 10
    obs, reward, terminated, truncated, info = env.step(chunk)
    np.testing.assert_allclose(np.concatenate(env.unwrapped.actions), [0.0, 5.0, 7.5, 10.0], atol=1e-4)
    assert reward == pytest.approx(22.5, abs=1e-3)
    assert (terminated, truncated, info["env_steps"], info["success"]) == (False, False, 4, False)
    np.testing.assert_array_equal(info["raw_obs"], [4.0, 1.0])
    np.testing.assert_allclose(obs, _NORMALIZER.normalize_obs(np.array([4.0, 1.0], np.float32)))
    assert obs.dtype == np.float32


def test_chunk_stops_early_on_termination():
    env = ChunkedEnv(_EchoEnv(terminate_at=6), 4, _NORMALIZER)
    env.reset()
    env.step(np.zeros((4, 1), np.float32))
    _, reward, terminated, truncated, info = env.step(np.zeros((4, 1), np.float32))
    assert (terminated, truncated, info["env_steps"], info["success"]) == (True, False, 2, True)
    assert reward == pytest.approx(10.0, abs=1e-3)
    assert env.unwrapped.t == 6


def test_chunk_stops_early_on_truncation():
    env = ChunkedEnv(_EchoEnv(truncate_at=3), 4, _NORMALIZER)
    env.reset()
    _, _, terminated, truncated, info = env.step(np.zeros((4, 1), np.float32))
    assert (terminated, truncated, info["env_steps"], info["success"]) == (False, True, 3, False)


def test_twogoal_limit_falls_inside_a_chunk():
    env = make_chunked_env("twogoal", Normalizer.identity(4, 2), seed=0)
    env.reset()
    steps, returns = [], 0.0
    truncated = False
    while not truncated:
        _, reward, terminated, truncated, info = env.step(np.zeros((4, 2), np.float32))
        assert not terminated
        steps.append(info["env_steps"])
        returns += reward
    assert steps == [4] * 12 + [2] and returns == -50.0


def test_action_space_and_shape_errors():
    env = ChunkedEnv(_EchoEnv(), 4, _NORMALIZER)
    assert env.action_space.shape == (4, 1) and env.observation_space.shape == (2,)
    env.reset()
    with pytest.raises(ValueError, match=r"shape \(4,\); expected \(chunk_len, act_dim\) = \(4, 1\)"):
        env.step(np.zeros(4))


def test_normalizer_must_fit_the_env():
    with pytest.raises(ValueError, match=r"obs_dim=3 but the env's observations are \(2,\)"):
        ChunkedEnv(_EchoEnv(), 4, Normalizer.identity(3, 1))
    with pytest.raises(ValueError, match=r"act_dim=2 but the env's actions are \(1,\)"):
        ChunkedEnv(_EchoEnv(), 4, Normalizer.identity(2, 2))
    with pytest.raises(ValueError, match="task 'twogoal' has obs_dim=4, act_dim=2"):
        make_chunked_env("twogoal", Normalizer.identity(5, 2))


def test_raw_env_units_pass_through_make_task_chunks():
    raw = make_task("twogoal", seed=3)
    chunked = make_chunked_env("twogoal", Normalizer.identity(4, 2), seed=3)
    raw_obs, _ = raw.reset()
    obs, _ = chunked.reset()
    np.testing.assert_allclose(obs, raw_obs, atol=1e-5)
    chunk = np.tile([[0.3, 0.9]], (4, 1)).astype(np.float32)
    for action in chunk:
        raw_obs, *_ = raw.step(action)
    obs, _, _, _, info = chunked.step(chunk)
    np.testing.assert_allclose(info["raw_obs"], raw_obs, atol=1e-6)
