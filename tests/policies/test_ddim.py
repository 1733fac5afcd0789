import numpy as np
import pytest
import torch

from dsrl_ray.policies import DiffusionArch

from . import numpy_reference as ref
from .factories import LIFT, SQUARE, TINY, inputs, make_policy

VARIANTS = {
    "lift": LIFT,
    "square": SQUARE,
    "plain-relu": DiffusionArch(
        obs_dim=6, act_dim=3, chunk_len=2, mlp_dims=(64, 32), time_dim=8, activation="ReLU", residual_style=False
    ),
    "layernorm-cond2": DiffusionArch(
        obs_dim=6, act_dim=3, chunk_len=2, cond_steps=2, mlp_dims=(64,) * 5, time_dim=8, use_layernorm=True
    ),
    "noclip-T20-K4": DiffusionArch(
        obs_dim=6, act_dim=3, chunk_len=2, mlp_dims=(32,) * 3, time_dim=8,
        denoising_steps=20, ddim_steps=4, denoised_clip_value=None,
    ),
    "T100-K100": DiffusionArch(
        obs_dim=6, act_dim=3, chunk_len=2, mlp_dims=(32,) * 3, time_dim=8, denoising_steps=100, ddim_steps=100
    ),
}


def test_same_noise_same_actions_different_noise_different():
    policy = make_policy(LIFT)
    obs, noise = inputs(policy, 16)
    a1 = policy.sample(obs, noise)
    a2 = policy.sample(obs.clone(), noise.clone())
    assert torch.equal(a1, a2)
    assert a1.shape == (16, 4, 7) and a1.dtype == torch.float32
    a3 = policy.sample(obs, noise + 0.5)
    assert (a1 - a3).abs().max() > 1e-3
    single = policy.sample(obs[3:4], noise[3:4])
    torch.testing.assert_close(single, a1[3:4], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_fast_sampler_equals_reference_loop(name):
    policy = make_policy(VARIANTS[name])
    obs, noise = inputs(policy, 9)
    fast = policy.sample(obs, noise)
    slow = policy.sample_reference(obs, noise)
    assert (fast - slow).abs().max().item() <= 1e-5


@pytest.mark.parametrize("arch", [LIFT, SQUARE], ids=["lift", "square"])
def test_ddim_matches_independent_float64_numpy(arch):
    policy = make_policy(arch)
    obs, noise = inputs(policy, 8)
    ours = policy.sample(obs, noise).numpy()
    expected, clipped = ref.ddim(ref.state_to_numpy(policy.state_dict()), arch, obs.double().numpy(), noise.numpy())
    assert clipped > 0, "the test should exercise the x0 clipping"
    assert np.abs(ours - expected).max() <= 1e-5


def test_noise_is_used_as_given_and_actions_bounded_by_clip():
    policy = make_policy(TINY)
    obs, noise = inputs(policy, 4)
    out = policy.sample(obs, 100 * noise)
    assert out.abs().max() <= 1.0 + 1e-6
    assert not torch.equal(out, policy.sample(obs, noise))


def test_cache_follows_weight_updates_and_dtype():
    policy = make_policy(TINY)
    obs, noise = inputs(policy, 5)
    before = policy.sample(obs, noise)
    with torch.no_grad():
        policy.network.time_embedding[1].weight.mul_(3.0)
        policy.network.mlp_mean.layers[0].weight.add_(0.1)
    after = policy.sample(obs, noise)
    assert (after - before).abs().max() > 1e-4
    assert (after - policy.sample_reference(obs, noise)).abs().max() <= 1e-5
    policy.load_state_dict(make_policy(TINY, seed=7).state_dict())
    assert (policy.sample(obs, noise) - policy.sample_reference(obs, noise)).abs().max() <= 1e-5
    policy.double()
    out64 = policy.sample(obs.double(), noise.double())
    assert out64.dtype == torch.float64
    assert (out64 - policy.sample_reference(obs.double(), noise.double())).abs().max() <= 1e-6


def test_output_is_usable_in_autograd():
    policy = make_policy(TINY)
    obs, noise = inputs(policy, 3)
    actions = policy.sample(obs, noise)
    critic = torch.nn.Linear(actions[0].numel(), 1)
    critic(actions.flatten(1)).sum().backward()
    assert critic.weight.grad is not None


@pytest.mark.parametrize(
    "obs_shape, noise_shape, message",
    [
        ((4, 5), (4, 4, 2), r"obs has shape \(4, 5\); expected \(batch, obs_dim=3\)"),
        ((4,), (4, 4, 2), r"obs has shape \(4,\)"),
        ((4, 3), (4, 3, 2), r"noise has shape \(4, 3, 2\); expected .* \(4, 4, 2\)"),
        ((4, 3), (5, 4, 2), r"noise has shape \(5, 4, 2\)"),
        ((4, 3), (4, 8), r"noise has shape \(4, 8\)"),
    ],
)
def test_wrong_shapes_raise(obs_shape, noise_shape, message):
    policy = make_policy(TINY)
    with pytest.raises(ValueError, match=message):
        policy.sample(torch.zeros(obs_shape), torch.zeros(noise_shape))


def test_policy_survives_deepcopy_and_pickle_after_sampling():
    import copy
    import pickle

    policy = make_policy(TINY)
    obs, noise = inputs(policy, 2)
    expected = policy.sample(obs, noise)
    for clone in (copy.deepcopy(policy), pickle.loads(pickle.dumps(policy))):
        assert torch.equal(clone.sample(obs, noise), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_gpu_matches_cpu():
    policy = make_policy(LIFT)
    obs, noise = inputs(policy, 32)
    cpu = policy.sample(obs, noise)
    gpu_policy = make_policy(LIFT).cuda()
    out = gpu_policy.sample(obs.cuda(), noise.cuda())
    assert out.device.type == "cuda"
    assert (out.cpu() - cpu).abs().max() <= 1e-4
    assert (out - gpu_policy.sample_reference(obs.cuda(), noise.cuda())).abs().max() <= 1e-5
    assert torch.equal(gpu_policy.sample(obs, noise).cpu(), out.cpu())
