"""Deterministic DDIM (eta = 0) from caller-given initial noise, as DPPO computes it.

One step at visited timestep ``t`` with ``a = alpha_bar(t)`` and ``a_prev`` the alpha-bar of the
next visited timestep (1 after the last)::

    eps = network(x, t, obs)
    x0  = clip((x - sqrt(1 - a) * eps) / sqrt(a), -c, c)
    eps = (x - sqrt(a) * x0) / sqrt(1 - a)          # recomputed from the clipped x0
    x   = sqrt(a_prev) * x0 + sqrt(1 - a_prev) * eps

:func:`ddim_sample_reference` is that loop, calling the full network every step.
:class:`DDIMSampler` computes the same numbers faster: the head's first Linear is linear in
``concat([x, temb(t), enc(obs)])``, so the observation part is projected once per call, the
time part once per weight version (:mod:`~dsrl_ray.policies.head_plan`), and only ``x`` per step;
the three update lines fold into two fused per-step affine maps with precomputed scalars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dsrl_ray.policies.head_plan import HeadPlanCache
from dsrl_ray.policies.network import DiffusionMLP
from dsrl_ray.policies.schedule import DDIMSchedule


@torch.no_grad()
def ddim_sample_reference(
    network: DiffusionMLP,
    schedule: DDIMSchedule,
    cond: torch.Tensor,
    noise: torch.Tensor,
    clip_value: float | None = 1.0,
) -> torch.Tensor:
    """Plain DDIM loop, literally DPPO's formulas with the full network each step.

    Args:
        network: epsilon network.
        schedule: DDIM timesteps and alpha-bars in visiting order.
        cond: ``(B, cond_dim)`` flattened normalised observation(s).
        noise: ``(B, chunk_len, act_dim)`` initial noise, used as given.
        clip_value: bound on the predicted ``x0`` (``None``: no clipping, no recomputation).

    Returns:
        ``(B, chunk_len, act_dim)`` denoised action chunk.
    """
    x = noise
    b = x.shape[0]
    alphas = schedule.alphas.to(x.device)
    alphas_prev = schedule.alphas_prev.to(x.device)
    sqrt_one_minus = schedule.sqrt_one_minus_alphas.to(x.device)
    for i, t in enumerate(schedule.timesteps):
        t_batch = torch.full((b,), t, dtype=torch.long, device=x.device)
        eps = network(x, t_batch, cond)
        alpha, alpha_prev = alphas[i], alphas_prev[i]
        x0 = (x - sqrt_one_minus[i] * eps) / alpha**0.5
        if clip_value is not None:
            x0 = x0.clamp(-clip_value, clip_value)
            eps = (x - alpha**0.5 * x0) / sqrt_one_minus[i]
        x = alpha_prev**0.5 * x0 + (1.0 - alpha_prev).sqrt() * eps
    return x


@dataclass(frozen=True)
class _StepCoefficients:
    """``x0 = (x + x_eps * eps) * x0_scale``; ``x_next = next_x0 * x0 + next_x * x``."""

    x_eps: float
    x0_scale: float
    next_x0: float
    next_x: float


def _step_coefficients(schedule: DDIMSchedule) -> tuple[_StepCoefficients, ...]:
    steps = []
    for a, a_prev, s1a in zip(
        schedule.alphas.tolist(), schedule.alphas_prev.tolist(), schedule.sqrt_one_minus_alphas.tolist()
    ):
        sa, sap, s1ap = math.sqrt(a), math.sqrt(a_prev), math.sqrt(1.0 - a_prev)
        steps.append(_StepCoefficients(-s1a, 1.0 / sa, sap - s1ap * sa / s1a, s1ap / s1a))
    return tuple(steps)


class DDIMSampler:
    """Fast deterministic DDIM; equals :func:`ddim_sample_reference` up to float rounding.

    Holds the schedule, the fused per-step scalars and a :class:`HeadPlanCache` of the time
    projection per ``(device, dtype)``, rebuilt whenever any network weight changes.
    """

    def __init__(self, schedule: DDIMSchedule, clip_value: float | None = 1.0) -> None:
        self.schedule = schedule
        self.clip_value = clip_value
        self._coefficients = _step_coefficients(schedule)
        self._plans = HeadPlanCache(torch.tensor(schedule.timesteps, dtype=torch.long))

    @torch.inference_mode()
    def __call__(self, network: DiffusionMLP, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Denoise.

        Args:
            network: epsilon network (its device and dtype are used).
            cond: ``(B, cond_dim)`` flattened normalised observation(s).
            noise: ``(B, chunk_len, act_dim)`` initial noise, used as given.

        Returns:
            ``(B, chunk_len, act_dim)`` denoised chunk (an inference-mode tensor).
        """
        plan = self._plans.plan(network)
        b = noise.shape[0]
        head = network.mlp_mean
        obs_part = F.linear(network.encode_cond(cond), plan.w_cond, plan.bias)
        x = noise.reshape(b, network.x_dim)
        for i, c in enumerate(self._coefficients):
            eps = head.forward_hidden(torch.addmm(obs_part + plan.time_proj[i], x, plan.w_x))
            x0 = torch.add(x, eps, alpha=c.x_eps).mul_(c.x0_scale)
            if self.clip_value is not None:
                x0.clamp_(-self.clip_value, self.clip_value)
            x = torch.add(x0.mul_(c.next_x0), x, alpha=c.next_x)
        return x.view(b, network.chunk_len, network.act_dim)
