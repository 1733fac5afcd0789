"""Strict loading of ``network.*`` weights with errors that name the key and both shapes."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

NETWORK_PREFIX = "network."
_SHOWN = 8


def _preview(keys: list[str]) -> str:
    more = f" (+{len(keys) - _SHOWN} more)" if len(keys) > _SHOWN else ""
    return f"{keys[:_SHOWN]}{more}"


def load_network_state(
    policy: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    source: str,
    explain: Callable[[str], str],
) -> None:
    """Copy the ``network.*`` entries of ``state`` into ``policy``; other entries are ignored.

    Args:
        policy: module whose ``state_dict()`` keys all start with ``network.``.
        state: flat state dict, e.g. a DPPO checkpoint's ``ema`` entry.
        source: how to name ``state`` in errors, e.g. ``"checkpoint 'x.pt' ['ema']"``.
        explain: maps a key to the arguments that fix its shape, e.g. ``"mlp_dims=[512, 512, 512]"``.

    Raises:
        KeyError: a key the architecture needs is absent (names the key and its expected shape).
        ValueError: a shape differs (names key, expected and found shapes), or ``state`` has
            ``network.*`` keys the architecture does not build.
    """
    expected = policy.state_dict()
    given = {k: v for k, v in state.items() if k.startswith(NETWORK_PREFIX)}
    missing = [k for k in expected if k not in given]
    if missing:
        k = missing[0]
        raise KeyError(
            f"{source} lacks {k!r}, which {explain(k)} gives shape {tuple(expected[k].shape)}; "
            f"missing keys: {_preview(missing)}; the checkpoint's network keys: {_preview(sorted(given))}"
        )
    for k, ours in expected.items():
        theirs = given[k]
        if tuple(theirs.shape) != tuple(ours.shape):
            raise ValueError(
                f"{explain(k)} gives {k} shape {tuple(ours.shape)} but {source} has {tuple(theirs.shape)}"
            )
    unexpected = sorted(set(given) - set(expected))
    if unexpected:
        raise ValueError(
            f"{source} has network keys that {explain(unexpected[0])} does not build: {_preview(unexpected)}"
        )
    policy.load_state_dict(given, strict=True)
