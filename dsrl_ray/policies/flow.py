"""Deterministic flow-matching ODE samplers (Euler, midpoint) from caller-given initial noise.

Convention (pi0's linear path): ``x_t = (1 - t) * noise + t * action``, so ``t = 0`` is pure
noise, ``t = 1`` the action chunk, and the velocity along the path is ``action - noise``. A
sampler integrates ``dx/dt = v(x, t, obs)`` from the noise at ``t = 0`` to ``t = 1`` in ``K``
equal steps of ``h = 1 / K`` and clips the result to ``[-1, 1]``. Step ``i`` (``t = i h``)::

    euler:     x = x + h * v(x, t)
    midpoint:  x = x + h * v(x + (h / 2) * v(x, t), t + h / 2)

:func:`flow_sample_reference` is that loop with the full network every step. :class:`FlowSampler`
computes the same numbers faster: like the DDIM sampler, it projects the time embedding of every
visited time once per weight version (:mod:`~dsrl_ray.policies.head_plan`) and the observation
once per call, so each step costs one ``x`` projection plus the rest of the head, and it updates
``x`` in preallocated buffers.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from dsrl_ray.policies.head_plan import HeadPlanCache
from dsrl_ray.policies.network import VelocityMLP

FlowSamplerName = Literal["euler", "midpoint"]
FLOW_SAMPLERS: tuple[str, ...] = ("euler", "midpoint")
"""The ODE integrators :class:`FlowSampler` knows."""


def visited_times(sampler: FlowSamplerName, steps: int) -> torch.Tensor:
    """The times at which a sampler evaluates the velocity, in order, as a float64 ``(N,)`` tensor.

    Euler visits ``i / K`` for ``i < K`` (``N = K``); midpoint visits ``i / K`` and ``(i + 1/2) / K``
    for each step, i.e. ``j / (2K)`` for ``j < 2K`` (``N = 2K``).
    """
    if sampler not in FLOW_SAMPLERS:
        raise ValueError(f"flow sampler {sampler!r} is not supported; expected one of {list(FLOW_SAMPLERS)}")
    evaluations = steps if sampler == "euler" else 2 * steps
    return torch.arange(evaluations, dtype=torch.float64) / evaluations


@torch.no_grad()
def flow_sample_reference(
    network: VelocityMLP, sampler: FlowSamplerName, steps: int, cond: torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """Plain ODE loop: the formulas of the module docstring with the full network each step.

    Args:
        network: velocity network.
        sampler: ``"euler"`` or ``"midpoint"``.
        steps: number of integration steps ``K``.
        cond: ``(B, cond_dim)`` flattened normalised observation(s).
        noise: ``(B, chunk_len, act_dim)`` initial noise ``x_0``, used as given.

    Returns:
        ``(B, chunk_len, act_dim)`` action chunk ``x_1`` clipped to ``[-1, 1]``.
    """
    if sampler not in FLOW_SAMPLERS:
        raise ValueError(f"flow sampler {sampler!r} is not supported; expected one of {list(FLOW_SAMPLERS)}")
    x = noise
    h = 1.0 / steps

    def velocity(y: torch.Tensor, t: float) -> torch.Tensor:
        return network(y, torch.full((y.shape[0],), t, dtype=y.dtype, device=y.device), cond)

    for i in range(steps):
        t = i * h
        if sampler == "euler":
            x = x + h * velocity(x, t)
        else:
            x = x + h * velocity(x + 0.5 * h * velocity(x, t), t + 0.5 * h)
    return x.clamp(-1.0, 1.0)


class FlowSampler:
    """Fast deterministic flow sampler; equals :func:`flow_sample_reference` up to float rounding.

    Holds the integrator, the step count and a :class:`HeadPlanCache` of the time projections of
    the visited times per ``(device, dtype)``, rebuilt whenever any network weight changes.
    """

    def __init__(self, sampler: FlowSamplerName, steps: int) -> None:
        self.sampler = sampler
        self.steps = steps
        self._plans = HeadPlanCache(visited_times(sampler, steps))

    @torch.inference_mode()
    def __call__(self, network: VelocityMLP, cond: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Integrate from ``noise`` at ``t = 0`` to an action chunk at ``t = 1``.

        Args:
            network: velocity network (its device and dtype are used).
            cond: ``(B, cond_dim)`` flattened normalised observation(s).
            noise: ``(B, chunk_len, act_dim)`` initial noise, used as given (not modified).

        Returns:
            ``(B, chunk_len, act_dim)`` chunk clipped to ``[-1, 1]`` (an inference-mode tensor).
        """
        plan = self._plans.plan(network)
        b = noise.shape[0]
        head = network.mlp_mean
        obs_part = F.linear(network.encode_cond(cond), plan.w_cond, plan.bias)
        first = torch.empty_like(obs_part)

        def velocity(y: torch.Tensor, j: int) -> torch.Tensor:
            torch.addmm(obs_part, y, plan.w_x, out=first).add_(plan.time_proj[j])
            return head.forward_hidden(first)

        h = 1.0 / self.steps
        x = noise.reshape(b, network.x_dim).clone()
        if self.sampler == "euler":
            for i in range(self.steps):
                x.add_(velocity(x, i), alpha=h)
        else:
            x_mid = torch.empty_like(x)
            for i in range(self.steps):
                torch.add(x, velocity(x, 2 * i), alpha=0.5 * h, out=x_mid)
                x.add_(velocity(x_mid, 2 * i + 1), alpha=h)
        return x.clamp_(-1.0, 1.0).view(b, network.chunk_len, network.act_dim)
