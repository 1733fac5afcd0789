"""Per-step projections of the head's first Linear, shared by the fast DDIM and flow samplers.

The head's first Linear is linear in ``concat([x, temb(t), enc(obs)])``, so a sampler that visits
a fixed list of times can project the time part once per weight version, the observation part
once per call and only ``x`` per step. :class:`HeadPlanCache` holds those weight pieces and the
time projections per ``(device, dtype)`` and rebuilds them whenever any network weight changes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dsrl_ray.policies.network import DiffusionMLP


@dataclass(frozen=True)
class HeadPlan:
    """Weight pieces of the head's first Linear, split along its input.

    Attributes:
        w_x: ``(x_dim, H)`` transposed weight columns that see the flattened chunk.
        w_cond: ``(H, cond_features)`` weight columns that see the encoded observation.
        bias: ``(H,)``.
        time_proj: ``(N, H)`` time-embedding contribution of each of the ``N`` visited times.
    """

    w_x: torch.Tensor
    w_cond: torch.Tensor
    bias: torch.Tensor
    time_proj: torch.Tensor


def _weights_stamp(network: DiffusionMLP) -> tuple:
    return tuple((id(p), p.data_ptr(), p._version) for p in network.parameters())


class HeadPlanCache:
    """The :class:`HeadPlan` of a network for a fixed list of times, cached per device and dtype.

    Pickling or deep-copying drops the cache (it is rebuilt on first use).
    """

    def __init__(self, times: torch.Tensor) -> None:
        """``times``: ``(N,)`` inputs of ``network.embed_time``, in visiting order (any device)."""
        self.times = times.cpu()
        self._plans: dict[tuple[torch.device, torch.dtype], tuple[tuple, HeadPlan]] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_plans"] = {}
        return state

    def plan(self, network: DiffusionMLP) -> HeadPlan:
        """The plan for ``network``'s current weights, on their device and in their dtype."""
        weight = network.mlp_mean.input_layer.weight
        key = (weight.device, weight.dtype)
        stamp = _weights_stamp(network)
        cached = self._plans.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        x_dim, time_dim = network.x_dim, network.time_dim
        times = self.times.to(weight.device, weight.dtype if self.times.is_floating_point() else self.times.dtype)
        plan = HeadPlan(
            w_x=weight[:, :x_dim].t().contiguous(),
            w_cond=weight[:, x_dim + time_dim :].contiguous(),
            bias=network.mlp_mean.input_layer.bias,
            time_proj=F.linear(network.embed_time(times), weight[:, x_dim : x_dim + time_dim]),
        )
        self._plans[key] = (stamp, plan)
        return plan
