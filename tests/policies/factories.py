"""Small shared builders for the policy tests."""

from __future__ import annotations

import numpy as np
import torch

from dsrl_ray.policies import DiffusionArch, FlowArch
from dsrl_ray.policies.policy_types import PolicyArch, TrainablePolicy, build_policy

LIFT = DiffusionArch(obs_dim=19, act_dim=7, chunk_len=4, mlp_dims=(512, 512, 512), time_dim=16,
                     denoising_steps=20, ddim_steps=8)
SQUARE = DiffusionArch(obs_dim=23, act_dim=7, chunk_len=4, mlp_dims=(1024, 1024, 1024), time_dim=32,
                       cond_mlp_dims=(512, 64), denoising_steps=100, ddim_steps=8)
TINY = DiffusionArch(obs_dim=3, act_dim=2, chunk_len=4, mlp_dims=(64, 64, 64), time_dim=8,
                     denoising_steps=20, ddim_steps=5)
FLOW_LIFT = FlowArch(obs_dim=19, act_dim=7, chunk_len=4, mlp_dims=(512, 512, 512), time_dim=16)
FLOW_SQUARE = FlowArch(obs_dim=23, act_dim=7, chunk_len=4, mlp_dims=(1024, 1024, 1024), time_dim=32,
                       cond_mlp_dims=(512, 64), sampler="midpoint")
FLOW_TINY = FlowArch(obs_dim=3, act_dim=2, chunk_len=4, mlp_dims=(64, 64, 64), time_dim=8, flow_steps=5)


def make_policy(arch: PolicyArch, seed: int = 0) -> TrainablePolicy:
    """A randomly initialised policy of ``arch``'s type (diffusion or flow), in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_policy(arch).eval()


def inputs(policy: TrainablePolicy, batch: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, policy.obs_dim, generator=g)
    noise = torch.randn(batch, *policy.noise_shape, generator=g)
    return obs, noise


def bimodal_episodes(n: int = 8, length: int = 20, obs_dim: int = 3, act_dim: int = 2, seed: int = 0):
    """Episodes whose actions are ``+0.8`` (even episodes) or ``-0.8`` (odd ones) whatever the
    observation, plus small noise: behaviour cloning must learn both modes."""
    rng = np.random.default_rng(seed)
    episodes = []
    for i in range(n):
        obs = rng.normal(size=(length, obs_dim))
        sign = 1.0 if i % 2 == 0 else -1.0
        actions = sign * 0.8 + 0.05 * rng.normal(size=(length, act_dim))
        episodes.append((obs, actions))
    return episodes


def toy_episodes(n: int = 6, length: int = 25, obs_dim: int = 3, act_dim: int = 2, seed: int = 0):
    """Episodes whose actions are a smooth function of the observation (learnable)."""
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n):
        obs = np.cumsum(rng.normal(scale=0.3, size=(length, obs_dim)), axis=0) + rng.normal(size=obs_dim)
        actions = np.tanh(obs[:, :act_dim] * 0.8) * 2.0 + 0.5
        episodes.append((obs, actions))
    return episodes
