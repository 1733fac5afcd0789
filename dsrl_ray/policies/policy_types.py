"""The base-policy types we can pretrain and checkpoint: ``"diffusion"`` (DDIM) and ``"flow"``.

Each type pairs an architecture dataclass (whose ``policy_type`` class attribute names the type)
with its policy class; both classes share the network fields, and differ in their sampler fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from dsrl_ray.policies.diffusion_policy import DiffusionArch, DiffusionPolicy
from dsrl_ray.policies.flow_policy import FlowArch, FlowPolicy
from dsrl_ray.policies.normalizer import Normalizer

PolicyArch = DiffusionArch | FlowArch
TrainablePolicy = DiffusionPolicy | FlowPolicy

DEFAULT_POLICY_TYPE = "diffusion"
POLICY_TYPES: dict[str, tuple[type[PolicyArch], type[TrainablePolicy]]] = {
    "diffusion": (DiffusionArch, DiffusionPolicy),
    "flow": (FlowArch, FlowPolicy),
}
"""``policy_type -> (architecture class, policy class)``."""


def policy_classes(policy_type: str, where: str = "") -> tuple[type[PolicyArch], type[TrainablePolicy]]:
    """The architecture and policy classes of ``policy_type``.

    Raises:
        ValueError: an unknown type (names it, after ``where`` if given, and the known ones).
    """
    try:
        return POLICY_TYPES[policy_type]
    except (KeyError, TypeError):
        prefix = f"{where}: " if where else ""
        raise ValueError(
            f"{prefix}policy_type={policy_type!r} is not a known policy type; expected one of {sorted(POLICY_TYPES)}"
        ) from None


def build_policy(arch: PolicyArch, normalizer: Normalizer | None = None) -> TrainablePolicy:
    """A freshly initialised policy of ``arch``'s type (uses torch's global random state)."""
    _, policy_class = policy_classes(getattr(arch, "policy_type", None), f"architecture {type(arch).__name__}")
    return policy_class(arch, normalizer)


def make_arch(
    policy_type: str,
    *,
    obs_dim: int,
    act_dim: int,
    chunk_len: int,
    preset: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> PolicyArch:
    """The architecture of ``policy_type`` for a task, from a preset shared by all types plus overrides.

    Args:
        policy_type: ``"diffusion"`` or ``"flow"``.
        obs_dim, act_dim, chunk_len: the task's dimensions.
        preset: fields of any type's architecture (e.g. a task preset written for diffusion); the
            fields ``policy_type``'s architecture lacks but another type's has (``ddim_steps`` for
            flow, ``flow_steps`` for diffusion, ...) are dropped.
        overrides: fields of ``policy_type``'s architecture, applied last.

    Raises:
        ValueError: an unknown type, a preset field no type has, an override field this type lacks,
            a dimension in ``preset`` or ``overrides``, or a bad value (each named).
    """
    arch_class, _ = policy_classes(policy_type)
    own = {f.name for f in fields(arch_class)}
    any_type = {f.name for cls, _ in POLICY_TYPES.values() for f in fields(cls)}
    preset, overrides = dict(preset or {}), dict(overrides or {})
    dims = sorted({"obs_dim", "act_dim", "chunk_len"} & (set(preset) | set(overrides)))
    if dims:
        raise ValueError(f"preset/overrides set {dims}; expected the task's dimensions only as arguments")
    unknown = sorted(set(preset) - any_type)
    if unknown:
        raise ValueError(f"preset arch fields {unknown} belong to no policy type; known fields: {sorted(any_type)}")
    foreign = sorted(set(overrides) - own)
    if foreign:
        raise ValueError(
            f"arch overrides {foreign} are not fields of a {policy_type!r} policy ({arch_class.__name__}); "
            f"expected a subset of {sorted(own)}"
        )
    kept = {k: v for k, v in preset.items() if k in own}
    return arch_class(obs_dim=obs_dim, act_dim=act_dim, chunk_len=chunk_len, **{**kept, **overrides})
