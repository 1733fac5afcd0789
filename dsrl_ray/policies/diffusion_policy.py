"""DPPO-style diffusion policy: epsilon MLP + cosine schedule + deterministic DDIM."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from dsrl_ray.policies.arch import ArchDict, check_network_fields, check_positive_int
from dsrl_ray.policies.base import BasePolicy
from dsrl_ray.policies.ddim import DDIMSampler, ddim_sample_reference
from dsrl_ray.policies.network import DiffusionMLP
from dsrl_ray.policies.normalizer import Normalizer
from dsrl_ray.policies.schedule import alphas_cumprod, cosine_betas, make_ddim_schedule


@dataclass(frozen=True)
class DiffusionArch(ArchDict):
    """Everything that fixes the network's shapes and the sampler of a ``"diffusion"`` policy.

    Attributes:
        obs_dim: dimension of one observation (DPPO's ``obs_dim``).
        act_dim: dimension of one action (DPPO's ``action_dim``).
        chunk_len: actions per chunk (DPPO's ``horizon_steps``).
        cond_steps: stacked observations the network sees; its input is
            ``cond_steps * obs_dim`` long, oldest first.
        mlp_dims: hidden widths of the head, e.g. ``(512, 512, 512)``.
        time_dim: width of the time embedding (even, >= 4).
        activation: ``"Mish"``, ``"ReLU"`` or another DPPO activation name.
        residual_style: residual head (DPPO's ``ResidualMLP``) or plain MLP.
        cond_mlp_dims: widths of the optional observation encoder, e.g. ``(512, 64)``.
        denoising_steps: DDPM steps ``T``.
        ddim_steps: DDIM steps ``K`` (<= T; ``T % K`` may be non-zero, as in DPPO).
        denoised_clip_value: bound on the predicted ``x0`` in each DDIM step (None: none).
        use_layernorm: DPPO's ``use_layernorm`` of the head (default off, as in DPPO).
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
    denoising_steps: int = 20
    ddim_steps: int = 8
    denoised_clip_value: float | None = 1.0
    use_layernorm: bool = False

    policy_type: ClassVar[str] = "diffusion"

    def __post_init__(self) -> None:
        check_network_fields(self)
        for name in ("denoising_steps", "ddim_steps"):
            check_positive_int(name, getattr(self, name))
        if self.ddim_steps > self.denoising_steps:
            raise ValueError(
                f"ddim_steps={self.ddim_steps} exceeds denoising_steps={self.denoising_steps}; "
                f"expected ddim_steps <= {self.denoising_steps}"
            )
        if self.denoised_clip_value is not None and not self.denoised_clip_value > 0:
            raise ValueError(f"denoised_clip_value={self.denoised_clip_value}; expected a number > 0 or None")

    @property
    def cond_dim(self) -> int:
        """Length ``cond_steps * obs_dim`` of the flattened observation the network sees."""
        return self.cond_steps * self.obs_dim


class DiffusionPolicy(BasePolicy):
    """Frozen-able DPPO-style diffusion policy ``pi_dp(s, w) -> a``.

    ``obs_dim`` (the :class:`BasePolicy` attribute) is ``arch.cond_dim``: with ``cond_steps > 1``
    callers pass the normalised observations flattened, oldest first. The normaliser works on
    single observations of ``arch.obs_dim``.
    """

    def __init__(self, arch: DiffusionArch, normalizer: Normalizer | None = None) -> None:
        super().__init__()
        normalizer = normalizer or Normalizer.identity(arch.obs_dim, arch.act_dim)
        normalizer.check_fits(arch.obs_dim, arch.act_dim)
        self.arch = arch
        self.normalizer = normalizer
        self.obs_dim = arch.cond_dim
        self.chunk_len = arch.chunk_len
        self.act_dim = arch.act_dim
        self.network = DiffusionMLP(
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
        self.schedule = make_ddim_schedule(arch.denoising_steps, arch.ddim_steps)
        self.sampler = DDIMSampler(self.schedule, arch.denoised_clip_value)
        abar = alphas_cumprod(cosine_betas(arch.denoising_steps))
        self.register_buffer("sqrt_alphas_cumprod", abar.sqrt(), persistent=False)
        self.register_buffer("sqrt_one_minus_alphas_cumprod", (1.0 - abar).sqrt(), persistent=False)

    def _prepare(self, obs: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.check_inputs(obs, noise)
        p = self.sqrt_alphas_cumprod
        return obs.to(device=p.device, dtype=p.dtype), noise.to(device=p.device, dtype=p.dtype)

    def sample(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Denoise ``noise`` into an action chunk with the fast DDIM sampler.

        Args:
            obs: ``(B, obs_dim)`` normalised observations (any device; moved to the policy's).
            noise: ``(B, chunk_len, act_dim)`` initial noise, used as given.

        Returns:
            ``(B, chunk_len, act_dim)`` normalised actions on ``obs``'s device, usable in autograd
            graphs (not an inference-mode tensor unless called inside inference mode).
        """
        cond, x = self._prepare(obs, noise)
        out = self.sampler(self.network, cond, x)
        return out.clone().to(obs.device)

    def sample_reference(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`sample` via the plain per-step loop (slow; for tests and benchmarks)."""
        cond, x = self._prepare(obs, noise)
        return ddim_sample_reference(self.network, self.schedule, cond, x, self.arch.denoised_clip_value).to(obs.device)

    def bc_loss(
        self, obs: torch.Tensor, actions: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Behaviour-cloning loss of the DDPM epsilon prediction,
        ``mean ||eps - net(sqrt(a_t) a + sqrt(1 - a_t) eps, t, obs)||^2``.

        ``t ~ U{0, ..., T-1}`` (drawn first) and ``eps ~ N(0, I)`` are drawn per sample from ``generator``.

        Args:
            obs: ``(B, obs_dim)`` normalised observations.
            actions: ``(B, chunk_len, act_dim)`` normalised action chunks.
            generator: random source on the policy's device (default: torch's global one).

        Returns:
            scalar loss (mean over all ``B * chunk_len * act_dim`` entries).
        """
        self.check_training_inputs(obs, actions)
        b = actions.shape[0]
        t = torch.randint(0, self.arch.denoising_steps, (b,), device=actions.device, generator=generator)
        eps = torch.randn(actions.shape, device=actions.device, dtype=actions.dtype, generator=generator)
        scale = self.sqrt_alphas_cumprod[t].view(b, 1, 1)
        sigma = self.sqrt_one_minus_alphas_cumprod[t].view(b, 1, 1)
        return F.mse_loss(self.network(scale * actions + sigma * eps, t, obs), eps)
