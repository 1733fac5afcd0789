"""Scripted demonstrator of robomimic NutAssemblySquare (task ``square``, robosuite 1.4.1, OSC_POSE).

The square nut is a flat square frame (inner half-width 22.75 mm, 20 mm thick) with a handle
sticking out 36 mm along its local +x axis; the square peg is a 32 mm box, so the nut slides
over it with 6.75 mm of clearance per side when its yaw is a multiple of 90 degrees (0.1 mm at
45 degrees). robosuite's ``_check_success`` asks for the nut's centre within 30 mm (per axis)
of the peg's and below 0.87 m (50 mm above the table top), with the gripper more than ~42 mm
from the nut's centre (a gripper holding the handle already is).

The ``object`` part of the observation (14 values, robosuite's ``object-state``) is, in order:
``SquareNut_pos`` (3, world, metres), ``SquareNut_quat`` (4, world, ``x, y, z, w``),
``SquareNut_to_robot0_eef_pos`` (3) and ``SquareNut_to_robot0_eef_quat`` (4), the nut's pose in
the end-effector frame. Only the first 7 are used here.
"""

from __future__ import annotations

import numpy as np

from dsrl_ray.envs.demos.scripted import _GRIPPER_CLOSED, _GRIPPER_OPEN, _ArmDemonstrator, _quat_multiply

# Body "peg1" of robosuite's pegs arena (models/assets/arenas/pegs_arena.xml: pos 0.23 0.1 0.85,
# a box of half-size 0.016 x 0.016 x 0.1); the arena sits at the world origin, so this is also
# ``sim.data.body_xpos`` of "peg1". Metres.
PEG_XY = np.array([0.23, 0.1])
PEG_TOP_Z = 0.95
# The end-effector orientation (as ``robot0_eef_quat``, x, y, z, w) pointing straight down with
# the fingers closing along world y: 180 degrees about world x. Its yaw (``_yaw``) is 0.
_DOWN_QUAT = np.array([1.0, 0.0, 0.0, 0.0])


def _yaw(quat: np.ndarray) -> float:
    """Heading (radians) of the local x axis of ``quat`` (``x, y, z, w``) in the world xy plane."""
    x, y, z, w = quat
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _tilt(quat: np.ndarray) -> float:
    """Angle (radians) between the local z axis of ``quat`` (``x, y, z, w``) and world z."""
    x, y, _, _ = quat
    return float(np.arccos(np.clip(1 - 2 * (x * x + y * y), -1.0, 1.0)))


def _wrap(angle: float, period: float) -> float:
    """``angle`` (radians) shifted by a multiple of ``period`` into ``[-period / 2, period / 2)``."""
    return float((angle + period / 2) % period - period / 2)


def _down_quat(yaw: float) -> np.ndarray:
    """End-effector quaternion (``x, y, z, w``) pointing down, turned by ``yaw`` radians about world z."""
    return _quat_multiply(np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)]), _DOWN_QUAT)


class SquareDemonstrator(_ArmDemonstrator):
    """NutAssemblySquare: above the handle (turning the gripper across it) -> descend -> close ->
    lift -> carry the nut over the peg while turning it square to the peg -> lower it over the
    peg -> open -> retreat upwards.

    Positions are metres (world frame), angles radians. While the nut is held the targets are
    the nut's own position and yaw, so a grasp that slipped is corrected for. Over the peg the
    nut's handle points at the robot (gripper back at yaw 0) when the grasp allowed it, else
    sideways (gripper at +-90 degrees): the arm cannot reach the far side of the peg. Recovery:
    a descent that stalls, a nut lost from the hand, or a nut left off the peg after release
    starts over from above the handle; the lowering waits just above the peg while the nut is
    not centred, level and square to it, and backs off a nut that tilts on the peg's top.

    Measured with ``collect_demos`` (seed 0, failures kept; steps: mean length of the successful
    episodes, limit 400): sigma 0: 100 % (20/20, 116 steps, at most 140); 0.1: 100 % (20/20, 118);
    0.2: 95 % (19/20, 144); 0.3: 80 % (40/50, 193); 0.35: 50 % (10/20, 197); 0.4: 35 % (7/20, 272).
    """

    grasp_distance = 0.062  # metres from the nut's centre along the handle where the fingers close
    grasp_depth = 0.005  # metres below the nut's centre the end effector aims for (its fingertips stop on the table)
    hover_tolerance = 0.015  # metres from the point above the handle where the descent starts
    grasp_align_tolerance = 0.015  # metres of horizontal misalignment that pauses the descent and the closing
    grasp_height_tolerance = 0.008  # metres above the nut's centre where the fingers may close
    min_grasp_yaw = -1.6  # radians: the wrist's last joint limits the gripper's yaw to this range
    max_grasp_yaw = 2.4
    yaw_tolerance = 0.08  # radians of gripper or nut yaw error that pauses the descents
    carry_height = 0.98  # metres (world z) of the nut's centre while carrying: its bottom clears the peg
    wait_height = 0.965  # metres (world z) of the nut's centre while it waits above the peg to be aligned
    press_height = 0.9  # metres (world z): the nut's target while lowering it onto the peg
    align_tolerance = 0.006  # metres of nut-to-peg misalignment that stops the lowering above the peg
    press_tolerance = 0.015  # metres of misalignment that lifts a nut on the peg's top back up
    max_tilt = 0.15  # radians of nut tilt beyond which the lowering backs off and a release waits
    in_hand_tolerance = 0.03  # metres between end effector and grasp point beyond which the grasp is lost
    descend_patience = 40  # steps
    release_steps = 6
    retreat_steps = 15

    def __init__(self, sigma: float) -> None:
        super().__init__("square", sigma)
        self._nut_yaw_target = np.pi

    def _clean_action(self, obs: np.ndarray) -> np.ndarray:
        parts = self._parts(obs)
        eef = parts["robot0_eef_pos"]
        eef_yaw = _yaw(parts["robot0_eef_quat"])
        nut_pos, nut_quat = parts["object"][:3], parts["object"][3:7]
        nut_yaw, nut_level = _yaw(nut_quat), _tilt(nut_quat) < self.max_tilt
        grasp = nut_pos + self.grasp_distance * np.array([np.cos(nut_yaw), np.sin(nut_yaw), 0.0])
        self._update_phase(eef, eef_yaw, nut_pos, nut_yaw, nut_level, grasp)
        if self.phase in ("approach", "descend", "close"):
            self._hold_quat = _down_quat(self._grasp_yaw(nut_yaw))
            if self.phase == "approach":
                return self._servo(obs, grasp + [0.0, 0.0, self.hover_height], _GRIPPER_OPEN)
            grasp[2] -= self.grasp_depth
            if self.phase == "close":
                return self._servo(obs, grasp, _GRIPPER_CLOSED)
            if np.linalg.norm(grasp[:2] - eef[:2]) > self.grasp_align_tolerance:
                grasp[2] = max(eef[2], grasp[2])
            return self._servo(obs, grasp, _GRIPPER_OPEN)
        if self.phase in ("lift", "carry", "lower"):
            self._hold_quat = _down_quat(eef_yaw + _wrap(self._nut_yaw_target - nut_yaw, 2 * np.pi))
            if self.phase == "lift":
                nut_target = np.array([nut_pos[0], nut_pos[1], self.carry_height])
            elif self.phase == "carry":
                nut_target = np.array([*PEG_XY, self.carry_height])
            else:
                nut_target = np.array([*PEG_XY, self._lowering_height(nut_pos, nut_yaw, nut_level)])
            return self._servo(obs, eef + nut_target - nut_pos, _GRIPPER_CLOSED)
        if self.phase == "release":
            return self._servo(obs, eef, _GRIPPER_OPEN)
        return self._servo(obs, np.array([eef[0], eef[1], self.carry_height + 0.05]), _GRIPPER_OPEN)

    def _grasp_yaw(self, nut_yaw: float) -> float:
        """The gripper yaw (radians) that closes the fingers across the handle of a nut of yaw ``nut_yaw``.

        The gripper is symmetric, so ``nut_yaw`` and ``nut_yaw + pi`` both do; the latter (gripper x
        axis opposite the handle, which points the handle at the robot once the gripper is back at
        yaw 0) unless it is outside ``[min_grasp_yaw, max_grasp_yaw]``.
        """
        facing = _wrap(nut_yaw + np.pi, 2 * np.pi)
        return facing if self.min_grasp_yaw <= facing <= self.max_grasp_yaw else _wrap(nut_yaw, 2 * np.pi)

    def _lowering_height(self, nut_pos: np.ndarray, nut_yaw: float, nut_level: bool) -> float:
        """Target height (metres) of the nut's centre while lowering it over the peg.

        Above the peg it drops (to ``press_height``) only once centred, level and square to the peg,
        else it waits at ``wait_height``; on the peg's top (bottom within 5 mm of it) it keeps
        pressing down while roughly centred and level, so the hole finds the peg as the nut slides,
        else (e.g. a nut tilting as one edge catches the peg) it goes back up.
        """
        offset = np.linalg.norm(nut_pos[:2] - PEG_XY)
        square = abs(_wrap(nut_yaw, np.pi / 2)) < self.yaw_tolerance
        on_top = nut_pos[2] < PEG_TOP_Z + 0.015
        if nut_level and square and offset < (self.press_tolerance if on_top else self.align_tolerance):
            return self.press_height
        return self.wait_height

    def _on_peg(self, nut_pos: np.ndarray, nut_level: bool) -> bool:
        """Whether the nut is level around the peg: bottom below the peg's top, centre within 10 mm of
        the peg's axis (the peg then runs through the hole; a nut beside the peg is 39 mm or more off)."""
        return bool(nut_level and nut_pos[2] < PEG_TOP_Z and np.linalg.norm(nut_pos[:2] - PEG_XY) < 0.01)

    def _update_phase(
        self,
        eef: np.ndarray,
        eef_yaw: float,
        nut_pos: np.ndarray,
        nut_yaw: float,
        nut_level: bool,
        grasp: np.ndarray,
    ) -> None:
        self._steps_in_phase += 1
        if self.phase in ("lift", "carry", "lower") and np.linalg.norm(grasp - eef) > self.in_hand_tolerance:
            self._set_phase("approach")
        if self.phase == "descend" and self._steps_in_phase > self.descend_patience:
            self._set_phase("approach")
        if self.phase == "retreat" and self._steps_in_phase > self.retreat_steps:
            self._set_phase("approach")
        if (
            self.phase == "approach"
            and np.linalg.norm(grasp + [0.0, 0.0, self.hover_height] - eef) < self.hover_tolerance
            and abs(_wrap(self._grasp_yaw(nut_yaw) - eef_yaw, 2 * np.pi)) < self.yaw_tolerance
        ):
            self._set_phase("descend")
        if (
            self.phase == "descend"
            and np.linalg.norm(grasp[:2] - eef[:2]) < self.grasp_align_tolerance
            and eef[2] < grasp[2] + self.grasp_height_tolerance
        ):
            self._set_phase("close")
        if self.phase == "close" and self._steps_in_phase > self.close_steps:
            self._set_phase("lift")
            # square to the peg; handle at the robot (yaw pi) if the gripper's x axis is opposite
            # the handle, else sideways, whichever of +-90 degrees is nearer
            facing = abs(_wrap(nut_yaw - eef_yaw, 2 * np.pi)) > np.pi / 2
            self._nut_yaw_target = np.pi if facing else float(np.copysign(np.pi / 2, nut_yaw))
        if self.phase == "lift" and abs(nut_pos[2] - self.carry_height) < 0.02:
            self._set_phase("carry")
        if self.phase == "carry" and np.linalg.norm(PEG_XY - nut_pos[:2]) < self.press_tolerance:
            self._set_phase("lower")
        if self.phase == "lower" and self._on_peg(nut_pos, nut_level):
            self._set_phase("release")
        if self.phase == "release" and self._steps_in_phase > self.release_steps:
            self._set_phase("retreat")
