"""Scripted demonstrator of robomimic NutAssemblySquare (task ``square``, robosuite 1.4.1, OSC_POSE).

The square nut is a flat square frame (inner half-width 22.75 mm) with a handle sticking out
along its local +x axis; the square peg is a 32 mm box, so the nut slides over it with 6.75 mm
of clearance per side when its yaw is a multiple of 90 degrees (0.1 mm at 45 degrees).
robosuite's ``_check_success`` asks for the nut's centre within 30 mm (per axis) of the peg's
and below 0.87 m (50 mm above the table top), with the gripper more than ~42 mm from the nut's
centre (a gripper holding the handle already is).

The ``object`` part of the observation (14 values, robosuite's ``object-state``) is, in order:
``SquareNut_pos`` (3, world, metres), ``SquareNut_quat`` (4, world, ``x, y, z, w``),
``SquareNut_to_robot0_eef_pos`` (3) and ``SquareNut_to_robot0_eef_quat`` (4), the nut's pose in
the end-effector frame. Only the first 7 are used here.
"""

from __future__ import annotations

import numpy as np

from dsrl_ray.envs.demos.scripted import _GRIPPER_CLOSED, _GRIPPER_OPEN, _ArmDemonstrator, _quat_multiply

# Body "peg1" of robosuite's pegs arena (models/assets/arenas/pegs_arena.xml, body pos; the arena
# sits at the origin, so this is also its world position ``sim.data.body_xpos``); metres.
PEG_XY = np.array([0.23, 0.1])
PEG_TOP_Z = 0.95  # metres: peg1 is a box of half-height 0.1 centred at z = 0.85
# The end-effector orientation (robosuite's ``robot0_eef_quat``, x, y, z, w) pointing straight
# down with the fingers closing along world y: 180 degrees about world x.
_DOWN_QUAT = np.array([1.0, 0.0, 0.0, 0.0])


def _yaw(quat: np.ndarray) -> float:
    """Heading (radians) of the local x axis of ``quat`` (``x, y, z, w``) projected on the world xy plane."""
    x, y, z, w = quat
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _wrap(angle: float, period: float) -> float:
    """``angle`` (radians) shifted by a multiple of ``period`` into ``[-period / 2, period / 2)``."""
    return float((angle + period / 2) % period - period / 2)


def _down_quat(yaw: float) -> np.ndarray:
    """End-effector quaternion (``x, y, z, w``) pointing down, turned by ``yaw`` radians about world z."""
    return _quat_multiply(np.array([0.0, 0.0, np.sin(yaw / 2), np.cos(yaw / 2)]), _DOWN_QUAT)


class SquareDemonstrator(_ArmDemonstrator):
    """NutAssemblySquare: turn the gripper to the handle -> above the handle -> descend -> close ->
    lift -> carry the nut over the peg while turning it square to the peg -> lower it over the peg
    -> open -> retreat upwards.

    Positions are in metres (world frame), angles in radians. The gripper's yaw is servoed with
    the position: the fingers close across the handle (along the nut's local y axis). While the
    nut is held the targets are the nut's own position and yaw, so a grasp that slipped is
    corrected for. Recovery: a descent that stalls, a nut lost from the hand, or a nut left
    off the peg after release starts over from above the handle; a lowering that stalls (the nut
    resting on the peg's top) goes back to carrying and realigns.

    Measured success with ``collect_demos`` (20 episodes per sigma, seed 0): see the module
    report in ``SUCCESS_RATES``.
    """

    grasp_distance = 0.06  # metres from the nut's centre along its handle where the fingers close
    grasp_offset = 0.0  # metres above the nut's centre where the end effector closes
    hover_height = 0.06
    carry_height = 1.0  # metres (world z) of the nut's centre while carrying: its bottom clears the peg
    release_height = 0.9  # metres (world z) of the nut's centre where the gripper opens, around the peg
    align_tolerance = 0.004  # metres of nut-to-peg misalignment that pauses the lowering
    yaw_tolerance = 0.05  # radians of gripper or nut yaw error that pauses approach and lowering
    grasp_align_tolerance = 0.005  # metres of horizontal misalignment that pauses the descent
    in_hand_tolerance = 0.03  # metres between end effector and grasp point beyond which the grasp is lost
    descend_patience = 30  # steps
    lower_patience = 40  # steps
    release_steps = 6
    retreat_steps = 15

    def __init__(self, sigma: float) -> None:
        super().__init__("square", sigma)
        self._nut_yaw_target = 0.0

    def _nut(self, obs: np.ndarray) -> tuple[np.ndarray, float]:
        """The nut's centre ``(3,)`` (metres) and yaw (radians) from the observation."""
        nut = self._parts(obs)["object"]
        return nut[:3], _yaw(nut[3:7])

    def _grasp_point(self, nut_pos: np.ndarray, nut_yaw: float) -> np.ndarray:
        """World position ``(3,)`` of the end effector when holding the handle (metres)."""
        along = self.grasp_distance * np.array([np.cos(nut_yaw), np.sin(nut_yaw), 0.0])
        return nut_pos + along + [0.0, 0.0, self.grasp_offset]

    def _clean_action(self, obs: np.ndarray) -> np.ndarray:
        parts = self._parts(obs)
        eef = parts["robot0_eef_pos"]
        eef_yaw = _yaw(parts["robot0_eef_quat"])
        nut_pos, nut_yaw = self._nut(obs)
        grasp = self._grasp_point(nut_pos, nut_yaw)
        self._update_phase(eef, eef_yaw, nut_pos, nut_yaw, grasp)
        if self.phase in ("approach", "descend"):
            # the gripper is symmetric: any yaw that closes the fingers across the handle will do
            self._hold_quat = _down_quat(eef_yaw + _wrap(nut_yaw - eef_yaw, np.pi))
            if self.phase == "approach":
                return self._servo(obs, grasp + [0.0, 0.0, self.hover_height], _GRIPPER_OPEN)
            if np.linalg.norm(grasp[:2] - eef[:2]) > self.grasp_align_tolerance:
                grasp[2] = max(eef[2], grasp[2])
            return self._servo(obs, grasp, _GRIPPER_OPEN)
        if self.phase == "close":
            return self._servo(obs, grasp, _GRIPPER_CLOSED)
        if self.phase in ("lift", "carry", "lower"):
            self._hold_quat = _down_quat(eef_yaw + _wrap(self._nut_yaw_target - nut_yaw, 2 * np.pi))
            if self.phase == "lift":
                nut_target = np.array([nut_pos[0], nut_pos[1], self.carry_height])
            elif self.phase == "carry":
                nut_target = np.array([*PEG_XY, self.carry_height])
            else:
                nut_target = np.array([*PEG_XY, self.release_height])
                if not self._aligned(nut_pos, nut_yaw):
                    nut_target[2] = max(nut_pos[2], nut_target[2])
            return self._servo(obs, eef + nut_target - nut_pos, _GRIPPER_CLOSED)
        if self.phase == "release":
            return self._servo(obs, eef, _GRIPPER_OPEN)
        return self._servo(obs, np.array([eef[0], eef[1], self.carry_height + 0.05]), _GRIPPER_OPEN)

    def _aligned(self, nut_pos: np.ndarray, nut_yaw: float) -> bool:
        """Whether the nut is centred over the peg and square to it."""
        return bool(
            np.linalg.norm(nut_pos[:2] - PEG_XY) < self.align_tolerance
            and abs(_wrap(nut_yaw, np.pi / 2)) < self.yaw_tolerance
        )

    def _update_phase(
        self, eef: np.ndarray, eef_yaw: float, nut_pos: np.ndarray, nut_yaw: float, grasp: np.ndarray
    ) -> None:
        self._steps_in_phase += 1
        if self.phase in ("lift", "carry", "lower") and np.linalg.norm(grasp - eef) > self.in_hand_tolerance:
            self._set_phase("approach")
        if self.phase == "descend" and self._steps_in_phase > self.descend_patience:
            self._set_phase("approach")
        if self.phase == "lower" and self._steps_in_phase > self.lower_patience:
            self._set_phase("carry")
        if self.phase == "retreat" and self._steps_in_phase > self.retreat_steps:
            self._set_phase("approach")
        yaw_error = abs(_wrap(nut_yaw - eef_yaw, np.pi))
        if (
            self.phase == "approach"
            and np.linalg.norm(grasp + [0.0, 0.0, self.hover_height] - eef) < 0.01
            and yaw_error < self.yaw_tolerance
        ):
            self._set_phase("descend")
        if self.phase == "descend" and np.linalg.norm(grasp - eef) < 0.008:
            self._set_phase("close")
        if self.phase == "close" and self._steps_in_phase > self.close_steps:
            self._set_phase("lift")
            # the nut's final yaw: square to the peg, with the gripper's yaw as close to 0 as possible
            self._nut_yaw_target = nut_yaw - eef_yaw + _wrap(eef_yaw - nut_yaw, np.pi / 2)
        if self.phase == "lift" and abs(nut_pos[2] - self.carry_height) < 0.02:
            self._set_phase("carry")
        if self.phase == "carry" and np.linalg.norm(PEG_XY - nut_pos[:2]) < 0.01:
            self._set_phase("lower")
        if self.phase == "lower" and nut_pos[2] < self.release_height + 0.01:
            self._set_phase("release")
        if self.phase == "release" and self._steps_in_phase > self.release_steps:
            self._set_phase("retreat")
