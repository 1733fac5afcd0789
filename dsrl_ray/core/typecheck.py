"""Check plain values (from YAML or keyword arguments) against type annotations and field bounds.

One checker serves the experiment YAML loader and ``DSRLConfig.validate()``, so both accept the
same values and describe what they expected in the same words.

Supported annotations: ``bool``, ``int``, ``float`` (ints accepted and converted), ``str``,
``Literal[...]`` of strings, ``list[T]`` (non-empty), ``dict`` (any mapping), unions of these
with ``None``. Field metadata: :data:`MIN` / :data:`MAX` (inclusive bounds),
:data:`MIN_EXCLUSIVE` (strict lower bound) and :data:`PATH` (strings resolved to absolute
paths by :func:`convert` when ``resolve_paths`` is set).
"""

from __future__ import annotations

import dataclasses
import numbers
import os
import types
import typing
from typing import Any, Literal, Mapping, Union

MIN = "min"
"""Field metadata: the smallest allowed value of a number (inclusive)."""
MIN_EXCLUSIVE = "min_exclusive"
"""Field metadata: numbers must be strictly greater than this."""
MAX = "max"
"""Field metadata: the largest allowed value of a number (inclusive)."""
PATH = "path"
"""Field metadata flag: a file path."""


class TypeCheckError(ValueError):
    """A value does not fit its annotation; ``expected`` says in words what would."""

    def __init__(self, value: Any, expected: str) -> None:
        super().__init__(f"{value!r}: expected {expected}")
        self.value = value
        self.expected = expected


_NO_MATCH = object()


def convert(value: Any, tp: Any, metadata: Mapping[str, Any] | None = None, *, resolve_paths: bool = False) -> Any:
    """``value`` checked against annotation ``tp`` and bounds in ``metadata``, converted (int -> float).

    Dataclass annotations are not handled here (callers recurse into sections themselves).

    Raises:
        TypeCheckError: ``value`` does not fit; its ``expected`` describes ``tp`` and the bounds.
    """
    metadata = metadata or {}
    options = union_members(tp)
    if value is None:
        if type(None) in options:
            return None
        raise TypeCheckError(value, describe(tp, metadata))
    for option in options:
        if option is type(None):
            continue
        converted = _match_scalar(value, option)
        if converted is _NO_MATCH:
            continue
        if not _in_bounds(converted, metadata):
            raise TypeCheckError(value, describe(tp, metadata))
        if resolve_paths and metadata.get(PATH):
            converted = os.path.abspath(os.path.expanduser(converted))
        return converted
    raise TypeCheckError(value, describe(tp, metadata))


def _in_bounds(value: Any, metadata: Mapping[str, Any]) -> bool:
    """Numbers (and every item of a list of numbers) within the metadata's bounds."""
    if isinstance(value, list):
        return all(_in_bounds(item, metadata) for item in value)
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return True
    if MIN in metadata and value < metadata[MIN]:
        return False
    if MIN_EXCLUSIVE in metadata and value <= metadata[MIN_EXCLUSIVE]:
        return False
    return not (MAX in metadata and value > metadata[MAX])


def _match_scalar(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` if it is one (ints count as floats, bools as neither), else ``_NO_MATCH``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _NO_MATCH
    if origin is Literal:
        return value if isinstance(value, str) and value in typing.get_args(tp) else _NO_MATCH
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or not value:
            return _NO_MATCH
        items = [_match_scalar(v, item) for v in value]
        return _NO_MATCH if any(i is _NO_MATCH for i in items) else items
    if tp is dict or origin is dict:
        return dict(value) if isinstance(value, Mapping) else _NO_MATCH
    if tp is bool:
        return value if isinstance(value, bool) else _NO_MATCH
    if tp is int:
        return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else _NO_MATCH
    if tp is float:
        return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else _NO_MATCH
    if tp is str:
        return os.fspath(value) if isinstance(value, (str, os.PathLike)) else _NO_MATCH
    raise TypeError(f"unsupported annotation {tp!r}")


def union_members(tp: Any) -> tuple[Any, ...]:
    """The members of a union annotation (``(tp,)`` for anything else)."""
    if typing.get_origin(tp) in (Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def literal_values(tp: Any) -> tuple[str, ...]:
    """The allowed strings of a ``Literal[...]`` annotation (also inside ``Literal | None``)."""
    for option in union_members(tp):
        if typing.get_origin(option) is Literal:
            return typing.get_args(option)
    raise TypeError(f"{tp!r} is not a Literal annotation")


def describe(tp: Any, metadata: Mapping[str, Any] | None = None) -> str:
    """Human words for an annotation: ``a number >= 0``, ``one of 'min', 'mean'``, ``... (or null)``."""
    metadata = metadata or {}
    parts = [_describe_one(option) for option in union_members(tp) if option is not type(None)]
    text = " or ".join(parts)
    if MIN in metadata:
        text += f" >= {metadata[MIN]}"
    if MIN_EXCLUSIVE in metadata:
        text += f" > {metadata[MIN_EXCLUSIVE]}"
    if MAX in metadata:
        text += f" <= {metadata[MAX]}"
    if type(None) in union_members(tp):
        text += " (or null)"
    return text


def _describe_one(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a non-empty list of {_PLURAL[typing.get_args(tp)[0]]}"
    if tp is dict or origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return f"a mapping with keys {[f.name for f in dataclasses.fields(tp)]}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[tp]


_PLURAL = {int: "integers", float: "numbers", str: "strings"}
