"""TwoGoal: a tiny pure-numpy 2-D navigation task with a cued goal, for fast tests and CI.

A point agent starts near the perpendicular bisector of two goals. At reset one goal is
chosen at random as the rewarded one and shown in the observation as a one-hot cue.
Reaching the rewarded goal ends the episode with success; reaching the other goal does
nothing. A demonstrator that ignores the cue (see ``scripted.TwoGoalDemonstrator``) yields a
bimodal behaviour-cloned policy that succeeds about half the time; steering its noise by the
cue can reach every episode's rewarded goal.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

GOALS = np.array([[-0.5, 0.5], [0.5, 0.5]], dtype=np.float64)
"""The two goal positions ``(2, 2)`` in arena units (the arena is ``[-1, 1]^2``)."""
START_CENTER = np.array([0.0, -0.2])
START_HALF_WIDTH = 0.05
STEP_SIZE = 0.05
"""Displacement per step, per coordinate, for an action component of 1."""
GOAL_RADIUS = 0.1
ARENA_LIMIT = 1.0
REWARD_OFFSET = 1.0


class TwoGoalEnv(gymnasium.Env):
    """The TwoGoal task without its episode limit (``make_task("twogoal")`` adds it).

    Observation ``(4,)`` float32: ``[x, y, cue_0, cue_1]``, the agent position in arena units and
    a one-hot of the rewarded goal. Action ``(2,)``: velocity in ``[-1, 1]`` per coordinate
    (clipped), moving the agent by ``STEP_SIZE * action``; the position stays in ``[-1, 1]^2``.
    Reward per step: ``float(success) - 1``; success (within ``GOAL_RADIUS`` of the rewarded goal)
    terminates the episode unless ``terminate_on_success=False`` (then the episode runs on).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self, *, seed: int | None = None, render_mode: str | None = None, terminate_on_success: bool = True
    ) -> None:
        """``seed`` seeds the first ``reset()`` called without a seed of its own."""
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r} is not supported; expected None or 'rgb_array'")
        self.render_mode = render_mode
        self.terminate_on_success = terminate_on_success
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._pending_seed = seed
        self._pos = START_CENTER.copy()
        self._goal = 0

    @property
    def rewarded_goal(self) -> int:
        """Index (0 or 1) into :data:`GOALS` of this episode's rewarded goal."""
        return self._goal

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        super().reset(seed=seed)
        self._goal = int(self.np_random.integers(2))
        self._pos = START_CENTER + self.np_random.uniform(-START_HALF_WIDTH, START_HALF_WIDTH, size=2)
        return self._obs(), {"success": False}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (2,):
            raise ValueError(f"TwoGoal action has shape {action.shape}; expected (2,)")
        self._pos = np.clip(self._pos + STEP_SIZE * np.clip(action, -1.0, 1.0), -ARENA_LIMIT, ARENA_LIMIT)
        success = bool(np.linalg.norm(self._pos - GOALS[self._goal]) <= GOAL_RADIUS)
        terminated = success and self.terminate_on_success
        return self._obs(), float(success) - REWARD_OFFSET, terminated, False, {"success": success}

    def render(self, size: int = 128) -> np.ndarray:
        """``(size, size, 3)`` uint8 top view: rewarded goal green, other goal grey, agent red."""
        ys, xs = np.mgrid[0:size, 0:size]
        px = ((xs + 0.5) / size * 2 - 1) * ARENA_LIMIT
        py = -((ys + 0.5) / size * 2 - 1) * ARENA_LIMIT
        image = np.full((size, size, 3), 255, dtype=np.uint8)
        for index, goal in enumerate(GOALS):
            inside = (px - goal[0]) ** 2 + (py - goal[1]) ** 2 <= GOAL_RADIUS**2
            image[inside] = (40, 170, 60) if index == self._goal else (170, 170, 170)
        agent = (px - self._pos[0]) ** 2 + (py - self._pos[1]) ** 2 <= (0.4 * GOAL_RADIUS) ** 2
        image[agent] = (210, 30, 30)
        return image

    def _obs(self) -> np.ndarray:
        cue = np.eye(2)[self._goal]
        return np.concatenate([self._pos, cue]).astype(np.float32)
