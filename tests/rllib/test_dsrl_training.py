"""DSRL on RLlib end to end on TwoGoal: data integrity, update-to-data ratio, weight lag, logging."""

from __future__ import annotations

import glob
import math

import pytest

from dsrl_ray.rllib.algorithm import DSRL_METRICS
from dsrl_ray.rllib import runner_sync as sync
from dsrl_ray.rllib.module import ACT_BASE_NOISE, ACT_NOISE_POLICY

LEARNER = "learners"
MODULE = "default_policy"


def _learner_stat(result: dict, key: str) -> float | None:
    """A learner metric logged without a module key (``insert_and_train``'s bookkeeping)."""
    return result.get(LEARNER, {}).get(key)


def _module_stat(result: dict, key: str) -> float | None:
    return result.get(LEARNER, {}).get(MODULE, {}).get(key)


def _on_learner(algo, fn):
    """``fn(learner)`` evaluated where the (single) learner lives."""
    group = algo.learner_group
    (value,) = sync.learner_results(group, group.foreach_learner(fn))
    return value


def _learner_counters(algo) -> tuple[int, int]:
    """``(transitions inserted, gradient steps done)`` read from the learner's limiter."""
    return _on_learner(algo, lambda lrn: (lrn.limiter.num_inserted, lrn.limiter.num_updates))


@pytest.mark.parametrize("variant", ["na", "sac"])
def test_sync_mode_trains_on_exact_chunks_at_the_exact_ratio(ray_local, twogoal_config, variant):
    # NA: the block schedule (1 Q_W step per transition on its own batches of the runners' stored pairs).
    config = twogoal_config(runners=2, variant=variant, utd=2, q_w_utd=1, check_executed=True)
    algo = config.build_algo()
    try:
        errors, pair_errors, inserted_seen = [], [], []
        for _ in range(4):
            result = algo.train()
            for key, seen in (("executed_max_abs_err", errors), ("pair_max_abs_err", pair_errors)):
                if _module_stat(result, key) is not None:
                    seen.append(float(_module_stat(result, key)))
            inserted, updates = _learner_counters(algo)
            inserted_seen.append(inserted)
            # Sync mode: after every round the learner has done exactly utd * (inserted - warm-up) steps.
            assert updates == max(0, 2 * (inserted - 20))
            if variant == "na":
                assert _on_learner(algo, lambda lrn: lrn.q_w_limiter.num_updates) == max(0, inserted - 20)
            assert result["num_env_steps_sampled_lifetime"] == inserted
            # Both runners finished their pull before sampling: lag is the steps of this round only.
            assert result[DSRL_METRICS]["runner_version_lag_max"] <= 2 * (inserted - 20) + 1
        assert len(errors) >= 3, "the learner trained on fewer batches than expected"
        assert max(errors) < 1e-5
        if variant == "na":  # every stored pair the learner distilled on: max |a_k - pi_dp(s, w_k)|
            assert len(pair_errors) >= 3 and max(pair_errors) < 1e-5
        else:
            assert not pair_errors
        assert inserted_seen == sorted(inserted_seen) and inserted_seen[0] > 0
    finally:
        algo.stop()


def test_async_mode_keeps_the_ratio_and_the_chunks(ray_local, twogoal_config):
    config = twogoal_config(runners=2, variant="na", utd=1, check_executed=True, mode="async",
                            async_max_steps_per_call=16)
    algo = config.build_algo()
    try:
        errors, pair_errors = [], []  # Q_W interleaved (q_w_utd None) on the stored pairs of each batch
        for _ in range(12):
            result = algo.train()
            for key, seen in (("executed_max_abs_err", errors), ("pair_max_abs_err", pair_errors)):
                if _module_stat(result, key) is not None:
                    seen.append(float(_module_stat(result, key)))
        # Work off everything owed, then the ratio must hold exactly.
        owed = _on_learner(algo, lambda lrn: lrn.limiter.steps_owed())
        inserted, updates = _learner_counters(algo)
        assert updates + owed == max(0, inserted - 20)
        assert owed <= config.async_max_backlog + config.async_max_steps_per_call
        assert errors and max(errors) < 1e-5
        assert pair_errors and max(pair_errors) < 1e-5
        assert "learner_backlog" in result[DSRL_METRICS]
    finally:
        algo.stop()


def test_warm_up_uses_base_noise_then_switches_to_the_noise_policy(ray_local, twogoal_config):
    algo = twogoal_config(runners=0, init_rollout_steps=40, utd=1).build_algo()
    try:
        assert int(algo.env_runner.module.acting_source) == ACT_BASE_NOISE
        result = algo.train()
        inserted, updates = _learner_counters(algo)
        assert inserted == result["num_env_steps_sampled_lifetime"]
        assert 20 <= inserted < 40  # one fragment of 2 envs x 10 steps: still warming up
        assert updates == 0 and int(algo.env_runner.module.acting_source) == ACT_BASE_NOISE
        while inserted < 40:
            algo.train()
            inserted, updates = _learner_counters(algo)
        assert int(algo.env_runner.module.acting_source) == ACT_NOISE_POLICY
        assert updates == inserted - 40
    finally:
        algo.stop()


def test_plain_train_loop_writes_tensorboard_with_env_steps_on_x(ray_local, twogoal_config, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    algo = twogoal_config(runners=1, utd=1).build_algo()
    try:
        steps = [algo.train()["num_env_steps_sampled_lifetime"] for _ in range(3)]
    finally:
        algo.stop()
    (event_dir,) = {p.rsplit("/", 1)[0] for p in glob.glob(str(tmp_path / "tensorboard" / "events.out.*"))}
    events = EventAccumulator(event_dir)
    events.Reload()
    tags = set(events.Tags()["scalars"])
    for tag in (
        "env_runners/episode_return_mean",
        "learners/default_policy/qf_loss",
        "learners/default_policy/alpha_value",
        "learners/default_policy/qf_mean",
        "dsrl/env_steps_per_s",
        "dsrl/grad_steps_per_s",
        "dsrl/runner_version_lag_max",
    ):
        assert tag in tags, f"{tag} missing from {sorted(tags)}"
    assert [e.step for e in events.Scalars("dsrl/env_steps_per_s")] == steps
    assert all(math.isfinite(e.value) for e in events.Scalars("learners/default_policy/qf_loss"))


def test_tune_runs_dsrl_by_name(ray_local, twogoal_config, tmp_path):
    from ray import tune

    config = twogoal_config(runners=1, utd=1)
    tuner = tune.Tuner(
        "DSRL",
        param_space=config,
        run_config=tune.RunConfig(stop={"training_iteration": 2}, storage_path=str(tmp_path / "tune"), verbose=0),
    )
    results = tuner.fit()
    assert not results.errors
    best = results.get_best_result(metric="env_runners/episode_return_mean", mode="max")
    assert best.metrics["training_iteration"] == 2
    assert best.metrics["timesteps_total"] == best.metrics["num_env_steps_sampled_lifetime"] > 0
    assert glob.glob(str(tmp_path / "tune" / "**" / "events.out.tfevents.*"), recursive=True)
    assert glob.glob(str(tmp_path / "tensorboard" / "events.out.tfevents.*"))


def test_bad_configs_name_the_problem(twogoal_config, tmp_path):
    with pytest.raises(ValueError, match="variant='ppo'"):
        twogoal_config(variant="ppo").validate()
    with pytest.raises(ValueError, match="n_critics=0"):
        twogoal_config(n_critics=0).validate()
    with pytest.raises(ValueError, match="normalize_actions"):
        twogoal_config().environment(normalize_actions=True).validate()
    with pytest.raises(ValueError, match="offline_data_path"):
        twogoal_config(variant="sac", offline_data_path=str(tmp_path / "missing.hdf5")).validate()
    with pytest.raises(ValueError, match="nope.pt.*expected an existing file"):
        twogoal_config(base_policy_path=str(tmp_path / "nope.pt")).validate()
    config = twogoal_config()
    config.validate()
    assert len(config.base_policy_sha256) == 64 and config.env_config["base_policy"]["sha256"] == config.base_policy_sha256


def test_na_preloads_offline_demos_into_the_replay(ray_local, twogoal_config, twogoal_run):
    from dsrl_ray.envs import load_demos

    demo_steps = sum(len(ep) for ep in load_demos(twogoal_run / "demos.hdf5").episodes)
    algo = twogoal_config(runners=0, variant="na", offline_data_path=str(twogoal_run / "demos.hdf5"),
                          check_executed=True).build_algo()
    try:
        size = _on_learner(algo, lambda lrn: len(lrn.replay))
        assert size == demo_steps  # one chunk transition per demo step, earning no gradient steps
        assert _learner_counters(algo) == (0, 0)
        for _ in range(4):
            result = algo.train()
        inserted, updates = _learner_counters(algo)
        assert _on_learner(algo, lambda lrn: len(lrn.replay)) == demo_steps + inserted
        assert _on_learner(algo, lambda lrn: int(lrn.replay.storage()["pair_valid"].sum())) == inserted  # demos: none
        assert updates == inserted - 20 > 0
        assert math.isfinite(_module_stat(result, "qf_loss")) and math.isfinite(_module_stat(result, "qf_w_loss"))
        assert _module_stat(result, "executed_max_abs_err") < 1e-5  # offline rows (NaN noise) are skipped
        assert _module_stat(result, "pair_max_abs_err") < 1e-5  # and so are their (absent) pairs
    finally:
        algo.stop()
