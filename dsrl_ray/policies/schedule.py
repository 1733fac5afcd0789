"""Noise schedule of DPPO's diffusion policies and the DDIM timesteps they visit.

Numerics follow DPPO exactly: the cosine schedule is evaluated in float64 on a grid of
``T + 1`` points spread over ``[0, T + 1]`` (DPPO's ``linspace(0, steps, steps)`` with
``steps = T + 1``, so the grid spacing is ``(T + 1) / T``, not 1; divided by ``steps`` the grid
is exactly ``k / T``, the textbook cosine schedule), betas are clipped to ``[0, 0.999]`` (the last
one is 1 before clipping) and cast to float32, and alpha-bar is the float32 cumulative product.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

COSINE_S = 0.008
MAX_BETA = 0.999


def cosine_betas(denoising_steps: int, s: float = COSINE_S) -> torch.Tensor:
    """DPPO's cosine beta schedule.

    Args:
        denoising_steps: number of DDPM steps ``T`` (>= 1).
        s: offset of the cosine schedule.

    Returns:
        ``(T,)`` float32 betas.
    """
    if denoising_steps < 1:
        raise ValueError(f"denoising_steps={denoising_steps}; expected an integer >= 1")
    n = denoising_steps + 1
    grid = np.linspace(0.0, n, n, dtype=np.float64)
    f = np.cos((grid / n + s) / (1.0 + s) * np.pi * 0.5) ** 2
    f = f / f[0]
    betas = np.clip(1.0 - f[1:] / f[:-1], 0.0, MAX_BETA)
    return torch.tensor(betas, dtype=torch.float32)


def alphas_cumprod(betas: torch.Tensor) -> torch.Tensor:
    """Alpha-bar: float32 cumulative product of ``1 - betas``; ``(T,)`` -> ``(T,)``."""
    return torch.cumprod(1.0 - betas.to(torch.float32), dim=0)


def ddim_timesteps(denoising_steps: int, ddim_steps: int) -> list[int]:
    """DDIM "leading" timesteps ``i * (T // K)`` for ``i < K``, in the order they are visited.

    Example: ``T=20, K=8`` gives ``[14, 12, ..., 0]``; ``T=20, K=5`` gives ``[16, 12, 8, 4, 0]``.
    ``T`` need not be a multiple of ``K`` (DPPO floors the ratio).
    """
    if not 1 <= ddim_steps <= denoising_steps:
        raise ValueError(
            f"ddim_steps={ddim_steps} with denoising_steps={denoising_steps}; "
            f"expected 1 <= ddim_steps <= denoising_steps"
        )
    ratio = denoising_steps // ddim_steps
    return [i * ratio for i in reversed(range(ddim_steps))]


@dataclass(frozen=True)
class DDIMSchedule:
    """Per-step DDIM quantities, indexed in visiting order (step 0 is the noisiest).

    Attributes:
        timesteps: ``K`` integer DDPM timesteps fed to the network.
        alphas: ``(K,)`` float32 alpha-bar at each visited timestep.
        alphas_prev: ``(K,)`` float32 alpha-bar at the next visited timestep (1 after the last).
        sqrt_one_minus_alphas: ``(K,)`` float32 ``(1 - alphas) ** 0.5``.
    """

    timesteps: tuple[int, ...]
    alphas: torch.Tensor
    alphas_prev: torch.Tensor
    sqrt_one_minus_alphas: torch.Tensor

    @property
    def num_steps(self) -> int:
        return len(self.timesteps)


def make_ddim_schedule(denoising_steps: int, ddim_steps: int) -> DDIMSchedule:
    """Build the DDIM schedule for ``T = denoising_steps`` and ``K = ddim_steps``."""
    steps = ddim_timesteps(denoising_steps, ddim_steps)
    abar = alphas_cumprod(cosine_betas(denoising_steps))
    index = torch.tensor(steps, dtype=torch.long)
    alphas = abar[index].clone()
    alphas_prev = torch.cat([abar[index[1:]], torch.ones(1, dtype=torch.float32)])
    return DDIMSchedule(
        timesteps=tuple(steps),
        alphas=alphas,
        alphas_prev=alphas_prev,
        sqrt_one_minus_alphas=(1.0 - alphas) ** 0.5,
    )
