"""Small shared builders for the policy tests."""

from __future__ import annotations

import numpy as np
import torch

from dsrl_ray.policies import DiffusionArch, DiffusionPolicy

LIFT = DiffusionArch(obs_dim=19, act_dim=7, chunk_len=4, mlp_dims=(512, 512, 512), time_dim=16,
                     denoising_steps=20, ddim_steps=8)
SQUARE = DiffusionArch(obs_dim=23, act_dim=7, chunk_len=4, mlp_dims=(1024, 1024, 1024), time_dim=32,
                       cond_mlp_dims=(512, 64), denoising_steps=100, ddim_steps=8)
TINY = DiffusionArch(obs_dim=3, act_dim=2, chunk_len=4, mlp_dims=(64, 64, 64), time_dim=8,
                     denoising_steps=20, ddim_steps=5)


def make_policy(arch: DiffusionArch, seed: int = 0) -> DiffusionPolicy:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DiffusionPolicy(arch).eval()


def inputs(policy: DiffusionPolicy, batch: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, policy.obs_dim, generator=g)
    noise = torch.randn(batch, *policy.noise_shape, generator=g)
    return obs, noise


def toy_episodes(n: int = 6, length: int = 25, obs_dim: int = 3, act_dim: int = 2, seed: int = 0):
    """Episodes whose actions are a smooth function of the observation (learnable)."""
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n):
        obs = np.cumsum(rng.normal(scale=0.3, size=(length, obs_dim)), axis=0) + rng.normal(size=obs_dim)
        actions = np.tanh(obs[:, :act_dim] * 0.8) * 2.0 + 0.5
        episodes.append((obs, actions))
    return episodes
