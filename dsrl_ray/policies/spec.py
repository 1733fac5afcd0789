"""The frozen base policy pi_dp as every process sees it: where it comes from, and its digest.

A base policy comes from one of three sources: our ``pretrain`` checkpoint, a DPPO checkpoint
(``dppo_kwargs``), or a user's factory function (``factory="package.module:function"`` with
``factory_kwargs``) returning any object with the base-policy interface (see
:func:`check_base_policy`). Every process that needs pi_dp (env runners, evaluation runners,
the learner) rebuilds it from the spec and checks its digest against the one recorded when the
algorithm was first built: the checkpoint file's sha256, or, for a factory, the sha256 of the
factory's source file and of every file its keyword arguments name. A run (or a restored
checkpoint) can so never silently pair trained noise-policy weights with a different base policy.
"""

from __future__ import annotations

import hashlib
import json
import os
import importlib
import inspect
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


class BasePolicyFactoryError(ValueError):
    """A ``base_policy_factory`` cannot be found or called with its keyword arguments."""


class BasePolicyInterfaceError(TypeError):
    """An object offered as a base policy lacks part of the interface (the message names the part)."""


@dataclass(frozen=True)
class BasePolicySpec:
    """Where pi_dp comes from.

    Attributes:
        path: our ``pretrain`` checkpoint (``pretrain_step_*.pt``) or a DPPO ``state_*.pt``
            (``None`` with a factory).
        sha256: the digest the source must have (``None``: not checked); see :func:`spec_digest`.
        dppo_kwargs: if given, ``path`` is a DPPO checkpoint loaded with
            ``dsrl_ray.policies.load_dppo(path, **dppo_kwargs)``.
        factory: ``"package.module:function"``; the function, called with ``factory_kwargs``,
            returns the base policy. Excludes ``path``.
        factory_kwargs: keyword arguments of the factory (plain values; strings naming existing
            files are part of the digest).
    """

    path: str | None = None
    sha256: str | None = None
    dppo_kwargs: Mapping[str, Any] | None = field(default=None)
    factory: str | None = None
    factory_kwargs: Mapping[str, Any] | None = field(default=None)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.factory is None):
            raise ValueError(
                f"base policy spec has path={self.path!r} and factory={self.factory!r}; expected exactly one of them "
                "(a checkpoint file, or a 'package.module:function' factory)"
            )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "dppo_kwargs": dict(self.dppo_kwargs or {}) or None,
            "factory": self.factory,
            "factory_kwargs": dict(self.factory_kwargs or {}) or None,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BasePolicySpec:
        return cls(
            path=None if d.get("path") is None else str(d["path"]),
            sha256=d.get("sha256"),
            dppo_kwargs=d.get("dppo_kwargs"),
            factory=d.get("factory"),
            factory_kwargs=d.get("factory_kwargs"),
        )


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


def resolve_factory(factory: str) -> Any:
    """The function named ``"package.module:function"``; clear errors for a malformed or missing name."""
    module_name, sep, attr = factory.partition(":")
    if not sep or not module_name or not attr:
        raise BasePolicyFactoryError(f"base_policy_factory={factory!r}; expected 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise BasePolicyFactoryError(
            f"base_policy_factory={factory!r}: cannot import module {module_name!r} ({err}); expected a module on "
            "the PYTHONPATH of the driver and of every Ray worker"
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise BasePolicyFactoryError(f"base_policy_factory={factory!r}: module {module_name!r} has no function {attr!r}")
    return fn


def _factory_files(spec: BasePolicySpec) -> list[str]:
    """The factory's source file, then every keyword-argument string that names an existing file."""
    source = inspect.getsourcefile(resolve_factory(spec.factory))
    files = [os.path.abspath(source)] if source else []
    for value in (spec.factory_kwargs or {}).values():
        if isinstance(value, str) and os.path.isfile(value):
            files.append(os.path.abspath(value))
    return files


def spec_digest(spec: BasePolicySpec) -> str:
    """The digest that identifies the base policy: the checkpoint's sha256, or for a factory the sha256
    over its name, its keyword arguments and the sha256 of each of its files."""
    if spec.factory is None:
        return file_sha256(spec.path)
    digest = hashlib.sha256(spec.factory.encode())
    digest.update(json.dumps(dict(spec.factory_kwargs or {}), sort_keys=True, default=str).encode())
    for path in _factory_files(spec):
        digest.update(f"{path}:{file_sha256(path)}".encode())
    return digest.hexdigest()


def check_digest(spec: BasePolicySpec) -> str:
    """Return :func:`spec_digest`; raise :class:`BasePolicyMismatchError` if it differs from ``spec.sha256``."""
    if spec.factory is None:
        return check_sha256(spec.path, spec.sha256)
    actual = spec_digest(spec)
    if spec.sha256 is not None and actual != spec.sha256:
        raise BasePolicyMismatchError(
            f"base policy factory {spec.factory!r} (files {_factory_files(spec)}) has digest {actual}, but this "
            f"run/checkpoint was built with {spec.sha256}; refusing to pair the trained noise policy with a "
            "different base policy (restore the original files, or start a new run)"
        )
    return actual


def check_base_policy(policy: Any, source: str) -> None:
    """Raise :class:`BasePolicyInterfaceError` naming the missing or ill-shaped part of the interface.

    The interface: integer ``obs_dim``, ``chunk_len``, ``act_dim``; ``noise_shape == (chunk_len,
    act_dim)``; a ``normalizer`` with ``normalize_obs`` and ``unnormalize_action``; and
    ``sample(obs (B, obs_dim), noise (B, chunk_len, act_dim)) -> (B, chunk_len, act_dim)`` tensors.
    """
    for name in ("obs_dim", "chunk_len", "act_dim"):
        value = getattr(policy, name, None)
        if not isinstance(value, int) or value < 1:
            raise BasePolicyInterfaceError(
                f"{source} returned a {type(policy).__name__} whose {name}={value!r}; expected a positive int attribute"
            )
    expected = (policy.chunk_len, policy.act_dim)
    if tuple(getattr(policy, "noise_shape", ())) != expected:
        raise BasePolicyInterfaceError(
            f"{source}: noise_shape={getattr(policy, 'noise_shape', None)!r}; expected (chunk_len, act_dim) = {expected}"
        )
    normalizer = getattr(policy, "normalizer", None)
    for name in ("normalize_obs", "unnormalize_action"):
        if not callable(getattr(normalizer, name, None)):
            raise BasePolicyInterfaceError(f"{source}: normalizer lacks the method {name!r} (expected a Normalizer)")
    if not callable(getattr(policy, "sample", None)):
        raise BasePolicyInterfaceError(
            f"{source}: {type(policy).__name__} has no method 'sample'; expected "
            f"sample(obs (B, {policy.obs_dim}), noise (B, {policy.chunk_len}, {policy.act_dim})) -> "
            f"(B, {policy.chunk_len}, {policy.act_dim})"
        )
    out = policy.sample(torch.zeros(2, policy.obs_dim), torch.zeros(2, *expected))
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, *expected):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise BasePolicyInterfaceError(
            f"{source}: sample(obs (2, {policy.obs_dim}), noise (2, {expected[0]}, {expected[1]})) returned {shape}; "
            f"expected a tensor of shape (2, {expected[0]}, {expected[1]})"
        )


def _build(spec: BasePolicySpec, device: str | torch.device) -> BasePolicy:
    if spec.factory is not None:
        fn = resolve_factory(spec.factory)
        kwargs = dict(spec.factory_kwargs or {})
        try:
            inspect.signature(fn).bind(**kwargs)
        except TypeError as err:
            raise BasePolicyFactoryError(
                f"base_policy_factory {spec.factory!r} cannot take base_policy_factory_kwargs {kwargs} ({err}); "
                f"expected keywords of {spec.factory.partition(':')[2]}{inspect.signature(fn)}"
            ) from None
        policy = fn(**kwargs)
        check_base_policy(policy, f"base_policy_factory {spec.factory!r}")
        return policy.to(device) if isinstance(policy, torch.nn.Module) else policy
    if spec.dppo_kwargs:
        return load_dppo(spec.path, map_location=device, **dict(spec.dppo_kwargs))
    return load_policy(spec.path, map_location=device)


_CACHE: dict[tuple[str, str, str], BasePolicy] = {}


def load_base_policy(spec: BasePolicySpec, device: str | torch.device = "cpu") -> BasePolicy:
    """pi_dp in eval mode with gradients off, after checking its digest (:func:`check_digest`).

    Policies are cached per process (keyed by source, digest and device), so a runner's envs and
    its RLModule share one load. Callers must not modify it.
    """
    digest = check_digest(spec)
    key = (json.dumps(spec.to_dict() | {"sha256": None}, sort_keys=True, default=str), digest, str(device))
    if key not in _CACHE:
        policy = _build(spec, device)
        if isinstance(policy, torch.nn.Module):
            policy = policy.eval().requires_grad_(False)
        _CACHE[key] = policy
    return _CACHE[key]
