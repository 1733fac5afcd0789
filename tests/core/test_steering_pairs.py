"""Aliasing pairs: the runners' batched K-pair pi_dp call, and Q_W distillation on stored pairs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsrl_ray.core.losses import na_q_w_distill_loss, na_q_w_pair_loss
from dsrl_ray.core.networks import EnsembleCritic
from dsrl_ray.core.replay import select_pairs
from dsrl_ray.core.steering import Steering
from dsrl_ray.policies import DiffusionArch, DiffusionPolicy

ARCH = DiffusionArch(obs_dim=3, act_dim=2, chunk_len=4, mlp_dims=(64, 64, 64), time_dim=8, denoising_steps=20,
                     ddim_steps=5)
B, K, D = 16, 4, 8


@pytest.fixture(scope="module")
def steering() -> Steering:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return Steering(DiffusionPolicy(ARCH).eval())


def test_one_batched_call_gives_the_executed_chunks_and_exact_pairs(steering):
    g = torch.Generator().manual_seed(1)
    obs, w = torch.randn(B, 3, generator=g), torch.randn(B, D, generator=g)
    executed, pair_noise, pair_executed = steering.flat_with_pairs(obs, w, K, generator=g)
    assert executed.shape == (B, D) and pair_noise.shape == pair_executed.shape == (B, K, D)
    assert (executed - steering.flat(obs, w)).abs().max() < 1e-6
    for k in range(K):
        assert (pair_executed[:, k] - steering.flat(obs, pair_noise[:, k])).abs().max() < 1e-6
    assert abs(float(pair_noise.std()) - 1.0) < 0.15  # w_k ~ N(0, I), independent of the executed noise
    with pytest.raises(ValueError, match="k=0"):
        steering.flat_with_pairs(obs, w, 0)


def test_distillation_on_stored_pairs_equals_the_learner_denoising_the_same_draws(steering):
    g = torch.Generator().manual_seed(2)
    obs, w = torch.randn(B, 3, generator=g), torch.randn(B, D, generator=g)
    _, pair_noise, pair_executed = steering.flat_with_pairs(obs, w, K, generator=g)  # what a runner ships
    noise, stored = select_pairs(pair_noise, pair_executed, np.random.default_rng(3))  # one pair per replay row
    torch.manual_seed(4)
    q_w = EnsembleCritic(3, D, [32, 32], 2, layer_norm=True, activation="relu")
    q_a = EnsembleCritic(3, D, [32, 32], 2, layer_norm=True, activation="relu")
    grads = []
    for loss_fn in (
        lambda: na_q_w_pair_loss(q_w, q_a, obs, noise, stored),  # the learner on stored pairs
        lambda: na_q_w_distill_loss(q_w, q_a, steering.flat, obs, noise),  # the learner denoising itself
    ):
        q_w.zero_grad(set_to_none=True)
        loss, info = loss_fn()
        loss.backward()
        grads.append((loss.detach(), info["target"], [p.grad.clone() for p in q_w.parameters()]))
    (loss_s, target_s, grads_s), (loss_l, target_l, grads_l) = grads
    assert torch.equal(loss_s, loss_l) and torch.equal(target_s, target_l)
    assert all(torch.equal(a, b) for a, b in zip(grads_s, grads_l))
    assert all(p.grad is None for p in q_a.parameters())
