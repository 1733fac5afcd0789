"""pi0-style flow-matching policy: velocity MLP + linear path + deterministic Euler/midpoint ODE."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from dsrl_ray.policies.arch import ArchDict, check_network_fields, check_positive_int
from dsrl_ray.policies.base import BasePolicy
from dsrl_ray.policies.flow import FLOW_SAMPLERS, FlowSampler, FlowSamplerName, flow_sample_reference
from dsrl_ray.policies.network import VelocityMLP
from dsrl_ray.policies.normalizer import Normalizer


@dataclass(frozen=True)
class FlowArch(ArchDict):
    """Everything that fixes the network's shapes and the sampler of a ``"flow"`` policy.

    The network fields mean what they mean in :class:`~dsrl_ray.policies.DiffusionArch`; the
    velocity network is the same residual (or plain) MLP with the same state-dict keys.

    Attributes:
        obs_dim: dimension of one observation.
        act_dim: dimension of one action.
        chunk_len: actions per chunk.
        cond_steps: stacked observations the network sees (``cond_steps * obs_dim`` long, oldest first).
        mlp_dims: hidden widths of the head, e.g. ``(512, 512, 512)``.
        time_dim: width of the time embedding (even, >= 4).
        activation: ``"Mish"``, ``"ReLU"`` or another name of ``network.ACTIVATIONS``.
        residual_style: residual head or plain MLP.
        cond_mlp_dims: widths of the optional observation encoder.
        use_layernorm: LayerNorm in the head.
        sampler: ODE integrator, ``"euler"`` (one network call per step) or ``"midpoint"`` (two).
        flow_steps: integration steps ``K`` from ``t = 0`` (noise) to ``t = 1`` (action).
        time_scale: ``t`` enters the sinusoidal embedding as ``time_scale * t`` (see
            :class:`~dsrl_ray.policies.network.VelocityMLP`); 1000 spans roughly pi0's periods.
    """

    obs_dim: int
    act_dim: int
    chunk_len: int
    cond_steps: int = 1
    mlp_dims: tuple[int, ...] = (512, 512, 512)
    time_dim: int = 16
    activation: str = "Mish"
    residual_style: bool = True
    cond_mlp_dims: tuple[int, ...] | None = None
    use_layernorm: bool = False
    sampler: FlowSamplerName = "euler"
    flow_steps: int = 10
    time_scale: float = 1000.0

    policy_type: ClassVar[str] = "flow"

    def __post_init__(self) -> None:
        check_network_fields(self)
        if self.sampler not in FLOW_SAMPLERS:
            raise ValueError(f"sampler={self.sampler!r}; expected one of {list(FLOW_SAMPLERS)}")
        check_positive_int("flow_steps", self.flow_steps)
        scale = self.time_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"time_scale={scale!r}; expected a finite number > 0")
        object.__setattr__(self, "time_scale", float(scale))

    @property
    def cond_dim(self) -> int:
        """Length ``cond_steps * obs_dim`` of the flattened observation the network sees."""
        return self.cond_steps * self.obs_dim


class FlowPolicy(BasePolicy):
    """Frozen-able flow-matching policy ``pi_dp(s, w) -> a``: ``w`` is the ODE's state at ``t = 0``.

    Path and loss (pi0's convention): ``x_t = (1 - t) * w + t * a``, target velocity ``a - w``.
    ``obs_dim`` is ``arch.cond_dim``, as for :class:`~dsrl_ray.policies.DiffusionPolicy`.
    """

    def __init__(self, arch: FlowArch, normalizer: Normalizer | None = None) -> None:
        super().__init__()
        normalizer = normalizer or Normalizer.identity(arch.obs_dim, arch.act_dim)
        normalizer.check_fits(arch.obs_dim, arch.act_dim)
        self.arch = arch
        self.normalizer = normalizer
        self.obs_dim = arch.cond_dim
        self.chunk_len = arch.chunk_len
        self.act_dim = arch.act_dim
        self.network = VelocityMLP(
            time_scale=arch.time_scale,
            act_dim=arch.act_dim,
            chunk_len=arch.chunk_len,
            cond_dim=arch.cond_dim,
            time_dim=arch.time_dim,
            mlp_dims=arch.mlp_dims,
            activation=arch.activation,
            residual_style=arch.residual_style,
            cond_mlp_dims=arch.cond_mlp_dims,
            use_layernorm=arch.use_layernorm,
        )
        self.sampler = FlowSampler(arch.sampler, arch.flow_steps)

    def _prepare(self, obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_inputs(obs, noise)
        p = self.network.mlp_mean.input_layer.weight
        return obs.to(device=p.device, dtype=p.dtype), noise.to(device=p.device, dtype=p.dtype)

    def sample(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Integrate ``noise`` into an action chunk with the fast sampler.

        Args:
            obs: ``(B, obs_dim)`` normalised observations (any device; moved to the policy's).
            noise: ``(B, chunk_len, act_dim)`` initial noise, used as given.

        Returns:
            ``(B, chunk_len, act_dim)`` normalised actions in ``[-1, 1]`` on ``obs``'s device, usable
            in autograd graphs (not an inference-mode tensor unless called inside inference mode).
        """
        cond, x = self._prepare(obs, noise)
        out = self.sampler(self.network, cond, x)
        return out.clone().to(obs.device)

    def sample_reference(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`sample` via the plain per-step loop (slow; for tests and benchmarks)."""
        cond, x = self._prepare(obs, noise)
        return flow_sample_reference(self.network, self.arch.sampler, self.arch.flow_steps, cond, x).to(obs.device)

    def flow_matching_loss(
        self, obs: torch.Tensor, actions: torch.Tensor, t: torch.Tensor, noise: torch.Tensor
    ) -> torch.Tensor:
        """Conditional flow-matching loss for given draws, ``mean ||v(x_t, t, obs) - (a - noise)||^2``
        with ``x_t = (1 - t) * noise + t * a``.

        Args:
            obs: ``(B, obs_dim)`` normalised observations.
            actions: ``(B, chunk_len, act_dim)`` normalised action chunks ``a``.
            t: ``(B,)`` times in ``[0, 1]``.
            noise: ``(B, chunk_len, act_dim)`` noise.

        Returns:
            scalar loss (mean over all ``B * chunk_len * act_dim`` entries).
        """
        self.check_training_inputs(obs, actions)
        b = actions.shape[0]
        if tuple(t.shape) != (b,) or noise.shape != actions.shape:
            raise ValueError(
                f"t {tuple(t.shape)} and noise {tuple(noise.shape)}; expected ({b},) and {tuple(actions.shape)}"
            )
        s = t.view(b, 1, 1)
        x_t = (1.0 - s) * noise + s * actions
        return F.mse_loss(self.network(x_t, t, obs), actions - noise)

    def bc_loss(
        self, obs: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Behaviour-cloning loss: :meth:`flow_matching_loss` with ``t ~ U[0, 1)`` (drawn first, one per
        sample) and ``noise ~ N(0, I)`` from ``generator``.

        Args:
            obs: ``(B, obs_dim)`` normalised observations.
            actions: ``(B, chunk_len, act_dim)`` normalised action chunks.
            generator: random source on the policy's device (default: torch's global one).

        Returns:
            scalar loss.
        """
        self.check_training_inputs(obs, actions)
        b = actions.shape[0]
        t = torch.rand((b,), device=actions.device, dtype=actions.dtype, generator=generator)
        noise = torch.randn(actions.shape, device=actions.device, dtype=actions.dtype, generator=generator)
        return self.flow_matching_loss(obs, actions, t, noise)
