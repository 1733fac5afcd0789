"""The scripted NutAssemblySquare demonstrator, run through ``collect_demos`` (the project's own
demo rollout: seeded episodes of ``make_task("square")``, 400-step limit)."""

import numpy as np
import pytest

from dsrl_ray.envs import collect_demos
from dsrl_ray.envs.demos.square import SquareDemonstrator, _wrap


def _collect(tmp_path, n_episodes: int):
    """``n_episodes`` noiseless episodes from seed 0, failures kept so every episode is counted."""
    return collect_demos(
        "square", n_episodes, sigma=0.0, seed=0, out_path=tmp_path / "square.hdf5", keep_failures=True, progress=False
    )


@pytest.mark.parametrize("nut_yaw", np.linspace(-np.pi, np.pi, 37))
def test_grasp_yaw_closes_across_the_handle_within_the_wrist_range(nut_yaw):
    demo = SquareDemonstrator(sigma=0.0)
    yaw = demo._grasp_yaw(nut_yaw)
    assert demo.min_grasp_yaw <= yaw <= demo.max_grasp_yaw
    assert abs(_wrap(yaw - nut_yaw, np.pi)) < 1e-9  # the fingers close along the nut's local y axis


def test_square_demonstrator_places_the_nut(tmp_path):
    summary = _collect(tmp_path, 2)
    assert summary.n_attempts == 2 and summary.n_successes == 2
    assert summary.mean_length < 300


@pytest.mark.slow
def test_square_demonstrator_success_rate(tmp_path):
    summary = _collect(tmp_path, 10)
    assert summary.n_successes >= 9  # measured: 20/20 at sigma 0
    assert summary.mean_length < 300
