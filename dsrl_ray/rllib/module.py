"""``DSRLTorchRLModule``: the noise policy, its critics and a frozen pi_dp replica.

Shapes: ``O`` observation length, ``A = chunk_len * act_dim`` executed chunk length (flattened),
``D`` latent noise length: ``A`` with ``noise_mode="full"``, ``act_dim`` with ``"shared"`` (one
vector that every step of the chunk shares; :class:`~dsrl_ray.core.steering.Steering` broadcasts it).

On env runners (``inference_only``) the module holds the actor and pi_dp. One forward pass
over a runner's vector envs computes the noise ``w`` for every env and denoises all of them
in one batched pi_dp call. It returns

- ``actions``: ``w`` (B, D), what the episode stores as the latent action (the module's
  ``action_space``, ``Box(-action_magnitude, action_magnitude, (D,))``);
- ``actions_for_env`` and ``executed``: ``pi_dp(s, w)`` (B, A), what the env executes; the
  runner keeps ``executed`` per step in the episode's ``extra_model_outputs``;
- with ``aliasing_pairs = K > 0`` (DSRL-NA, pairs from the actors) also ``pair_noise`` (B, K, D),
  K draws ``w_k ~ N(0, I)``, and ``pair_executed`` (B, K, A), their chunks ``pi_dp(s, w_k)``,
  denoised in the same batched call; they too travel as extra model outputs, and the learner
  distils Q_W on them instead of calling pi_dp.

The learner's copy adds the critics: ``qf`` (Q(s, w) for ``variant="sac"``, Q_A(s, a) for
``"na"``), ``target_qf`` and, for NA, ``qf_w`` (Q_W(s, w)). Losses are computed in the
learner from these submodules (``_forward_train`` returns nothing).

The module's state carries its ``noise_mode`` (key :data:`NOISE_MODE_STATE`); restoring a state
of the other mode is refused (:class:`NoiseModeMismatchError`) before any weight is loaded.

pi_dp is stored as a plain attribute, not a registered submodule, so it is in no
``state_dict``, no optimiser, no weight broadcast and no checkpoint.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch

from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import DefaultSACTorchRLModule
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.utils import make_target_network

from ray.rllib.utils.annotations import override

from dsrl_ray.core.networks import LOG_STD_MIN, EnsembleCritic, GaussianActor
from dsrl_ray.core.noise_policy import act
from dsrl_ray.core.steering import NoiseMode, Steering, latent_noise_dim
from dsrl_ray.policies.base import BasePolicy
from dsrl_ray.policies.spec import BasePolicySpec, load_base_policy

EXECUTED = "executed"
"""Module output / episode extra-model-output / train-batch column: the executed chunk (B, A)."""

PAIR_NOISE, PAIR_EXECUTED = "pair_noise", "pair_executed"
"""Module outputs / episode extra-model-outputs: aliasing pairs ``w_k`` (B, K, D) and ``pi_dp(s, w_k)`` (B, K, A)."""

ACT_NOISE_POLICY, ACT_BASE_NOISE = 0, 1
"""Values of the ``acting_source`` buffer: act with the noise policy, or with ``w ~ N(0, I)`` (warm-up)."""

NOISE_MODE_STATE = "noise_mode"
"""Key of the module's ``noise_mode`` (``"full"`` | ``"shared"``) in its ``get_state()``."""


class NoiseModeMismatchError(ValueError):
    """A module state (e.g. a checkpoint) of one ``noise_mode`` restored into a module of the other."""


class DSRLTorchRLModule(DefaultSACTorchRLModule):
    """RLModule of DSRL (both variants); configured by ``model_config["dsrl"]``.

    ``model_config["dsrl"]`` keys: ``variant`` ("sac" | "na"), ``hidden`` (list of widths),
    ``layer_norm`` (bool), ``activation`` (str), ``log_std_min`` (float), ``n_critics`` (int),
    ``action_magnitude`` (float), ``initial_acting_source`` (:data:`ACT_NOISE_POLICY` |
    :data:`ACT_BASE_NOISE`), ``aliasing_pairs`` (int, pairs per acting step; 0: none),
    ``noise_mode`` ("full" | "shared"; default "full"), ``base_policy`` (:class:`BasePolicySpec` dict).

    Attributes (besides the networks): ``noise_mode``, ``latent_dim`` (``D``, the length of ``w``),
    ``chunk_dim`` (``A``, the length of the executed chunk).
    """

    @override(DefaultSACTorchRLModule)
    def setup(self) -> None:  # noqa: D102 (no super().setup(): the SAC catalog heads are not used)
        cfg = self.model_config["dsrl"]
        self.variant: str = cfg["variant"]
        self.action_magnitude = float(cfg["action_magnitude"])
        self.aliasing_pairs = int(cfg.get("aliasing_pairs", 0))
        self.noise_mode: NoiseMode = cfg.get("noise_mode", "full")
        obs_dim = int(self.observation_space.shape[0])
        spec = BasePolicySpec.from_dict(cfg["base_policy"])
        policy = load_base_policy(spec)
        self.chunk_dim = policy.chunk_len * policy.act_dim
        self.latent_dim = latent_noise_dim(policy.chunk_len, policy.act_dim, self.noise_mode)
        self._check_spaces(policy, obs_dim, int(self.action_space.shape[0]))
        self.action_space = gym.spaces.Box(-self.action_magnitude, self.action_magnitude, (self.latent_dim,), np.float32)
        object.__setattr__(self, "_pi_dp_spec", spec)
        # Unregistered: in no state_dict(), not moved by .to().
        object.__setattr__(self, "_steering", Steering(policy, self.noise_mode))
        net = dict(layer_norm=bool(cfg["layer_norm"]), activation=cfg["activation"])
        hidden = [int(h) for h in cfg["hidden"]]
        log_std_min = float(cfg.get("log_std_min", LOG_STD_MIN))
        self.pi = GaussianActor(obs_dim, self.latent_dim, hidden, log_std_min=log_std_min, **net)
        self.register_buffer("acting_source", torch.tensor(int(cfg["initial_acting_source"]), dtype=torch.int64))
        if not self.inference_only:
            critic_in = self.latent_dim if self.variant == "sac" else self.chunk_dim  # Q(s, w) | Q_A(s, a)
            self.qf = EnsembleCritic(obs_dim, critic_in, hidden, int(cfg["n_critics"]), **net)
            if self.variant == "na":
                self.qf_w = EnsembleCritic(obs_dim, self.latent_dim, hidden, int(cfg["n_critics"]), **net)

    def _check_spaces(self, policy: BasePolicy, obs_dim: int, action_len: int) -> None:
        """The spaces the module was built with against pi_dp.

        The action space is the env's (the executed chunk, ``A``) or, for a module rebuilt from
        a checkpoint, the module's own noise space (``D``); both are accepted.
        """
        if policy.obs_dim != obs_dim or action_len not in (self.chunk_dim, self.latent_dim):
            raise ValueError(
                f"base policy has obs_dim={policy.obs_dim}, chunk length chunk_len*act_dim={self.chunk_dim} and, "
                f"with noise_mode={self.noise_mode!r}, latent noise length {self.latent_dim}; the module's spaces "
                f"have obs_dim={obs_dim}, action length={action_len} (expected the chunk's or the noise's length)"
            )

    # ------------------------------------------------------------------ pi_dp
    @property
    def pi_dp(self) -> torch.nn.Module:
        """The frozen base policy (``sample(obs (B, O), noise (B, chunk_len, act_dim))``)."""
        return self._steering.policy

    def pi_dp_flat(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``pi_dp`` on latent noise: ``(B, O), (B, D) -> (B, A)`` (shared noise broadcast), no gradient."""
        return self._steering_on(obs.device).flat(obs, noise)

    def _steering_on(self, device: torch.device) -> Steering:
        """pi_dp's :class:`Steering` on ``device``.

        A learner or runner on a GPU gets its own replica there on first use (loaded from the
        same file and checked against the same sha256).
        """
        if self._steering.device != device:
            policy = load_base_policy(self._pi_dp_spec, device=device)
            object.__setattr__(self, "_steering", Steering(policy, self.noise_mode))
        return self._steering

    # ------------------------------------------------------------------ acting
    def _act(self, batch: dict[str, Any], explore: bool) -> dict[str, torch.Tensor]:
        obs = batch[Columns.OBS]
        how = "base" if int(self.acting_source) == ACT_BASE_NOISE else ("explore" if explore else "mode")
        bound = self.action_magnitude if self.variant == "sac" else None  # released DSRL-SAC clips its warm-up noise
        w = act(self.pi, obs, how, self.action_magnitude, base_noise_bound=bound)
        if not self.aliasing_pairs:
            executed = self.pi_dp_flat(obs, w)
            return {Columns.ACTIONS: w, Columns.ACTIONS_FOR_ENV: executed, EXECUTED: executed}
        steering = self._steering_on(obs.device)
        executed, pair_noise, pair_executed = steering.flat_with_pairs(obs, w, self.aliasing_pairs)
        return {
            Columns.ACTIONS: w,
            Columns.ACTIONS_FOR_ENV: executed,
            EXECUTED: executed,
            PAIR_NOISE: pair_noise,
            PAIR_EXECUTED: pair_executed,
        }

    @override(DefaultSACTorchRLModule)
    def _forward_inference(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, torch.Tensor]:
        """Deterministic noise ``action_magnitude * tanh(mean)`` (or ``N(0, I)`` during warm-up)."""
        return self._act(batch, explore=False)

    @override(DefaultSACTorchRLModule)
    def _forward_exploration(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, torch.Tensor]:
        """Noise sampled from the squashed Gaussian (or ``N(0, I)`` during warm-up)."""
        return self._act(batch, explore=True)

    @override(DefaultSACTorchRLModule)
    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Nothing: the learner calls the submodules directly (single learner only)."""
        return {}

    # ------------------------------------------------------------------ RLlib APIs
    @override(DefaultSACTorchRLModule)
    def get_state(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """RLlib's state (weights and buffers, numpy) plus the module's ``noise_mode``."""
        return {**super().get_state(*args, **kwargs), NOISE_MODE_STATE: self.noise_mode}

    @override(DefaultSACTorchRLModule)
    def set_state(self, state: dict[str, Any]) -> None:
        """RLlib's ``set_state``, after checking that ``state`` was saved with this module's ``noise_mode``."""
        state = dict(state)
        saved = state.pop(NOISE_MODE_STATE, None)
        if saved is not None and saved != self.noise_mode:
            raise NoiseModeMismatchError(
                f"the state to restore (e.g. a checkpoint) was trained with noise_mode={saved!r}, but this module "
                f"has noise_mode={self.noise_mode!r}; restore it with training(noise_mode={saved!r}) "
                "(the noise policy and the critics have different input and output sizes)"
            )
        super().set_state(state)

    @override(DefaultSACTorchRLModule)
    def make_target_networks(self) -> None:
        self.target_qf = make_target_network(self.qf)

    @override(DefaultSACTorchRLModule)
    def get_target_network_pairs(self) -> list[tuple[torch.nn.Module, torch.nn.Module]]:
        return [(self.qf, self.target_qf)]

    @override(DefaultSACTorchRLModule)
    def get_non_inference_attributes(self) -> list[str]:
        return ["qf", "target_qf", "qf_w"]

    @override(DefaultSACTorchRLModule)
    def compute_q_values(self, batch: dict[str, Any], squeeze: bool = True) -> torch.Tensor:
        """Ensemble minimum of ``qf`` at ``(obs, actions)``: ``(B,)``."""
        return self.qf(batch[Columns.OBS], batch[Columns.ACTIONS]).min(dim=0).values

    @override(DefaultSACTorchRLModule)
    def forward_target(self, batch: dict[str, Any], squeeze: bool = True) -> torch.Tensor:
        """Ensemble minimum of ``target_qf`` at ``(obs, actions)``: ``(B,)``."""
        return self.target_qf(batch[Columns.OBS], batch[Columns.ACTIONS]).min(dim=0).values
