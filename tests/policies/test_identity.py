"""The identity base policy: DSRL over it is plain RL on the task (the gym demonstrators' SAC)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsrl_ray.envs.make import make_task
from dsrl_ray.policies.identity import IDENTITY_FACTORY, IdentityPolicy
from dsrl_ray.policies.spec import BasePolicySpec, load_base_policy
from dsrl_ray.rllib.env import make_env


def test_sample_is_the_noise_clipped_to_the_action_bounds():
    policy = IdentityPolicy(obs_dim=3, act_dim=2, chunk_len=2)
    noise = torch.tensor([[[0.5, -2.0], [1.5, -0.25]]])
    chunk = policy.sample(torch.zeros(1, 3), noise)
    torch.testing.assert_close(chunk, torch.tensor([[[0.5, -1.0], [1.0, -0.25]]]))
    assert policy.noise_shape == (2, 2)
    obs = np.array([[-7.0, 0.0, 12.5]])
    np.testing.assert_allclose(policy.normalizer.normalize_obs(obs), obs, atol=1e-5)  # raw observations


def test_bad_shapes_and_sizes_are_refused_by_name():
    with pytest.raises(ValueError, match=r"noise has shape \(1, 2\)"):
        IdentityPolicy(3, 2).sample(torch.zeros(1, 3), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="IdentityPolicy chunk_len=0; expected a positive integer"):
        IdentityPolicy(3, 2, chunk_len=0)


def test_the_dsrl_env_over_it_steps_the_raw_task():
    """``dsrl/hopper`` over the identity factory: one env step per action, observations and rewards as
    gymnasium's Hopper-v4 gives them for the same actions."""
    spec = BasePolicySpec(factory=IDENTITY_FACTORY, factory_kwargs={"obs_dim": 11, "act_dim": 3})
    assert isinstance(load_base_policy(spec), IdentityPolicy)
    env = make_env({"base_policy": spec.to_dict()}, task="hopper")
    raw = make_task("hopper")
    assert env.action_space.shape == (3,)
    obs, _ = env.reset(seed=5)
    raw_obs, _ = raw.reset(seed=5)
    np.testing.assert_allclose(obs, raw_obs, atol=1e-5)
    rng = np.random.default_rng(0)
    for _ in range(5):
        action = rng.uniform(-1, 1, 3).astype(np.float32)
        obs, reward, *_ = env.step(action)
        raw_obs, raw_reward, *_ = raw.step(action)
        np.testing.assert_allclose(obs, raw_obs, atol=1e-4)
        assert reward == pytest.approx(raw_reward, rel=1e-5)
    env.close()
    raw.close()
