"""The paper configs resolve to the released DSRL runs (docs/fidelity.md), in our units; the
``cpu`` profiles keep our own episode ends."""

from __future__ import annotations

import pytest

from dsrl_ray.core.settings import annotation
from dsrl_ray.core.typecheck import literal_values
from dsrl_ray.envs import TASKS
from dsrl_ray.envs.tasks import GYM_VERSIONS
from dsrl_ray.experiment import CONFIG_DIR, load_experiment

N_ENVS = 4
"""Training envs of the released run: one vector step inserts 4 transitions."""

RELEASED = {
    # task: (utd per vector step, train_freq in vector steps, init_rollout_steps in vector steps,
    #        hidden width, gamma, action_magnitude, evaluation period in vector steps)
    "lift": (30, 1, 1501, 2048, 0.99, 1.5, 3000),
    "can": (20, 1, 1501, 2048, 0.99, 1.5, 3000),
    "square": (20, 1, 2001, 2048, 0.999, 1.5, 4000),
    "transport": (20, 1, 20001, 128, 0.99, 1.0, 8000),
    "hopper": (20, 2, 2001, 128, 0.99, 1.5, 4000),
    "walker2d": (20, 2, 2001, 2048, 0.99, 2.5, 4000),
    "halfcheetah": (20, 2, 2001, 1024, 0.99, 1.5, 4000),
}
NOISE_CRITIC_GRAD_STEPS = 10
"""Released DSRL-NA: Q_W steps after each block of utd Q_A/actor steps."""

PER_TRANSITION = {  # (utd, init_rollout_steps, q_w_utd) as the issue states them
    "lift": (7.5, 6004, 2.5),
    "can": (5.0, 6004, 2.5),
    "square": (5.0, 8004, 2.5),
    "transport": (5.0, 80004, 2.5),
    "hopper": (2.5, 8004, 1.25),
    "walker2d": (2.5, 8004, 1.25),
    "halfcheetah": (2.5, 8004, 1.25),
}
PAPER = [(task, variant) for task in RELEASED for variant in ("na", "sac")]


def _id(case: tuple[str, str]) -> str:
    return "_".join(case)


@pytest.mark.parametrize("case", PAPER, ids=_id)
def test_paper_config_has_the_released_ratios_and_warm_up(case):
    task, variant = case
    t = load_experiment(f"{task}_{variant}").training  # by name, as `dsrl-ray train --config` does
    utd, init, q_w = PER_TRANSITION[task]
    utd_vec, freq, init_vec, *_ = RELEASED[task]
    assert t.utd == utd == utd_vec / (N_ENVS * freq)
    assert t.init_rollout_steps == init == init_vec * N_ENVS
    if variant == "na":
        assert t.q_w_utd == q_w == NOISE_CRITIC_GRAD_STEPS / (N_ENVS * freq)
    else:
        assert t.q_w_utd is None  # Q_W exists in NA only


@pytest.mark.parametrize("case", PAPER, ids=_id)
def test_paper_config_has_the_released_networks_and_optimiser(case):
    task, variant = case
    t = load_experiment(f"{task}_{variant}").training
    _, _, _, width, gamma, magnitude, _ = RELEASED[task]
    assert t.hidden_sizes == [width] * 3 and t.layer_norm is True and t.activation == "tanh"
    assert (t.n_critics, t.backup, t.target_entropy, t.auto_entropy, t.initial_alpha) == (2, "min", 0.0, True, 1.0)
    assert (t.actor_lr, t.critic_lr, t.alpha_lr) == (3e-4, 3e-4, 3e-4)
    assert (t.train_batch_size_per_learner, t.gamma, t.tau) == (256, gamma, 0.005)
    assert t.action_magnitude == magnitude and t.log_std_min == -20.0


@pytest.mark.parametrize("case", PAPER, ids=_id)
def test_paper_config_has_the_released_episode_ends_and_cadence(case):
    task, variant = case
    experiment = load_experiment(f"{task}_{variant}")
    t, runners = experiment.training, experiment.env_runners
    _, freq, _, _, _, _, eval_vec = RELEASED[task]
    assert t.horizon_is_terminal is True
    if TASKS[task].kind == "robomimic":
        assert t.terminate_on_success is False and t.gym_version is None
    else:
        assert t.terminate_on_success is None and t.gym_version == "v4"
    # One sync iteration inserts one released training period: train_freq vector steps of 4 envs.
    per_iteration = runners.num_env_runners * runners.num_envs_per_env_runner * runners.rollout_fragment_length
    assert per_iteration == N_ENVS * freq
    assert experiment.evaluation.interval * freq == eval_vec
    assert (experiment.evaluation.episodes, experiment.evaluation.explore) == (200, True)
    assert t.mode in (None, "sync") and t.offline_data_path is None  # sync (the default); no offline data


@pytest.mark.parametrize("case", PAPER, ids=_id)
def test_cpu_profile_keeps_our_episode_ends(case):
    task, variant = case
    experiment = load_experiment(f"{task}_{variant}", profile="cpu")
    t = experiment.training
    assert t.horizon_is_terminal is False
    assert t.terminate_on_success is (True if TASKS[task].kind == "robomimic" else None)
    assert experiment.env_runners.rollout_fragment_length == 10


@pytest.mark.parametrize("name, warm_up, utd, alpha, on_success", [
    ("lift_na", (500, None), 1, 0.1, True), ("can_na", (2000, 250), 2, 0.1, True),
    ("square_na", (2000, 250), 2, 0.1, True), ("hopper_na", (2000, 250), 2, 1.0, None)])
def test_pipeline_profiles_resolve_to_what_they_were_measured_with(name, warm_up, utd, alpha, on_success):
    t = load_experiment(name, profile="cpu").training
    assert (t.hidden_sizes, t.activation, t.utd) == ([256, 256], "relu", utd)
    assert (t.init_rollout_steps, t.learning_starts) == warm_up
    assert (t.train_batch_size_per_learner, t.initial_alpha, t.mode) == (128, alpha, "async")
    assert (t.log_std_min, t.q_w_utd, t.terminate_on_success, t.horizon_is_terminal) == (-5.0, None, on_success, False)


@pytest.mark.parametrize("variant", ["na", "sac"])
def test_twogoal_configs_keep_the_task_defaults(variant):
    for profile in (None, "cpu"):
        t = load_experiment(f"twogoal_{variant}", profile=profile).training
        assert (t.terminate_on_success, t.horizon_is_terminal, t.log_std_min, t.activation) == (None,) * 4


def test_gym_version_setting_and_task_versions_agree():
    assert literal_values(annotation("gym_version")) == GYM_VERSIONS


def test_task_options_reach_the_env_config(tmp_path):
    policy_file = tmp_path / "pretrain_step_00000001.pt"
    policy_file.write_bytes(b"stand-in: validate() only hashes the file")
    for name, expected in (
        ("lift_na", {"terminate_on_success": False, "horizon_is_terminal": True}),
        ("hopper_sac", {"horizon_is_terminal": True, "gym_version": "v4"}),
    ):
        experiment = load_experiment(name).override({"base_policy": str(policy_file)}, "test")
        config = experiment.to_dsrl_config()
        config.validate()
        assert {k: config.env_config[k] for k in expected} == expected
        assert "base_policy" in config.env_config
        assert config.model_config["dsrl"]["log_std_min"] == -20.0  # the module builds pi_w's clamp from it
    cpu = load_experiment("lift_na", profile="cpu").override({"base_policy": str(policy_file)}, "test")
    config = cpu.to_dsrl_config()
    config.validate()
    assert (config.env_config["terminate_on_success"], config.env_config["horizon_is_terminal"]) == (True, False)


def test_task_option_that_does_not_fit_the_task_is_refused_by_validate(tmp_path):
    policy_file = tmp_path / "pretrain_step_00000001.pt"
    policy_file.write_bytes(b"stand-in")
    for name, overrides, message in (
        ("hopper_na", {"terminate_on_success": True}, "task 'hopper' has no notion of success"),
        ("lift_na", {"gym_version": "v5"}, "task 'lift' is a 'robomimic' task"),
    ):
        experiment = load_experiment(name).override({"base_policy": str(policy_file), "training": overrides}, "test")
        config = experiment.to_dsrl_config()
        with pytest.raises(ValueError, match=message):
            config.validate()


def test_every_shipped_paper_config_is_listed_here():
    shipped = {p.stem for p in CONFIG_DIR.glob("*.yaml") if not p.stem.startswith("twogoal")}
    assert shipped == {_id(case) for case in PAPER}
