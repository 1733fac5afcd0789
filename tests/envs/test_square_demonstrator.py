"""The scripted NutAssemblySquare demonstrator's grasp geometry (its success rates: test_arm_demonstrators.py)."""

import numpy as np
import pytest

from dsrl_ray.envs.demos.square import SquareDemonstrator, _wrap


@pytest.mark.parametrize("nut_yaw", np.linspace(-np.pi, np.pi, 37))
def test_grasp_yaw_closes_across_the_handle_within_the_wrist_range(nut_yaw):
    demo = SquareDemonstrator(sigma=0.0)
    yaw = demo._grasp_yaw(nut_yaw)
    assert demo.min_grasp_yaw <= yaw <= demo.max_grasp_yaw
    assert abs(_wrap(yaw - nut_yaw, np.pi)) < 1e-9  # the fingers close along the nut's local y axis
