"""The all-task results figure and table are drawn from the per-task pipeline summaries."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from dsrl_ray.eval.summary import load_summaries, plot_summaries, summary_table


def _summary(task: str, base: float, steered: float, metric: str = "success") -> dict:
    row = lambda rate, ret: {"success_rate": rate, "success_ci95": [max(0, rate - 0.1), min(1, rate + 0.1)],  # noqa: E731
                             "mean_return": ret, "return_ci95": [ret - 5.0, ret + 5.0]}
    return {"task": task, "variant": "na", "policy_type": "diffusion", "metric": metric, "episodes": 100,
            "base": row(base, -200.0), "steered": row(steered, -60.0), "dsrl_env_steps": 5010,
            "wall_time_s": 960.0, "machine": "2 cores x86_64, CPU only"}


@pytest.fixture
def run_dirs(tmp_path):
    dirs = []
    for task, base, steered, metric in [("lift", 0.68, 1.0, "success"), ("can", 0.4, 0.2, "success"),
                                        ("hopper", 0.0, 0.0, "return")]:
        (tmp_path / task).mkdir()
        (tmp_path / task / "summary.json").write_text(json.dumps(_summary(task, base, steered, metric)))
        dirs.append(tmp_path / task)
    return dirs


def test_table_has_one_row_per_task_with_failures_kept(run_dirs):
    table = summary_table(load_summaries(run_dirs)).splitlines()
    assert len(table) == 2 + 3
    lift, can, hopper = table[2:]
    assert "68.0% (58.0%–78.0%)" in lift and "100.0% (90.0%–100.0%)" in lift and "16.0 min" in lift
    assert "40.0%" in can and "20.0%" in can  # steering made Can worse: the row stays, with its numbers
    assert "| return |" in hopper and "-200.0 (-205.0–-195.0)" in hopper and "-60.0" in hopper


def test_figure_draws_one_panel_per_task(run_dirs, tmp_path):
    out = plot_summaries(load_summaries(run_dirs), tmp_path / "figs" / "summary.png")
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape[1] > image.shape[0] > 300  # a wide figure: three panels side by side
    assert not (tmp_path / "figs" / ".partial_summary.png").exists()


def test_missing_summary_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="summary.json"):
        load_summaries([tmp_path])


def test_summary_command_writes_the_figure_and_table_of_finished_runs(run_dirs, tmp_path, capsys):
    from dsrl_ray.app.cli import main

    main(["summary", *map(str, run_dirs), "--out", str(tmp_path / "all")])
    table = (tmp_path / "all" / "summary.md").read_text().splitlines()
    assert len(table) == 5 and table[2].startswith("| lift (diffusion, DSRL-NA) | success | 68.0%")
    assert Image.open(tmp_path / "all" / "summary.png").size[0] > 600
    assert "summary.md" in capsys.readouterr().out
    assert not list((tmp_path / "all").glob(".partial_*"))


def test_summary_command_names_a_run_without_a_summary(tmp_path, capsys):
    from dsrl_ray.app.cli import main

    (tmp_path / "unfinished").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        main(["summary", str(tmp_path / "unfinished"), "--out", str(tmp_path / "all")])
    assert exit_info.value.code == 2
    assert "no pipeline summary at" in capsys.readouterr().err and not (tmp_path / "all").exists()
