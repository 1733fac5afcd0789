"""LatentActionEnv, make_latent_env and evaluate_policy, with test-double base policies."""

import numpy as np
import pytest
import torch

from dsrl_ray.envs import LatentActionEnv, make_chunked_env, make_latent_env, twogoal
from dsrl_ray.eval import evaluate_policy, wilson_interval
from dsrl_ray.policies.base import BasePolicy
from dsrl_ray.policies.normalizer import Normalizer


class LinearTanhPolicy(BasePolicy):
    """Test double (not a diffusion policy): a fixed, deterministic ``tanh(obs @ A + w @ B)``.

    It honours the BasePolicy contract (shapes, [-1, 1] outputs, determinism given the noise),
    which is all the env wrappers rely on.
    """

    def __init__(self, obs_dim=4, chunk_len=4, act_dim=2, normalizer=None):
        super().__init__()
        self.obs_dim, self.chunk_len, self.act_dim = obs_dim, chunk_len, act_dim
        self.normalizer = normalizer or Normalizer.identity(obs_dim, act_dim)
        g = torch.Generator().manual_seed(0)
        size = chunk_len * act_dim
        self.register_buffer("a", torch.randn(obs_dim, size, generator=g) * 0.5)
        self.register_buffer("b", torch.randn(size, size, generator=g) * 0.5)

    def sample(self, obs, noise):
        self.check_inputs(obs, noise)
        out = torch.tanh(obs @ self.a + noise.flatten(1) @ self.b)
        return out.reshape(len(obs), self.chunk_len, self.act_dim)


class NoiseIsActionPolicy(BasePolicy):
    """Test double: the chunk is ``clip(w, -1, 1)``, so steering the noise steers the agent."""

    def __init__(self):
        super().__init__()
        self.obs_dim, self.chunk_len, self.act_dim = 4, 4, 2
        self.normalizer = Normalizer.identity(4, 2)

    def sample(self, obs, noise):
        self.check_inputs(obs, noise)
        return noise.clamp(-1, 1)


def _steer_to_cue(obs, rngs=None):
    """Noise that heads for the cued goal: ``(B, 4) -> (B, 4, 2)`` (a NoiseFn; draws nothing from ``rngs``)."""
    goals = twogoal.GOALS[np.argmax(obs[:, 2:], axis=1)]
    velocity = (goals - obs[:, :2]) / twogoal.STEP_SIZE
    velocity = velocity / np.maximum(1.0, np.abs(velocity).max(axis=1, keepdims=True))
    return np.repeat(velocity[:, None, :], 4, axis=1)


def test_latent_env_spaces():
    env = make_latent_env("twogoal", LinearTanhPolicy(), seed=0)
    assert env.action_space.shape == (8,)
    assert env.action_space.low.min() == -1.5 and env.action_space.high.max() == 1.5
    assert env.observation_space.shape == (4,)
    obs, _ = env.reset()
    assert obs.shape == (4,) and obs.dtype == np.float32


def test_executed_action_is_the_policy_sample_of_obs_and_noise():
    policy = LinearTanhPolicy(normalizer=Normalizer(-np.ones(4) * 2, np.ones(4) * 2, -np.ones(2), np.ones(2) * 3))
    env = make_latent_env("twogoal", policy, seed=1, action_magnitude=2.0)
    obs, _ = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(3):
        w = rng.uniform(-2, 2, 8).astype(np.float32)
        expected = policy.sample(torch.as_tensor(obs)[None], torch.as_tensor(w).reshape(1, 4, 2))[0]
        next_obs, reward, _, _, info = env.step(w)
        np.testing.assert_array_equal(info["executed_action"], expected.numpy().reshape(-1))
        assert info["executed_action"].dtype == np.float32 and info["executed_action"].shape == (8,)
        np.testing.assert_array_equal(info["noise"], w.reshape(4, 2))
        env_actions = policy.normalizer.unnormalize_action(expected.numpy())
        assert env_actions.min() >= -1.0 - 1e-5 and env_actions.max() <= 3.0 + 1e-5
        assert info["env_steps"] == 4 and reward == -4.0
        np.testing.assert_allclose(next_obs, policy.normalizer.normalize_obs(info["raw_obs"]), atol=1e-6)
        obs = next_obs


def test_latent_action_shape_is_checked():
    env = make_latent_env("twogoal", LinearTanhPolicy(), seed=0)
    env.reset()
    with pytest.raises(ValueError, match=r"latent action has shape \(4, 2\); expected \(8,\)"):
        env.step(np.zeros((4, 2)))


def test_policy_that_does_not_fit_the_task_is_rejected():
    with pytest.raises(ValueError, match=r"obs_dim=5, act_dim=2 but task 'twogoal' has obs_dim=4, act_dim=2"):
        make_latent_env("twogoal", LinearTanhPolicy(obs_dim=5))
    chunked = make_chunked_env("twogoal", Normalizer.identity(4, 2), chunk_len=8)
    with pytest.raises(ValueError, match="chunk_len=4 but the chunked env has chunk_len=8"):
        LatentActionEnv(chunked, LinearTanhPolicy())


def test_evaluate_default_noise_matches_latent_env_rollouts():
    policy = LinearTanhPolicy()
    result = evaluate_policy("twogoal", policy, 3, seed=10, progress=False)
    for i, episode in enumerate(result.episodes):
        env = make_latent_env("twogoal", policy)
        env.reset(seed=10 + i)
        rng = np.random.default_rng((10, i))
        total, steps, done = 0.0, 0, False
        while not done:
            _, reward, terminated, truncated, info = env.step(rng.standard_normal((4, 2), dtype=np.float32).reshape(-1))
            total, steps, done = total + reward, steps + info["env_steps"], terminated or truncated
        assert (episode.episode_return, episode.length) == (total, steps)


def test_evaluate_is_independent_of_num_envs():
    policy = NoiseIsActionPolicy()
    one = evaluate_policy("twogoal", policy, 7, seed=3, progress=False)
    three = evaluate_policy("twogoal", policy, 7, seed=3, num_envs=3, progress=False)
    assert one == three


def test_steering_the_noise_by_the_cue_always_succeeds():
    policy = NoiseIsActionPolicy()
    steered = evaluate_policy("twogoal", policy, 20, seed=0, noise_fn=_steer_to_cue, num_envs=4, progress=False)
    assert steered.success_rate == 1.0
    assert all(length <= 20 for length in steered.episode_lengths)
    assert steered.mean_return == pytest.approx(np.mean([1 - n for n in steered.episode_lengths]))
    assert steered.success_ci95[0] > 0.8 and steered.success_ci95[1] == 1.0
    wrong = evaluate_policy("twogoal", policy, 5, seed=0, noise_fn=lambda o, rngs: -_steer_to_cue(o), progress=False)
    assert wrong.success_rate == 0.0 and wrong.episode_lengths == [50] * 5 and wrong.mean_return == -50.0


def test_noise_fn_shape_is_checked():
    with pytest.raises(ValueError, match=r"noise_fn returned shape \(1, 8\); expected \(1, 4, 2\)"):
        evaluate_policy(
            "twogoal", NoiseIsActionPolicy(), 1, seed=0, noise_fn=lambda o, rngs: np.zeros((1, 8)), progress=False
        )


def test_wilson_interval():
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(20, 20) == pytest.approx((0.8389, 1.0), abs=1e-4)
    with pytest.raises(ValueError, match="n=0"):
        wilson_interval(0, 0)
