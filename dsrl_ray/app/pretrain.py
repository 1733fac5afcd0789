"""Pretrain a diffusion base policy from a robomimic-layout demo file (glue between envs and policies)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from dsrl_ray.envs import DemoDatasetError, get_task_spec, load_demos, task_for_env_name
from dsrl_ray.policies import DEFAULT_POLICY_TYPE, PretrainConfig, PretrainResult, make_arch, pretrain
from dsrl_ray.policies.checkpoint import read_checkpoint


def resolve_task(dataset_env_name: str | None, task: str | None) -> str:
    """The task a dataset belongs to: ``task`` if given (validated), else the one named by its env_args."""
    if task is not None:
        return get_task_spec(task).name
    spec = task_for_env_name(dataset_env_name) if dataset_env_name else None
    if spec is None:
        raise DemoDatasetError(
            f"the dataset's env_args name simulator {dataset_env_name!r}, which is not one of our tasks; "
            "pass the task explicitly (e.g. --task lift)"
        )
    return spec.name


def pretrain_from_dataset(
    dataset: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    task: str | None = None,
    steps: int | None = None,
    batch_size: int = 256,
    lr: float | None = None,
    arch_overrides: dict | None = None,
    policy_type: str = DEFAULT_POLICY_TYPE,
    checkpoint_every: int = 2000,
    seed: int = 0,
    progress: bool = True,
    threads: int | None = None,
) -> PretrainResult:
    """Behaviour-clone a base policy (diffusion or flow matching) on a demo file.

    Args:
        dataset: robomimic-layout HDF5 (``data/demo_N/obs/<key>``, ``actions``).
        out_dir: checkpoint directory; training resumes from its newest checkpoint (which
            must come from the same dataset and architecture).
        task: task name; default: the one named by the file's ``env_args``. Its observation
            keys fix the order in which observation parts are concatenated.
        steps: gradient steps; default: the task preset.
        lr: AdamW learning rate; default: the task preset.
        arch_overrides: architecture fields (``DiffusionArch`` or ``FlowArch``) replacing the task preset's.
        policy_type: ``"diffusion"`` (DDIM sampler, the default) or ``"flow"`` (flow matching, ODE sampler).
        seed: seeds batches, diffusion times and noise.
        threads: torch intra-op threads while training; default: one per CPU core (behaviour
            cloning runs alone in the driver, whose ``OMP_NUM_THREADS=1`` is meant for Ray workers).

    Returns:
        The :class:`~dsrl_ray.policies.PretrainResult` (final checkpoint path, loss history).
    """
    header = load_demos(dataset)
    task_name = resolve_task(header.env_args.get("env_name"), task)
    spec = get_task_spec(task_name)
    data = header if tuple(header.obs_keys) == spec.obs_keys else load_demos(dataset, obs_keys=spec.obs_keys)
    preset = spec.preset
    arch = make_arch(policy_type, obs_dim=spec.obs_dim, act_dim=spec.act_dim, chunk_len=spec.chunk_len,
                     preset=preset.arch, overrides=arch_overrides)
    config = PretrainConfig(
        steps=steps if steps is not None else preset.pretrain_steps,
        batch_size=batch_size,
        lr=lr if lr is not None else preset.pretrain_lr,
        checkpoint_every=checkpoint_every,
        seed=seed,
        progress=progress,
    )
    episodes = [(ep.obs, ep.actions) for ep in data.episodes]
    with torch_threads(threads if threads is not None else os.cpu_count() or 1):
        return pretrain(
            episodes,
            arch,
            config,
            Path(out_dir),
            dataset_sha256=data.sha256,
            meta={"task": task_name, "obs_keys": list(spec.obs_keys), "dataset": str(Path(dataset).resolve())},
        )


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous number."""
    if n < 1:
        raise ValueError(f"threads must be at least 1, got {n}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def checkpoint_task(path: str | os.PathLike) -> str | None:
    """The task name stored in a pretraining checkpoint's ``meta``, if any."""
    return read_checkpoint(path).get("meta", {}).get("task")
