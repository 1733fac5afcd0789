"""robomimic low-dim tasks built directly with ``robosuite.make`` (robosuite 1.4.1).

robomimic's own env wrapper is not used: it imports ``mujoco_py``, which cannot work with
the ``mujoco`` bindings robosuite 1.4 uses. The environment is configured from the env
metadata of the robomimic v1.4.1 datasets (``env_meta/<task>.json``, package data), and the
observation is robomimic's low-dim layout: the robot keys, then ``object`` (robosuite's
``object-state``). robosuite is imported lazily, on first use, because it is slow to import.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import gymnasium
import numpy as np

from dsrl_ray.envs.chunking import SimulatorError
from dsrl_ray.envs.headless import ensure_headless_gl
from dsrl_ray.envs.tasks import TaskSpec, get_task_spec

RENDER_CAMERA = "agentview"
RENDER_SIZE = 256
_ROBOSUITE_KEY = {"object": "object-state"}


def load_env_meta(task_name: str) -> dict[str, Any]:
    """The robomimic env metadata (``env_name``, ``env_version``, ``type``, ``env_kwargs``) of a robomimic task."""
    spec = get_task_spec(task_name)
    if spec.kind != "robomimic":
        raise ValueError(f"task {task_name!r} is a {spec.kind!r} task; env metadata exists only for robomimic tasks")
    text = (importlib.resources.files("dsrl_ray.envs") / "env_meta" / f"{spec.name}.json").read_text()
    return json.loads(text)


@contextmanager
def _numpy_global_rng(state: np.random.RandomState) -> Iterator[None]:
    """Run a block with ``state`` as numpy's global RNG (robosuite samples from it), then restore the
    caller's global RNG; ``state`` keeps what the block consumed."""
    saved = np.random.get_state()
    np.random.set_state(state.get_state())
    try:
        yield
    finally:
        state.set_state(np.random.get_state())
        np.random.set_state(saved)


class RobomimicTaskEnv(gymnasium.Env):
    """One robomimic task as a per-step ``gymnasium.Env`` (``make_task`` adds the episode limit).

    Observation: ``(obs_dim,)`` float32, the concatenation of ``spec.obs_keys`` in order.
    Action: ``(act_dim,)`` OSC_POSE deltas and gripper command in ``[-1, 1]`` (robosuite clips).
    Reward per step: ``float(success) - spec.reward_offset``; success (robosuite's
    ``_check_success()``) terminates the episode unless ``terminate_on_success=False`` (then the
    episode runs on, as in the released DSRL runs). ``info["success"]`` is set on every step.
    Randomness: robosuite draws from numpy's global RNG; this env swaps its own seeded
    ``RandomState`` in for every call into robosuite, so seeding is reproducible and the
    caller's global RNG is left untouched.
    Simulator failures: MuJoCo does not raise on an unstable simulation; it counts a
    ``BADQPOS``/``BADQVEL``/``BADQACC`` warning and silently resets its state. ``step`` checks
    those counters (and catches robosuite's ``SimulationError`` and MuJoCo's ``FatalError``) and
    raises :class:`~dsrl_ray.envs.chunking.SimulatorError`; reset the env before stepping again.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        spec: TaskSpec,
        *,
        seed: int | None = None,
        render_mode: str | None = None,
        camera_name: str = RENDER_CAMERA,
        image_size: int = RENDER_SIZE,
        terminate_on_success: bool = True,
    ) -> None:
        """Build the robosuite env; ``seed`` seeds the first ``reset()`` called without a seed of its own.

        With ``render_mode="rgb_array"``, ``render()`` returns an upright ``(image_size, image_size, 3)``
        uint8 image from ``camera_name``, rendered offscreen (``MUJOCO_GL`` egl or osmesa).
        """
        if spec.kind != "robomimic":
            raise ValueError(f"task {spec.name!r} is a {spec.kind!r} task; expected a robomimic task")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode={render_mode!r} is not supported; expected None or 'rgb_array'")
        ensure_headless_gl()
        import robosuite

        self.task_spec = spec
        self.render_mode = render_mode
        self.terminate_on_success = terminate_on_success
        self._camera_name = camera_name
        self._image_size = image_size
        self._pending_seed = seed
        self._rng: np.random.RandomState | None = None
        meta = load_env_meta(spec.name)
        kwargs = copy.deepcopy(meta["env_kwargs"])
        kwargs["has_offscreen_renderer"] = render_mode == "rgb_array"
        with _numpy_global_rng(np.random.RandomState(0)):
            self._env = robosuite.make(meta["env_name"], **kwargs)
        self._keys = [_ROBOSUITE_KEY.get(k, k) for k in spec.obs_keys]
        self._check_observation_layout(self._env.observation_spec())
        low, high = self._env.action_spec
        self.action_space = gymnasium.spaces.Box(low.astype(np.float32), high.astype(np.float32), dtype=np.float32)
        self.observation_space = gymnasium.spaces.Box(-np.inf, np.inf, shape=(spec.obs_dim,), dtype=np.float32)

    @property
    def robosuite_env(self) -> Any:
        """The underlying robosuite environment (e.g. for scripted demonstrators)."""
        return self._env

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if seed is None:
            seed, self._pending_seed = self._pending_seed, None
        super().reset(seed=seed)
        if seed is not None or self._rng is None:
            self._rng = np.random.RandomState(int(self.np_random.integers(2**32)))
        with _numpy_global_rng(self._rng):
            obs = self._env.reset()
        return self._flatten(obs), {"success": bool(self._env._check_success())}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (self.task_spec.act_dim,):
            raise ValueError(
                f"{self.task_spec.name} action has shape {action.shape}; expected ({self.task_spec.act_dim},)"
            )
        if self._rng is None:
            raise RuntimeError(f"{self.task_spec.name}: step() called before reset()")
        import mujoco
        from robosuite.utils.errors import SimulationError

        unstable_before = self._instability_warnings()
        try:
            with _numpy_global_rng(self._rng):
                obs, _, _, _ = self._env.step(action)
        except (SimulationError, mujoco.FatalError) as err:
            self._rng = None  # refuse further steps until reset()
            raise SimulatorError(f"{self.task_spec.name}: the simulator failed in step(): {err}") from err
        if self._instability_warnings() > unstable_before:
            self._rng = None
            raise SimulatorError(
                f"{self.task_spec.name}: MuJoCo reported an unstable simulation (NaN/Inf or huge qpos, qvel or "
                "qacc) and reset its state in the middle of step()"
            )
        success = bool(self._env._check_success())
        reward = float(success) - self.task_spec.reward_offset
        return self._flatten(obs), reward, success and self.terminate_on_success, False, {"success": success}

    def render(self) -> np.ndarray:
        """Upright ``(H, W, 3)`` uint8 image from the render camera."""
        if self.render_mode != "rgb_array":
            raise RuntimeError(f"render() needs render_mode='rgb_array' at construction; got {self.render_mode!r}")
        frame = self._env.sim.render(height=self._image_size, width=self._image_size, camera_name=self._camera_name)
        return np.ascontiguousarray(frame[::-1])

    def get_sim_state(self) -> np.ndarray:
        """The flattened MuJoCo state, as robomimic stores it in a dataset's ``states``."""
        return np.array(self._env.sim.get_state().flatten())

    def get_model_xml(self) -> str:
        """The current MJCF model, as robomimic stores it in a demo's ``model_file`` attribute."""
        return self._env.sim.model.get_xml()

    def close(self) -> None:
        self._env.close()

    def _instability_warnings(self) -> int:
        """MuJoCo's count of bad-qpos/qvel/qacc warnings (each one auto-reset the simulation)."""
        import mujoco

        warning = self._env.sim.data._data.warning
        kinds = (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL, mujoco.mjtWarning.mjWARN_BADQACC)
        return sum(int(warning[int(kind)].number) for kind in kinds)

    def _flatten(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(obs[k]).reshape(-1) for k in self._keys]).astype(np.float32)

    def _check_observation_layout(self, obs: dict[str, np.ndarray]) -> None:
        spec = self.task_spec
        for key, robosuite_key, dim in zip(spec.obs_keys, self._keys, spec.obs_key_dims, strict=True):
            if robosuite_key not in obs:
                raise RuntimeError(f"{spec.name}: robosuite observation lacks {robosuite_key!r}; it has {sorted(obs)}")
            size = np.size(obs[robosuite_key])
            if size != dim:
                raise RuntimeError(f"{spec.name}: observation key {key!r} has {size} values; expected {dim}")


def make_robomimic_env(
    spec: TaskSpec, *, seed: int | None = None, render_mode: str | None = None, terminate_on_success: bool = True
) -> RobomimicTaskEnv:
    """Build the per-step env of robomimic task ``spec`` (no episode limit; see ``make_task``)."""
    return RobomimicTaskEnv(spec, seed=seed, render_mode=render_mode, terminate_on_success=terminate_on_success)
