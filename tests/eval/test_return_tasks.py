"""Tasks without success (gym locomotion) are reported by return: evaluation lines, progress bars."""

from __future__ import annotations

from dsrl_ray.app.train import _postfix
from dsrl_ray.eval.rollout import EpisodeResult, progress_postfix, summarize

EPISODES = [EpisodeResult(1000, 600.0, 200, False), EpisodeResult(1001, 900.0, 300, False)]


def test_summary_line_leaves_out_success_only_when_asked():
    result = summarize(EPISODES)
    assert result.summary().startswith("success 0.0% (95% CI 0.0%-")
    line = result.summary(with_success=False)
    assert "success" not in line
    assert line.startswith("return 750.00 +/- ") and "(95% CI of the mean, 2 episodes)" in line
    assert line.endswith("mean length 250.0 steps")


def test_progress_shows_successes_or_the_mean_return():
    assert progress_postfix("hopper", EPISODES) == {"mean_return": "750.0"}
    assert progress_postfix("lift", [EpisodeResult(1000, -40.0, 40, True), *EPISODES]) == {"successes": "1"}
    row = {"success_rate": 0.0, "episode_return_mean": 812.3}
    assert _postfix(row, 950.0, with_success=False) == "return=812 eval=950"
    assert _postfix(row, None, with_success=True) == "success=0 return=812 eval=-"
