"""Min/max normaliser for observations and actions, in DPPO's ``normalization.npz`` format."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

_EPS = 1e-6
_KEYS = ("obs_min", "obs_max", "action_min", "action_max")
ArrayLike = np.ndarray | torch.Tensor


@dataclass(frozen=True)
class Normalizer:
    """Maps observations to ``[-1, 1]`` and normalised actions back to environment units.

    Formulas (DPPO's): ``obs_n = 2 * ((o - min) / (max - min + 1e-6) - 0.5)`` (no clamp) and
    ``a = (a_n + 1) / 2 * (max - min) + min``. Works on numpy arrays and torch tensors of
    shape ``(..., obs_dim)`` / ``(..., act_dim)`` and keeps the input's type.
    """

    obs_min: np.ndarray
    obs_max: np.ndarray
    action_min: np.ndarray
    action_max: np.ndarray

    def __post_init__(self) -> None:
        for key in _KEYS:
            value = np.asarray(getattr(self, key), dtype=np.float32)
            if value.ndim != 1:
                raise ValueError(f"normaliser field {key!r} has shape {value.shape}; expected a 1-D vector")
            object.__setattr__(self, key, value)
        if self.obs_min.shape != self.obs_max.shape:
            raise ValueError(f"obs_min {self.obs_min.shape} and obs_max {self.obs_max.shape} differ in shape")
        if self.action_min.shape != self.action_max.shape:
            raise ValueError(
                f"action_min {self.action_min.shape} and action_max {self.action_max.shape} differ in shape"
            )

    @property
    def obs_dim(self) -> int:
        return int(self.obs_min.shape[0])

    @property
    def act_dim(self) -> int:
        return int(self.action_min.shape[0])

    def check_fits(self, obs_dim: int, act_dim: int) -> None:
        """Raise ``ValueError`` naming both pairs unless this normaliser is for ``obs_dim`` and ``act_dim``."""
        if (self.obs_dim, self.act_dim) != (obs_dim, act_dim):
            raise ValueError(
                f"normaliser has obs_dim={self.obs_dim}, act_dim={self.act_dim}; "
                f"expected obs_dim={obs_dim}, act_dim={act_dim} from the architecture"
            )

    @classmethod
    def identity(cls, obs_dim: int, act_dim: int) -> Normalizer:
        """A normaliser that leaves ``[-1, 1]`` data unchanged (up to the 1e-6 guard)."""
        return cls(-np.ones(obs_dim), np.ones(obs_dim), -np.ones(act_dim), np.ones(act_dim))

    @classmethod
    def from_data(cls, obs: np.ndarray, actions: np.ndarray) -> Normalizer:
        """Fit to ``obs`` ``(N, obs_dim)`` and ``actions`` ``(N, act_dim)``."""
        obs = np.asarray(obs, dtype=np.float64)
        actions = np.asarray(actions, dtype=np.float64)
        if obs.ndim != 2 or actions.ndim != 2 or len(obs) == 0 or len(actions) == 0:
            raise ValueError(
                f"cannot fit a normaliser to obs {obs.shape} and actions {actions.shape}; "
                "expected non-empty (N, obs_dim) and (N, act_dim) arrays"
            )
        return cls(obs.min(0), obs.max(0), actions.min(0), actions.max(0))

    @classmethod
    def from_npz(cls, path: str | os.PathLike) -> Normalizer:
        """Read DPPO's ``normalization.npz`` (keys ``obs_min``, ``obs_max``, ``action_min``, ``action_max``)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"normalisation file {str(path)!r} does not exist")
        with np.load(path) as data:
            missing = [k for k in _KEYS if k not in data.files]
            if missing:
                raise KeyError(f"normalisation file {str(path)!r} lacks keys {missing}; it has {sorted(data.files)}")
            return cls(*(data[k] for k in _KEYS))

    def to_npz(self, path: str | os.PathLike) -> None:
        """Write DPPO's ``normalization.npz`` atomically (temp file + rename)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, **self.to_dict())
        os.replace(tmp, path)

    def to_dict(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in _KEYS}

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        missing = [k for k in _KEYS if k not in d]
        if missing:
            raise KeyError(f"normaliser dict lacks keys {missing}")
        return cls(*(np.asarray(d[k]) for k in _KEYS))

    def normalize_obs(self, obs: ArrayLike) -> ArrayLike:
        lo, hi = self._like(obs, self.obs_min), self._like(obs, self.obs_max)
        return 2 * ((obs - lo) / (hi - lo + _EPS) - 0.5)

    def normalize_action(self, action: ArrayLike) -> ArrayLike:
        """Inverse of :meth:`unnormalize_action` (environment units -> ``[-1, 1]``)."""
        lo, hi = self._like(action, self.action_min), self._like(action, self.action_max)
        return 2 * (action - lo) / (hi - lo + _EPS) - 1

    def unnormalize_action(self, action: ArrayLike) -> ArrayLike:
        lo, hi = self._like(action, self.action_min), self._like(action, self.action_max)
        return (action + 1) / 2 * (hi - lo) + lo

    @staticmethod
    def _like(x: ArrayLike, v: np.ndarray) -> ArrayLike:
        if isinstance(x, torch.Tensor):
            return torch.as_tensor(v, dtype=x.dtype, device=x.device)
        return v.astype(np.asarray(x).dtype if np.issubdtype(np.asarray(x).dtype, np.floating) else np.float32)
