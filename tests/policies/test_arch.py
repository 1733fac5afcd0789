import pytest

from dsrl_ray.policies import DiffusionArch


def make(**kw):
    base = dict(obs_dim=4, act_dim=2, chunk_len=3)
    base.update(kw)
    return DiffusionArch(**base)


def test_defaults_and_round_trip():
    arch = make(mlp_dims=[32, 32, 32], cond_mlp_dims=[16, 8], cond_steps=2)
    assert arch.mlp_dims == (32, 32, 32) and arch.cond_mlp_dims == (16, 8)
    assert arch.cond_dim == 8
    d = arch.to_dict()
    assert d["mlp_dims"] == [32, 32, 32]
    assert DiffusionArch.from_dict(d) == arch


def test_non_divisible_steps_allowed_like_dppo():
    arch = make(denoising_steps=20, ddim_steps=8)
    assert arch.ddim_steps == 8


@pytest.mark.parametrize(
    "kw, message",
    [
        (dict(ddim_steps=30, denoising_steps=20), r"ddim_steps=30 exceeds denoising_steps=20"),
        (dict(time_dim=15), r"time_dim=15; expected an even integer >= 4"),
        (dict(time_dim=2), r"time_dim=2"),
        (dict(activation="Swish"), r"activation 'Swish' is not supported"),
        (dict(mlp_dims=[64, 64]), r"mlp_dims=\[64, 64\] has 2 entries"),
        (dict(mlp_dims=[64, 32, 32]), r"mlp_dims=\[64, 32, 32\] mixes widths"),
        (dict(mlp_dims=[]), r"mlp_dims=\[\]"),
        (dict(obs_dim=0), r"obs_dim=0; expected an integer >= 1"),
        (dict(cond_steps=0), r"cond_steps=0"),
        (dict(denoised_clip_value=0.0), r"denoised_clip_value=0.0"),
    ],
)
def test_validation_names_bad_value(kw, message):
    with pytest.raises(ValueError, match=message):
        make(**kw)


def test_plain_mlp_accepts_any_widths():
    assert make(mlp_dims=[64, 32], residual_style=False).mlp_dims == (64, 32)


def test_from_dict_rejects_unknown_fields():
    with pytest.raises(ValueError, match=r"unknown DiffusionArch fields \['bogus'\]"):
        DiffusionArch.from_dict({**make().to_dict(), "bogus": 1})
