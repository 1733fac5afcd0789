"""The core step of DSRL in one place: observation -> noise ``w`` -> frozen pi_dp -> action chunk.

:class:`Steering` wraps a frozen base policy and denoises batches of noise into chunks, with
no gradient, on the policy's device. Every caller that turns noise into executed chunks goes
through it: the runners' RLModule and the learner (torch, flattened noise), evaluation, video
and the latent-action env (numpy, ``(B, chunk_len, act_dim)`` noise). No Ray, no RLlib.

Shapes: ``B`` batch, ``O`` observation length, ``C`` chunk length, ``A`` action dimension,
``D = C * A`` flattened noise / chunk length.
"""

from __future__ import annotations

import numpy as np
import torch

from dsrl_ray.policies.base import BasePolicy


def policy_device(policy: object) -> torch.device:
    """The device of a policy: its ``device`` attribute, else its first parameter or buffer's, else the CPU."""
    if not isinstance(policy, torch.nn.Module):
        return torch.device(getattr(policy, "device", "cpu"))
    tensor = next(policy.parameters(), None)
    if tensor is None:
        tensor = next(policy.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


class Steering:
    """Denoise noise into action chunks with a frozen base policy ``pi_dp(s, w)``.

    Args:
        base_policy: the frozen policy (used as is; callers keep it in eval mode).

    Attributes:
        policy: the base policy.
        noise_shape: ``(C, A)``, the noise for one observation.
        noise_dim: ``D = C * A``.
        device: where the policy (and every tensor it is given) lives.
    """

    def __init__(self, base_policy: BasePolicy) -> None:
        self.policy = base_policy
        self.noise_shape = tuple(base_policy.noise_shape)
        self.noise_dim = int(np.prod(self.noise_shape))
        self.device = policy_device(base_policy)

    def chunks(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``obs (B, O)``, ``noise (B, C, A)`` or ``(B, D)`` -> chunks ``(B, C, A)`` (no gradient)."""
        with torch.inference_mode():
            return self.policy.sample(obs, noise.reshape(len(noise), *self.noise_shape))

    def flat(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``obs (B, O)``, ``noise (B, D)`` -> executed chunks flattened ``(B, D)`` (no gradient)."""
        return self.chunks(obs, noise).reshape(len(obs), self.noise_dim)

    def flat_with_pairs(
        self, obs: torch.Tensor, noise: torch.Tensor, k: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The executed chunks plus ``k`` aliasing pairs per observation, in one batched pi_dp call.

        Draws ``w_k ~ N(0, I)`` and denoises them together with ``noise`` over ``B * (1 + k)`` rows
        (the noise to execute first, then each observation's ``k`` draws), no gradient.

        Args:
            obs: ``(B, O)``.
            noise: ``(B, D)`` the noise to execute.
            k: pairs per observation (>= 1).
            generator: torch generator of the draws (the global one if None).

        Returns:
            ``executed (B, D)``, ``pair_noise (B, k, D)``, ``pair_executed (B, k, D)``.
        """
        if k < 1:
            raise ValueError(f"flat_with_pairs(k={k!r}); expected at least 1 pair per observation")
        b = len(obs)
        pair_noise = torch.randn(b, k, self.noise_dim, generator=generator, device=obs.device, dtype=noise.dtype)
        all_obs = torch.cat([obs, obs.repeat_interleave(k, dim=0)])  # (B * (1 + k), O)
        all_noise = torch.cat([noise.reshape(b, self.noise_dim), pair_noise.reshape(b * k, self.noise_dim)])
        chunks = self.flat(all_obs, all_noise)  # (B * (1 + k), D)
        return chunks[:b], pair_noise, chunks[b:].reshape(b, k, self.noise_dim)

    def chunks_np(self, obs: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """numpy in, numpy out: ``obs (B, O)``, ``noise (B, C, A)`` -> float32 chunks ``(B, C, A)`` on the CPU."""
        chunks = self.chunks(
            torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device),
            torch.as_tensor(np.asarray(noise, dtype=np.float32), device=self.device),
        )
        return chunks.to("cpu", torch.float32).numpy()
