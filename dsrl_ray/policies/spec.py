"""The frozen base policy pi_dp as RLlib processes see it: identified by file + sha256.

Every process that needs pi_dp (env runners, evaluation runners, the learner) rebuilds it
from the checkpoint path stored in the config and checks the file's sha256 against the one
recorded when the algorithm was first built, so a run (or a restored checkpoint) can never
silently pair trained noise-policy weights with a different base policy.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch

from dsrl_ray.policies import BasePolicy, load_dppo, load_policy

def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class BasePolicyMismatchError(ValueError):
    """The base-policy file on disk is not the one this run (or checkpoint) was built with."""


@dataclass(frozen=True)
class BasePolicySpec:
    """Where pi_dp comes from.

    Attributes:
        path: our ``pretrain`` checkpoint (``pretrain_step_*.pt``) or a DPPO ``state_*.pt``.
        sha256: hex digest the file must have (``None``: not checked).
        dppo_kwargs: if given, ``path`` is a DPPO checkpoint loaded with
            ``dsrl_ray.policies.load_dppo(path, **dppo_kwargs)``.
    """

    path: str
    sha256: str | None = None
    dppo_kwargs: Mapping[str, Any] | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "dppo_kwargs": dict(self.dppo_kwargs or {}) or None}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BasePolicySpec:
        return cls(path=str(d["path"]), sha256=d.get("sha256"), dppo_kwargs=d.get("dppo_kwargs"))


def check_sha256(path: str | os.PathLike, expected: str | None) -> str:
    """Return the file's sha256; raise :class:`BasePolicyMismatchError` if it differs from ``expected``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"base policy checkpoint {str(path)!r} does not exist")
    actual = file_sha256(path)
    if expected is not None and actual != expected:
        raise BasePolicyMismatchError(
            f"base policy file {str(path)!r} has sha256 {actual}, but this run/checkpoint was built with "
            f"sha256 {expected}; refusing to pair the trained noise policy with a different base policy "
            "(restore the original file, or start a new run)"
        )
    return actual


_CACHE: dict[tuple[str, str, str, str], BasePolicy] = {}


def load_base_policy(spec: BasePolicySpec, device: str | torch.device = "cpu") -> BasePolicy:
    """pi_dp in eval mode with gradients off, after checking the file's sha256.

    Policies are cached per process (keyed by path, file digest and loader arguments), so a
    runner's envs and its RLModule share one read of the file. Callers must not modify it.
    """
    digest = check_sha256(spec.path, spec.sha256)
    kwargs_key = json.dumps(dict(spec.dppo_kwargs or {}), sort_keys=True, default=str)
    key = (os.path.abspath(spec.path), digest, kwargs_key, str(device))
    if key not in _CACHE:
        if spec.dppo_kwargs:
            policy = load_dppo(spec.path, map_location=device, **dict(spec.dppo_kwargs))
        else:
            policy = load_policy(spec.path, map_location=device)
        _CACHE[key] = policy.eval().requires_grad_(False)
    return _CACHE[key]
