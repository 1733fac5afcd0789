"""Our pretraining checkpoint format: one self-contained ``torch.save`` dict per file.

Keys: ``format`` (tag), ``version``, ``policy_type`` (``"diffusion"`` or ``"flow"``; files
written before flow policies existed lack it and are read as ``"diffusion"``), ``arch`` (the
type's ``DiffusionArch.to_dict()`` or ``FlowArch.to_dict()``), ``normalizer`` (four float32
tensors), ``model`` and ``ema`` (policy state dicts, ``network.*`` keys as in DPPO),
``optimizer``, ``step``, ``rng`` (generator states), ``dataset_sha256``, ``meta`` (caller's
free-form dict of plain values), ``config`` and ``loss_history``. Files are named
``pretrain_step_<8-digit step>.pt`` and always written atomically.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import torch

from dsrl_ray.policies.atomic import atomic_torch_save
from dsrl_ray.policies.normalizer import Normalizer
from dsrl_ray.policies.policy_types import DEFAULT_POLICY_TYPE, TrainablePolicy, policy_classes
from dsrl_ray.policies.state_check import load_network_state

FORMAT_TAG = "dsrl_ray.diffusion_policy"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("format", "version", "arch", "normalizer", "model", "ema", "step", "dataset_sha256")
_NAME = re.compile(r"^pretrain_step_(\d{8})\.pt$")


class PolicyCheckpointError(ValueError):
    """A file that should be one of our checkpoints is unreadable, of another format or version, or of another run."""


def checkpoint_path(out_dir: str | os.PathLike, step: int) -> Path:
    """File name of the checkpoint taken after ``step`` gradient steps."""
    return Path(out_dir) / f"pretrain_step_{step:08d}.pt"


def list_checkpoints(out_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, path)`` of every checkpoint in ``out_dir``, oldest first (empty if no folder)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in out_dir.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(out_dir: str | os.PathLike) -> Path | None:
    """The checkpoint with the most steps in ``out_dir``, or ``None``."""
    found = list_checkpoints(out_dir)
    return found[-1][1] if found else None


def resolve_policy_path(path: str | os.PathLike) -> Path:
    """A checkpoint file, or the newest ``pretrain_step_*.pt`` in a directory."""
    path = Path(path)
    if path.is_dir():
        newest = latest_checkpoint(path)
        if newest is None:
            raise FileNotFoundError(f"directory {str(path)!r} holds no pretrain_step_*.pt checkpoint")
        return newest
    if not path.exists():
        raise FileNotFoundError(f"policy checkpoint {str(path)!r} does not exist")
    return path


def is_pretrain_checkpoint(path: str | os.PathLike) -> bool:
    """``path`` is one of ours: a pretrain directory, or a file tagged with :data:`FORMAT_TAG`.

    ``False`` for anything else (a DPPO ``state_*.pt``, a missing or unreadable file); loading it
    then reports what is wrong.
    """
    path = Path(path)
    if path.is_dir():
        return True
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, pickle.UnpicklingError, RuntimeError, EOFError):
        return False
    return isinstance(ckpt, dict) and ckpt.get("format") == FORMAT_TAG


def normalizer_to_tensors(normalizer: Normalizer) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v.copy()) for k, v in normalizer.to_dict().items()}


def write_checkpoint(payload: dict, path: str | os.PathLike) -> Path:
    """Tag ``payload`` with the format and version and write it atomically to ``path``.

    ``payload["policy_type"]`` defaults to ``"diffusion"`` and must name a known type.
    """
    missing = [k for k in REQUIRED_KEYS if k not in payload and k not in ("format", "version")]
    if missing:
        raise KeyError(f"checkpoint payload lacks keys {missing}; required: {list(REQUIRED_KEYS)}")
    policy_type = payload.get("policy_type", DEFAULT_POLICY_TYPE)
    policy_classes(policy_type, "checkpoint payload")
    tagged = {"format": FORMAT_TAG, "version": FORMAT_VERSION, **payload, "policy_type": policy_type}
    return atomic_torch_save(tagged, path)


def checkpoint_policy_type(ckpt: dict) -> str:
    """The ``policy_type`` of a checkpoint dict; ``"diffusion"`` for files that predate the key."""
    return ckpt.get("policy_type", DEFAULT_POLICY_TYPE)


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load and validate one of our checkpoints.

    Raises:
        FileNotFoundError: no file at ``path``.
        PolicyCheckpointError: not a torch file, not our format, or a newer version.
        KeyError: a required key is absent (named).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"policy checkpoint {str(path)!r} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise PolicyCheckpointError(
            f"policy checkpoint {str(path)!r} is not a readable torch file (torch.load: {type(err).__name__}); "
            "expected a pretrain_step_*.pt written by `dsrl-ray pretrain`"
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT_TAG:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        hint = " (a DPPO checkpoint? use load_dppo)" if isinstance(ckpt, dict) and "ema" in ckpt else ""
        raise PolicyCheckpointError(f"{str(path)!r} has format {found!r}; expected {FORMAT_TAG!r}{hint}")
    if ckpt.get("version", 0) > FORMAT_VERSION:
        raise PolicyCheckpointError(
            f"{str(path)!r} has version {ckpt.get('version')}; this code reads up to {FORMAT_VERSION}"
        )
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise KeyError(f"policy checkpoint {str(path)!r} lacks keys {missing}; it has {sorted(ckpt)}")
    return ckpt


def policy_from_checkpoint(ckpt: dict, *, use_ema: bool = True, source: str = "checkpoint") -> TrainablePolicy:
    """Rebuild the policy stored in a validated checkpoint dict (weights from ``ema`` or ``model``).

    Returns a :class:`~dsrl_ray.policies.DiffusionPolicy` or :class:`~dsrl_ray.policies.FlowPolicy`
    according to the checkpoint's ``policy_type``.

    Raises:
        PolicyCheckpointError: an unknown ``policy_type`` (named, with the known ones).
        ValueError: an ``arch`` that does not fit the type.
    """
    try:
        arch_class, policy_class = policy_classes(checkpoint_policy_type(ckpt), source)
    except ValueError as err:
        raise PolicyCheckpointError(str(err)) from None
    arch = arch_class.from_dict(ckpt["arch"])
    policy = policy_class(arch, Normalizer.from_dict(ckpt["normalizer"]))
    entry = "ema" if use_ema else "model"
    load_network_state(policy, ckpt[entry], source=f"{source} [{entry!r}]", explain=lambda key: f"arch {arch}")
    return policy


def load_policy(
    path: str | os.PathLike, use_ema: bool = True, map_location: str | torch.device = "cpu"
) -> TrainablePolicy:
    """Load a policy written by :func:`dsrl_ray.policies.pretrain`, in eval mode with gradients off.

    Args:
        path: a ``pretrain_step_*.pt`` file.
        use_ema: take the EMA weights (default) instead of the raw model.
        map_location: device to read onto and to place the policy on.

    Returns:
        A :class:`~dsrl_ray.policies.DiffusionPolicy` or :class:`~dsrl_ray.policies.FlowPolicy`,
        as the checkpoint's ``policy_type`` says (no key: diffusion).
    """
    ckpt = read_checkpoint(path, map_location)
    policy = policy_from_checkpoint(ckpt, use_ema=use_ema, source=f"policy checkpoint {str(path)!r}")
    return policy.to(map_location).eval().requires_grad_(False)
