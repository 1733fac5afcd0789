"""Independent float64 numpy implementation of DPPO's schedule, epsilon MLP and DDIM, and of the
flow-matching velocity, ODE samplers and loss, for tests.

Written from the formulas (not from our torch code): cosine alpha-bar on ``k / T``, betas clipped
to 0.999, DDIM leading timesteps, and a forward pass read straight from a DPPO-layout state dict;
for flows the linear path ``x_t = (1 - t) noise + t action`` integrated from ``t = 0`` to ``1``.
"""

from __future__ import annotations

import math

import numpy as np


def alpha_bar(denoising_steps: int, s: float = 0.008) -> np.ndarray:
    """``(T,)`` float64 alpha-bar: cumulative product of ``1 - clip(beta_t, 0, 0.999)``."""
    k = np.arange(denoising_steps + 1) / denoising_steps
    f = np.cos((k + s) / (1 + s) * math.pi / 2) ** 2
    betas = np.clip(1 - f[1:] / f[:-1], 0, 0.999)
    return np.cumprod(1 - betas)


def act(name: str, x: np.ndarray) -> np.ndarray:
    if name == "Mish":
        return x * np.tanh(np.logaddexp(0.0, x))
    if name == "ReLU":
        return np.maximum(x, 0.0)
    raise ValueError(name)


def linear(state: dict, prefix: str, x: np.ndarray) -> np.ndarray:
    return x @ state[prefix + ".weight"].T + state[prefix + ".bias"]


def layernorm(state: dict, prefix: str, x: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * state[prefix + ".weight"] + state[prefix + ".bias"]


def epsilon(state: dict, arch, x: np.ndarray, t: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """DPPO DiffusionMLP forward from a ``network.*`` state dict of float64 arrays.

    ``x (B, Ta, Da)``, ``t (B,)``, ``cond (B, cond_dim)`` -> ``(B, Ta, Da)``.
    """
    p = "network."
    b = x.shape[0]
    half = arch.time_dim // 2
    freqs = np.exp(-np.arange(half) * math.log(10000) / (half - 1))
    angles = t[:, None].astype(np.float64) * freqs[None]
    temb = np.concatenate([np.sin(angles), np.cos(angles)], -1)
    temb = linear(state, p + "time_embedding.3", act("Mish", linear(state, p + "time_embedding.1", temb)))
    if arch.cond_mlp_dims is not None:
        n = len(arch.cond_mlp_dims)
        for i in range(n):
            cond = linear(state, f"{p}cond_mlp.moduleList.{i}.linear_1", cond)
            if i < n - 1:
                cond = act(arch.activation, cond)
    h = np.concatenate([x.reshape(b, -1), temb, cond], -1)
    a = arch.activation
    if arch.residual_style:
        blocks = (len(arch.mlp_dims) - 1) // 2
        h = linear(state, p + "mlp_mean.layers.0", h)
        for i in range(1, blocks + 1):
            q = f"{p}mlp_mean.layers.{i}"
            y = layernorm(state, q + ".norm1", h, 1e-6) if arch.use_layernorm else h
            y = linear(state, q + ".l1", act(a, y))
            if arch.use_layernorm:
                y = layernorm(state, q + ".norm2", y, 1e-6)
            h = h + linear(state, q + ".l2", act(a, y))
        h = linear(state, f"{p}mlp_mean.layers.{blocks + 1}", h)
    else:
        n = len(arch.mlp_dims) + 1
        for i in range(n):
            q = f"{p}mlp_mean.moduleList.{i}"
            h = linear(state, q + ".linear_1", h)
            if i < n - 1:
                if arch.use_layernorm:
                    h = layernorm(state, q + ".norm_1", h, 1e-5)
                h = act(a, h)
    return h.reshape(x.shape)


def ddim(state: dict, arch, cond: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, int]:
    """Deterministic DDIM; returns the chunk ``(B, Ta, Da)`` and how many x0 entries were clipped."""
    abar = alpha_bar(arch.denoising_steps)
    ratio = arch.denoising_steps // arch.ddim_steps
    ts = [i * ratio for i in range(arch.ddim_steps)][::-1]
    x = noise.astype(np.float64)
    c = arch.denoised_clip_value
    clipped = 0
    for i, t in enumerate(ts):
        a = abar[t]
        a_prev = abar[ts[i + 1]] if i + 1 < len(ts) else 1.0
        eps = epsilon(state, arch, x, np.full(len(x), t), cond)
        x0 = (x - np.sqrt(1 - a) * eps) / np.sqrt(a)
        clipped += int(np.sum(np.abs(x0) > c))
        x0 = np.clip(x0, -c, c)
        eps = (x - np.sqrt(a) * x0) / np.sqrt(1 - a)
        x = np.sqrt(a_prev) * x0 + np.sqrt(1 - a_prev) * eps
    return x, clipped


def velocity(state: dict, arch, x: np.ndarray, t: np.ndarray, cond: np.ndarray) -> np.ndarray:
    """Flow velocity: the same MLP, its sinusoidal embedding fed ``time_scale * t`` for ``t (B,)`` in [0, 1]."""
    return epsilon(state, arch, x, arch.time_scale * np.asarray(t, dtype=np.float64), cond)


def flow(state: dict, arch, cond: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, int]:
    """Euler or midpoint ODE from ``noise`` at t = 0 to t = 1 in ``arch.flow_steps`` steps, clipped to [-1, 1].

    Returns the chunk ``(B, Ta, Da)`` and how many entries the final clip changed.
    """
    x = noise.astype(np.float64)
    n = len(x)
    h = 1.0 / arch.flow_steps
    for i in range(arch.flow_steps):
        t = np.full(n, i * h)
        k1 = velocity(state, arch, x, t, cond)
        if arch.sampler == "euler":
            x = x + h * k1
        elif arch.sampler == "midpoint":
            k2 = velocity(state, arch, x + h / 2 * k1, t + h / 2, cond)
            x = x + h * k2
        else:
            raise ValueError(arch.sampler)
    clipped = int(np.sum(np.abs(x) > 1))
    return np.clip(x, -1.0, 1.0), clipped


def flow_loss(state: dict, arch, obs: np.ndarray, actions: np.ndarray, t: np.ndarray, noise: np.ndarray) -> float:
    """``mean((v((1 - t) noise + t a, t, obs) - (a - noise))^2)`` over every entry."""
    s = t[:, None, None]
    x_t = (1 - s) * noise + s * actions
    return float(np.mean((velocity(state, arch, x_t, t, obs) - (actions - noise)) ** 2))


def state_to_numpy(state: dict) -> dict:
    return {k: v.detach().cpu().double().numpy() for k, v in state.items()}
