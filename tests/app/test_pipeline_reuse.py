"""The pipeline reuses a stored evaluation only when it evaluated the same policies on the same episodes, and keeps
each stage's time across reruns."""

from __future__ import annotations

import json

import pytest

import dsrl_ray.app.pipeline as pipeline_module
from dsrl_ray.app.pipeline import StageTimes, reusable_evaluation
from dsrl_ray.rllib.noise_policy import MODULE_SUBDIR, noise_policy_digest
from dsrl_ray.eval.rollout import EpisodeResult, EvalResult, wilson_interval

EVALUATED = {"base_policy_sha256": "ab" * 32, "seed": 1000, "episodes": 3}


def _result() -> EvalResult:
    episodes = [EpisodeResult(1000, -40.0, 40, True), EpisodeResult(1001, -300.0, 300, False),
                EpisodeResult(1002, -52.0, 52, True)]
    return EvalResult(success_rate=2 / 3, success_ci95=wilson_interval(2, 3), mean_return=-130.67, std_return=120.2,
                      episode_lengths=[40, 300, 52], episodes=episodes)


def test_a_matching_record_gives_back_the_stored_result(tmp_path):
    path = tmp_path / "base_eval.json"
    path.write_text(json.dumps({**_result().to_dict(), "evaluated": EVALUATED}))
    assert reusable_evaluation(path, EVALUATED) == _result()


def test_another_policy_other_episodes_or_no_record_evaluate_again(tmp_path):
    path = tmp_path / "base_eval.json"
    assert reusable_evaluation(path, EVALUATED) is None  # no file yet
    path.write_text(json.dumps(_result().to_dict()))  # written before the record existed
    assert reusable_evaluation(path, EVALUATED) is None
    path.write_text(json.dumps({**_result().to_dict(), "evaluated": EVALUATED}))
    for changed in ({"base_policy_sha256": "cd" * 32}, {"seed": 7}, {"episodes": 100}):
        assert reusable_evaluation(path, {**EVALUATED, **changed}) is None


def test_stage_times_replace_add_on_resume_and_survive_a_rerun(tmp_path, monkeypatch):
    clock = iter([10.0, 12.5, 20.0, 23.0, 30.0, 31.0, 40.0])
    monkeypatch.setattr(pipeline_module.time, "perf_counter", lambda: next(clock))
    path = tmp_path / "timings.json"
    times = StageTimes(path)
    with times.measure("demos"):
        pass
    with times.measure("dsrl"):
        pass
    assert times.seconds == {"demos": 2.5, "dsrl": 3.0}
    again = StageTimes(path)  # a rerun that reuses the demos and resumes training
    with again.measure("dsrl", resumed=True):
        pass
    assert again.seconds == {"demos": 2.5, "dsrl": 4.0} and again.total() == 6.5
    assert json.loads(path.read_text()) == again.seconds
    with again.measure("dsrl", resumed=True) as run:  # a resume with nothing left to do
        run["idle"] = True
    assert again.seconds["dsrl"] == 4.0


def test_noise_policy_digest_follows_the_module_files(tmp_path):
    module_dir = tmp_path / "ckpt" / MODULE_SUBDIR
    module_dir.mkdir(parents=True)
    (module_dir / "module_state.pt").write_bytes(b"weights")
    (module_dir / "metadata.json").write_text("{}")
    first = noise_policy_digest(tmp_path / "ckpt")
    assert noise_policy_digest(tmp_path / "ckpt") == first
    (module_dir / "module_state.pt").write_bytes(b"other weights")
    assert noise_policy_digest(tmp_path / "ckpt") != first
    with pytest.raises(FileNotFoundError, match="is not a DSRL checkpoint directory"):
        noise_policy_digest(tmp_path / "nothing")
