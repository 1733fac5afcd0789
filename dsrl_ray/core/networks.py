"""Actor and ensemble-critic MLPs for DSRL. Pure torch, no Ray.

Why not RLlib's SAC catalog heads (see docs/rllib-integration.md): RLlib 2.60's SAC
module hard-codes at most two critics (``qf``/``qf_twin``), builds the Q network as a
multi-stream encoder (separate obs and action encoders + a fusion net) instead of an
MLP on ``concat(s, a)``, and its ``fcnet_use_layernorm`` flag does not reach the action
encoder or the fusion net. The paper's critics are ``n_critics`` plain MLPs on
``concat(s, a)`` with LayerNorm after every hidden linear layer; these classes build
exactly that, with all ensemble members evaluated in one batched matmul.

Layer order in every hidden block: ``Linear -> LayerNorm (optional) -> activation``.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

# Same clamp RLlib applies to SAC log-stds (ray.rllib.utils.numpy.MIN/MAX_LOG_NN_OUTPUT).
LOG_STD_MIN = -5.0
LOG_STD_MAX = 2.0

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "mish": nn.Mish,
    "silu": nn.SiLU,
}


Activation = Literal[tuple(ACTIVATIONS)]  # type: ignore[valid-type]
"""The hidden activations by name (lower case): the keys of :data:`ACTIVATIONS`."""


def activation_layer(name: str) -> nn.Module:
    """A fresh activation module by name: relu, elu, gelu, tanh, mish, silu."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; choose from {sorted(ACTIVATIONS)}") from None


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    *,
    layer_norm: bool = False,
    activation: str = "relu",
) -> nn.Sequential:
    """``in_dim -> hidden... -> out_dim`` MLP; the output layer is linear."""
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers.append(nn.Linear(last, width))
        if layer_norm:
            layers.append(nn.LayerNorm(width))
        layers.append(activation_layer(activation))
        last = width
    layers.append(nn.Linear(last, out_dim))
    return nn.Sequential(*layers)


class EnsembleLinear(nn.Module):
    """``n`` independent linear layers applied in one batched matmul.

    Input ``(n, B, in_dim)`` (or ``(B, in_dim)``, broadcast to every member), output
    ``(n, B, out_dim)``. Each member is initialised like ``nn.Linear`` (uniform in
    ``+-1/sqrt(in_dim)`` for weights and biases).
    """

    def __init__(self, n: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.n, self.in_dim, self.out_dim = n, in_dim, out_dim
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor, *, detach_params: bool = False) -> torch.Tensor:
        weight, bias = (self.weight.detach(), self.bias.detach()) if detach_params else (self.weight, self.bias)
        if x.ndim == 2:
            x = x.unsqueeze(0).expand(self.n, -1, -1)
        return torch.baddbmm(bias, x, weight)


class EnsembleLayerNorm(nn.Module):
    """LayerNorm over the last dim with a separate affine (gain, bias) per member."""

    def __init__(self, n: int, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = nn.Parameter(torch.ones(n, 1, dim))
        self.bias = nn.Parameter(torch.zeros(n, 1, dim))

    def forward(self, x: torch.Tensor, *, detach_params: bool = False) -> torch.Tensor:
        weight, bias = (self.weight.detach(), self.bias.detach()) if detach_params else (self.weight, self.bias)
        return F.layer_norm(x, (self.dim,), eps=self.eps) * weight + bias


class EnsembleCritic(nn.Module):
    """``n_critics`` Q-networks ``Q_i(s, a)``, each an MLP on ``concat(s, a)``.

    Args:
        obs_dim: observation length.
        action_dim: action length (the noise ``w`` for Q/Q_W, the executed chunk for Q_A).
        hidden: hidden widths, e.g. ``(2048, 2048, 2048)`` (paper) or ``(128,) * 3``.
        n_critics: ensemble size (paper: 2).
        layer_norm: LayerNorm after every hidden linear layer (paper: on).
        activation: hidden activation name.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int] = (256, 256, 256),
        n_critics: int = 2,
        *,
        layer_norm: bool = True,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        if n_critics < 1:
            raise ValueError(f"n_critics must be >= 1, got {n_critics}")
        self.obs_dim, self.action_dim, self.n_critics = obs_dim, action_dim, n_critics
        self.linears = nn.ModuleList()
        self.norms = nn.ModuleList()
        last = obs_dim + action_dim
        for width in hidden:
            self.linears.append(EnsembleLinear(n_critics, last, width))
            self.norms.append(EnsembleLayerNorm(n_critics, width) if layer_norm else nn.Identity())
            last = width
        self.out = EnsembleLinear(n_critics, last, 1)
        self.act = activation_layer(activation)

    def forward(self, obs: torch.Tensor, action: torch.Tensor, *, detach_params: bool = False) -> torch.Tensor:
        """Q-values of every member.

        Args:
            obs: ``(B, obs_dim)``.
            action: ``(B, action_dim)``.
            detach_params: use detached parameters, so gradients reach ``obs``/``action``
                (e.g. the actor through a reparameterised action) but never the critic.

        Returns:
            ``(n_critics, B)``.
        """
        if obs.shape[-1] != self.obs_dim or action.shape[-1] != self.action_dim:
            raise ValueError(
                f"critic expects obs (B, {self.obs_dim}) and action (B, {self.action_dim}); "
                f"got {tuple(obs.shape)} and {tuple(action.shape)}"
            )
        x = torch.cat([obs, action], dim=-1)
        for linear, norm in zip(self.linears, self.norms):
            x = linear(x, detach_params=detach_params)
            if isinstance(norm, EnsembleLayerNorm):
                x = norm(x, detach_params=detach_params)
            x = self.act(x)
        return self.out(x, detach_params=detach_params).squeeze(-1)


class GaussianActor(nn.Module):
    """Diagonal-Gaussian policy head ``s -> (mean, log_std)`` over the pre-tanh noise.

    Sampling, the tanh squash, the ``action_magnitude`` scale and the log-probability
    are in :mod:`dsrl_ray.core.losses` (``squashed_gaussian_sample``).

    Args:
        obs_dim: observation length.
        action_dim: latent action length (``chunk_len * act_dim``; ``act_dim`` for shared noise).
        hidden: hidden widths.
        layer_norm: LayerNorm after every hidden linear layer.
        activation: hidden activation name.
        log_std_min, log_std_max: clamp of the log standard deviation.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int] = (256, 256, 256),
        *,
        layer_norm: bool = False,
        activation: str = "relu",
        log_std_min: float = LOG_STD_MIN,
        log_std_max: float = LOG_STD_MAX,
    ) -> None:
        super().__init__()
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.log_std_min, self.log_std_max = log_std_min, log_std_max
        self.net = mlp(obs_dim, hidden, 2 * action_dim, layer_norm=layer_norm, activation=activation)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs (B, obs_dim)`` -> ``mean (B, action_dim)``, ``log_std (B, action_dim)`` (clamped)."""
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)
