"""The noise policy pi_w as a distribution: tanh-squashed Gaussian samples, modes, log-probabilities.

Every place that acts with the noise policy (runners' RLModule, a loaded checkpoint, the
learner's losses) draws its noise through this module. No Ray, no RLlib.

Convention: ``w = action_magnitude * tanh(u)``, ``u ~ N(mean, std)``. ``logp`` is by default the
log-density of ``tanh(u)`` in ``[-1, 1]^D`` (no ``-D*log(magnitude)`` term), which is what RLlib
(``TorchSquashedGaussian._squashed_logp``) and SB3 report and what a target entropy of 0
(paper default) refers to. ``include_magnitude_jacobian=True`` gives the density of ``w`` itself.
The choice only shifts ``logp`` by a constant.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from dsrl_ray.core.networks import GaussianActor

_LOG_2 = math.log(2.0)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_ATANH_EPS = 1e-6  # same clip RLlib uses before atanh (ray.rllib.utils.numpy.SMALL_NUMBER)

ActMode = Literal["base", "explore", "mode"]
"""How to act: ``w ~ N(0, I)`` (the base policy as deployed), a sample of pi_w, or pi_w's mode."""


def tanh_log_abs_det_jacobian(u: torch.Tensor) -> torch.Tensor:
    """``log|d tanh(u)/du| = log(1 - tanh(u)^2)`` per element, numerically stable. Shape of ``u``."""
    return 2.0 * (_LOG_2 - u - F.softplus(-2.0 * u))


def _squashed_log_prob(
    u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor, action_magnitude: float, include_magnitude_jacobian: bool
) -> torch.Tensor:
    gaussian = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - _LOG_SQRT_2PI  # (B, D)
    logp = (gaussian - tanh_log_abs_det_jacobian(u)).sum(-1)  # (B,)
    if include_magnitude_jacobian:
        logp = logp - u.shape[-1] * math.log(action_magnitude)
    return logp


def squashed_gaussian_sample(
    mean: torch.Tensor,
    log_std: torch.Tensor,
    action_magnitude: float,
    *,
    eps: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    include_magnitude_jacobian: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reparameterised sample of the noise policy and its log-probability.

    Args:
        mean: ``(B, D)`` pre-tanh mean.
        log_std: ``(B, D)`` pre-tanh log standard deviation (already clamped).
        action_magnitude: scale of the squashed sample (paper: 1.5).
        eps: ``(B, D)`` standard-normal draws to use; drawn with ``generator`` if None.
        generator: torch generator for ``eps``.
        include_magnitude_jacobian: subtract ``D * log(action_magnitude)`` from ``logp``.

    Returns:
        ``w (B, D)`` in ``[-action_magnitude, action_magnitude]`` (gradient flows to
        ``mean``/``log_std``) and ``logp (B,)``.
    """
    if eps is None:
        eps = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
    u = mean + log_std.exp() * eps
    w = action_magnitude * torch.tanh(u)
    logp = _squashed_log_prob(u, mean, log_std, action_magnitude, include_magnitude_jacobian)
    return w, logp


def squashed_gaussian_log_prob(
    mean: torch.Tensor,
    log_std: torch.Tensor,
    w: torch.Tensor,
    action_magnitude: float,
    *,
    include_magnitude_jacobian: bool = False,
) -> torch.Tensor:
    """``logp (B,)`` of given noise ``w (B, D)`` (inverts the squash; exact away from the bounds)."""
    y = (w / action_magnitude).clamp(-1.0 + _ATANH_EPS, 1.0 - _ATANH_EPS)
    return _squashed_log_prob(torch.atanh(y), mean, log_std, action_magnitude, include_magnitude_jacobian)


def squashed_gaussian_mode(mean: torch.Tensor, action_magnitude: float) -> torch.Tensor:
    """Deterministic (evaluation) noise ``action_magnitude * tanh(mean)``, ``(B, D)``."""
    return action_magnitude * torch.tanh(mean)


def standard_normal_noise(
    batch_size: int,
    noise_dim: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``w ~ N(0, I)``, shape ``(batch_size, noise_dim)``: the base policy's own noise."""
    return torch.randn(batch_size, noise_dim, generator=generator, device=device)


def act(
    actor: GaussianActor,
    obs: torch.Tensor,
    how: ActMode,
    action_magnitude: float,
    *,
    generator: torch.Generator | None = None,
    eps: torch.Tensor | None = None,
    base_noise_bound: float | None = None,
) -> torch.Tensor:
    """The latent action ``w (B, D)`` for ``obs (B, O)``, without gradient.

    ``"base"`` draws ``w ~ N(0, I)`` (warm-up: the base policy as deployed), clipped elementwise to
    ``[-base_noise_bound, base_noise_bound]`` when that is given (the released DSRL-SAC clips its
    warm-up noise to the noise bound, so the critic never sees noise the actor cannot emit);
    ``"explore"`` samples the squashed Gaussian (with the standard-normal draws ``eps (B, D)`` when
    given, else from ``generator``), ``"mode"`` takes ``action_magnitude * tanh(mean)``.
    """
    if base_noise_bound is not None and base_noise_bound <= 0:
        raise ValueError(f"act(base_noise_bound={base_noise_bound!r}); expected a positive number or None")
    with torch.no_grad():
        if how == "base":
            w = standard_normal_noise(len(obs), actor.action_dim, generator=generator, device=obs.device)
            return w if base_noise_bound is None else w.clamp(-base_noise_bound, base_noise_bound)
        mean, log_std = actor(obs)
        if how == "explore":
            return squashed_gaussian_sample(mean, log_std, action_magnitude, eps=eps, generator=generator)[0]
        if how == "mode":
            return squashed_gaussian_mode(mean, action_magnitude)
    raise ValueError(f"act(how={how!r}); expected one of 'base', 'explore', 'mode'")
