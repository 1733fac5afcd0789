"""Learning-curve PNG and episode videos: shapes, layout, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from dsrl_ray.eval.video import FilmedEpisode, film_episode, side_by_side, write_video
from dsrl_ray.eval.plots import plot_learning_curve, read_progress

HEADER = "iteration,env_steps,sim_steps,wall_time_s,success_rate,episode_return_mean,eval_success_rate,eval_episode_return_mean\n"


def test_learning_curve_png(tmp_path):
    csv_path = tmp_path / "progress.csv"
    csv_path.write_text(HEADER + "1,100,300,1.0,0.5,-30,,\n2,200,600,2.0,0.75,-20,0.8,-18\n")
    rows = read_progress(csv_path)
    assert rows[0]["env_steps"] == 100 and np.isnan(rows[0]["eval_success_rate"]) and rows[1]["eval_success_rate"] == 0.8
    png = plot_learning_curve(csv_path, tmp_path / "curve.png", base_success=0.45, base_return=-33.0)
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape[0] > 500 and image.shape[1] > 600
    red = (image[..., 0] > 180) & (image[..., 1] < 80) & (image[..., 2] < 80)
    assert red.sum() > 200  # the dashed base-policy lines are drawn


def test_learning_curve_refuses_an_empty_run(tmp_path):
    csv_path = tmp_path / "progress.csv"
    csv_path.write_text(HEADER)
    with pytest.raises(ValueError, match="has no rows"):
        plot_learning_curve(csv_path, tmp_path / "curve.png")
    assert not (tmp_path / "curve.png").exists()


def _episode(length: int, value: int, success: bool) -> FilmedEpisode:
    return FilmedEpisode("x", np.full((length, 32, 32, 3), value, np.uint8), success, 0.0)


def test_side_by_side_pads_the_shorter_episode_with_its_last_frame():
    frames = side_by_side([_episode(3, 10, False), _episode(5, 200, True)])
    assert frames.shape == (5, 32, 64, 3)
    assert (frames[4, 20:, :32] == 10).all() and (frames[4, 20:, 32:] == 200).all()


def test_write_video_checks_the_suffix_and_leaves_no_partial_file(tmp_path):
    frames = side_by_side([_episode(4, 50, True)])
    with pytest.raises(ValueError, match="'.avi'; expected .gif or .mp4"):
        write_video(frames, tmp_path / "v.avi")
    assert list(tmp_path.iterdir()) == []
    out = write_video(frames, tmp_path / "v.gif")
    assert [p.name for p in tmp_path.iterdir()] == ["v.gif"] and out.stat().st_size > 0


def test_film_twogoal_episode(twogoal_policy_path):
    from dsrl_ray.policies import load_policy

    policy = load_policy(twogoal_policy_path)
    filmed = film_episode("twogoal", policy, seed=3, label="base")
    assert filmed.frames.dtype == np.uint8 and filmed.frames.shape[1:] == (128, 128, 3)
    assert len(filmed.frames) >= 2 and filmed.episode_return <= 0
    again = film_episode("twogoal", policy, seed=3, label="base")
    np.testing.assert_array_equal(filmed.frames, again.frames)  # same seed, same noise: same episode


def _green_columns(png) -> np.ndarray:
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    green = (image[..., 1] > 130) & (image[..., 0] < 80) & (image[..., 2] < 80)  # tab:green markers
    return np.nonzero(green)[1]


def test_final_evaluation_star_sits_at_the_evaluated_checkpoints_env_step(tmp_path):
    csv_path = tmp_path / "progress.csv"
    csv_path.write_text(HEADER + "".join(f"{i},{100 * i},{300 * i},{i}.0,0.5,-30,,\n" for i in range(1, 11)))
    last = plot_learning_curve(csv_path, tmp_path / "last.png", final_success=0.9, final_return=-10.0)
    earlier = plot_learning_curve(csv_path, tmp_path / "earlier.png", final_success=0.9, final_return=-10.0,
                                  final_env_steps=300)
    at_last, at_earlier = _green_columns(last), _green_columns(earlier)
    assert at_last.size > 50 and at_earlier.size > 50
    assert at_earlier.mean() < at_last.mean() - 150  # 300 of 100..1000 env steps: far left of the end
