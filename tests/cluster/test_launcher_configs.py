"""The cluster launcher YAMLs validate against Ray's schema and say what docs/cluster.md says; the job script
(`dsrl-ray train --address auto`) and the train command's cluster flags."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
YAMLS = ("aws", "gcp", "onprem")


def _load(name: str) -> dict:
    with open(ROOT / "cluster" / f"{name}.yaml", encoding="utf-8") as f:
        return yaml.safe_load(f)


def _train_job():
    spec = importlib.util.spec_from_file_location("train_job", ROOT / "cluster" / "train_job.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", YAMLS)
def test_launcher_yaml_is_valid_and_installs_the_project(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = prepare_config(_load(name))
    validate_config(config)
    assert config["file_mounts"]["~/dsrl-ray"] == "."
    assert "~/.ray/auth_token" in config["file_mounts"]
    assert ".venv" in config["rsync_exclude"]
    assert config["setup_commands"] == ["bash ~/dsrl-ray/cluster/setup_node.sh"]
    assert (ROOT / "cluster" / "setup_node.sh").is_file()


@pytest.mark.parametrize("name", ["aws", "gcp"])
def test_cloud_clusters_put_the_learner_on_a_gpu_head_and_runners_on_cpu_workers(name):
    config = _load(name)
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"]["CPU"] == 0 and head["resources"]["GPU"] >= 1
    workers = [t for n, t in config["available_node_types"].items() if n != config["head_node_type"]]
    assert workers and all(t["resources"]["CPU"] >= 1 and "GPU" not in t["resources"] for t in workers)


def test_onprem_yaml_targets_the_local_ssh_server():
    config = _load("onprem")
    assert config["provider"] == {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []}
    assert config["auth"]["ssh_user"] and config["auth"]["ssh_private_key"]


def test_train_job_is_dsrl_ray_train_on_the_cluster(monkeypatch):
    from dsrl_ray.app import cli

    calls = []
    monkeypatch.setattr(cli, "main", calls.append)
    job = _train_job()
    job.main(["--config", "lift_na", "--progress"])
    assert calls == [["train", "--address", "auto", "--workdir", str(ROOT), "--no-progress", "--config", "lift_na",
                      "--progress"]]
    args = cli.build_parser().parse_args(calls[0])
    assert (args.func, args.address, args.workdir, args.progress) == (cli.cmd_train, "auto", ROOT, True)
    job.main(["--config", "lift_na", "--address", "10.0.0.1:6379", "--workdir", "/data"])
    args = cli.build_parser().parse_args(calls[1])
    assert (args.address, str(args.workdir), args.progress) == ("10.0.0.1:6379", "/data", False)
    assert job.project_root() == ROOT


def test_train_sizing_flags_become_experiment_overrides_and_the_plan(tmp_path):
    from dsrl_ray.app import cli
    from dsrl_ray.experiment import CONFIG_DIR, load_experiment

    policy = tmp_path / "policy.pt"  # only its existence is checked here
    policy.write_bytes(b"")

    args = cli.build_parser().parse_args(
        ["train", "--config", "twogoal_na", "--profile", "cpu", "--env-steps", "1", "--num-env-runners", "4",
         "--num-envs-per-env-runner", "2", "--num-cpus-per-env-runner", "2", "--num-gpus-per-env-runner", "0.25",
         "--num-learners", "1", "--num-gpus-per-learner", "1", "--base-policy", str(policy)]
    )
    overrides = cli.train_overrides(args)
    assert overrides["env_runners"] == {"num_env_runners": 4, "num_envs_per_env_runner": 2,
                                        "num_cpus_per_env_runner": 2.0, "num_gpus_per_env_runner": 0.25}
    assert overrides["learners"] == {"num_learners": 1, "num_gpus_per_learner": 1.0}
    experiment = load_experiment(CONFIG_DIR / "twogoal_na.yaml", profile="cpu").override(overrides)
    config = experiment.to_dsrl_config()
    assert (config.num_env_runners, config.num_gpus_per_env_runner) == (4, 0.25)
    assert (config.num_learners, config.num_gpus_per_learner) == (1, 1.0)
    assert experiment.stop.env_steps == 1
    plan = cli.describe_plan(config, {"CPU": 16.0, "GPU": 1.0}, nodes=2)
    assert "2 alive nodes, 16 CPUs, 1 GPUs" in plan
    assert "4 env runners x (2 CPU + 0.25 GPU), 2 envs each = 8 CPUs, 1 GPUs" in plan
    assert "learner in 1 learner actor(s) with 1 GPU each" in plan


def test_a_named_address_presents_the_ray_token(tmp_path, monkeypatch):
    from dsrl_ray.app import cli

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RAY_AUTH_MODE", "")  # recorded, so whatever the CLI sets is undone after the test
    monkeypatch.delenv("RAY_AUTH_MODE")
    cli._present_ray_token("10.0.0.1:6379")
    assert "RAY_AUTH_MODE" not in os.environ, "no token file, nothing to present"
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("x" * 64)
    for address in (None, "auto"):  # local Ray, or Ray's own token handling for auto
        cli._present_ray_token(address)
        assert "RAY_AUTH_MODE" not in os.environ
    cli._present_ray_token("10.0.0.1:6379")
    assert os.environ["RAY_AUTH_MODE"] == "token"
