"""Behaviour-cloning pretraining of a diffusion or flow policy with resumable checkpoints.

The architecture chooses the type: a :class:`DiffusionArch` trains a :class:`DiffusionPolicy`
(DDPM loss), a :class:`FlowArch` a :class:`FlowPolicy` (flow-matching loss); both through
``policy.bc_loss``.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from dsrl_ray.policies.bc_data import Episode, check_episodes, make_training_pairs
from dsrl_ray.policies.checkpoint import (
    PolicyCheckpointError,
    checkpoint_path,
    checkpoint_policy_type,
    latest_checkpoint,
    list_checkpoints,
    normalizer_to_tensors,
    policy_from_checkpoint,
    read_checkpoint,
    write_checkpoint,
)
from dsrl_ray.policies.diffusion_policy import DiffusionArch
from dsrl_ray.policies.flow_policy import FlowArch
from dsrl_ray.policies.normalizer import Normalizer
from dsrl_ray.policies.policy_types import PolicyArch, TrainablePolicy, build_policy

LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class PretrainConfig:
    """Optimisation settings.

    Attributes:
        steps: total gradient steps (a resumed run continues up to this number).
        batch_size: pairs per step.
        lr, weight_decay: AdamW settings.
        ema_decay: EMA factor per update; before ``ema_start`` steps the EMA copies the model.
        ema_start: step from which the EMA averages.
        ema_every: steps between EMA updates.
        lr_schedule: ``"constant"`` or ``"cosine"`` (from ``lr`` down to ``lr_min`` at ``steps``).
        lr_min: final learning rate of the cosine schedule.
        checkpoint_every: steps between checkpoints (the last step is always saved).
        keep_checkpoints: how many of the newest checkpoints to keep in ``out_dir``.
        log_every: steps averaged into one loss-history entry.
        seed: seeds batch sampling, diffusion/flow times and noise.
        device: torch device to train on.
        progress: show a tqdm bar.
    """

    steps: int
    batch_size: int = 256
    lr: float = 1e-4
    weight_decay: float = 1e-6
    ema_decay: float = 0.995
    ema_start: int = 500
    ema_every: int = 1
    lr_schedule: str = "constant"
    lr_min: float = 1e-5
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    log_every: int = 100
    seed: int = 0
    device: str = "cpu"
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "ema_every", "checkpoint_every", "keep_checkpoints", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PretrainConfig.{name}={value!r}; expected an integer >= 1")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"PretrainConfig.lr_schedule={self.lr_schedule!r}; expected one of {LR_SCHEDULES}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"PretrainConfig.ema_decay={self.ema_decay}; expected 0 <= ema_decay < 1")

    def lr_at(self, step: int) -> float:
        """Learning rate for the gradient step that starts after ``step`` steps."""
        if self.lr_schedule == "constant":
            return self.lr
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1.0 + math.cos(math.pi * step / self.steps))


@dataclass
class PretrainResult:
    """Outcome of :func:`pretrain`.

    Attributes:
        checkpoint: path of the final checkpoint.
        loss_history: ``(step, mean loss over the preceding window)`` entries, including those of
            earlier runs that this one resumed.
        resumed_from: step this run started from (0 for a fresh run).
    """

    checkpoint: Path
    loss_history: list[tuple[int, float]] = field(default_factory=list)
    resumed_from: int = 0


def _check_plain(value: object, where: str) -> None:
    if value is None or isinstance(value, (str, int, float, bool)):
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{where} has key {k!r} of type {type(k).__name__}; expected str keys")
            _check_plain(v, f"{where}[{k!r}]")
        return
    raise TypeError(f"{where} is a {type(value).__name__}; expected str, int, float, bool, None, list or dict")


def _update_ema(ema: TrainablePolicy, model: TrainablePolicy, weight: float) -> None:
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, weight)


class _Trainer:
    """Mutable training state: model, EMA, optimiser, generators, history."""

    def __init__(self, policy: TrainablePolicy, config: PretrainConfig) -> None:
        self.config = config
        self.device = torch.device(config.device)
        self.model = policy.to(self.device).train()
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.batch_rng = torch.Generator().manual_seed(config.seed)
        self.noise_rng = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        self.step = 0
        self.history: list[tuple[int, float]] = []

    def restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.ema.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.batch_rng.set_state(ckpt["rng"]["batch"])
        self.noise_rng.set_state(ckpt["rng"]["noise"])
        self.step = int(ckpt["step"])
        self.history = [(int(s), float(v)) for s, v in ckpt["loss_history"]]

    def train_step(self, obs: torch.Tensor, actions: torch.Tensor) -> float:
        cfg = self.config
        index = torch.randint(len(obs), (cfg.batch_size,), generator=self.batch_rng).to(self.device)
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr_at(self.step)
        loss = self.model.bc_loss(obs[index], actions[index], generator=self.noise_rng)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.step += 1
        if self.step < cfg.ema_start:
            _update_ema(self.ema, self.model, 1.0)
        elif self.step % cfg.ema_every == 0:
            _update_ema(self.ema, self.model, 1.0 - cfg.ema_decay)
        return float(loss.detach())

    def payload(self, dataset_sha256: str, meta: dict) -> dict:
        return {
            "policy_type": self.model.arch.policy_type,
            "arch": self.model.arch.to_dict(),
            "normalizer": normalizer_to_tensors(self.model.normalizer),
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "step": self.step,
            "rng": {"batch": self.batch_rng.get_state(), "noise": self.noise_rng.get_state()},
            "dataset_sha256": dataset_sha256,
            "meta": meta,
            "config": asdict(self.config),
            "loss_history": [list(entry) for entry in self.history],
        }


def _resume_checkpoint(out_dir: Path, arch: PolicyArch, dataset_sha256: str, device: torch.device) -> dict | None:
    path = latest_checkpoint(out_dir)
    if path is None:
        return None
    ckpt = read_checkpoint(path, map_location=device)
    if ckpt["dataset_sha256"] != dataset_sha256:
        raise PolicyCheckpointError(
            f"cannot resume from {str(path)!r}: it was trained on dataset sha256 {ckpt['dataset_sha256']} "
            f"but this run's dataset has {dataset_sha256}; use a fresh out_dir"
        )
    stored_type = checkpoint_policy_type(ckpt)
    if stored_type != arch.policy_type:
        raise PolicyCheckpointError(
            f"cannot resume from {str(path)!r}: it holds a {stored_type!r} policy but this run trains a "
            f"{arch.policy_type!r} policy ({type(arch).__name__}); use a fresh out_dir"
        )
    if type(arch).from_dict(ckpt["arch"]) != arch:
        raise PolicyCheckpointError(
            f"cannot resume from {str(path)!r}: its arch {ckpt['arch']} differs from this run's {arch.to_dict()}; "
            "use a fresh out_dir"
        )
    return ckpt


def _save(trainer: _Trainer, out_dir: Path, dataset_sha256: str, meta: dict) -> Path:
    path = write_checkpoint(trainer.payload(dataset_sha256, meta), checkpoint_path(out_dir, trainer.step))
    for _, old in list_checkpoints(out_dir)[: -trainer.config.keep_checkpoints]:
        old.unlink()
    return path


def pretrain(
    episodes: Sequence[Episode],
    arch: DiffusionArch | FlowArch,
    config: PretrainConfig,
    out_dir: str | os.PathLike,
    *,
    dataset_sha256: str,
    meta: dict | None = None,
) -> PretrainResult:
    """Fit ``arch`` to demonstrations by behaviour cloning; resume from ``out_dir`` if possible.

    Args:
        episodes: ``(obs (T, obs_dim), actions (T, act_dim))`` per episode, raw units.
        arch: network and sampler architecture; its class chooses the policy type: a
            :class:`DiffusionArch` trains a :class:`DiffusionPolicy` (DDPM loss, the default type),
            a :class:`FlowArch` a :class:`FlowPolicy` (flow-matching loss).
        config: optimisation settings.
        out_dir: folder for ``pretrain_step_*.pt``; its newest checkpoint is resumed.
        dataset_sha256: identifies the data; a resumed checkpoint must carry the same one.
        meta: free-form plain-value dict stored in each checkpoint (task name, obs keys, ...).

    Returns:
        The final checkpoint's path and the loss history.

    Raises:
        ValueError: malformed episodes.
        PolicyCheckpointError: ``out_dir`` holds a run on other data, of the other policy type, or
            with another arch.
    """
    if not isinstance(dataset_sha256, str) or not dataset_sha256:
        raise ValueError(f"dataset_sha256={dataset_sha256!r}; expected a non-empty hex string")
    meta = dict(meta or {})
    _check_plain(meta, "meta")
    check_episodes(episodes, arch.obs_dim, arch.act_dim)
    out_dir = Path(out_dir)
    device = torch.device(config.device)
    ckpt = _resume_checkpoint(out_dir, arch, dataset_sha256, device)
    if ckpt is not None:
        trainer = _Trainer(policy_from_checkpoint(ckpt, use_ema=False), config)
        trainer.restore(ckpt)
    else:
        obs_all = np.concatenate([np.asarray(o) for o, _ in episodes])
        actions_all = np.concatenate([np.asarray(a) for _, a in episodes])
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            policy = build_policy(arch, Normalizer.from_data(obs_all, actions_all))
        trainer = _Trainer(policy, config)
    start = trainer.step
    normalizer = trainer.model.normalizer
    pair_obs, pair_actions = make_training_pairs(episodes, arch.chunk_len, arch.cond_steps)
    obs = torch.as_tensor(normalizer.normalize_obs(pair_obs).reshape(len(pair_obs), -1), device=device)
    actions = torch.as_tensor(normalizer.normalize_action(pair_actions), device=device)

    final = checkpoint_path(out_dir, trainer.step)
    window: list[float] = []
    with tqdm(total=config.steps, initial=start, desc="pretrain", unit="step", disable=not config.progress) as bar:
        while trainer.step < config.steps:
            window.append(trainer.train_step(obs, actions))
            bar.update(1)
            if trainer.step % config.log_every == 0 or trainer.step == config.steps:
                trainer.history.append((trainer.step, float(np.mean(window))))
                bar.set_postfix(loss=f"{trainer.history[-1][1]:.4f}")
                window = []
            if trainer.step % config.checkpoint_every == 0 or trainer.step == config.steps:
                final = _save(trainer, out_dir, dataset_sha256, meta)
    return PretrainResult(checkpoint=final, loss_history=list(trainer.history), resumed_from=start)
