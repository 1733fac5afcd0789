"""The latent-action env with shared noise: one act_dim action, broadcast over the chunk."""

import numpy as np
import pytest
import torch

from dsrl_ray.envs import make_latent_env
from dsrl_ray.policies.base import BasePolicy
from dsrl_ray.policies.normalizer import Normalizer


class StepwisePolicy(BasePolicy):
    """Test double: chunk step ``t`` is ``tanh((t + 1) * w_t)``, so every step depends on its own noise."""

    def __init__(self):
        super().__init__()
        self.obs_dim, self.chunk_len, self.act_dim = 4, 4, 2
        self.normalizer = Normalizer.identity(4, 2)

    def sample(self, obs, noise):
        self.check_inputs(obs, noise)
        return torch.tanh(noise * torch.arange(1, 5, dtype=noise.dtype)[None, :, None])


def test_shared_latent_env_broadcasts_its_act_dim_action():
    env = make_latent_env("twogoal", StepwisePolicy(), noise_mode="shared", seed=0)
    assert env.action_space.shape == (2,)
    env.reset(seed=0)
    w = np.array([0.3, -0.2], np.float32)
    _, _, _, _, info = env.step(w)
    np.testing.assert_array_equal(info["noise"], np.tile(w, (4, 1)))
    expected = np.tanh(np.arange(1, 5)[:, None] * w[None, :]).reshape(-1)
    np.testing.assert_allclose(info["executed_action"], expected, atol=1e-6)
    with pytest.raises(ValueError, match=r"latent action has shape \(8,\); expected \(2,\) \(noise_mode='shared'"):
        env.step(np.zeros(8, np.float32))


def test_full_latent_env_keeps_the_flattened_chunk_noise():
    env = make_latent_env("twogoal", StepwisePolicy(), seed=0)
    assert env.action_space.shape == (8,)
    env.reset(seed=0)
    w = np.linspace(-1, 1, 8, dtype=np.float32)
    _, _, _, _, info = env.step(w)
    np.testing.assert_array_equal(info["noise"], w.reshape(4, 2))
