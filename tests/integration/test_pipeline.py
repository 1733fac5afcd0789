"""The main job end to end on TwoGoal (short CI form of ``dsrl-ray pipeline``): every artefact, honest numbers."""

from __future__ import annotations

import csv
import json

import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image

from dsrl_ray.app.cli import main


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory, twogoal_run):
    run = tmp_path_factory.mktemp("pipeline")
    # Reuse the session's demos and base policy: the pipeline skips or resumes finished stages.
    (run / "demos.hdf5").symlink_to(twogoal_run / "demos.hdf5")
    (run / "base_policy").mkdir()
    for checkpoint in (twogoal_run / "base_policy").iterdir():
        (run / "base_policy" / checkpoint.name).symlink_to(checkpoint)
    main(["pipeline", "--task", "twogoal", "--run-dir", str(run), "--env-steps", "1500", "--episodes", "60"])
    return run


def test_steered_beats_base_on_the_same_episodes(pipeline_run):
    summary = json.loads((pipeline_run / "summary.json").read_text())
    base = json.loads((pipeline_run / "base_eval.json").read_text())
    steered = json.loads((pipeline_run / "steered_eval.json").read_text())
    assert summary["episodes"] == len(base["episodes"]) == len(steered["episodes"]) == 60
    assert [e["seed"] for e in base["episodes"]] == [e["seed"] for e in steered["episodes"]]
    assert summary["base"]["success_rate"] == base["success_rate"] <= 0.75
    assert summary["steered"]["success_rate"] == steered["success_rate"] >= 0.9
    assert summary["steered"]["success_ci95"][0] > summary["base"]["success_ci95"][1]  # intervals do not overlap
    assert summary["dsrl_env_steps"] >= 1500


def test_learning_curve_and_progress(pipeline_run):
    with open(pipeline_run / "dsrl" / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    steps = [int(float(r["env_steps"])) for r in rows]
    assert steps == sorted(steps) and steps[-1] >= 1500
    evaluated = [int(r["iteration"]) for r in rows if r["eval_success_rate"]]
    assert evaluated and all(i % 5 == 0 for i in evaluated)  # only iterations that evaluated (interval 5)
    image = Image.open(pipeline_run / "learning_curve.png")
    assert image.size[0] >= 600 and image.size[1] >= 500
    assert list((pipeline_run / "dsrl" / "tensorboard").glob("events.out.tfevents.*"))
    assert list((pipeline_run / "dsrl" / "checkpoints").glob("iter_*"))


def test_video_shows_base_and_steered_side_by_side(pipeline_run):
    frames = iio.imread(pipeline_run / "episodes.gif")
    assert frames.ndim == 4 and frames.shape[0] >= 3
    height, width = frames.shape[1:3]
    assert width == 2 * height  # two square TwoGoal views next to each other
    assert not np.array_equal(frames[-1, :, : width // 2], frames[-1, :, width // 2 :])


def test_eval_command_runs_a_steered_checkpoint(pipeline_run, tmp_path, capsys):
    (checkpoint,) = (pipeline_run / "dsrl" / "checkpoints").glob("iter_*")
    out = tmp_path / "steered.json"
    main(["eval", "--steered", str(checkpoint), "--episodes", "20", "--json", str(out), "--video", str(tmp_path / "e.gif")])
    result = json.loads(out.read_text())
    assert len(result["episodes"]) == 20 and result["success_rate"] >= 0.9
    assert "success" in capsys.readouterr().out
    assert iio.imread(tmp_path / "e.gif").shape[0] >= 2


def test_a_rerun_reuses_both_evaluations_and_reports_their_original_times(pipeline_run, capsys):
    before = json.loads((pipeline_run / "summary.json").read_text())
    capsys.readouterr()
    main(["pipeline", "--task", "twogoal", "--run-dir", str(pipeline_run), "--env-steps", "1500", "--episodes", "60"])
    out = capsys.readouterr().out
    assert "evaluate the base policy: reusing" in out and "evaluate the steered policy: reusing" in out
    after = json.loads((pipeline_run / "summary.json").read_text())
    assert after["steered"] == before["steered"] and after["base"] == before["base"]
    for stage in ("base_eval", "steered_eval", "dsrl"):  # dsrl: the resume found nothing left to train
        assert after["stage_times_s"][stage] == before["stage_times_s"][stage] > 0
    assert after["wall_time_s"] == pytest.approx(sum(after["stage_times_s"].values()), abs=0.2)
