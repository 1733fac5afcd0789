import numpy as np
import pytest
import torch

from dsrl_ray.policies import Normalizer, load_dppo, save_dppo

from . import numpy_reference as ref
from .factories import LIFT, SQUARE, inputs, make_policy

LIFT_ARGS = dict(
    obs_dim=19, action_dim=7, horizon_steps=4, denoising_steps=20, ddim_steps=8,
    mlp_dims=[512, 512, 512], time_dim=16, activation_type="Mish", residual_style=True,
)
SQUARE_ARGS = dict(
    obs_dim=23, action_dim=7, horizon_steps=4, denoising_steps=100, ddim_steps=8,
    mlp_dims=[1024, 1024, 1024], time_dim=32, cond_mlp_dims=[512, 64],
)


def dppo_lift_state(seed: int) -> dict:
    """A DPPO lift network state dict written from the documented key list (not from our module)."""
    g = torch.Generator().manual_seed(seed)
    shapes = {
        "time_embedding.1.weight": (32, 16), "time_embedding.1.bias": (32,),
        "time_embedding.3.weight": (16, 32), "time_embedding.3.bias": (16,),
        "mlp_mean.layers.0.weight": (512, 63), "mlp_mean.layers.0.bias": (512,),
        "mlp_mean.layers.1.l1.weight": (512, 512), "mlp_mean.layers.1.l1.bias": (512,),
        "mlp_mean.layers.1.l2.weight": (512, 512), "mlp_mean.layers.1.l2.bias": (512,),
        "mlp_mean.layers.2.weight": (28, 512), "mlp_mean.layers.2.bias": (28,),
    }
    return {
        "network." + k: torch.randn(s, generator=g) / (s[-1] ** 0.5 if len(s) == 2 else 4.0)
        for k, s in shapes.items()
    }


@pytest.fixture
def lift_file(tmp_path):
    path = tmp_path / "state_3000.pt"
    ema = dppo_lift_state(0)
    model = dppo_lift_state(1)
    extras = {"actor_ft.mlp_mean.layers.0.weight": torch.zeros(3), "critic.q.weight": torch.zeros(2)}
    torch.save({"epoch": 3000, "model": {**model, **extras}, "ema": ema}, path)
    return path, ema, model


def test_dppo_layout_file_reproduces_float64_reference(lift_file):
    path, ema, _ = lift_file
    policy = load_dppo(path, **LIFT_ARGS)
    assert not policy.training and not any(p.requires_grad for p in policy.parameters())
    obs, noise = inputs(policy, 6)
    expected, clipped = ref.ddim(ref.state_to_numpy(ema), policy.arch, obs.double().numpy(), noise.numpy())
    assert clipped > 0
    assert np.abs(policy.sample(obs, noise).numpy() - expected).max() <= 1e-5


def test_use_ema_false_loads_model_and_ignores_non_network_keys(lift_file):
    path, _, model = lift_file
    policy = load_dppo(path, **LIFT_ARGS, use_ema=False)
    for k, v in model.items():
        assert torch.equal(policy.state_dict()[k], v)


@pytest.mark.parametrize("arch, args", [(LIFT, LIFT_ARGS), (SQUARE, SQUARE_ARGS)], ids=["lift", "square"])
def test_save_then_load_reproduces_actions_exactly(tmp_path, arch, args):
    policy = make_policy(arch)
    path = save_dppo(policy, tmp_path / "state_5.pt", epoch=5, normalization_path=tmp_path / "normalization.npz")
    raw = torch.load(path, weights_only=True)
    assert set(raw) == {"epoch", "model", "ema"} and raw["epoch"] == 5
    assert all(k.startswith("network.") for k in raw["ema"]) and raw["ema"].keys() == raw["model"].keys()
    loaded = load_dppo(path, **args, normalization_path=tmp_path / "normalization.npz")
    obs, noise = inputs(policy, 10)
    assert torch.equal(loaded.sample(obs, noise), policy.sample(obs, noise))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_normalization_path(tmp_path, lift_file):
    path = lift_file[0]
    norm = Normalizer(np.arange(19.0), np.arange(19.0) + 2, -np.ones(7), 3 * np.ones(7))
    norm.to_npz(tmp_path / "normalization.npz")
    policy = load_dppo(path, **LIFT_ARGS, normalization_path=tmp_path / "normalization.npz")
    np.testing.assert_array_equal(policy.normalizer.obs_max, norm.obs_max)
    identity = load_dppo(path, **LIFT_ARGS)
    np.testing.assert_array_equal(identity.normalizer.action_min, -np.ones(7))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_dppo(tmp_path / "nope.pt", **LIFT_ARGS)


def test_missing_ema_entry(tmp_path):
    path = tmp_path / "state.pt"
    torch.save({"epoch": 1, "model": dppo_lift_state(0)}, path)
    with pytest.raises(KeyError, match=r"no 'ema' entry \(found \['epoch', 'model'\]\); use_ema=False"):
        load_dppo(path, **LIFT_ARGS)
    assert load_dppo(path, **LIFT_ARGS, use_ema=False) is not None


def test_missing_key_is_named(tmp_path):
    state = dppo_lift_state(0)
    del state["network.mlp_mean.layers.1.l2.bias"]
    path = tmp_path / "state.pt"
    torch.save({"epoch": 1, "model": state, "ema": state}, path)
    with pytest.raises(KeyError, match=r"lacks 'network.mlp_mean.layers.1.l2.bias'.*shape \(512,\)"):
        load_dppo(path, **LIFT_ARGS)


@pytest.mark.parametrize(
    "override, message",
    [
        (
            dict(mlp_dims=[256, 256, 256]),
            r"mlp_dims=\[256, 256, 256\] .*gives network.mlp_mean.layers.0.weight shape \(256, 63\) "
            r"but DPPO checkpoint .* has \(512, 63\)",
        ),
        (dict(obs_dim=20), r"obs_dim=20.* gives network.mlp_mean.layers.0.weight shape \(512, 64\) but .* \(512, 63\)"),
        (dict(time_dim=32), r"time_dim=32 gives network.time_embedding.1.weight shape \(64, 32\) but .* \(32, 16\)"),
        (dict(horizon_steps=8), r"horizon_steps=8.* gives network.mlp_mean.layers.0.weight shape \(512, 91\)"),
        (dict(action_dim=6, obs_dim=23), r"action_dim=6.* gives network.mlp_mean.layers.2.weight shape \(24, 512\)"),
    ],
)
def test_wrong_architecture_names_argument_and_shapes(lift_file, override, message):
    with pytest.raises(ValueError, match=message):
        load_dppo(lift_file[0], **{**LIFT_ARGS, **override})


def test_wrong_structure_errors(lift_file, tmp_path):
    with pytest.raises(KeyError, match=r"network.cond_mlp.moduleList.0.linear_1.weight"):
        load_dppo(lift_file[0], **LIFT_ARGS, cond_mlp_dims=[64, 16])
    with pytest.raises(KeyError, match=r"network.mlp_mean.moduleList.0.linear_1.weight"):
        load_dppo(lift_file[0], **{**LIFT_ARGS, "residual_style": False})
    state = {**dppo_lift_state(0), "network.extra.weight": torch.zeros(2)}
    path = tmp_path / "state.pt"
    torch.save({"epoch": 1, "model": state, "ema": state}, path)
    with pytest.raises(ValueError, match=r"network keys that .* does not build: \['network.extra.weight'\]"):
        load_dppo(path, **LIFT_ARGS)


def test_square_checkpoint_without_cond_mlp_argument(tmp_path):
    path = save_dppo(make_policy(SQUARE), tmp_path / "state.pt")
    args = {**SQUARE_ARGS, "cond_mlp_dims": None}
    message = r"cond_mlp_dims=None gives network.mlp_mean.layers.0.weight shape \(1024, 83\)"
    with pytest.raises(ValueError, match=message):
        load_dppo(path, **args)
