"""Registration of ``"DSRL"`` with Tune/RLlib and of the ``"dsrl/<task>"`` envs.

``import dsrl_ray`` calls :func:`register_on_ray_import`: it imports nothing of Ray, and
registers at the moment Ray's registries are imported (or at once, if they already are):

- ``ray.tune.registry``: the env creators ``"dsrl/<task>"`` (cheap: no simulator is imported);
- ``ray.rllib.algorithms.registry``: ``"DSRL"`` joins RLlib's table of lazily imported
  algorithms, so ``get_trainable_cls("DSRL")`` and ``tune.Tuner("DSRL", ...)`` resolve it
  the way they resolve ``"SAC"``.

A Ray worker that unpickles a :class:`~dsrl_ray.rllib.config.DSRLConfig` imports
``dsrl_ray`` and so registers too. :func:`register` does everything eagerly (imports RLlib).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any, Callable

ALGORITHM_NAME = "DSRL"


def register() -> list[str]:
    """Register ``"DSRL"`` (Tune trainable) and every ``"dsrl/<task>"`` env now; returns the env names."""
    from ray.tune.registry import register_trainable

    from dsrl_ray.rllib.algorithm import DSRL

    register_trainable(ALGORITHM_NAME, DSRL)
    return _register_envs()


def _register_envs() -> list[str]:
    from dsrl_ray.rllib.env import register_envs

    return register_envs()


def _import_dsrl() -> tuple[type, Any]:
    """RLlib's lazy-import convention (``ray.rllib.algorithms.registry.ALGORITHMS``): class and default config."""
    from dsrl_ray.rllib.algorithm import DSRL

    return DSRL, DSRL.get_default_config()


def _join_rllib_table() -> None:
    from ray.rllib.algorithms.registry import ALGORITHMS

    ALGORITHMS.setdefault(ALGORITHM_NAME, _import_dsrl)


_HOOKS: dict[str, Callable[[], Any]] = {
    "ray.tune.registry": _register_envs,
    "ray.rllib.algorithms.registry": _join_rllib_table,
}


class _RegisterAfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of a hooked Ray module so its hook runs right after it loads."""

    def find_spec(self, name: str, path: Any, target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        hook = _HOOKS.get(name)
        if hook is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        exec_module = spec.loader.exec_module

        def exec_then_register(module: ModuleType) -> None:
            exec_module(module)
            _HOOKS.pop(name, None)
            hook()

        spec.loader.exec_module = exec_then_register  # type: ignore[method-assign]
        return spec


def register_on_ray_import() -> None:
    """Run each registration hook now if its Ray module is loaded, else right after it loads (idempotent)."""
    for name in list(_HOOKS):
        if name in sys.modules:
            _HOOKS.pop(name)()
    if _HOOKS and not any(isinstance(f, _RegisterAfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _RegisterAfterImport())
