"""Noise modes of Steering: full chunk noise, or one act_dim vector shared by every step of the chunk."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsrl_ray.core.settings import check_setting
from dsrl_ray.core.steering import Steering, latent_noise_dim
from dsrl_ray.policies import DiffusionArch, DiffusionPolicy, FlowPolicy, make_arch

OBS_DIM, ACT_DIM, CHUNK_LEN = 3, 2, 4
B, K = 16, 4
D = CHUNK_LEN * ACT_DIM


@pytest.fixture(scope="module", params=["diffusion", "flow"])
def policy(request) -> DiffusionPolicy | FlowPolicy:
    """A small untrained base policy of each type (random weights: deterministic given the noise all the same)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if request.param == "diffusion":
            arch = DiffusionArch(obs_dim=OBS_DIM, act_dim=ACT_DIM, chunk_len=CHUNK_LEN, mlp_dims=(64, 64, 64),
                                 time_dim=8, denoising_steps=20, ddim_steps=5)
            return DiffusionPolicy(arch).eval()
        return FlowPolicy(make_arch("flow", obs_dim=OBS_DIM, act_dim=ACT_DIM, chunk_len=CHUNK_LEN)).eval()


def broadcast(w: torch.Tensor) -> torch.Tensor:
    """``(B, act_dim)`` -> ``(B, chunk_len, act_dim)``, ``w`` at every step (written independently of Steering)."""
    return torch.stack([w] * CHUNK_LEN, dim=1)


def test_latent_dims():
    assert latent_noise_dim(CHUNK_LEN, ACT_DIM, "full") == D
    assert latent_noise_dim(CHUNK_LEN, ACT_DIM, "shared") == ACT_DIM
    with pytest.raises(ValueError, match=r"noise_mode='per_step'; expected one of 'full', 'shared'"):
        latent_noise_dim(CHUNK_LEN, ACT_DIM, "per_step")


def test_noise_mode_setting_names_the_bad_value_and_the_choices():
    assert check_setting("noise_mode", "shared") == "shared"
    with pytest.raises(ValueError, match=r"DSRLConfig.noise_mode='per_step'; expected one of 'full', 'shared'"):
        check_setting("noise_mode", "per_step")


def test_shared_chunks_are_pi_dp_of_the_noise_repeated_over_the_chunk(policy):
    steering = Steering(policy, "shared")
    assert (steering.latent_dim, steering.chunk_dim, steering.noise_shape) == (ACT_DIM, D, (CHUNK_LEN, ACT_DIM))
    g = torch.Generator().manual_seed(1)
    obs, w = torch.randn(B, OBS_DIM, generator=g), torch.randn(B, ACT_DIM, generator=g)
    assert torch.equal(steering.chunk_noise(w), broadcast(w))
    np.testing.assert_array_equal(steering.chunk_noise_np(w.numpy()), broadcast(w).numpy())
    expected = policy.sample(obs, broadcast(w)).reshape(B, D)
    assert (steering.flat(obs, w) - expected).abs().max() < 1e-6
    with pytest.raises(ValueError, match=r"latent noise has shape \(16, 8\); expected \(batch, 2\) for "
                                         r"noise_mode='shared'"):
        steering.flat(obs, torch.randn(B, D))


def test_full_mode_is_the_flattened_chunk_noise(policy):
    steering = Steering(policy)
    g = torch.Generator().manual_seed(2)
    obs, w = torch.randn(B, OBS_DIM, generator=g), torch.randn(B, D, generator=g)
    assert steering.noise_mode == "full" and steering.latent_dim == D
    assert torch.equal(steering.chunk_noise(w), w.reshape(B, CHUNK_LEN, ACT_DIM))
    assert (steering.flat(obs, w) - policy.sample(obs, w.reshape(B, CHUNK_LEN, ACT_DIM)).reshape(B, D)).abs().max() < 1e-6
    with pytest.raises(ValueError, match=r"expected \(batch, 8\) for noise_mode='full'"):
        steering.flat(obs, torch.randn(B, ACT_DIM))


def test_shared_aliasing_pairs_are_latent_and_exact(policy):
    steering = Steering(policy, "shared")
    g = torch.Generator().manual_seed(3)
    obs, w = torch.randn(B, OBS_DIM, generator=g), torch.randn(B, ACT_DIM, generator=g)
    executed, pair_noise, pair_executed = steering.flat_with_pairs(obs, w, K, generator=g)
    assert executed.shape == (B, D) and pair_noise.shape == (B, K, ACT_DIM) and pair_executed.shape == (B, K, D)
    assert (executed - policy.sample(obs, broadcast(w)).reshape(B, D)).abs().max() < 1e-5
    for k in range(K):
        expected = policy.sample(obs, broadcast(pair_noise[:, k])).reshape(B, D)
        assert (pair_executed[:, k] - expected).abs().max() < 1e-5
    assert abs(float(pair_noise.std()) - 1.0) < 0.25  # w_k ~ N(0, I) in the latent space
