"""The identity base policy ``pi_dp(s, w) = clip(w, -1, 1)``: DSRL over it is plain RL on the task.

With this policy the latent action *is* the action (in the task's ``[-1, 1]`` action units), so
DSRL-SAC on it is SAC on the task itself, run by the same RLlib algorithm, replay and learner as
every DSRL run. The gym tasks' learned demonstrators are trained that way
(:mod:`dsrl_ray.rllib.sac_training`). The policy has no parameters; build it from a config with
``base_policy_factory: dsrl_ray.policies.identity:make_identity_policy`` and
``base_policy_factory_kwargs: {obs_dim: ..., act_dim: ...}``.
"""

from __future__ import annotations

import torch

from dsrl_ray.policies.base import BasePolicy
from dsrl_ray.policies.normalizer import Normalizer

IDENTITY_FACTORY = "dsrl_ray.policies.identity:make_identity_policy"
"""The ``base_policy_factory`` string that builds an :class:`IdentityPolicy`."""


class IdentityPolicy(BasePolicy):
    """``sample(obs, w) = clip(w, -1, 1)``: the chunk is the noise itself, the observation is ignored.

    Its normaliser is the identity, so observations reach the noise policy raw and actions in
    ``[-1, 1]`` reach the env unchanged (the gym locomotion tasks' action bounds).

    Args:
        obs_dim: length of one observation.
        act_dim: dimension of one action.
        chunk_len: actions per chunk (1: one env step per decision, as plain RL acts).
    """

    def __init__(self, obs_dim: int, act_dim: int, chunk_len: int = 1) -> None:
        super().__init__()
        for name, value in (("obs_dim", obs_dim), ("act_dim", act_dim), ("chunk_len", chunk_len)):
            if int(value) != value or value < 1:
                raise ValueError(f"IdentityPolicy {name}={value!r}; expected a positive integer")
        self.obs_dim, self.act_dim, self.chunk_len = int(obs_dim), int(act_dim), int(chunk_len)
        self.normalizer = Normalizer.identity(self.obs_dim, self.act_dim)

    def sample(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``(B, chunk_len, act_dim)`` noise clipped to ``[-1, 1]`` (``obs (B, obs_dim)`` only checked)."""
        self.check_inputs(obs, noise)
        return noise.clamp(-1.0, 1.0)


def make_identity_policy(obs_dim: int, act_dim: int, chunk_len: int = 1) -> IdentityPolicy:
    """The ``base_policy_factory`` of :class:`IdentityPolicy`."""
    return IdentityPolicy(obs_dim, act_dim, chunk_len)
