"""The pipeline reuses a stored base evaluation only when it evaluated the same policy on the same episodes."""

from __future__ import annotations

import json

from dsrl_ray.app.pipeline import reusable_evaluation
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
