"""Hopper without downloads: a SAC demonstrator (DSRL-SAC over the identity policy, on RLlib) trained on a
tiny budget, cached, rolled out into a robomimic-layout dataset that ``load_demos``, robomimic and
``dsrl-ray pretrain`` read; then the same from the CLI.

The real budget (``dsrl-ray demos --task hopper``: SAC to a mean return of 1100) takes about 30 minutes on
2 cores; the slow test runs it.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from dsrl_ray.app.cli import main
from dsrl_ray.envs import collect_demos, load_demos
from dsrl_ray.envs.demos.sac_demonstrator import (
    CACHE_DIR_VARIABLE,
    SACDemonstrator,
    SACDemoSettings,
    cache_entry,
)
from dsrl_ray.policies import load_policy
from dsrl_ray.policies.checkpoint import resolve_policy_path

TINY = dict(target_return=1e9, max_env_steps=300, learning_starts=250, batch_size=32, hidden_sizes=(16, 16),
            eval_every=300, eval_episodes=1)
"""A few hundred SAC env steps with an unreachable target: training stops at the budget."""


@pytest.fixture(scope="module")
def trained(ray_local_module, tmp_path_factory):
    """``(cache root, settings, demonstrator)`` of the tiny Hopper demonstrator, trained once here."""
    cache = tmp_path_factory.mktemp("demonstrators")
    settings = SACDemoSettings.for_task("hopper", **TINY)
    demonstrator = SACDemonstrator.load_or_train("hopper", 0.1, settings=settings, cache_dir=cache, progress=False)
    return cache, settings, demonstrator


def test_trains_to_the_budget_then_loads_from_the_cache(trained):
    cache, settings, first = trained
    assert not first.loaded and not first.record.reached_target
    assert 300 <= first.record.env_steps < 300 + 1000
    assert [step for step, _ in first.record.evaluations] == [first.record.env_steps]
    assert first.cache_dir == cache_entry("Hopper-v4", settings, cache)
    actor_file = first.cache_dir / "actor.pt"
    written = actor_file.stat().st_mtime_ns

    second = SACDemonstrator.load_or_train("hopper", 0.1, settings=settings, cache_dir=cache, progress=False)
    assert second.loaded and second.record == first.record
    assert actor_file.stat().st_mtime_ns == written
    assert [p.name for p in cache.iterdir()] == [first.cache_dir.name]
    obs = np.linspace(-1.0, 1.0, 11)
    first.reset(obs, np.random.default_rng(3))
    second.reset(obs, np.random.default_rng(3))
    np.testing.assert_allclose(first.act(obs), second.act(obs), atol=1e-6)

    other_seed = cache_entry("Hopper-v4", SACDemoSettings.for_task("hopper", **{**TINY, "seed": 1}), cache)
    assert other_seed != first.cache_dir and not other_seed.exists()  # another seed is another demonstrator


def test_rollouts_make_a_dataset_that_pretrain_reads(trained, tmp_path, assert_same_as_robomimic):
    _, _, demonstrator = trained
    path = tmp_path / "hopper.hdf5"
    summary = collect_demos("hopper", 3, sigma=0.1, seed=0, out_path=path, keep_failures=True,
                            demonstrator=demonstrator, progress=False)
    assert summary.n_demos == summary.n_attempts == 3 and np.isfinite(summary.mean_return)

    data = load_demos(path)
    assert data.obs_keys == ("state",) and data.env_args["env_name"] == "Hopper" and len(data.episodes) == 3
    for episode in data.episodes:
        assert episode.obs.shape == (len(episode), 11) and episode.actions.shape == (len(episode), 3)
        assert np.abs(episode.actions).max() <= 1.0 and episode.dones[-1] and not episode.dones[:-1].any()
    assert np.mean([ep.rewards.sum() for ep in data.episodes]) == pytest.approx(summary.mean_return, rel=1e-5)
    assert_same_as_robomimic(path)

    main(["pretrain", "--dataset", str(path), "--out", str(tmp_path / "base_policy"), "--steps", "4",
          "--batch-size", "16", "--mlp-dims", "32", "32", "32", "--checkpoint-every", "4"])
    policy = load_policy(resolve_policy_path(tmp_path / "base_policy"))
    assert (policy.obs_dim, policy.act_dim, policy.chunk_len) == (11, 3, 4)


def test_demos_command_uses_the_cached_demonstrator(trained, tmp_path, monkeypatch, capsys):
    """``dsrl-ray demos --task hopper`` goes through the task table's demonstrator and its cache: with an entry
    under the default settings' key in ``$DSRL_RAY_CACHE_DIR`` it trains nothing."""
    _, _, demonstrator = trained
    cache = tmp_path / "cache"
    shutil.copytree(demonstrator.cache_dir, cache_entry("Hopper-v4", SACDemoSettings.for_task("hopper"), cache))
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(cache))
    main(["demos", "--task", "hopper", "--n", "2", "--out", str(tmp_path / "demos.hdf5")])
    assert "n_demos=2" in capsys.readouterr().out
    assert len(load_demos(tmp_path / "demos.hdf5").episodes) == 2


def test_settings_refuse_tasks_without_a_target_and_unknown_names():
    with pytest.raises(ValueError, match="'lift' has no SAC demonstrator"):
        SACDemoSettings.for_task("lift")
    with pytest.raises(ValueError, match=r"unknown SAC demonstrator settings \['lr'\]"):
        SACDemoSettings.for_task("hopper", lr=1e-3)
    with pytest.raises(ValueError, match="max_env_steps=0; expected > 0"):
        SACDemoSettings.for_task("hopper", max_env_steps=0)
    with pytest.raises(ValueError, match="'walker2d' has no SAC demonstrator"):
        SACDemoSettings.for_task("walker2d")
    assert SACDemoSettings.for_task("hopper").target_return == 1100.0


@pytest.mark.slow
def test_real_budget_reaches_a_medium_return(ray_local, tmp_path):
    """The real thing (about 30 minutes on 2 cores, once: the default cache keeps it): SAC reaches the target return,
    the noisy rollouts stay near it."""
    settings = SACDemoSettings.for_task("hopper")
    demonstrator = SACDemonstrator.load_or_train("hopper", 0.1, settings=settings)  # the default cache
    assert demonstrator.record.reached_target and demonstrator.record.final_return >= settings.target_return
    summary = collect_demos("hopper", 10, sigma=0.1, seed=0, out_path=tmp_path / "hopper.hdf5", keep_failures=True,
                            demonstrator=demonstrator)
    assert summary.mean_return >= 0.6 * settings.target_return
