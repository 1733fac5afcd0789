"""The core step of DSRL in one place: observation -> latent noise ``w`` -> frozen pi_dp -> action chunk.

:class:`Steering` wraps a frozen base policy and denoises batches of noise into chunks, with
no gradient, on the policy's device. Every caller that turns noise into executed chunks goes
through it: the runners' RLModule and the learner (torch, latent noise), evaluation, video
and the latent-action env (numpy). No Ray, no RLlib.

Noise modes (:data:`NoiseMode`): the latent action ``w`` the noise policy chooses is either the
chunk's whole noise (``"full"``, ``L = D``) or one ``act_dim`` vector that every step of the
chunk shares (``"shared"``, ``L = A``, broadcast over the ``C`` steps before pi_dp denoises it).
pi_dp always receives ``(B, C, A)`` chunk noise.

Shapes: ``B`` batch, ``O`` observation length, ``C`` chunk length, ``A`` action dimension,
``D = C * A`` flattened chunk noise / chunk length, ``L`` latent noise length (``D`` or ``A``).
"""

from __future__ import annotations

import typing
from typing import Literal

import numpy as np
import torch

from dsrl_ray.policies.base import BasePolicy

NoiseMode = Literal["full", "shared"]
"""What the latent action is: the chunk's full ``(C, A)`` noise, or one ``A`` vector shared by its ``C`` steps."""

NOISE_MODES: tuple[str, ...] = typing.get_args(NoiseMode)
"""The values of :data:`NoiseMode`."""


def latent_noise_dim(chunk_len: int, act_dim: int, noise_mode: NoiseMode) -> int:
    """The latent-action length ``L``: ``chunk_len * act_dim`` for ``"full"``, ``act_dim`` for ``"shared"``."""
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode={noise_mode!r}; expected one of {', '.join(map(repr, NOISE_MODES))}")
    return int(chunk_len) * int(act_dim) if noise_mode == "full" else int(act_dim)


def policy_device(policy: object) -> torch.device:
    """The device of a policy: its ``device`` attribute, else its first parameter or buffer's, else the CPU."""
    if not isinstance(policy, torch.nn.Module):
        return torch.device(getattr(policy, "device", "cpu"))
    tensor = next(policy.parameters(), None)
    if tensor is None:
        tensor = next(policy.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


class Steering:
    """Denoise latent noise into action chunks with a frozen base policy ``pi_dp(s, w)``.

    Args:
        base_policy: the frozen policy (used as is; callers keep it in eval mode).
        noise_mode: what the latent noise is (see the module docstring).

    Attributes:
        policy: the base policy.
        noise_mode: ``"full"`` or ``"shared"``.
        noise_shape: ``(C, A)``, the chunk noise pi_dp takes for one observation.
        chunk_dim: ``D = C * A``, the length of a flattened chunk (and of its noise).
        latent_dim: ``L``, the length of one latent noise vector (``D`` full, ``A`` shared).
        device: where the policy (and every tensor it is given) lives.
    """

    def __init__(self, base_policy: BasePolicy, noise_mode: NoiseMode = "full") -> None:
        self.policy = base_policy
        self.noise_mode = noise_mode
        self.noise_shape = tuple(base_policy.noise_shape)
        self.chunk_dim = int(np.prod(self.noise_shape))
        self.latent_dim = latent_noise_dim(*self.noise_shape, noise_mode)
        self.device = policy_device(base_policy)

    def _check_latent(self, latent_shape: tuple[int, ...]) -> None:
        if len(latent_shape) != 2 or latent_shape[1] != self.latent_dim:
            raise ValueError(
                f"latent noise has shape {latent_shape}; expected (batch, {self.latent_dim}) for "
                f"noise_mode={self.noise_mode!r} and chunk noise of shape {self.noise_shape}"
            )

    def chunk_noise(self, latent: torch.Tensor) -> torch.Tensor:
        """Latent noise ``(B, L)`` -> the chunk noise pi_dp takes, ``(B, C, A)`` (shared: ``w`` at every step)."""
        self._check_latent(tuple(latent.shape))
        if self.noise_mode == "full":
            return latent.reshape(len(latent), *self.noise_shape)
        return latent[:, None, :].repeat(1, self.noise_shape[0], 1)  # a copy: samplers may write into their noise

    def chunk_noise_np(self, latent: np.ndarray) -> np.ndarray:
        """numpy :meth:`chunk_noise`: latent ``(B, L)`` -> float32 chunk noise ``(B, C, A)`` (a new array)."""
        latent = np.asarray(latent, dtype=np.float32)
        self._check_latent(latent.shape)
        if self.noise_mode == "full":
            return latent.reshape(len(latent), *self.noise_shape).copy()
        return np.repeat(latent[:, None, :], self.noise_shape[0], axis=1)

    def chunks(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``obs (B, O)``, chunk noise ``(B, C, A)`` or ``(B, D)`` -> chunks ``(B, C, A)`` (no gradient)."""
        with torch.inference_mode():
            return self.policy.sample(obs, noise.reshape(len(noise), *self.noise_shape))

    def flat(self, obs: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """``obs (B, O)``, latent noise ``(B, L)`` -> executed chunks flattened ``(B, D)`` (no gradient)."""
        return self.chunks(obs, self.chunk_noise(latent)).reshape(len(obs), self.chunk_dim)

    def flat_with_pairs(
        self, obs: torch.Tensor, latent: torch.Tensor, k: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The executed chunks plus ``k`` aliasing pairs per observation, in one batched pi_dp call.

        Draws latent ``w_k ~ N(0, I)`` (length ``L``: in shared mode one ``A`` vector, broadcast
        over the chunk like the executed noise, so Q_W learns on latent noise) and denoises them
        together with ``latent`` over ``B * (1 + k)`` rows (the noise to execute first, then each
        observation's ``k`` draws), no gradient.

        Args:
            obs: ``(B, O)``.
            latent: ``(B, L)`` the latent noise to execute.
            k: pairs per observation (>= 1).
            generator: torch generator of the draws (the global one if None).

        Returns:
            ``executed (B, D)``, ``pair_noise (B, k, L)``, ``pair_executed (B, k, D)``.
        """
        if k < 1:
            raise ValueError(f"flat_with_pairs(k={k!r}); expected at least 1 pair per observation")
        b = len(obs)
        pair_noise = torch.randn(b, k, self.latent_dim, generator=generator, device=obs.device, dtype=latent.dtype)
        all_obs = torch.cat([obs, obs.repeat_interleave(k, dim=0)])  # (B * (1 + k), O)
        all_latent = torch.cat([latent, pair_noise.reshape(b * k, self.latent_dim)])  # (B * (1 + k), L)
        chunks = self.flat(all_obs, all_latent)  # (B * (1 + k), D)
        return chunks[:b], pair_noise, chunks[b:].reshape(b, k, self.chunk_dim)

    def chunks_np(self, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """numpy in, numpy out: ``obs (B, O)``, chunk noise ``(B, C, A)`` -> float32 chunks ``(B, C, A)`` on the CPU."""
        chunks = self.chunks(
            torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device),
            torch.as_tensor(np.asarray(noise, dtype=np.float32), device=self.device),
        )
        return chunks.to("cpu", torch.float32).numpy()
