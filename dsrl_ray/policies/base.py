"""The one interface every frozen base policy ``pi_dp(s, w) -> a`` implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from dsrl_ray.policies.normalizer import Normalizer


class BasePolicy(nn.Module, ABC):
    """A frozen, deterministic map from (normalised observation, initial noise) to an action chunk.

    Everything happens in the policy's normalised space: observations as produced by
    ``self.normalizer.normalize_obs`` and actions in ``[-1, 1]`` that
    ``self.normalizer.unnormalize_action`` turns into environment units.

    Attributes:
        obs_dim: length of one (flattened) normalised observation.
        chunk_len: number of actions in one chunk (``horizon_steps``).
        act_dim: dimension of one action.
        normalizer: observation/action normaliser that belongs to this policy.
    """

    obs_dim: int
    chunk_len: int
    act_dim: int
    normalizer: Normalizer

    @property
    def noise_shape(self) -> tuple[int, int]:
        """Shape ``(chunk_len, act_dim)`` of the initial noise ``w`` for one observation."""
        return (self.chunk_len, self.act_dim)

    def check_inputs(self, obs: torch.Tensor, noise: torch.Tensor) -> None:
        """Raise ``ValueError`` naming the offending shape unless ``obs`` is ``(B, obs_dim)``
        and ``noise`` is ``(B, chunk_len, act_dim)`` with the same ``B``."""
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(
                f"obs has shape {tuple(obs.shape)}; expected (batch, obs_dim={self.obs_dim})"
            )
        expected = (obs.shape[0], self.chunk_len, self.act_dim)
        if tuple(noise.shape) != expected:
            raise ValueError(
                f"noise has shape {tuple(noise.shape)}; expected (batch, chunk_len, act_dim) = {expected}"
            )

    def check_training_inputs(self, obs: torch.Tensor, actions: torch.Tensor) -> None:
        """Raise ``ValueError`` naming both shapes unless ``obs`` is ``(B, obs_dim)`` and ``actions``
        is ``(B, chunk_len, act_dim)`` with the same ``B``."""
        expected = (obs.shape[0], self.chunk_len, self.act_dim)
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim or tuple(actions.shape) != expected:
            raise ValueError(
                f"obs {tuple(obs.shape)} and actions {tuple(actions.shape)}; expected (batch, {self.obs_dim}) "
                f"and (batch, chunk_len, act_dim) = {expected}"
            )

    @abstractmethod
    def sample(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Denoise ``noise`` into an action chunk, deterministically.

        Args:
            obs: ``(B, obs_dim)`` float32 normalised observations.
            noise: ``(B, chunk_len, act_dim)`` float32 initial noise ``w``, used as given.

        Returns:
            ``(B, chunk_len, act_dim)`` float32 normalised actions in ``[-1, 1]``, on the
            device of ``obs``.
        """
