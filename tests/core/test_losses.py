"""DSRL losses and networks against independent float64 numpy formulas, plus gradient routing."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from torch import nn

from dsrl_ray.core import losses as L
from dsrl_ray.core import noise_policy as NP
from dsrl_ray.core.networks import EnsembleCritic, GaussianActor, mlp

B, O, D, E = 5, 3, 4, 2  # batch, obs dim, noise dim (= executed dim), ensemble size
MAG = 1.5
GAMMA = 0.99
ALPHA = 0.3


# --------------------------------------------------------------------------- tiny test models + numpy twins
class QuadCritic(nn.Module):
    """Q_i(s, a) = s . ws_i + (a^2) . wa_i + a . wl_i + c_i  (E members)."""

    def __init__(self, seed: int, n: int = E, action_dim: int = D):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.ws = nn.Parameter(torch.randn(n, O, generator=g))
        self.wa = nn.Parameter(torch.randn(n, action_dim, generator=g))
        self.wl = nn.Parameter(torch.randn(n, action_dim, generator=g))
        self.c = nn.Parameter(torch.randn(n, generator=g))

    def forward(self, s, a, *, detach_params=False):
        p = {k: (v.detach() if detach_params else v) for k, v in dict(self.named_parameters()).items()}
        return p["ws"] @ s.T + p["wa"] @ (a**2).T + p["wl"] @ a.T + p["c"][:, None]

    def numpy(self, s, a):
        ws, wa, wl, c = (t.detach().double().numpy() for t in (self.ws, self.wa, self.wl, self.c))
        return ws @ s.T + wa @ (a**2).T + wl @ a.T + c[:, None]


class LinearTanhBasePolicy(nn.Module):
    """pi_dp(s, w) = tanh(s P + 0.5 w): deterministic, with a parameter that must stay untouched."""

    def __init__(self):
        super().__init__()
        self.P = nn.Parameter(torch.randn(O, D, generator=torch.Generator().manual_seed(7)))

    def forward(self, s, w):
        return torch.tanh(s @ self.P + 0.5 * w)

    def numpy(self, s, w):
        return np.tanh(s @ self.P.detach().double().numpy() + 0.5 * w)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    d = {
        "obs": rng.standard_normal((B, O)),
        "next_obs": rng.standard_normal((B, O)),
        "noise": rng.uniform(-MAG, MAG, (B, D)),
        "executed": rng.uniform(-1, 1, (B, D)),
        "reward": rng.standard_normal(B),
        "terminated": np.array([False, True, False, False, True]),
        "next_action": rng.uniform(-MAG, MAG, (B, D)),
        "next_logp": rng.standard_normal(B),
    }
    t = {k: torch.tensor(v, dtype=torch.bool if v.dtype == bool else torch.float32) for k, v in d.items()}
    return d, t


def reduce_np(q, how):
    return q.min(axis=0) if how == "min" else q.mean(axis=0)


def regression_np(pred, target):
    return float(sum(0.5 * np.mean((pred[i] - (target[i] if target.ndim == 2 else target)) ** 2) for i in range(len(pred))))


def grads_of(module):
    return [p.grad for p in module.parameters()]


# --------------------------------------------------------------------------- noise policy
def squashed_reference(mean, log_std, eps, mag):
    u = mean + np.exp(log_std) * eps
    w = mag * np.tanh(u)
    gaussian = -0.5 * eps**2 - log_std - 0.5 * np.log(2 * np.pi)
    logp = (gaussian - np.log(1 - np.tanh(u) ** 2)).sum(-1)
    return w, logp


def test_squashed_gaussian_sample_matches_formula():
    rng = np.random.default_rng(1)
    mean, log_std, eps = rng.standard_normal((B, D)) * 0.5, rng.uniform(-1.5, 0.5, (B, D)), rng.standard_normal((B, D))
    w_ref, logp_ref = squashed_reference(mean, log_std, eps, MAG)
    t = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    w, logp = NP.squashed_gaussian_sample(t(mean), t(log_std), MAG, eps=t(eps))
    np.testing.assert_allclose(w.numpy(), w_ref, atol=1e-5)
    np.testing.assert_allclose(logp.numpy(), logp_ref, atol=1e-4)
    assert w.abs().max() <= MAG
    _, logp_w = NP.squashed_gaussian_sample(t(mean), t(log_std), MAG, eps=t(eps), include_magnitude_jacobian=True)
    np.testing.assert_allclose(logp_w.numpy(), logp_ref - D * np.log(MAG), atol=1e-4)


def test_magnitude_jacobian_matches_torch_transformed_distribution():
    """include_magnitude_jacobian=True is the exact density of w = MAG * tanh(u)."""
    from torch.distributions import AffineTransform, Independent, Normal, TanhTransform, TransformedDistribution

    g = torch.Generator().manual_seed(2)
    mean, log_std = torch.randn(B, D, generator=g) * 0.3, torch.randn(B, D, generator=g) * 0.3 - 0.5
    w, logp = NP.squashed_gaussian_sample(mean, log_std, MAG, generator=g, include_magnitude_jacobian=True)
    dist = TransformedDistribution(
        Independent(Normal(mean, log_std.exp()), 1), [TanhTransform(), AffineTransform(0.0, MAG)]
    )
    torch.testing.assert_close(logp, dist.log_prob(w), atol=1e-4, rtol=1e-4)


def test_log_prob_of_given_noise_and_mode():
    g = torch.Generator().manual_seed(3)
    mean, log_std = torch.randn(B, D, generator=g) * 0.5, torch.randn(B, D, generator=g) * 0.3
    w, logp = NP.squashed_gaussian_sample(mean, log_std, MAG, generator=g)
    torch.testing.assert_close(NP.squashed_gaussian_log_prob(mean, log_std, w, MAG), logp, atol=1e-3, rtol=1e-4)
    torch.testing.assert_close(NP.squashed_gaussian_mode(mean, MAG), MAG * torch.tanh(mean))


def test_sample_is_reparameterised():
    mean = torch.zeros(B, D, requires_grad=True)
    log_std = torch.zeros(B, D, requires_grad=True)
    w, logp = NP.squashed_gaussian_sample(mean, log_std, MAG, generator=torch.Generator().manual_seed(0))
    (w.sum() + logp.sum()).backward()
    assert mean.grad is not None and mean.grad.abs().sum() > 0
    assert log_std.grad is not None and log_std.grad.abs().sum() > 0


# --------------------------------------------------------------------------- SAC
@pytest.mark.parametrize("backup", ["min", "mean"])
def test_sac_critic_loss_matches_reference(data, backup):
    d, t = data
    q, q_targ = QuadCritic(10), QuadCritic(11)
    loss, info = L.sac_critic_loss(
        q, q_targ, t["obs"], t["noise"], t["reward"], t["next_obs"], t["terminated"],
        t["next_action"], t["next_logp"], ALPHA, GAMMA, backup,
    )
    next_v = reduce_np(q_targ.numpy(d["next_obs"], d["next_action"]), backup) - ALPHA * d["next_logp"]
    target = d["reward"] + GAMMA * (1 - d["terminated"]) * next_v
    pred = q.numpy(d["obs"], d["noise"])
    np.testing.assert_allclose(info["target"].numpy(), target, atol=1e-5)
    np.testing.assert_allclose(info["q_pred"].numpy(), pred, atol=1e-5)
    assert loss.item() == pytest.approx(regression_np(pred, target), abs=1e-5)
    # terminated rows do not bootstrap at all
    np.testing.assert_allclose(info["target"].numpy()[d["terminated"]], d["reward"][d["terminated"]], atol=1e-6)


def test_sac_critic_loss_per_sample_discount(data):
    d, t = data
    q, q_targ = QuadCritic(10), QuadCritic(11)
    discount = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    _, info = L.sac_critic_loss(q, q_targ, t["obs"], t["noise"], t["reward"], t["next_obs"], t["terminated"],
                                t["next_action"], t["next_logp"], ALPHA, discount)
    next_v = q_targ.numpy(d["next_obs"], d["next_action"]).min(0) - ALPHA * d["next_logp"]
    np.testing.assert_allclose(info["target"].numpy(), d["reward"] + discount.numpy() * (1 - d["terminated"]) * next_v,
                               atol=1e-5)


def test_sac_critic_loss_gradient_routing(data):
    _, t = data
    q, q_targ = QuadCritic(10), QuadCritic(11)
    log_alpha = torch.tensor([math.log(ALPHA)], requires_grad=True)
    next_action = t["next_action"].clone().requires_grad_(True)  # as if sampled from the actor
    next_logp = t["next_logp"].clone().requires_grad_(True)
    loss, _ = L.sac_critic_loss(q, q_targ, t["obs"], t["noise"], t["reward"], t["next_obs"], t["terminated"],
                                next_action, next_logp, log_alpha.exp(), GAMMA)
    loss.backward()
    assert all(g is not None and g.abs().sum() > 0 for g in grads_of(q))
    assert all(g is None for g in grads_of(q_targ))
    assert next_action.grad is None and next_logp.grad is None and log_alpha.grad is None


@pytest.mark.parametrize("reduce", ["min", "mean"])
def test_sac_actor_loss_matches_reference_and_spares_critic(data, reduce):
    d, t = data
    q = QuadCritic(12)
    actor_param = torch.nn.Parameter(t["noise"].clone())
    logp = t["next_logp"].clone().requires_grad_(True)
    loss, info = L.sac_actor_loss(functools.partial(q, detach_params=True), t["obs"], actor_param, logp, ALPHA, reduce)
    ref = np.mean(ALPHA * d["next_logp"] - reduce_np(q.numpy(d["obs"], d["noise"]), reduce))
    assert loss.item() == pytest.approx(ref, abs=1e-5)
    loss.backward()
    assert all(g is None for g in grads_of(q))
    assert actor_param.grad is not None and actor_param.grad.abs().sum() > 0
    torch.testing.assert_close(logp.grad, torch.full((B,), ALPHA / B))


def test_alpha_loss_matches_reference():
    logp = torch.tensor([-1.0, 0.5, 2.0, -0.3], requires_grad=True)
    log_alpha = torch.tensor([math.log(0.2)], requires_grad=True)
    target_entropy = 0.0
    loss = L.alpha_loss(log_alpha, logp, target_entropy)
    ref = -np.mean(np.log(0.2) * (np.array([-1.0, 0.5, 2.0, -0.3]) + target_entropy))
    assert loss.item() == pytest.approx(ref, abs=1e-6)
    loss.backward()
    # d/dlog_alpha = -mean(logp + target): entropy (= -logp, mean -0.3) below target 0 -> grad < 0 -> alpha grows
    assert log_alpha.grad.item() == pytest.approx(-np.mean([-1.0, 0.5, 2.0, -0.3]), abs=1e-6)
    assert logp.grad is None


# --------------------------------------------------------------------------- DSRL-NA
@pytest.mark.parametrize("backup", ["min", "mean"])
def test_na_q_a_loss_matches_reference(data, backup):
    d, t = data
    q_a, q_a_targ, pi_dp = QuadCritic(20), QuadCritic(21), LinearTanhBasePolicy()
    loss, info = L.na_q_a_loss(
        q_a, q_a_targ, pi_dp, t["obs"], t["executed"], t["reward"], t["next_obs"], t["terminated"],
        t["next_action"], t["next_logp"], ALPHA, GAMMA, backup,
    )
    next_exec = pi_dp.numpy(d["next_obs"], d["next_action"])  # a' = pi_dp(s', w')
    next_v = reduce_np(q_a_targ.numpy(d["next_obs"], next_exec), backup) - ALPHA * d["next_logp"]
    target = d["reward"] + GAMMA * (1 - d["terminated"]) * next_v
    pred = q_a.numpy(d["obs"], d["executed"])  # Q_A on the executed chunk, not on the noise
    np.testing.assert_allclose(info["next_executed"].numpy(), next_exec, atol=1e-5)
    np.testing.assert_allclose(info["target"].numpy(), target, atol=1e-5)
    assert loss.item() == pytest.approx(regression_np(pred, target), abs=1e-5)
    loss.backward()
    assert all(g is not None for g in grads_of(q_a))
    assert all(g is None for g in grads_of(q_a_targ)) and pi_dp.P.grad is None


@pytest.mark.parametrize("target", ["paired", "min", "mean"])
def test_na_q_w_distill_loss_matches_reference(data, target):
    d, t = data
    q_w, q_a, pi_dp = QuadCritic(30), QuadCritic(31), LinearTanhBasePolicy()
    w = torch.randn(B, D, generator=torch.Generator().manual_seed(4))  # w ~ N(0, I)
    loss, info = L.na_q_w_distill_loss(q_w, q_a, pi_dp, t["obs"], w, target)
    w_np = w.double().numpy()
    teacher = q_a.numpy(d["obs"], pi_dp.numpy(d["obs"], w_np))  # Q_A(s, pi_dp(s, w)), (E, B)
    teacher = teacher if target == "paired" else reduce_np(teacher, target)
    pred = q_w.numpy(d["obs"], w_np)  # Q_W(s, w)
    np.testing.assert_allclose(info["target"].numpy(), teacher, atol=1e-5)
    assert loss.item() == pytest.approx(regression_np(pred, teacher), abs=1e-5)
    loss.backward()
    assert all(g is not None and g.abs().sum() > 0 for g in grads_of(q_w))
    assert all(g is None for g in grads_of(q_a)), "Q_A must get no gradient from the distillation loss"
    assert pi_dp.P.grad is None


def test_na_q_w_distill_paired_needs_equal_ensembles(data):
    _, t = data
    with pytest.raises(ValueError, match="equal ensemble sizes"):
        L.na_q_w_distill_loss(QuadCritic(1, n=3), QuadCritic(2, n=2), LinearTanhBasePolicy(), t["obs"], t["noise"])
    loss, _ = L.na_q_w_distill_loss(QuadCritic(1, n=3), QuadCritic(2, n=2), LinearTanhBasePolicy(), t["obs"],
                                    t["noise"], "min")
    assert torch.isfinite(loss)


def test_na_actor_loss_uses_q_w_only(data):
    d, t = data
    q_w, q_a = QuadCritic(40), QuadCritic(41)
    actor = GaussianActor(O, D, hidden=(8,))
    mean, log_std = actor(t["obs"])
    w, logp = NP.squashed_gaussian_sample(mean, log_std, MAG, generator=torch.Generator().manual_seed(5))
    loss, _ = L.na_actor_loss(functools.partial(q_w, detach_params=True), t["obs"], w, logp, ALPHA)
    ref = np.mean(ALPHA * logp.detach().double().numpy() - q_w.numpy(d["obs"], w.detach().double().numpy()).min(0))
    assert loss.item() == pytest.approx(ref, abs=1e-5)
    loss.backward()
    assert all(g is not None for g in grads_of(actor))
    assert all(g is None for g in grads_of(q_w)) and all(g is None for g in grads_of(q_a))


def test_building_blocks():
    q = torch.tensor([[1.0, 5.0], [3.0, 2.0]])
    torch.testing.assert_close(L.reduce_ensemble(q, "min"), torch.tensor([1.0, 2.0]))
    torch.testing.assert_close(L.reduce_ensemble(q, "mean"), torch.tensor([2.0, 3.5]))
    with pytest.raises(ValueError):
        L.reduce_ensemble(q, "max")
    y = L.td_target(torch.tensor([1.0, 1.0]), torch.tensor([False, True]), torch.tensor([10.0, 10.0]), 0.5)
    torch.testing.assert_close(y, torch.tensor([6.0, 1.0]))
    assert NP.standard_normal_noise(7, 3, generator=torch.Generator().manual_seed(0)).shape == (7, 3)


# --------------------------------------------------------------------------- networks
def test_ensemble_critic_members_are_independent_mlps():
    torch.manual_seed(0)
    critic = EnsembleCritic(O, D, hidden=(16, 8), n_critics=3, layer_norm=True, activation="relu")
    s, a = torch.randn(B, O), torch.randn(B, D)
    out = critic(s, a)
    assert out.shape == (3, B)
    x0 = torch.cat([s, a], -1)
    for i in range(3):  # reference: member i as a plain Linear -> LayerNorm -> ReLU stack
        x = x0
        for lin, norm in zip(critic.linears, critic.norms):
            x = x @ lin.weight[i] + lin.bias[i]
            x = torch.nn.functional.layer_norm(x, (x.shape[-1],)) * norm.weight[i] + norm.bias[i]
            x = torch.relu(x)
        ref = (x @ critic.out.weight[i] + critic.out.bias[i]).squeeze(-1)
        torch.testing.assert_close(out[i], ref)
    assert not torch.allclose(out[0], out[1])  # members initialised independently


def test_ensemble_critic_detach_params_routes_gradient_to_inputs_only():
    critic = EnsembleCritic(O, D, hidden=(8,), n_critics=2)
    a = torch.randn(B, D, requires_grad=True)
    critic(torch.randn(B, O), a, detach_params=True).sum().backward()
    assert a.grad is not None and all(p.grad is None for p in critic.parameters())
    critic(torch.randn(B, O), torch.randn(B, D)).sum().backward()
    assert all(p.grad is not None for p in critic.parameters())


def test_layer_norm_option_and_shapes():
    with_ln = EnsembleCritic(O, D, hidden=(8, 8), n_critics=2, layer_norm=True)
    without = EnsembleCritic(O, D, hidden=(8, 8), n_critics=2, layer_norm=False)
    n_ln = sum(p.numel() for p in with_ln.parameters()) - sum(p.numel() for p in without.parameters())
    assert n_ln == 2 * 2 * (8 + 8)  # gain + bias per member per hidden layer
    with pytest.raises(ValueError, match="critic expects"):
        with_ln(torch.randn(B, O), torch.randn(B, D + 1))
    net = mlp(3, (4, 4), 2, layer_norm=True, activation="elu")
    assert sum(isinstance(m, nn.LayerNorm) for m in net) == 2 and sum(isinstance(m, nn.ELU) for m in net) == 2


def test_gaussian_actor_clamps_log_std():
    actor = GaussianActor(O, D, hidden=(8,))
    with torch.no_grad():
        actor.net[-1].bias[D:] = 100.0
    mean, log_std = actor(torch.randn(B, O))
    assert mean.shape == log_std.shape == (B, D)
    assert torch.all(log_std == actor.log_std_max)
