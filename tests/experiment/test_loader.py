"""Experiment YAML loader: every shipped config loads; bad keys, types, profiles and tasks are refused clearly."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import torch
import yaml

from dsrl_ray.experiment import CONFIG_DIR
from dsrl_ray.envs import TASKS
from dsrl_ray.experiment import VARIANTS, ExperimentError, flag_overrides, load_experiment
from dsrl_ray.policies.checkpoint import FORMAT_TAG

CONFIGS = CONFIG_DIR
SHIPPED = sorted(CONFIGS.glob("*.yaml"))
PAPER_TASKS = ("lift", "can", "square", "transport", "hopper", "walker2d", "halfcheetah", "twogoal")

BASE = {
    "task": "twogoal",
    "variant": "na",
    "base_policy": "runs/twogoal/base_policy",
    "training": {"hidden_sizes": [128, 128], "utd": 1, "gamma": 0.99},
    "env_runners": {"num_env_runners": 2, "rollout_fragment_length": 25},
    "evaluation": {"interval": 5, "episodes": 40},
    "stop": {"env_steps": 1000},
    "profiles": {"cpu": {"training": {"hidden_sizes": [64, 64]}, "env_runners": {"num_env_runners": 1}}},
}


def write(tmp_path: Path, doc: dict | str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def with_changes(**sections: dict) -> dict:
    """``BASE`` with some sections' keys replaced (sections given as dicts) or top-level keys set."""
    doc = yaml.safe_load(yaml.safe_dump(BASE))
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    return doc


def test_one_config_per_task_and_variant_is_shipped():
    expected = {f"{task}_{variant}.yaml" for task in PAPER_TASKS for variant in VARIANTS}
    assert {p.name for p in SHIPPED} == expected


@pytest.mark.parametrize("profile", [None, "cpu"])
@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_config_loads(path, profile):
    experiment = load_experiment(path, profile=profile)
    task, variant = path.stem.split("_")
    assert (experiment.task, experiment.variant, experiment.profile) == (task, variant, profile)
    assert experiment.stop.env_steps >= 1
    assert experiment.base_policy is not None and Path(experiment.base_policy).is_absolute()
    if TASKS[task].kind == "gym" or task in ("square", "transport"):
        dppo = experiment.base_policy_dppo
        assert dppo is not None, "tasks without scripted demos use a DPPO checkpoint"
        assert (dppo.obs_dim, dppo.action_dim, dppo.horizon_steps) == (
            TASKS[task].obs_dim, TASKS[task].act_dim, TASKS[task].chunk_len)
    if profile == "cpu":
        assert max(experiment.training.hidden_sizes) <= 256
        assert not experiment.learners.num_gpus_per_learner


def test_paper_hyperparameters_in_robomimic_and_gym_configs():
    lift = load_experiment(CONFIGS / "lift_na.yaml")
    assert lift.training.hidden_sizes == [2048, 2048, 2048] and lift.training.layer_norm
    assert (lift.training.action_magnitude, lift.training.target_entropy, lift.training.n_critics) == (1.5, 0.0, 2)
    # The released run's ratios per inserted transition (4 envs; see test_paper_fidelity.py).
    assert (lift.training.utd, lift.training.init_rollout_steps, lift.training.q_w_utd) == (7.5, 6004, 2.5)
    can = load_experiment(CONFIGS / "can_na.yaml")
    assert (can.training.utd, can.training.init_rollout_steps, can.training.q_w_utd) == (5.0, 6004, 2.5)
    hopper = load_experiment(CONFIGS / "hopper_sac.yaml")
    assert hopper.training.hidden_sizes == [128, 128, 128]
    assert (hopper.training.utd, hopper.training.init_rollout_steps) == (2.5, 8004)
    assert load_experiment(CONFIGS / "hopper_na.yaml").training.q_w_utd == 1.25
    assert hopper.base_policy_dppo.to_kwargs()["activation_type"] == "ReLU"
    assert (hopper.base_policy_dppo.denoising_steps, hopper.base_policy_dppo.ddim_steps) == (20, 5)


def test_unknown_key_is_named_with_its_path_and_the_allowed_keys(tmp_path):
    path = write(tmp_path, with_changes(training={"utdd": 20}))
    with pytest.raises(ExperimentError) as err:
        load_experiment(path)
    message = str(err.value)
    assert "'training.utdd'" in message and str(path) in message
    assert "did you mean 'training.utd'" in message
    assert "'utd'" in message and "'hidden_sizes'" in message and "'actor_lr'" in message


def test_unknown_top_level_key_is_refused(tmp_path):
    path = write(tmp_path, with_changes(learning_rate=3e-4))
    with pytest.raises(ExperimentError, match=r"unknown key 'learning_rate'.*allowed keys: \[.*'training'"):
        load_experiment(path)


@pytest.mark.parametrize(
    "section, value, expected",
    [
        ({"training": {"utd": "fast"}}, "training.utd='fast'", "expected a number"),
        ({"training": {"n_critics": True}}, "training.n_critics=True", "expected an integer >= 1"),
        ({"training": {"n_critics": 2.5}}, "training.n_critics=2.5", "expected an integer >= 1"),
        ({"training": {"layer_norm": "yes"}}, "training.layer_norm='yes'", "expected true or false"),
        ({"training": {"hidden_sizes": [256, "wide"]}}, "training.hidden_sizes=[256, 'wide']",
         "expected a non-empty list of integers"),
        ({"training": {"backup": "max"}}, "training.backup='max'", "expected one of 'min', 'mean'"),
        ({"training": {"noise_mode": "per_step"}}, "training.noise_mode='per_step'", "expected one of 'full', 'shared'"),
        ({"training": {"target_entropy": "low"}}, "training.target_entropy='low'",
         "expected a number or one of 'auto'"),
        ({"stop": {"env_steps": 0}}, "stop.env_steps=0", "expected an integer >= 1"),
        ({"env_runners": {"num_env_runners": -1}}, "env_runners.num_env_runners=-1", "expected an integer >= 0"),
        ({"evaluation": 5}, "evaluation=5", "expected a mapping with keys ['interval', 'episodes'"),
        ({"seed": "zero"}, "seed='zero'", "expected an integer"),
    ],
)
def test_ill_typed_value_names_key_value_file_and_expected_type(tmp_path, section, value, expected):
    path = write(tmp_path, with_changes(**section))
    with pytest.raises(ExperimentError) as err:
        load_experiment(path)
    assert str(err.value).startswith(f"{value} in {path}: {expected}")


def test_missing_required_key_is_named(tmp_path):
    doc = with_changes()
    del doc["stop"]["env_steps"]
    with pytest.raises(ExperimentError, match=r"missing key 'stop.env_steps' .*expected an integer >= 1"):
        load_experiment(write(tmp_path, doc))


MINIMAL = """\
task: twogoal
variant: na
seed: 3
training:
  actor_lr: 3e-4
  critic_lr: 1E-3
  utd: 2
  gamma: 1
stop: {env_steps: 100}
"""


def test_ints_are_accepted_as_numbers_and_exponents_without_a_dot_are_floats(tmp_path):
    experiment = load_experiment(write(tmp_path, MINIMAL))
    assert experiment.training.actor_lr == pytest.approx(3e-4) and isinstance(experiment.training.actor_lr, float)
    assert experiment.training.critic_lr == pytest.approx(1e-3)
    assert experiment.training.utd == 2.0 and isinstance(experiment.training.gamma, float)
    assert experiment.seed == 3 and experiment.base_policy is None


def test_duplicate_keys_are_refused(tmp_path):
    text = MINIMAL.replace("  gamma: 1\n", "  gamma: 1\n  utd: 5\n")
    with pytest.raises(ExperimentError, match=r"(?s)not valid YAML.*duplicate key 'utd'"):
        load_experiment(write(tmp_path, text))


def test_profile_is_deep_merged_over_the_base(tmp_path):
    path = write(tmp_path, BASE)
    base = load_experiment(path)
    cpu = load_experiment(path, profile="cpu")
    assert base.training.hidden_sizes == [128, 128] and cpu.training.hidden_sizes == [64, 64]
    assert cpu.training.utd == base.training.utd == 1.0  # keys the profile leaves out are kept
    assert (base.env_runners.num_env_runners, cpu.env_runners.num_env_runners) == (2, 1)
    assert cpu.env_runners.rollout_fragment_length == 25  # sibling key of a merged section survives
    assert cpu.profile == "cpu" and "profile cpu" in cpu.source


def test_profile_can_replace_a_section_with_null(tmp_path):
    doc = with_changes(base_policy_dppo={"obs_dim": 4, "action_dim": 2, "horizon_steps": 4, "denoising_steps": 20,
                                         "ddim_steps": 5, "mlp_dims": [64], "time_dim": 16})
    doc["profiles"]["ours"] = {"base_policy_dppo": None}
    path = write(tmp_path, doc)
    assert load_experiment(path).base_policy_dppo is not None
    assert load_experiment(path, profile="ours").base_policy_dppo is None


def test_unknown_profile_lists_the_available_ones(tmp_path):
    with pytest.raises(ExperimentError, match=r"unknown profile 'gpu'.*available profiles: \['cpu'\]"):
        load_experiment(write(tmp_path, BASE), profile="gpu")


def test_errors_inside_any_profile_are_reported_even_when_not_selected(tmp_path):
    doc = with_changes()
    doc["profiles"]["cpu"]["training"]["utdd"] = 1
    with pytest.raises(ExperimentError, match=r"unknown key 'profiles.cpu.training.utdd'"):
        load_experiment(write(tmp_path, doc))
    doc = with_changes()
    doc["profiles"]["cpu"]["stop"] = {"env_steps": "soon"}
    with pytest.raises(ExperimentError, match=r"profiles.cpu.stop.env_steps='soon' in .*: expected an integer >= 1"):
        load_experiment(write(tmp_path, doc))


def test_unknown_task_and_variant_are_refused(tmp_path):
    with pytest.raises(ExperimentError, match=r"task='pong' in .*: expected one of \[.*'lift'.*'twogoal'"):
        load_experiment(write(tmp_path, with_changes(task="pong")))
    with pytest.raises(ExperimentError, match=r"variant='ppo' in .*: expected one of 'na', 'sac'"):
        load_experiment(write(tmp_path, with_changes(variant="ppo")))


def test_dppo_dimensions_must_fit_the_task(tmp_path):
    dppo = {"obs_dim": 11, "action_dim": 3, "horizon_steps": 4, "denoising_steps": 20, "ddim_steps": 5,
            "mlp_dims": [512, 512, 512], "time_dim": 16}
    with pytest.raises(ExperimentError, match=r"base_policy_dppo.obs_dim=11 in .*: expected 17 \(task 'walker2d'"):
        load_experiment(write(tmp_path, with_changes(task="walker2d", base_policy_dppo=dppo)))
    del dppo["time_dim"]
    with pytest.raises(ExperimentError, match=r"missing key 'base_policy_dppo.time_dim'"):
        load_experiment(write(tmp_path, with_changes(task="hopper", base_policy_dppo=dppo)))


def test_relative_paths_are_resolved_against_the_working_directory(tmp_path, monkeypatch):
    doc = with_changes(training={"offline_data_path": "data/demos.hdf5"})
    path = write(tmp_path, doc)
    monkeypatch.chdir(tmp_path)
    experiment = load_experiment(path.name)
    assert experiment.base_policy == str(tmp_path / "runs/twogoal/base_policy")
    assert experiment.training.offline_data_path == str(tmp_path / "data/demos.hdf5")


def test_to_yaml_round_trips(tmp_path):
    experiment = load_experiment(CONFIGS / "square_na.yaml", profile="cpu")
    again = load_experiment(write(tmp_path, experiment.to_yaml()))
    assert again == dataclasses.replace(experiment, profile=None)


def test_overrides_are_merged_and_validated():
    experiment = load_experiment(CONFIGS / "twogoal_na.yaml")
    overrides = {"stop": {"env_steps": 300}, "training": {"mode": "async"}, "seed": 7}
    changed = experiment.override(overrides, "command line")
    assert (changed.stop.env_steps, changed.training.mode, changed.seed) == (300, "async", 7)
    assert changed.training.hidden_sizes == experiment.training.hidden_sizes
    with pytest.raises(ExperimentError, match=re.escape("stop.env_steps=-5 in ") + r".*\+ command line"):
        experiment.override({"stop": {"env_steps": -5}}, "command line")
    with pytest.raises(ExperimentError, match=r"unknown key 'training.modee'"):
        experiment.override({"training": {"modee": "async"}})


def test_missing_base_policy_is_reported_with_a_remedy(tmp_path):
    experiment = load_experiment(write(tmp_path, with_changes(base_policy=str(tmp_path / "nowhere"))))
    with pytest.raises(FileNotFoundError, match=r"nowhere.*pass --base-policy"):
        experiment.resolve_base_policy()
    unset = load_experiment(write(tmp_path, with_changes(base_policy=None), "unset.yaml"))
    with pytest.raises(ExperimentError, match=r"base_policy=None in .*--base-policy"):
        unset.resolve_base_policy()


def test_a_pretrain_base_policy_flag_replaces_the_yamls_dppo_checkpoint(tmp_path):
    # square_na.yaml steers the released DPPO checkpoint; the pipeline (and --base-policy) may pass a
    # pretrain directory or checkpoint instead, which must not be loaded with the DPPO section's
    # normalisation file.
    experiment = load_experiment(CONFIGS / "square_na.yaml", profile="cpu")
    assert experiment.base_policy_dppo is not None
    ours = tmp_path / "base_policy"
    ours.mkdir()
    tagged = tmp_path / "pretrain_step_10.pt"
    torch.save({"format": FORMAT_TAG}, tagged)
    for path in (ours, tagged):
        changed = experiment.override(flag_overrides(base_policy=path, seed=3), "command line")
        assert (changed.base_policy, changed.base_policy_dppo, changed.seed) == (str(path), None, 3)
    assert flag_overrides(seed=3) == {"seed": 3}


def test_a_dppo_base_policy_flag_keeps_the_yamls_dppo_section(tmp_path):
    experiment = load_experiment(CONFIGS / "square_na.yaml", profile="cpu")
    other = tmp_path / "state_2000.pt"
    torch.save({"ema": {}, "model": {}}, other)  # the layout of a DPPO state file, not ours
    changed = experiment.override(flag_overrides(base_policy=other), "command line")
    assert changed.base_policy == str(other)
    assert changed.base_policy_dppo == experiment.base_policy_dppo
