"""Validation and dict conversion shared by the architecture dataclasses of every policy type."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import Any, Self

from dsrl_ray.policies.network import check_residual_dims, get_activation


def check_positive_int(name: str, value: object) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an ``int`` (not a bool) >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r}; expected an integer >= 1")


def check_dims(name: str, value: Sequence[int]) -> tuple[int, ...]:
    """``value`` as a tuple; ``ValueError`` naming ``name`` unless it is a non-empty list of ints >= 1."""
    dims = tuple(value)
    if not dims or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dims):
        raise ValueError(f"{name}={list(dims)}; expected a non-empty list of integers >= 1")
    return dims


def check_network_fields(arch: Any) -> None:
    """Validate (and normalise to tuples) the network fields every architecture dataclass has.

    The fields: ``obs_dim``, ``act_dim``, ``chunk_len``, ``cond_steps``, ``time_dim`` (ints >= 1,
    ``time_dim`` even and >= 4), ``mlp_dims`` and ``cond_mlp_dims`` (lists of widths; the latter
    may be ``None``), ``activation`` (a name in :data:`~dsrl_ray.policies.network.ACTIVATIONS`) and
    ``residual_style`` (then ``mlp_dims`` must suit a residual MLP). ``arch`` must be a frozen
    dataclass; called from its ``__post_init__``.
    """
    for name in ("obs_dim", "act_dim", "chunk_len", "cond_steps", "time_dim"):
        check_positive_int(name, getattr(arch, name))
    object.__setattr__(arch, "mlp_dims", check_dims("mlp_dims", arch.mlp_dims))
    if arch.cond_mlp_dims is not None:
        object.__setattr__(arch, "cond_mlp_dims", check_dims("cond_mlp_dims", arch.cond_mlp_dims))
    if arch.time_dim < 4 or arch.time_dim % 2:
        raise ValueError(f"time_dim={arch.time_dim}; expected an even integer >= 4")
    get_activation(arch.activation)
    if arch.residual_style:
        check_residual_dims(arch.mlp_dims)


class ArchDict:
    """Mixin for architecture dataclasses: plain-Python :meth:`to_dict` and a strict :meth:`from_dict`."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (lists for tuples of widths) that :meth:`from_dict` inverts."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`; ``ValueError`` naming any key that is not a field."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields {unknown}; expected a subset of {sorted(known)}")
        return cls(**d)
