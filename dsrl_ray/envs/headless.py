"""Choose MuJoCo's OpenGL backend for headless machines before MuJoCo is imported."""

from __future__ import annotations

import ctypes.util
import os


def ensure_headless_gl() -> str | None:
    """Set ``MUJOCO_GL`` for offscreen rendering unless the user already chose a backend.

    Picks ``"egl"`` when ``libEGL`` is installed, else ``"osmesa"`` when ``libOSMesa`` is, and
    leaves the variable unset when neither is found. It must run before ``mujoco`` (or robosuite)
    is first imported in the process to have any effect.

    Returns:
        The value ``MUJOCO_GL`` has afterwards, or ``None`` if it is unset.
    """
    if "MUJOCO_GL" not in os.environ:
        if ctypes.util.find_library("EGL"):
            os.environ["MUJOCO_GL"] = "egl"
        elif ctypes.util.find_library("OSMesa"):
            os.environ["MUJOCO_GL"] = "osmesa"
    return os.environ.get("MUJOCO_GL")
