"""Read and write DPPO checkpoints (``state_<epoch>.pt``) as :class:`DiffusionPolicy`.

Layout: ``torch.save({"epoch": int, "model": state_dict, "ema": state_dict})`` with the
epsilon network under ``network.``. DPPO's ``DiffusionModel`` keeps its schedule in plain
attributes, not buffers, so pretraining checkpoints hold only ``network.*`` weights; fine-tuning
checkpoints add other modules (e.g. ``actor_ft.*``, ``critic.*``), which are ignored here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from dsrl_ray.policies.atomic import atomic_torch_save
from dsrl_ray.policies.diffusion_policy import DiffusionArch, DiffusionPolicy
from dsrl_ray.policies.normalizer import Normalizer
from dsrl_ray.policies.state_check import load_network_state


def _dppo_arguments(arch: DiffusionArch, key: str, policy: DiffusionPolicy) -> str:
    """The ``load_dppo`` arguments that fix the shape of ``key``."""
    dims = list(arch.mlp_dims)
    cond_mlp = None if arch.cond_mlp_dims is None else list(arch.cond_mlp_dims)
    obs = f"obs_dim={arch.obs_dim}, cond_steps={arch.cond_steps}"
    chunk = f"horizon_steps={arch.chunk_len}, action_dim={arch.act_dim}"
    head = policy.network.mlp_mean
    first = "network.mlp_mean." + ("layers.0." if arch.residual_style else "moduleList.0.")
    last_index = len(head.layers) - 1 if arch.residual_style else len(head.moduleList) - 1
    last = "network.mlp_mean." + (f"layers.{last_index}." if arch.residual_style else f"moduleList.{last_index}.")
    if key.startswith("network.time_embedding."):
        return f"time_dim={arch.time_dim}"
    if key.startswith("network.cond_mlp."):
        return f"{obs}, cond_mlp_dims={cond_mlp}"
    if key.startswith(first):
        return f"mlp_dims={dims} with {chunk}, time_dim={arch.time_dim}, {obs}, cond_mlp_dims={cond_mlp}"
    if key.startswith(last):
        return f"mlp_dims={dims} with {chunk}"
    return f"mlp_dims={dims}, residual_style={arch.residual_style}, cond_mlp_dims={cond_mlp}"


def load_dppo(
    checkpoint_path: str | os.PathLike,
    *,
    obs_dim: int,
    action_dim: int,
    horizon_steps: int,
    cond_steps: int = 1,
    denoising_steps: int,
    ddim_steps: int,
    mlp_dims: Sequence[int],
    time_dim: int,
    activation_type: str = "Mish",
    residual_style: bool = True,
    denoised_clip_value: float | None = 1.0,
    cond_mlp_dims: Sequence[int] | None = None,
    use_layernorm: bool = False,
    normalization_path: str | os.PathLike | None = None,
    use_ema: bool = True,
    map_location: str | torch.device = "cpu",
) -> DiffusionPolicy:
    """Build a :class:`DiffusionPolicy` from a DPPO checkpoint; arguments use DPPO's config names.

    Args:
        checkpoint_path: DPPO ``state_<epoch>.pt``.
        obs_dim, action_dim, horizon_steps, cond_steps: DPPO's dimensions (observations the
            network sees: ``cond_steps * obs_dim``; chunk: ``(horizon_steps, action_dim)``).
        denoising_steps, ddim_steps: ``T`` and ``K`` of the DDIM sampler.
        mlp_dims, time_dim, activation_type, residual_style, cond_mlp_dims, use_layernorm:
            DPPO's ``DiffusionMLP`` arguments.
        denoised_clip_value: bound on the predicted ``x0`` per step.
        normalization_path: DPPO ``normalization.npz``; ``None`` gives an identity normaliser.
        use_ema: load the ``ema`` weights (what DSRL evaluates) instead of ``model``.
        map_location: device the checkpoint is read onto and the policy is placed on.

    Returns:
        The policy in eval mode with gradients off.

    Raises:
        FileNotFoundError: no file at ``checkpoint_path``.
        KeyError: the checkpoint lacks ``ema``/``model`` or a key the arguments need.
        ValueError: a shape differs from the one the arguments imply, or extra network keys.
    """
    arch = DiffusionArch(
        obs_dim=obs_dim,
        act_dim=action_dim,
        chunk_len=horizon_steps,
        cond_steps=cond_steps,
        mlp_dims=tuple(mlp_dims),
        time_dim=time_dim,
        activation=activation_type,
        residual_style=residual_style,
        cond_mlp_dims=None if cond_mlp_dims is None else tuple(cond_mlp_dims),
        denoising_steps=denoising_steps,
        ddim_steps=ddim_steps,
        denoised_clip_value=denoised_clip_value,
        use_layernorm=use_layernorm,
    )
    normalizer = Normalizer.from_npz(normalization_path) if normalization_path is not None else None
    policy = DiffusionPolicy(arch, normalizer)
    path = Path(checkpoint_path)
    if not path.is_file():
        raise FileNotFoundError(f"DPPO checkpoint {str(path)!r} does not exist")
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    entry = "ema" if use_ema else "model"
    if not isinstance(checkpoint, dict) or entry not in checkpoint:
        found = sorted(checkpoint) if isinstance(checkpoint, dict) else type(checkpoint).__name__
        other = "use_ema=False loads 'model'" if use_ema else "use_ema=True loads 'ema'"
        raise KeyError(f"DPPO checkpoint {str(path)!r} has no {entry!r} entry (found {found}); {other}")
    load_network_state(
        policy,
        checkpoint[entry],
        source=f"DPPO checkpoint {str(path)!r} [{entry!r}]",
        explain=lambda key: _dppo_arguments(arch, key, policy),
    )
    return policy.to(map_location).eval().requires_grad_(False)


def save_dppo(
    policy: DiffusionPolicy,
    checkpoint_path: str | os.PathLike,
    *,
    epoch: int = 0,
    normalization_path: str | os.PathLike | None = None,
) -> Path:
    """Write ``policy`` as a DPPO ``state_<epoch>.pt`` (same weights under ``model`` and ``ema``).

    Args:
        policy: the policy to export.
        checkpoint_path: destination file, written atomically.
        epoch: value of the ``epoch`` entry.
        normalization_path: if given, also write the normaliser as DPPO's ``normalization.npz``.

    Returns:
        ``checkpoint_path`` as a :class:`Path`.

    Raises:
        TypeError: ``policy`` is not a :class:`DiffusionPolicy` (a flow policy has the same keys,
            but DPPO would read it as an epsilon network).
    """
    if not isinstance(policy, DiffusionPolicy):
        raise TypeError(
            f"save_dppo got a {type(policy).__name__}; DPPO checkpoints hold DDIM diffusion policies only "
            "(expected a DiffusionPolicy)"
        )
    state = {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}
    path = atomic_torch_save({"epoch": int(epoch), "model": state, "ema": dict(state)}, checkpoint_path)
    if normalization_path is not None:
        policy.normalizer.to_npz(normalization_path)
    return path
