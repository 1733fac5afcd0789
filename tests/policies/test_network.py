import math

import numpy as np
import pytest
import torch

from dsrl_ray.policies import DiffusionArch
from dsrl_ray.policies.network import DiffusionMLP, SinusoidalEmbedding

from . import numpy_reference as ref
from .factories import LIFT, SQUARE, make_policy


def shapes(arch):
    return {k: tuple(v.shape) for k, v in make_policy(arch).state_dict().items()}


def test_lift_keys_match_dppo_layout():
    assert shapes(LIFT) == {
        "network.time_embedding.1.weight": (32, 16),
        "network.time_embedding.1.bias": (32,),
        "network.time_embedding.3.weight": (16, 32),
        "network.time_embedding.3.bias": (16,),
        "network.mlp_mean.layers.0.weight": (512, 28 + 16 + 19),
        "network.mlp_mean.layers.0.bias": (512,),
        "network.mlp_mean.layers.1.l1.weight": (512, 512),
        "network.mlp_mean.layers.1.l1.bias": (512,),
        "network.mlp_mean.layers.1.l2.weight": (512, 512),
        "network.mlp_mean.layers.1.l2.bias": (512,),
        "network.mlp_mean.layers.2.weight": (28, 512),
        "network.mlp_mean.layers.2.bias": (28,),
    }


def test_square_keys_have_obs_encoder():
    s = shapes(SQUARE)
    assert s["network.cond_mlp.moduleList.0.linear_1.weight"] == (512, 23)
    assert s["network.cond_mlp.moduleList.1.linear_1.weight"] == (64, 512)
    assert s["network.mlp_mean.layers.0.weight"] == (1024, 28 + 32 + 64)
    assert not any("norm" in k for k in s)


def test_deeper_residual_and_plain_mlp_names():
    deep = shapes(DiffusionArch(obs_dim=5, act_dim=2, chunk_len=2, mlp_dims=(32,) * 5, time_dim=8))
    assert {k for k in deep if k.endswith("l1.weight")} == {
        "network.mlp_mean.layers.1.l1.weight",
        "network.mlp_mean.layers.2.l1.weight",
    }
    assert deep["network.mlp_mean.layers.3.weight"] == (4, 32)
    plain = shapes(
        DiffusionArch(obs_dim=5, act_dim=2, chunk_len=2, mlp_dims=(32, 16), time_dim=8, residual_style=False)
    )
    assert [k for k in plain if k.startswith("network.mlp_mean")] == [
        "network.mlp_mean.moduleList.0.linear_1.weight",
        "network.mlp_mean.moduleList.0.linear_1.bias",
        "network.mlp_mean.moduleList.1.linear_1.weight",
        "network.mlp_mean.moduleList.1.linear_1.bias",
        "network.mlp_mean.moduleList.2.linear_1.weight",
        "network.mlp_mean.moduleList.2.linear_1.bias",
    ]


def test_layernorm_names():
    res = shapes(DiffusionArch(obs_dim=5, act_dim=2, chunk_len=2, mlp_dims=(32,) * 3, time_dim=8, use_layernorm=True))
    assert res["network.mlp_mean.layers.1.norm1.weight"] == (32,)
    assert res["network.mlp_mean.layers.1.norm2.bias"] == (32,)
    plain = shapes(
        DiffusionArch(
            obs_dim=5, act_dim=2, chunk_len=2, mlp_dims=(32, 16), time_dim=8, residual_style=False, use_layernorm=True
        )
    )
    assert plain["network.mlp_mean.moduleList.1.norm_1.weight"] == (16,)
    assert "network.mlp_mean.moduleList.2.norm_1.weight" not in plain


def test_sinusoidal_embedding_formula():
    emb = SinusoidalEmbedding(16)(torch.tensor([0, 3, 19]))
    half = 8
    f = np.exp(-np.arange(half) * math.log(10000) / (half - 1))
    ang = np.array([0, 3, 19])[:, None] * f
    np.testing.assert_allclose(emb.numpy(), np.concatenate([np.sin(ang), np.cos(ang)], 1), atol=2e-6)


@pytest.mark.parametrize(
    "arch",
    [
        LIFT,
        SQUARE,
        DiffusionArch(obs_dim=6, act_dim=3, chunk_len=2, mlp_dims=(48,) * 5, time_dim=8, activation="ReLU"),
        DiffusionArch(obs_dim=6, act_dim=3, chunk_len=2, mlp_dims=(48, 24), time_dim=8, residual_style=False),
        DiffusionArch(obs_dim=6, act_dim=3, chunk_len=2, mlp_dims=(48,) * 3, time_dim=8, use_layernorm=True),
        DiffusionArch(
            obs_dim=6, act_dim=3, chunk_len=2, mlp_dims=(48, 24), time_dim=8, residual_style=False, use_layernorm=True
        ),
    ],
    ids=["lift", "square", "relu-deep", "plain", "res-ln", "plain-ln"],
)
def test_forward_matches_numpy_float64(arch):
    policy = make_policy(arch)
    for p in policy.parameters():  # make layernorm affine params non-trivial too
        p.data.add_(0.05 * torch.randn_like(p))
    g = torch.Generator().manual_seed(3)
    x = torch.randn(5, arch.chunk_len, arch.act_dim, generator=g)
    t = torch.randint(0, arch.denoising_steps, (5,), generator=g)
    cond = torch.randn(5, arch.cond_dim, generator=g)
    with torch.no_grad():
        ours = policy.network(x, t, cond).numpy()
    state = ref.state_to_numpy(policy.state_dict())
    expected = ref.epsilon(state, arch, x.double().numpy(), t.numpy(), cond.double().numpy())
    np.testing.assert_allclose(ours, expected, atol=2e-5, rtol=1e-4)


def test_time_embedding_uses_mish_even_with_relu():
    net = DiffusionMLP(act_dim=2, chunk_len=2, cond_dim=3, time_dim=8, mlp_dims=[16] * 3, activation="ReLU")
    assert isinstance(net.time_embedding[2], torch.nn.Mish)


def test_fast_mish_equals_aten_mish_and_keeps_gradients():
    from dsrl_ray.policies.network import MISH_LINEAR_FROM, mish

    x = torch.cat([torch.linspace(-100.0, 100.0, 2001), torch.randn(10_000) * 4, torch.tensor([MISH_LINEAR_FROM])])
    with torch.inference_mode():
        fast = mish(x)
    np.testing.assert_allclose(fast.numpy(), torch.nn.functional.mish(x).numpy(), atol=2e-6, rtol=2e-6)
    assert torch.isfinite(fast).all()
    leaf = x.clone().requires_grad_()
    mish(leaf).sum().backward()  # the autograd path is ATen's, with its gradient
    expected = x.clone().requires_grad_()
    torch.nn.functional.mish(expected).sum().backward()
    assert torch.equal(leaf.grad, expected.grad)
