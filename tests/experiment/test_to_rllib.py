"""Experiment -> DSRLConfig: every shipped config builds a config that validates (imports RLlib, starts no Ray)."""

from __future__ import annotations

import dataclasses
import inspect
import pytest

from dsrl_ray.experiment import CONFIG_DIR, load_experiment
from dsrl_ray.core.settings import RLLIB, SETTINGS, YAML, default
from dsrl_ray.experiment.schema import DppoBasePolicy, Training

CONFIGS = CONFIG_DIR


def test_schema_keys_are_keywords_of_the_functions_they_feed():
    from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
    from ray.rllib.algorithms.sac.sac import SACConfig

    from dsrl_ray.rllib.config import DSRLConfig
    from dsrl_ray.policies import load_dppo

    rllib_keywords = {
        name
        for cls in (SACConfig, AlgorithmConfig)
        for name, p in inspect.signature(cls.training).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    yaml_keys = {f.name for f in dataclasses.fields(Training)}
    assert yaml_keys == {name for name, f in SETTINGS.items() if f.metadata[YAML]}
    assert {name for name, f in SETTINGS.items() if f.metadata[RLLIB]} <= rllib_keywords
    config = DSRLConfig().training(**{name: default(name) for name in yaml_keys})
    assert all(getattr(config, name) == default(name) for name in yaml_keys)
    with pytest.raises(TypeError, match="utdd"):
        DSRLConfig().training(utdd=1)
    dppo_params = set(inspect.signature(load_dppo).parameters) - {"checkpoint_path", "map_location"}
    assert {f.name for f in dataclasses.fields(DppoBasePolicy)} == dppo_params


@pytest.mark.parametrize("profile", [None, "cpu"])
@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_config_becomes_a_valid_dsrl_config(path, profile, tmp_path):
    policy_file = tmp_path / "pretrain_step_00000001.pt"
    policy_file.write_bytes(b"stand-in: validate() only hashes the file")
    experiment = load_experiment(path, profile=profile).override({"base_policy": str(policy_file)}, "test")
    config = experiment.to_dsrl_config(tensorboard_dir=tmp_path / "tb")
    config.validate()
    assert config.env == f"dsrl/{experiment.task}" and config.variant == experiment.variant
    assert config.base_policy_path == str(policy_file) and config.base_policy_sha256 is not None
    assert config.tensorboard_dir == str(tmp_path / "tb") and config.seed == experiment.seed
    for key, value in experiment.training.to_kwargs().items():
        assert getattr(config, key) == value, key
    for key, value in experiment.env_runners.to_kwargs().items():
        assert getattr(config, key) == value, key
    dppo = experiment.base_policy_dppo
    assert config.base_policy_dppo_kwargs == (dppo.to_kwargs() if dppo is not None else None)
    evaluation = experiment.evaluation
    assert config.evaluation_interval == evaluation.interval
    if evaluation.interval is None:
        return
    assert (config.evaluation_duration, config.evaluation_duration_unit) == (evaluation.episodes, "episodes")
    assert config.evaluation_num_env_runners == evaluation.num_env_runners
    if evaluation.explore is not None:
        assert config.evaluation_config["explore"] is evaluation.explore


def test_noise_mode_reaches_the_module_and_is_recorded_in_the_run_config(tmp_path):
    policy_file = tmp_path / "pretrain_step_00000001.pt"
    policy_file.write_bytes(b"stand-in: validate() only hashes the file")
    experiment = load_experiment(CONFIGS / "twogoal_sac.yaml").override(
        {"base_policy": str(policy_file), "training": {"noise_mode": "shared"}}, "test")
    assert "noise_mode: shared" in experiment.to_yaml()  # what `dsrl-ray train` writes to RUN_DIR/experiment.yaml
    config = experiment.to_dsrl_config(tensorboard_dir=tmp_path / "tb")
    config.validate()
    assert config.noise_mode == "shared" and config.model_config["dsrl"]["noise_mode"] == "shared"
    assert load_experiment(CONFIGS / "twogoal_sac.yaml").override(
        {"base_policy": str(policy_file)}, "test").to_dsrl_config().noise_mode == "full"
