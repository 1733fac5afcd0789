"""Tasks without success (gym locomotion) are reported by return: evaluation lines, progress bars, the
learning curve and the pipeline's summary."""

from __future__ import annotations

from PIL import Image

from dsrl_ray.app.pipeline import format_summary
from dsrl_ray.app.train import _postfix
from dsrl_ray.eval.plots import plot_learning_curve
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


def test_learning_curve_of_a_return_task_has_only_the_return_panel(tmp_path):
    csv_path = tmp_path / "progress.csv"
    csv_path.write_text("iteration,env_steps,success_rate,episode_return_mean\n1,100,0,600\n2,200,,\n3,300,0,900\n")
    both = Image.open(plot_learning_curve(csv_path, tmp_path / "both.png", base_return=650.0))
    alone = Image.open(plot_learning_curve(csv_path, tmp_path / "return.png", base_return=650.0, with_success=False))
    assert alone.size[0] == both.size[0] and alone.size[1] < 0.7 * both.size[1]


def test_pipeline_summary_of_a_return_task_prints_returns_with_intervals():
    row = {"success_rate": 0.0, "success_ci95": [0.0, 0.037], "mean_return": 671.18, "return_ci95": [616.1, 726.26]}
    summary = {"task": "hopper", "variant": "na", "metric": "return", "episodes": 100, "base": row,
               "steered": {**row, "mean_return": 1860.96, "return_ci95": [1742.52, 1979.4]},
               "dsrl_env_steps": 12007, "wall_time_s": 1368.0,
               "artifacts": {"learning_curve": "curve.png", "video": "episodes.gif"}}
    text = format_summary(summary)
    assert "success" not in text
    assert "base     return    671.18  (95% CI 616.10-726.26)" in text
    assert "steered  return   1860.96  (95% CI 1742.52-1979.40)" in text
