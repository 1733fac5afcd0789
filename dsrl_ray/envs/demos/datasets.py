"""Demonstration datasets in robomimic's HDF5 layout: write our own, read ours and robomimic's.

Layout (robomimic's)::

    data/                      attrs: total (int, transitions), env_args (JSON: env_name, type, env_kwargs)
      demo_<i>/                attrs: num_samples (int); model_file (MJCF string, robosuite only)
        obs/<key>              (T, dim_of_key)
        next_obs/<key>         (T, dim_of_key)
        actions                (T, act_dim) float64
        rewards                (T,) float64, robomimic's convention: the sparse success reward
                               without the per-step reward offset (1 on success steps, else 0)
        dones                  (T,) int64, 1 where the episode ended
        states                 (T, state_dim) float64, robosuite only
    mask/train                 names of the demos (bytes)
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from dsrl_ray.envs.tasks import task_for_env_name
from dsrl_ray.policies.spec import file_sha256


class DemoDatasetError(ValueError):
    """A demonstration file is missing, unreadable or not in the expected layout."""


@dataclass
class EpisodeRecord:
    """One episode to write. ``T`` is the number of transitions.

    Attributes:
        obs: ``{key: (T, dim_of_key)}`` observations before each action.
        next_obs: ``{key: (T, dim_of_key)}`` observations after each action.
        actions: ``(T, act_dim)`` actions in environment units.
        rewards: ``(T,)`` rewards, robomimic's convention (no per-step offset).
        dones: ``(T,)`` 1 where the episode ended, else 0.
        states: optional ``(T, state_dim)`` simulator states (robosuite), for replay.
        model_file: optional MJCF string of the episode's model (robosuite), for replay.
    """

    obs: dict[str, np.ndarray]
    next_obs: dict[str, np.ndarray]
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    states: np.ndarray | None = None
    model_file: str | None = None


@dataclass
class DemoEpisode:
    """One loaded episode, observation keys concatenated. ``T`` is the number of transitions.

    Attributes:
        obs: ``(T, obs_dim)`` float32, the dataset's ``obs_keys`` concatenated in order.
        next_obs: ``(T, obs_dim)`` float32, or ``None`` if the file has no ``next_obs``.
        actions: ``(T, act_dim)`` float32, environment units.
        rewards: ``(T,)`` float32, as stored (robomimic's convention: no per-step offset).
        dones: ``(T,)`` bool.
    """

    obs: np.ndarray
    next_obs: np.ndarray | None
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray

    def __len__(self) -> int:
        return len(self.actions)


@dataclass
class DemoDataset:
    """A loaded demonstration file.

    Attributes:
        episodes: the demos, in robomimic's order (by the number in ``demo_<n>``).
        obs_keys: the observation keys concatenated into ``obs``, in order.
        env_args: the parsed ``data.attrs["env_args"]`` (empty if the file has none).
        sha256: hex digest of the file's bytes.
        path: the file read.
    """

    episodes: list[DemoEpisode]
    obs_keys: tuple[str, ...]
    env_args: dict[str, Any]
    sha256: str
    path: str

    @property
    def num_transitions(self) -> int:
        return sum(len(ep) for ep in self.episodes)

    def all_obs(self) -> np.ndarray:
        """``(num_transitions, obs_dim)`` observations of all episodes, concatenated."""
        return np.concatenate([ep.obs for ep in self.episodes])

    def all_actions(self) -> np.ndarray:
        """``(num_transitions, act_dim)`` actions of all episodes, concatenated."""
        return np.concatenate([ep.actions for ep in self.episodes])


def _check_record(index: int, episode: EpisodeRecord, obs_keys: Sequence[str]) -> int:
    """Validate one record; return its length ``T``."""
    length = len(episode.actions)
    if length == 0:
        raise ValueError(f"episode {index} has no transitions")
    for group in ("obs", "next_obs"):
        mapping = getattr(episode, group)
        for key in obs_keys:
            if key not in mapping:
                raise ValueError(f"episode {index} {group} lacks key {key!r}; it has {sorted(mapping)}")
            if len(mapping[key]) != length:
                raise ValueError(f"episode {index} {group}[{key!r}] has {len(mapping[key])} rows; expected {length}")
    for name in ("rewards", "dones", "states"):
        value = getattr(episode, name)
        if value is not None and len(value) != length:
            raise ValueError(f"episode {index} {name} has {len(value)} rows; expected {length}")
    return length


def write_demos(
    path: str | os.PathLike,
    episodes: Sequence[EpisodeRecord],
    env_args: dict[str, Any],
    obs_keys: Sequence[str],
) -> None:
    """Write ``episodes`` to ``path`` in robomimic's HDF5 layout, atomically.

    The file is written to a temporary file in the same directory and renamed into place; if
    anything fails, no file is left behind (an existing file at ``path`` stays untouched).

    Args:
        path: destination ``.hdf5`` file.
        episodes: the demos; each becomes ``data/demo_<i>`` (``i`` from 0).
        env_args: ``{"env_name", "type", "env_kwargs"}``, stored as JSON in ``data.attrs["env_args"]``.
        obs_keys: observation keys to store under ``obs/`` and ``next_obs/``.
    """
    if not episodes:
        raise ValueError(f"no episodes to write to {str(path)!r}")
    lengths = [_check_record(i, ep, obs_keys) for i, ep in enumerate(episodes)]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp_name, "w") as f:
            data = f.create_group("data")
            names = []
            for i, (episode, length) in enumerate(zip(episodes, lengths, strict=True)):
                name = f"demo_{i}"
                names.append(name)
                demo = data.create_group(name)
                demo.attrs["num_samples"] = length
                for key in obs_keys:
                    demo.create_dataset(f"obs/{key}", data=np.asarray(episode.obs[key]))
                    demo.create_dataset(f"next_obs/{key}", data=np.asarray(episode.next_obs[key]))
                demo.create_dataset("actions", data=np.asarray(episode.actions, dtype=np.float64))
                demo.create_dataset("rewards", data=np.asarray(episode.rewards, dtype=np.float64))
                demo.create_dataset("dones", data=np.asarray(episode.dones, dtype=np.int64))
                if episode.states is not None:
                    demo.create_dataset("states", data=np.asarray(episode.states, dtype=np.float64))
                if episode.model_file is not None:
                    demo.attrs["model_file"] = episode.model_file
            data.attrs["total"] = int(sum(lengths))
            data.attrs["env_args"] = json.dumps(env_args)
            f.create_dataset("mask/train", data=np.array(names, dtype="S"))
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _demo_order(name: str) -> tuple[int, int | str]:
    match = re.fullmatch(r"demo_(\d+)", name)
    return (0, int(match.group(1))) if match else (1, name)


def _read_episode(path: str, name: str, demo: h5py.Group, obs_keys: Sequence[str]) -> DemoEpisode:
    def fail(problem: str) -> DemoDatasetError:
        return DemoDatasetError(f"{path}: data/{name}: {problem}")

    for required in ("obs", "actions", "rewards", "dones"):
        if required not in demo:
            raise fail(f"has no {required!r}; it has {sorted(demo)}")

    def concat(group_name: str) -> np.ndarray:
        group = demo[group_name]
        parts = []
        for key in obs_keys:
            if key not in group:
                raise fail(f"{group_name} lacks key {key!r}; available keys: {sorted(group)}")
            value = np.asarray(group[key][()], dtype=np.float32)
            parts.append(value.reshape(len(value), -1))
        if len({len(p) for p in parts}) > 1:
            raise fail(f"{group_name} keys have ragged lengths {dict(zip(obs_keys, map(len, parts), strict=True))}")
        return np.concatenate(parts, axis=1)

    obs = concat("obs")
    next_obs = concat("next_obs") if "next_obs" in demo else None
    actions = np.asarray(demo["actions"][()], dtype=np.float32)
    rewards = np.asarray(demo["rewards"][()], dtype=np.float32).reshape(-1)
    dones = np.asarray(demo["dones"][()]).reshape(-1).astype(bool)
    lengths = {"obs": len(obs), "actions": len(actions), "rewards": len(rewards), "dones": len(dones)}
    if next_obs is not None:
        lengths["next_obs"] = len(next_obs)
    if "num_samples" in demo.attrs:
        lengths["num_samples attr"] = int(demo.attrs["num_samples"])
    if len(set(lengths.values())) > 1:
        raise fail(f"ragged lengths {lengths}")
    if len(actions) == 0:
        raise fail("has no transitions")
    actions = actions.reshape(len(actions), -1)
    return DemoEpisode(obs=obs, next_obs=next_obs, actions=actions, rewards=rewards, dones=dones)


def load_demos(
    path: str | os.PathLike,
    obs_keys: Sequence[str] | None = None,
    *,
    filter_key: str | None = None,
) -> DemoDataset:
    """Read a robomimic-layout HDF5 file (ours or one made with robomimic's own tools).

    Args:
        path: the ``.hdf5`` file.
        obs_keys: observation keys to concatenate, in order. ``None``: the keys of our task whose
            simulator name is ``env_args["env_name"]``, else the file's keys, sorted.
        filter_key: read only the demos listed in ``mask/<filter_key>`` (e.g. ``"train"``).

    Raises:
        DemoDatasetError (a ``ValueError``) naming the file and the problem: missing file, not
        HDF5 or corrupt, no ``data`` group, no demos, a missing key (with the available ones),
        ragged lengths.
    """
    path_str = str(path)
    if not Path(path).is_file():
        raise DemoDatasetError(f"{path_str}: no such file")
    try:
        with h5py.File(path_str, "r") as f:
            episodes, keys, env_args = _read_file(path_str, f, obs_keys, filter_key)
    except OSError as error:
        raise DemoDatasetError(f"{path_str}: not a readable HDF5 file ({error})") from error
    return DemoDataset(episodes=episodes, obs_keys=keys, env_args=env_args, sha256=file_sha256(path_str), path=path_str)


def _read_file(
    path: str, f: h5py.File, obs_keys: Sequence[str] | None, filter_key: str | None
) -> tuple[list[DemoEpisode], tuple[str, ...], dict[str, Any]]:
    if "data" not in f:
        raise DemoDatasetError(f"{path}: no 'data' group; top-level entries: {sorted(f)}")
    data = f["data"]
    env_args = _read_env_args(path, data)
    names = sorted(data, key=_demo_order)
    if filter_key is not None:
        mask_path = f"mask/{filter_key}"
        if mask_path not in f:
            available = sorted(f["mask"]) if "mask" in f else []
            raise DemoDatasetError(f"{path}: no filter key {filter_key!r}; available: {available}")
        names = sorted((n.decode() if isinstance(n, bytes) else str(n) for n in f[mask_path][()]), key=_demo_order)
    if not names:
        raise DemoDatasetError(f"{path}: 'data' holds no demos")
    keys = tuple(obs_keys) if obs_keys is not None else _default_obs_keys(path, data[names[0]], env_args)
    episodes = []
    for name in names:
        if name not in data:
            raise DemoDatasetError(f"{path}: mask/{filter_key} lists demo {name!r}, which is not in 'data'")
        episodes.append(_read_episode(path, name, data[name], keys))
    for label, dims in (
        ("obs_dim", {ep.obs.shape[1] for ep in episodes}),
        ("act_dim", {ep.actions.shape[1] for ep in episodes}),
    ):
        if len(dims) > 1:
            raise DemoDatasetError(f"{path}: demos disagree on {label}: {sorted(dims)}")
    return episodes, keys, env_args


def _read_env_args(path: str, data: h5py.Group) -> dict[str, Any]:
    if "env_args" not in data.attrs:
        return {}
    try:
        env_args = json.loads(data.attrs["env_args"])
    except (TypeError, json.JSONDecodeError) as error:
        raise DemoDatasetError(f"{path}: data.attrs['env_args'] is not valid JSON ({error})") from error
    if not isinstance(env_args, dict):
        raise DemoDatasetError(f"{path}: data.attrs['env_args'] is {type(env_args).__name__}; expected a JSON object")
    return env_args


def _default_obs_keys(path: str, first_demo: h5py.Group, env_args: dict[str, Any]) -> tuple[str, ...]:
    spec = task_for_env_name(str(env_args.get("env_name", "")))
    if spec is not None:
        return spec.obs_keys
    if "obs" not in first_demo:
        raise DemoDatasetError(f"{path}: demo has no 'obs' group; it has {sorted(first_demo)}")
    return tuple(sorted(first_demo["obs"]))
