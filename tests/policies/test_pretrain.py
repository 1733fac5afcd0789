import numpy as np
import pytest
import torch

from dsrl_ray.policies import DiffusionArch, PretrainConfig, load_policy, pretrain, save_dppo
from dsrl_ray.policies.bc_data import check_episodes, make_training_pairs
from dsrl_ray.policies.checkpoint import FORMAT_TAG, REQUIRED_KEYS, list_checkpoints

from .factories import TINY, inputs, toy_episodes

SHA = "a" * 64


def config(**kw):
    base = dict(steps=20, batch_size=32, lr=1e-3, checkpoint_every=10, log_every=5, ema_start=5, progress=False)
    base.update(kw)
    return PretrainConfig(**base)


def test_training_pairs_pad_with_last_action_and_first_obs():
    obs = np.arange(3, dtype=float)[:, None] * np.ones((1, 2))
    actions = 10 + np.arange(3, dtype=float)[:, None]
    o, a = make_training_pairs([(obs, actions)], chunk_len=4, cond_steps=2)
    assert o.shape == (3, 2, 2) and a.shape == (3, 4, 1) and o.dtype == np.float32
    np.testing.assert_array_equal(a[:, :, 0], [[10, 11, 12, 12], [11, 12, 12, 12], [12, 12, 12, 12]])
    np.testing.assert_array_equal(o[:, :, 0], [[0, 0], [0, 1], [1, 2]])
    o2, a2 = make_training_pairs([(obs, actions), (obs[:1], actions[:1])], chunk_len=2)
    assert o2.shape == (4, 1, 2)
    np.testing.assert_array_equal(a2[3, :, 0], [10, 10])


@pytest.mark.parametrize(
    "episodes, message",
    [
        ([], "no episodes"),
        ([(np.zeros((5, 4)), np.zeros((5, 2)))], r"episode 0 obs has shape \(5, 4\); expected \(T >= 1, obs_dim=3\)"),
        ([(np.zeros((5, 3)), np.zeros((4, 2)))], r"episode 0 actions have shape \(4, 2\); expected \(T=5, act_dim=2\)"),
    ],
)
def test_bad_episodes(episodes, message):
    with pytest.raises(ValueError, match=message):
        check_episodes(episodes, 3, 2)


def test_pretraining_lowers_loss_and_checkpoint_is_complete(tmp_path):
    result = pretrain(
        toy_episodes(), TINY, config(steps=300, batch_size=64, log_every=50, checkpoint_every=100),
        tmp_path, dataset_sha256=SHA, meta={"task": "toy", "obs_keys": ["a", "b"]},
    )
    losses = [loss for _, loss in result.loss_history]
    assert [s for s, _ in result.loss_history] == [50, 100, 150, 200, 250, 300]
    assert losses[-1] < 0.5 * losses[0]
    assert result.checkpoint.name == "pretrain_step_00000300.pt" and result.resumed_from == 0
    ckpt = torch.load(result.checkpoint, weights_only=True)
    assert set(REQUIRED_KEYS) <= set(ckpt) and ckpt["format"] == FORMAT_TAG
    assert ckpt["step"] == 300 and ckpt["dataset_sha256"] == SHA
    assert ckpt["meta"] == {"task": "toy", "obs_keys": ["a", "b"]}
    assert {"optimizer", "rng", "config", "loss_history"} <= set(ckpt)
    ema, raw = load_policy(result.checkpoint), load_policy(result.checkpoint, use_ema=False)
    assert ema.arch == TINY and not ema.training
    assert any(not torch.equal(a, b) for a, b in zip(ema.parameters(), raw.parameters()))
    obs_all = np.concatenate([o for o, _ in toy_episodes()])
    np.testing.assert_allclose(ema.normalizer.obs_min, obs_all.min(0), rtol=1e-6)
    obs, noise = inputs(ema, 4)
    assert torch.equal(ema.sample(obs, noise), load_policy(result.checkpoint).sample(obs, noise))


def test_resume_continues_and_matches_uninterrupted_run(tmp_path):
    full = pretrain(toy_episodes(), TINY, config(), tmp_path / "a", dataset_sha256=SHA)
    first = pretrain(toy_episodes(), TINY, config(steps=10), tmp_path / "b", dataset_sha256=SHA)
    assert first.checkpoint.name == "pretrain_step_00000010.pt"
    second = pretrain(toy_episodes(), TINY, config(), tmp_path / "b", dataset_sha256=SHA)
    assert second.resumed_from == 10
    assert second.loss_history == full.loss_history
    a, b = torch.load(full.checkpoint, weights_only=True), torch.load(second.checkpoint, weights_only=True)
    assert b["step"] == 20
    for entry in ("model", "ema"):
        for k in a[entry]:
            assert torch.equal(a[entry][k], b[entry][k]), (entry, k)
    again = pretrain(toy_episodes(), TINY, config(), tmp_path / "b", dataset_sha256=SHA)
    assert again.checkpoint == second.checkpoint and again.resumed_from == 20


def test_resume_refuses_other_dataset_or_arch(tmp_path):
    pretrain(toy_episodes(), TINY, config(steps=5), tmp_path, dataset_sha256=SHA)
    with pytest.raises(ValueError, match=f"dataset sha256 {SHA} but this run's dataset has {'b' * 64}"):
        pretrain(toy_episodes(), TINY, config(), tmp_path, dataset_sha256="b" * 64)
    other = DiffusionArch(**{**TINY.to_dict(), "mlp_dims": [32, 32, 32]})
    with pytest.raises(ValueError, match=r"its arch .* differs from this run's .*'mlp_dims': \[32, 32, 32\]"):
        pretrain(toy_episodes(), other, config(), tmp_path, dataset_sha256=SHA)


def test_failed_save_leaves_previous_checkpoint_intact(tmp_path, monkeypatch):
    first = pretrain(toy_episodes(), TINY, config(steps=10), tmp_path, dataset_sha256=SHA)
    before = first.checkpoint.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial checkpoint bytes")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        pretrain(toy_episodes(), TINY, config(steps=20), tmp_path, dataset_sha256=SHA)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pretrain_step_00000010.pt"]
    assert first.checkpoint.read_bytes() == before
    assert load_policy(first.checkpoint).arch == TINY
    resumed = pretrain(toy_episodes(), TINY, config(steps=20), tmp_path, dataset_sha256=SHA)
    assert resumed.resumed_from == 10 and resumed.checkpoint.name == "pretrain_step_00000020.pt"


def test_old_checkpoints_are_pruned(tmp_path):
    cfg = config(steps=20, checkpoint_every=5, keep_checkpoints=2)
    pretrain(toy_episodes(), TINY, cfg, tmp_path, dataset_sha256=SHA)
    assert [s for s, _ in list_checkpoints(tmp_path)] == [15, 20]


def test_load_policy_errors(tmp_path):
    result = pretrain(toy_episodes(), TINY, config(steps=2), tmp_path / "run", dataset_sha256=SHA)
    ckpt = torch.load(result.checkpoint, weights_only=True)
    del ckpt["ema"]
    torch.save(ckpt, tmp_path / "no_ema.pt")
    with pytest.raises(KeyError, match=r"lacks keys \['ema'\]"):
        load_policy(tmp_path / "no_ema.pt")
    ckpt = torch.load(result.checkpoint, weights_only=True)
    del ckpt["model"]["network.mlp_mean.layers.0.bias"]
    torch.save(ckpt, tmp_path / "no_key.pt")
    with pytest.raises(KeyError, match=r"lacks 'network.mlp_mean.layers.0.bias'"):
        load_policy(tmp_path / "no_key.pt", use_ema=False)
    save_dppo(load_policy(result.checkpoint), tmp_path / "state_1.pt")
    with pytest.raises(ValueError, match="use load_dppo"):
        load_policy(tmp_path / "state_1.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_policy(tmp_path / "missing.pt")


def test_meta_must_be_plain(tmp_path):
    with pytest.raises(TypeError, match=r"meta\['obj'\] is a object"):
        pretrain(toy_episodes(), TINY, config(), tmp_path, dataset_sha256=SHA, meta={"obj": object()})


def test_lr_schedule_and_config_validation():
    cfg = PretrainConfig(steps=100, lr=1e-3, lr_min=1e-5, lr_schedule="cosine")
    assert cfg.lr_at(0) == pytest.approx(1e-3)
    assert cfg.lr_at(50) == pytest.approx((1e-3 + 1e-5) / 2)
    assert cfg.lr_at(100) == pytest.approx(1e-5)
    with pytest.raises(ValueError, match=r"lr_schedule='step'"):
        PretrainConfig(steps=1, lr_schedule="step")
    with pytest.raises(ValueError, match=r"steps=0"):
        PretrainConfig(steps=0)


def test_cond_steps_two_trains(tmp_path):
    arch = DiffusionArch(**{**TINY.to_dict(), "cond_steps": 2})
    result = pretrain(toy_episodes(), arch, config(steps=5), tmp_path, dataset_sha256=SHA)
    policy = load_policy(result.checkpoint)
    assert policy.obs_dim == 6 and policy.normalizer.obs_dim == 3
