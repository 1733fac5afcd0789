import copy
import pickle

import numpy as np
import pytest
import torch

from dsrl_ray.policies import (
    DiffusionArch,
    DiffusionPolicy,
    FlowArch,
    FlowPolicy,
    Normalizer,
    PretrainConfig,
    load_policy,
    make_arch,
    pretrain,
    save_dppo,
)
from dsrl_ray.policies.checkpoint import (
    PolicyCheckpointError,
    checkpoint_path,
    normalizer_to_tensors,
    write_checkpoint,
)

from . import numpy_reference as ref
from .factories import FLOW_LIFT, FLOW_SQUARE, FLOW_TINY, TINY, bimodal_episodes, inputs, make_policy, toy_episodes

SHA = "c" * 64

VARIANTS = {
    "lift-euler": FLOW_LIFT,
    "square-midpoint": FLOW_SQUARE,
    "plain-relu-midpoint": FlowArch(
        obs_dim=6, act_dim=3, chunk_len=2, mlp_dims=(64, 32), time_dim=8, activation="ReLU", residual_style=False,
        sampler="midpoint",
    ),
    "layernorm-cond2": FlowArch(
        obs_dim=6, act_dim=3, chunk_len=2, cond_steps=2, mlp_dims=(64,) * 5, time_dim=8, use_layernorm=True
    ),
    "one-step": FlowArch(obs_dim=6, act_dim=3, chunk_len=2, mlp_dims=(32,) * 3, time_dim=8, flow_steps=1),
    "midpoint-20-scale-50": FlowArch(
        obs_dim=6, act_dim=3, chunk_len=2, mlp_dims=(32,) * 3, time_dim=8, sampler="midpoint", flow_steps=20,
        time_scale=50,
    ),
}


def config(**kw):
    base = dict(steps=20, batch_size=32, lr=1e-3, checkpoint_every=10, log_every=5, ema_start=5, progress=False)
    base.update(kw)
    return PretrainConfig(**base)


# --- architecture ---------------------------------------------------------------------------------


def test_arch_defaults_and_round_trip():
    arch = FlowArch(obs_dim=4, act_dim=2, chunk_len=3, mlp_dims=[32, 32, 32], cond_mlp_dims=[16, 8], cond_steps=2)
    assert (arch.sampler, arch.flow_steps, arch.time_scale) == ("euler", 10, 1000.0)
    assert arch.mlp_dims == (32, 32, 32) and arch.cond_mlp_dims == (16, 8) and arch.cond_dim == 8
    assert FlowArch.policy_type == "flow" and DiffusionArch.policy_type == "diffusion"
    d = arch.to_dict()
    assert d["mlp_dims"] == [32, 32, 32] and d["sampler"] == "euler" and "policy_type" not in d
    assert FlowArch.from_dict(d) == arch
    assert FlowArch(obs_dim=4, act_dim=2, chunk_len=3, time_scale=10).time_scale == 10.0


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(sampler="rk4"), r"sampler='rk4'; expected one of \['euler', 'midpoint'\]"),
        (dict(flow_steps=0), r"flow_steps=0; expected an integer >= 1"),
        (dict(flow_steps=2.5), r"flow_steps=2.5; expected an integer >= 1"),
        (dict(time_scale=0.0), r"time_scale=0.0; expected a finite number > 0"),
        (dict(time_scale=float("inf")), r"time_scale=inf; expected a finite number > 0"),
        (dict(time_scale="1000"), r"time_scale='1000'; expected a finite number > 0"),
        (dict(time_dim=15), r"time_dim=15; expected an even integer >= 4"),
        (dict(activation="Swish"), r"activation 'Swish' is not supported"),
        (dict(mlp_dims=[64, 64]), r"mlp_dims=\[64, 64\] has 2 entries"),
        (dict(mlp_dims=[]), r"mlp_dims=\[\]"),
        (dict(chunk_len=0), r"chunk_len=0; expected an integer >= 1"),
    ],
)
def test_arch_validation_names_bad_value(kw, message):
    with pytest.raises(ValueError, match=message):
        FlowArch(**{"obs_dim": 4, "act_dim": 2, "chunk_len": 3, **kw})


def test_arch_from_dict_rejects_diffusion_fields():
    with pytest.raises(ValueError, match=r"unknown FlowArch fields \['ddim_steps'\]"):
        FlowArch.from_dict({**FLOW_TINY.to_dict(), "ddim_steps": 8})


def test_make_arch_shares_one_preset_between_types():
    preset = dict(mlp_dims=(128, 128, 128), time_dim=16, denoising_steps=20, ddim_steps=8)
    flow = make_arch("flow", obs_dim=4, act_dim=2, chunk_len=4, preset=preset, overrides={"sampler": "midpoint"})
    assert flow == FlowArch(obs_dim=4, act_dim=2, chunk_len=4, mlp_dims=(128,) * 3, sampler="midpoint")
    diffusion = make_arch("diffusion", obs_dim=4, act_dim=2, chunk_len=4, preset=preset)
    assert diffusion == DiffusionArch(obs_dim=4, act_dim=2, chunk_len=4, **preset)
    with pytest.raises(ValueError, match=r"arch overrides \['ddim_steps'\] are not fields of a 'flow' policy"):
        make_arch("flow", obs_dim=4, act_dim=2, chunk_len=4, overrides={"ddim_steps": 4})
    with pytest.raises(ValueError, match=r"preset arch fields \['bogus'\] belong to no policy type"):
        make_arch("flow", obs_dim=4, act_dim=2, chunk_len=4, preset={"bogus": 1})
    with pytest.raises(ValueError, match=r"policy_type='consistency' is not a known policy type; "
                                         r"expected one of \['diffusion', 'flow'\]"):
        make_arch("consistency", obs_dim=4, act_dim=2, chunk_len=4)


def test_velocity_network_has_the_diffusion_mlp_layout():
    flow, diffusion = make_policy(FLOW_LIFT), make_policy(DiffusionArch(**{
        k: v for k, v in FLOW_LIFT.to_dict().items() if k not in ("sampler", "flow_steps", "time_scale")
    }))
    assert {k: v.shape for k, v in flow.state_dict().items()} == {k: v.shape for k, v in diffusion.state_dict().items()}


# --- sampler --------------------------------------------------------------------------------------


def test_same_noise_same_actions_different_noise_different():
    policy = make_policy(FLOW_LIFT)
    assert isinstance(policy, FlowPolicy) and policy.noise_shape == (4, 7)
    obs, noise = inputs(policy, 16)
    a1 = policy.sample(obs, noise)
    a2 = policy.sample(obs.clone(), noise.clone())
    assert torch.equal(a1, a2)
    assert a1.shape == (16, 4, 7) and a1.dtype == torch.float32
    assert (a1 - policy.sample(obs, noise + 0.5)).abs().max() > 1e-3
    torch.testing.assert_close(policy.sample(obs[3:4], noise[3:4]), a1[3:4], atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_fast_sampler_equals_reference_loop(name):
    policy = make_policy(VARIANTS[name])
    obs, noise = inputs(policy, 9)
    assert (policy.sample(obs, noise) - policy.sample_reference(obs, noise)).abs().max().item() <= 1e-5


@pytest.mark.parametrize("sampler", ["euler", "midpoint"])
@pytest.mark.parametrize("arch", [FLOW_LIFT, FLOW_SQUARE], ids=["lift", "square"])
def test_sampler_matches_independent_float64_numpy(arch, sampler):
    arch = FlowArch(**{**arch.to_dict(), "sampler": sampler})
    policy = make_policy(arch)
    obs, noise = inputs(policy, 8)
    ours = policy.sample(obs, noise).numpy()
    expected, clipped = ref.flow(ref.state_to_numpy(policy.state_dict()), arch, obs.double().numpy(), noise.numpy())
    assert 0 < clipped < expected.size, "the test should exercise the final clip and the unclipped values"
    assert np.abs(ours - expected).max() <= 1e-5


def test_euler_and_midpoint_differ_and_steps_matter():
    euler = make_policy(FLOW_TINY)
    obs, noise = inputs(euler, 6)
    midpoint = FlowPolicy(FlowArch(**{**FLOW_TINY.to_dict(), "sampler": "midpoint"}))
    more_steps = FlowPolicy(FlowArch(**{**FLOW_TINY.to_dict(), "flow_steps": 20}))
    for other in (midpoint, more_steps):
        other.load_state_dict(euler.state_dict())
        assert (other.sample(obs, noise) - euler.sample(obs, noise)).abs().max() > 1e-4


def test_noise_is_used_as_given_not_modified_and_actions_bounded():
    policy = make_policy(FLOW_TINY)
    obs, noise = inputs(policy, 4)
    kept = noise.clone()
    big = policy.sample(obs, 100 * noise)
    assert big.abs().max() <= 1.0 and (big.abs() == 1.0).any()
    small = policy.sample(obs, noise)
    assert torch.equal(noise, kept)
    assert not torch.equal(big, small)


def test_cache_follows_weight_updates_and_dtype():
    policy = make_policy(FLOW_TINY)
    obs, noise = inputs(policy, 5)
    before = policy.sample(obs, noise)
    with torch.no_grad():
        policy.network.time_embedding[1].weight.mul_(3.0)
        policy.network.mlp_mean.layers[0].weight.add_(0.1)
    after = policy.sample(obs, noise)
    assert (after - before).abs().max() > 1e-4
    assert (after - policy.sample_reference(obs, noise)).abs().max() <= 1e-5
    policy.load_state_dict(make_policy(FLOW_TINY, seed=7).state_dict())
    assert (policy.sample(obs, noise) - policy.sample_reference(obs, noise)).abs().max() <= 1e-5
    policy.double()
    out64 = policy.sample(obs.double(), noise.double())
    assert out64.dtype == torch.float64
    assert (out64 - policy.sample_reference(obs.double(), noise.double())).abs().max() <= 1e-6


def test_output_is_usable_in_autograd():
    policy = make_policy(FLOW_TINY)
    obs, noise = inputs(policy, 3)
    actions = policy.sample(obs, noise)
    critic = torch.nn.Linear(actions[0].numel(), 1)
    critic(actions.flatten(1)).sum().backward()
    assert critic.weight.grad is not None


@pytest.mark.parametrize(
    "obs_shape, noise_shape, message",
    [
        ((4, 5), (4, 4, 2), r"obs has shape \(4, 5\); expected \(batch, obs_dim=3\)"),
        ((4, 3), (4, 3, 2), r"noise has shape \(4, 3, 2\); expected .* \(4, 4, 2\)"),
        ((4, 3), (5, 4, 2), r"noise has shape \(5, 4, 2\)"),
    ],
)
def test_wrong_shapes_raise(obs_shape, noise_shape, message):
    with pytest.raises(ValueError, match=message):
        make_policy(FLOW_TINY).sample(torch.zeros(obs_shape), torch.zeros(noise_shape))


def test_policy_survives_deepcopy_and_pickle_after_sampling():
    policy = make_policy(FLOW_TINY)
    obs, noise = inputs(policy, 2)
    expected = policy.sample(obs, noise)
    for clone in (copy.deepcopy(policy), pickle.loads(pickle.dumps(policy))):
        assert torch.equal(clone.sample(obs, noise), expected)


# --- loss -----------------------------------------------------------------------------------------


def _draws(policy, batch, seed=3):
    g = torch.Generator().manual_seed(seed)
    obs = torch.randn(batch, policy.obs_dim, generator=g)
    actions = torch.rand(batch, *policy.noise_shape, generator=g) * 2 - 1
    return obs, actions


def test_loss_equals_hand_computed_value_for_fixed_draws():
    policy = make_policy(FLOW_TINY).train()
    obs, actions = _draws(policy, 6)
    t = torch.tensor([0.0, 0.1, 0.25, 0.5, 0.9, 0.999])
    noise = torch.randn(actions.shape, generator=torch.Generator().manual_seed(4))
    loss = policy.flow_matching_loss(obs, actions, t, noise)
    state = ref.state_to_numpy(policy.state_dict())
    expected = ref.flow_loss(state, FLOW_TINY, obs.double().numpy(), actions.double().numpy(), t.double().numpy(),
                             noise.double().numpy())
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss.backward()
    assert policy.network.mlp_mean.layers[0].weight.grad.abs().sum() > 0
    # With a zero output layer the velocity is 0, so the loss is the mean squared target a - noise.
    with torch.no_grad():
        policy.network.mlp_mean.layers[-1].weight.zero_()
        policy.network.mlp_mean.layers[-1].bias.zero_()
    zero = policy.flow_matching_loss(obs, actions, t, noise).item()
    assert zero == pytest.approx(float(((actions.double() - noise.double()) ** 2).mean()), rel=1e-6)


def test_bc_loss_draws_t_then_noise_from_the_generator():
    policy = make_policy(FLOW_TINY)
    obs, actions = _draws(policy, 8)
    g = torch.Generator().manual_seed(11)
    t = torch.rand(8, generator=g)
    noise = torch.randn(actions.shape, generator=g)
    expected = policy.flow_matching_loss(obs, actions, t, noise)
    got = policy.bc_loss(obs, actions, generator=torch.Generator().manual_seed(11))
    assert torch.equal(got, expected)


def test_loss_shape_errors():
    policy = make_policy(FLOW_TINY)
    obs, actions = _draws(policy, 4)
    with pytest.raises(ValueError, match=r"obs \(4, 3\) and actions \(4, 3, 2\)"):
        policy.bc_loss(obs, actions[:, :3])
    with pytest.raises(ValueError, match=r"t \(3,\) and noise \(4, 4, 2\); expected \(4,\)"):
        policy.flow_matching_loss(obs, actions, torch.zeros(3), torch.zeros_like(actions))


def test_bc_on_bimodal_data_lowers_loss_and_keeps_both_modes(tmp_path):
    episodes = bimodal_episodes()
    cfg = config(steps=1000, batch_size=64, lr=2e-3, log_every=200, checkpoint_every=1000, ema_start=250,
                 ema_decay=0.95)
    result = pretrain(episodes, FLOW_TINY, cfg, tmp_path, dataset_sha256=SHA)
    losses = [loss for _, loss in result.loss_history]
    # Bimodal targets leave a floor (about 0.4 here: near t = 0 the mode is not yet decided by x_t).
    assert losses[-1] < 0.6 * losses[0]
    policy = load_policy(result.checkpoint)
    assert isinstance(policy, FlowPolicy)
    obs = policy.normalizer.normalize_obs(torch.zeros(256, 3))
    noise = torch.randn(256, *policy.noise_shape, generator=torch.Generator().manual_seed(0))
    actions = policy.normalizer.unnormalize_action(policy.sample(obs, noise))
    mean = actions.mean(dim=(1, 2))
    assert 0.2 <= (mean > 0).float().mean() <= 0.8
    assert (mean.abs() > 0.5).float().mean() >= 0.85, "samples should sit at the modes, not between them"


# --- checkpoints and pretraining ------------------------------------------------------------------


def _save(policy, path, **extra):
    state = policy.state_dict()
    payload = dict(
        policy_type=policy.arch.policy_type, arch=policy.arch.to_dict(),
        normalizer=normalizer_to_tensors(policy.normalizer), model=state, ema=state, step=0, dataset_sha256=SHA,
    )
    return write_checkpoint({**payload, **extra}, path)


def test_checkpoint_round_trip_is_bit_exact(tmp_path):
    rng = np.random.default_rng(0)
    normalizer = Normalizer.from_data(rng.normal(size=(50, 19)), rng.normal(size=(50, 7)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        policy = FlowPolicy(FlowArch(**{**FLOW_LIFT.to_dict(), "sampler": "midpoint"}), normalizer).eval()
    path = _save(policy, checkpoint_path(tmp_path, 0))
    assert torch.load(path, weights_only=True)["policy_type"] == "flow"
    loaded = load_policy(path)
    assert type(loaded) is FlowPolicy and loaded.arch == policy.arch and not loaded.training
    np.testing.assert_array_equal(loaded.normalizer.action_max, normalizer.action_max)
    obs, noise = inputs(policy, 32)
    assert torch.equal(loaded.sample(obs, noise), policy.sample(obs, noise))


def test_load_policy_dispatches_on_policy_type(tmp_path):
    flow_path = _save(make_policy(FLOW_TINY), tmp_path / "flow.pt")
    diffusion_path = _save(make_policy(TINY), tmp_path / "diffusion.pt")
    assert type(load_policy(flow_path)) is FlowPolicy
    assert type(load_policy(diffusion_path)) is DiffusionPolicy
    old = torch.load(diffusion_path, weights_only=True)
    del old["policy_type"]  # written before flow policies existed
    torch.save(old, tmp_path / "old.pt")
    assert type(load_policy(tmp_path / "old.pt")) is DiffusionPolicy
    bogus = {**old, "policy_type": "consistency"}
    torch.save(bogus, tmp_path / "bogus.pt")
    with pytest.raises(PolicyCheckpointError, match=r"bogus.pt'.*policy_type='consistency' is not a known policy "
                                                      r"type; expected one of \['diffusion', 'flow'\]"):
        load_policy(tmp_path / "bogus.pt")
    with pytest.raises(ValueError, match=r"checkpoint payload: policy_type='consistency'"):
        _save(make_policy(TINY), tmp_path / "never.pt", policy_type="consistency")


def test_save_dppo_refuses_a_flow_policy(tmp_path):
    with pytest.raises(TypeError, match="save_dppo got a FlowPolicy; DPPO checkpoints hold DDIM diffusion"):
        save_dppo(make_policy(FLOW_TINY), tmp_path / "state_0.pt")


def test_pretrain_flow_checkpoint_and_resume_match_uninterrupted_run(tmp_path):
    full = pretrain(toy_episodes(), FLOW_TINY, config(), tmp_path / "a", dataset_sha256=SHA)
    ckpt = torch.load(full.checkpoint, weights_only=True)
    assert ckpt["policy_type"] == "flow" and FlowArch.from_dict(ckpt["arch"]) == FLOW_TINY
    pretrain(toy_episodes(), FLOW_TINY, config(steps=10), tmp_path / "b", dataset_sha256=SHA)
    second = pretrain(toy_episodes(), FLOW_TINY, config(), tmp_path / "b", dataset_sha256=SHA)
    assert second.resumed_from == 10 and second.loss_history == full.loss_history
    b = torch.load(second.checkpoint, weights_only=True)
    for entry in ("model", "ema"):
        for k in ckpt[entry]:
            assert torch.equal(ckpt[entry][k], b[entry][k]), (entry, k)


def test_pretrain_diffusion_checkpoint_says_diffusion(tmp_path):
    result = pretrain(toy_episodes(), TINY, config(steps=2), tmp_path, dataset_sha256=SHA)
    assert torch.load(result.checkpoint, weights_only=True)["policy_type"] == "diffusion"


def test_resume_refuses_a_checkpoint_of_the_other_type(tmp_path):
    pretrain(toy_episodes(), TINY, config(steps=2), tmp_path / "d", dataset_sha256=SHA)
    with pytest.raises(PolicyCheckpointError, match=r"holds a 'diffusion' policy but this run trains a 'flow' "
                                                      r"policy \(FlowArch\); use a fresh out_dir"):
        pretrain(toy_episodes(), FLOW_TINY, config(), tmp_path / "d", dataset_sha256=SHA)
    pretrain(toy_episodes(), FLOW_TINY, config(steps=2), tmp_path / "f", dataset_sha256=SHA)
    with pytest.raises(PolicyCheckpointError, match=r"holds a 'flow' policy but this run trains a 'diffusion'"):
        pretrain(toy_episodes(), TINY, config(), tmp_path / "f", dataset_sha256=SHA)
    other = FlowArch(**{**FLOW_TINY.to_dict(), "sampler": "midpoint"})
    with pytest.raises(PolicyCheckpointError, match=r"its arch .* differs from this run's .*'sampler': 'midpoint'"):
        pretrain(toy_episodes(), other, config(), tmp_path / "f", dataset_sha256=SHA)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("sampler", ["euler", "midpoint"])
def test_gpu_matches_cpu(sampler):
    arch = FlowArch(**{**FLOW_LIFT.to_dict(), "sampler": sampler})
    cpu_policy = make_policy(arch)
    obs, noise = inputs(cpu_policy, 32)
    cpu = cpu_policy.sample(obs, noise)
    gpu_policy = make_policy(arch).cuda()
    out = gpu_policy.sample(obs.cuda(), noise.cuda())
    assert out.device.type == "cuda"
    assert (out.cpu() - cpu).abs().max() <= 1e-4
    assert (out - gpu_policy.sample_reference(obs.cuda(), noise.cuda())).abs().max() <= 1e-5
    assert torch.equal(gpu_policy.sample(obs, noise).cpu(), out.cpu())
