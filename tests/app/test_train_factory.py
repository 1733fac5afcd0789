"""`dsrl-ray train` with a user's base-policy factory ('package.module:function' in the YAML).

Runs the real command in a subprocess: the user's module is importable only through the
PYTHONPATH the command starts with, and the Ray workers it starts must import it too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

from dsrl_ray.experiment import CONFIG_DIR

USER_MODULE = '''
import torch
from dsrl_ray.policies import Normalizer


class MyPolicy(torch.nn.Module):
    def __init__(self, obs_dim, act_dim, chunk_len):
        super().__init__()
        self.obs_dim, self.act_dim, self.chunk_len = obs_dim, act_dim, chunk_len
        self.noise_shape = (chunk_len, act_dim)
        self.normalizer = Normalizer.identity(obs_dim, act_dim)
        self.net = torch.nn.Linear(obs_dim, chunk_len * act_dim)

    def sample(self, obs, noise):
        return torch.tanh(self.net(obs).view(-1, self.chunk_len, self.act_dim) + 0.3 * noise)


def make_policy(obs_dim=4, act_dim=2, chunk_len=4):
    torch.manual_seed(0)
    return MyPolicy(obs_dim, act_dim, chunk_len)


def make_without_sample(**kwargs):
    policy = make_policy(**kwargs)
    policy.sample = None
    return policy
'''


def _write_config(tmp_path: Path, factory: str) -> Path:
    doc = yaml.safe_load((CONFIG_DIR / "twogoal_na.yaml").read_text())
    del doc["base_policy"], doc["profiles"]
    doc.update(base_policy_factory=factory, base_policy_factory_kwargs={"obs_dim": 4}, evaluation={})
    doc["training"].update(hidden_sizes=[32, 32], init_rollout_steps=20, train_batch_size_per_learner=32)
    doc["env_runners"].update(num_env_runners=1, num_envs_per_env_runner=2, rollout_fragment_length=10)
    path = tmp_path / "factory.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _train(tmp_path: Path, factory: str) -> subprocess.CompletedProcess:
    (tmp_path / "user").mkdir(exist_ok=True)
    (tmp_path / "user" / "my_policies.py").write_text(textwrap.dedent(USER_MODULE))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "user"), os.environ.get("PYTHONPATH", "")])}
    argv = [sys.executable, "-m", "dsrl_ray", "train", "--config", str(_write_config(tmp_path, factory)),
            "--run-dir", str(tmp_path / "run"), "--env-steps", "1", "--no-progress"]
    return subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)


def test_user_factory_trains_one_iteration(tmp_path):
    result = _train(tmp_path, "my_policies:make_policy")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "after 1 iterations" in result.stdout
    effective = yaml.safe_load((tmp_path / "run" / "experiment.yaml").read_text())
    assert effective["base_policy_factory"] == "my_policies:make_policy"
    assert list((tmp_path / "run" / "checkpoints").glob("iter_*"))


def test_factory_without_sample_is_refused_by_name(tmp_path):
    result = _train(tmp_path, "my_policies:make_without_sample")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "'sample'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_factory_with_wrong_keywords_is_refused_by_name(tmp_path):
    result = _train(tmp_path, "my_policies:MyPolicy")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "cannot take base_policy_factory_kwargs" in result.stderr and "Traceback" not in result.stderr
