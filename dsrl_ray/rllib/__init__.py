"""DSRL on RLlib: everything that imports Ray. Importing it has no side effects.

Modules: ``config`` (:class:`DSRLConfig`), ``algorithm`` (:class:`DSRL`), ``module``
(:class:`DSRLTorchRLModule`), ``learner`` (:class:`DSRLTorchLearner`), ``env`` (the
registered envs), ``episodes`` (runner episodes -> replay rows), ``callbacks`` (success
metrics), ``tensorboard`` (:class:`TensorBoardLogger`), ``noise_policy`` (a trained pi_w
from a checkpoint), ``registration``, ``sac_training`` (plain SAC for the gym tasks' learned
demonstrators).
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "DSRL": "algorithm",
    "DSRLConfig": "config",
    "DSRLTorchLearner": "learner",
    "DSRLTorchRLModule": "module",
    "TensorBoardLogger": "tensorboard",
    "register": "registration",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the submodule that holds ``name`` on first use (so ``import dsrl_ray`` stays free of Ray)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
