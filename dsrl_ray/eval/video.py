"""Film episodes of a base policy (optionally steered) and write them side by side as a GIF or MP4.

Rendering is offscreen (MuJoCo through EGL or OSMesa, see ``headless.py``); one frame is taken
after reset and after every executed action chunk.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dsrl_ray.envs.headless import ensure_headless_gl
from dsrl_ray.core.steering import Steering
from dsrl_ray.envs.make import make_chunked_env
from dsrl_ray.eval.rollout import NoiseFn
from dsrl_ray.policies.base import BasePolicy


@dataclass(frozen=True)
class FilmedEpisode:
    """Frames ``(T, H, W, 3)`` uint8 of one episode, with its label and outcome."""

    label: str
    frames: np.ndarray
    success: bool
    episode_return: float


def film_episode(
    task_name: str,
    base_policy: BasePolicy,
    *,
    seed: int,
    noise_fn: NoiseFn | None = None,
    label: str = "",
) -> FilmedEpisode:
    """Run one episode (env seed ``seed``) and keep a frame per chunk.

    Args:
        task_name: the task.
        base_policy: the frozen policy.
        seed: env seed; the noise (``w ~ N(0, I)`` by default) is drawn from a generator seeded with it.
        noise_fn: noise for the one observation (a trained noise policy), see ``NoiseFn``; default N(0, I).
        label: caption drawn on the frames.
    """
    ensure_headless_gl()
    env = make_chunked_env(task_name, base_policy.normalizer, chunk_len=base_policy.chunk_len, render_mode="rgb_array")
    rng = np.random.default_rng(seed)
    steering = Steering(base_policy)
    try:
        obs, _ = env.reset(seed=seed)
        frames = [env.render()]
        success, episode_return, done = False, 0.0, False
        while not done:
            if noise_fn is None:
                noise = rng.standard_normal((1, *base_policy.noise_shape), dtype=np.float32)
            else:
                noise = np.asarray(noise_fn(obs[None], [rng]), dtype=np.float32)
            obs, reward, terminated, truncated, info = env.step(steering.chunks_np(obs[None], noise)[0])
            episode_return += reward
            success = success or bool(info["success"])
            done = terminated or truncated
            frames.append(env.render())
    finally:
        env.close()
    return FilmedEpisode(label, np.stack(frames).astype(np.uint8), success, float(episode_return))


def _caption(frame: np.ndarray, text: str) -> np.ndarray:
    """``frame`` with ``text`` on a dark band at the top (PIL's default font)."""
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, image.width, 16], fill=(0, 0, 0))
    draw.text((4, 2), text, fill=(255, 255, 255))
    return np.asarray(image)


def side_by_side(episodes: list[FilmedEpisode]) -> np.ndarray:
    """Frames of several episodes next to each other ``(T_max, H, sum W, 3)``; short ones hold their last frame."""
    if not episodes:
        raise ValueError("side_by_side needs at least one episode")
    length = max(len(ep.frames) for ep in episodes)
    columns = []
    for ep in episodes:
        padded = np.concatenate([ep.frames, np.repeat(ep.frames[-1:], length - len(ep.frames), axis=0)])
        outcome = "success" if ep.success else "failure"
        columns.append(np.stack([_caption(f, f"{ep.label}: {outcome}") for f in padded]))
    return np.concatenate(columns, axis=2)


def write_video(frames: np.ndarray, path: str | os.PathLike, *, fps: int = 10) -> Path:
    """Write ``(T, H, W, 3)`` uint8 frames as ``.gif`` or ``.mp4`` (by suffix), atomically."""
    import imageio.v3 as iio

    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"video path {str(out)!r} has suffix {suffix!r}; expected .gif or .mp4")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".partial_{out.name}")
    if suffix == ".gif":
        iio.imwrite(partial, frames, extension=".gif", duration=1000 / fps, loop=0)
    else:
        iio.imwrite(partial, frames, extension=".mp4", fps=fps)
    os.replace(partial, out)
    return out
