"""``DSRLTorchLearner``: replay, update-to-data limiter and the DSRL-SAC / DSRL-NA updates.

The learner owns the replay (:class:`FlatReplay`) and the limiter
(:class:`SamplesPerInsertLimiter`). The algorithm feeds it new transitions with
:meth:`DSRLTorchLearner.insert_and_train`, which performs exactly the gradient steps the
limiter says are owed, one RLlib ``update()`` per step (so RLlib's version counter, target
updates, lr schedules and step counters stay right).

Optimisers (each needs a same-named ``<name>_loss`` per step, see SAC's
``compute_gradients``): ``qf`` (Q or Q_A), ``qf_w`` (NA only), ``policy``, ``alpha`` (only
with ``auto_entropy``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch

from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner
from ray.rllib.core import COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import WEIGHTS_SEQ_NO
from ray.rllib.utils.typing import ModuleID

from dsrl_ray.core.losses import (
    alpha_loss,
    na_actor_loss,
    na_q_a_loss,
    na_q_w_distill_loss,
    sac_actor_loss,
    sac_critic_loss,
)
from dsrl_ray.core.noise_policy import squashed_gaussian_sample, standard_normal_noise
from dsrl_ray.rllib.module import EXECUTED, NOISE_BASE, NOISE_POLICY, DSRLTorchRLModule
from dsrl_ray.core.replay import FlatReplay, SamplesPerInsertLimiter
from dsrl_ray.rllib import runner_sync as sync

DSRL_STATE = "dsrl"
REPLAY_STATE = "replay"


class DSRLTorchLearner(SACTorchLearner):
    """SAC torch learner with DSRL's losses, a flat replay and a samples-per-insert limiter."""

    # ------------------------------------------------------------------ setup
    @override(SACTorchLearner)
    def build(self) -> None:
        super().build()
        cfg = self.config
        module = self.dsrl_module
        obs_dim = int(module.observation_space.shape[0])
        noise_dim = int(module.action_space.shape[0])
        seed = cfg.seed
        self.replay = FlatReplay(
            cfg.replay_capacity,
            obs_dim,
            noise_dim,
            noise_dim,
            extra_fields={WEIGHTS_SEQ_NO: ((), np.int64)},
            seed=seed,
        )
        self.limiter = SamplesPerInsertLimiter(cfg.utd, cfg.init_rollout_steps)
        self._gen = torch.Generator(self._device)
        if seed is not None:
            self._gen.manual_seed(int(seed) + 7919)
        else:
            self._gen.seed()

    @property
    def dsrl_module(self) -> DSRLTorchRLModule:
        """The single DSRL RLModule (unwrapped)."""
        return self.module[DEFAULT_MODULE_ID].unwrapped()

    @override(SACTorchLearner)
    def configure_optimizers_for_module(self, module_id: ModuleID, config: Any = None) -> None:
        module = self.module[module_id].unwrapped()
        groups = {"qf": (module.qf, config.critic_lr), "policy": (module.pi, config.actor_lr)}
        if module.variant == "na":
            groups["qf_w"] = (module.qf_w, config.critic_lr)
        for name, (net, lr) in groups.items():
            params = self.get_parameters(net)
            self.register_optimizer(
                module_id=module_id,
                optimizer_name=name,
                optimizer=torch.optim.Adam(params),
                params=params,
                lr_or_lr_schedule=lr,
            )
        if config.auto_entropy:
            log_alpha = self.curr_log_alpha[module_id]
            self.register_optimizer(
                module_id=module_id,
                optimizer_name="alpha",
                optimizer=torch.optim.Adam([log_alpha]),
                params=[log_alpha],
                lr_or_lr_schedule=config.alpha_lr,
            )

    # ------------------------------------------------------------------ losses
    @override(SACTorchLearner)
    def compute_loss_for_module(
        self, *, module_id: ModuleID, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        """DSRL-SAC or DSRL-NA losses on one replay batch (see ``losses.py`` for the maths).

        Batch columns: ``obs``/``new_obs`` (B, O), ``actions`` = noise w (B, D),
        ``executed`` (B, A), ``rewards``/``terminateds`` (B,).
        """
        m: DSRLTorchRLModule = self.module[module_id].unwrapped()
        mag = m.action_magnitude
        log_alpha = self.curr_log_alpha[module_id]
        alpha = log_alpha.detach().exp()[0]
        obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
        reward, terminated = batch[Columns.REWARDS].float(), batch[Columns.TERMINATEDS]
        if config.check_executed:
            self._log_executed_error(module_id, m, batch)

        with torch.no_grad():
            next_noise, next_logp = squashed_gaussian_sample(*m.pi(next_obs), mag, generator=self._gen)
        noise_pi, logp_pi = squashed_gaussian_sample(*m.pi(obs), mag, generator=self._gen)
        common = dict(alpha=alpha, discount=config.gamma, backup=config.backup)
        if m.variant == "sac":
            q_loss, q_info = sac_critic_loss(
                m.qf, m.target_qf, obs, batch[Columns.ACTIONS], reward, next_obs, terminated, next_noise, next_logp,
                **common,
            )
            pi_loss, pi_info = sac_actor_loss(
                partial(m.qf, detach_params=True), obs, noise_pi, logp_pi, alpha, reduce=config.backup
            )
            losses = {"qf": q_loss, "policy": pi_loss}
        else:
            q_loss, q_info = na_q_a_loss(
                m.qf, m.target_qf, m.pi_dp_flat, obs, batch[EXECUTED], reward, next_obs, terminated, next_noise,
                next_logp, **common,
            )
            base_noise = standard_normal_noise(len(obs), noise_pi.shape[-1], generator=self._gen, device=obs.device)
            qw_loss, qw_info = na_q_w_distill_loss(m.qf_w, m.qf, m.pi_dp_flat, obs, base_noise, config.q_w_target)
            pi_loss, pi_info = na_actor_loss(
                partial(m.qf_w, detach_params=True), obs, noise_pi, logp_pi, alpha, reduce=config.backup
            )
            losses = {"qf": q_loss, "qf_w": qw_loss, "policy": pi_loss}
            self.metrics.log_dict(
                {"qf_w_loss": qw_loss.detach(), "qf_w_mean": qw_info["q_w_pred"].mean()}, key=module_id, window=1
            )
        if config.auto_entropy:
            losses["alpha"] = alpha_loss(log_alpha, logp_pi, float(self.target_entropy[module_id]))
        for name, loss in losses.items():
            sync.record_loss(self, module_id, name, loss)
        q_pred = q_info["q_pred"]
        self.metrics.log_dict(
            {
                "qf_loss": q_loss.detach(),
                "policy_loss": pi_loss.detach(),
                "alpha_value": alpha,
                "log_alpha_value": log_alpha.detach()[0],
                "entropy": -logp_pi.detach().mean(),
                "qf_mean": q_pred.mean(),
                "qf_min": q_pred.min(),
                "qf_max": q_pred.max(),
                "td_target_mean": q_info["target"].mean(),
                "q_pi_mean": pi_info["q_pi"].mean(),
                "noise_abs_mean": noise_pi.detach().abs().mean(),
            },
            key=module_id,
            window=1,
        )
        if "alpha" in losses:
            self.metrics.log_value((module_id, "alpha_loss"), losses["alpha"].detach(), window=1)
        return sum(losses.values())

    def _log_executed_error(self, module_id: ModuleID, m: DSRLTorchRLModule, batch: dict[str, Any]) -> None:
        """Log ``max |executed - pi_dp(obs, w)|`` over the batch's online rows (offline rows have NaN noise)."""
        noise = batch[Columns.ACTIONS]
        online = torch.isfinite(noise).all(dim=-1)
        if not online.any():
            return
        err = (batch[EXECUTED][online] - m.pi_dp_flat(batch[Columns.OBS][online], noise[online])).abs().max()
        self.metrics.log_value((module_id, "executed_max_abs_err"), err, reduce="max", window=1)

    # ------------------------------------------------------------------ data in, gradient steps out
    def preload(self, transitions: dict[str, np.ndarray]) -> int:
        """Add offline transitions (e.g. demos for NA) without earning gradient steps; returns the replay size."""
        self.replay.add(transitions)
        return len(self.replay)

    def insert_and_train(
        self,
        transitions: dict[str, np.ndarray] | None,
        *,
        timesteps: dict[str, Any],
        max_steps: int | None = None,
    ) -> dict[str, Any]:
        """Insert new on-policy transitions, then do the gradient steps the limiter says are owed.

        The first insert that completes the warm-up (``init_rollout_steps``) switches the
        module's ``noise_mode`` from base-policy noise to the noise policy; that change counts
        as a new weights version so runners pull it.

        Args:
            transitions: ``{field: (N, ...)}`` in :class:`FlatReplay` layout plus
                ``weights_seq_no``, or ``None`` to only work off owed steps.
            timesteps: RLlib timesteps dict (``num_env_steps_sampled_lifetime``) for ``update()``.
            max_steps: at most this many steps now (async mode); the rest stay owed.

        Returns:
            ``metrics`` (``self.metrics.reduce()``), ``owed`` (steps still owed),
            ``grad_steps_lifetime`` and ``weights``: the inference-only module state with its
            ``weights_seq_no`` if the weights changed, else ``None``.
        """
        n = 0 if transitions is None else len(transitions["obs"])
        if n:
            self.replay.add(transitions)
            self.limiter.on_insert(n)
        module = self.dsrl_module
        changed = False
        if self.limiter.warmed_up and int(module.noise_mode) == NOISE_BASE:
            module.noise_mode.fill_(NOISE_POLICY)
            sync.set_weights_version(self, sync.weights_version(self) + 1)
            changed = True
        steps = self.limiter.steps_owed() if max_steps is None else min(max_steps, self.limiter.steps_owed())
        for _ in range(steps):
            sync.update_without_reduce(self, self._train_batch(), timesteps)
            self.limiter.on_update(1)
        self.metrics.log_dict(
            {
                "replay_size": len(self.replay),
                "transitions_inserted_lifetime": self.limiter.num_inserted,
                "grad_steps_lifetime": self.limiter.num_updates,
                "grad_steps_owed": self.limiter.steps_owed(),
                "weights_version": sync.weights_version(self),
                "noise_mode": int(module.noise_mode),
            },
            window=1,
        )
        weights = None
        if steps or changed:
            weights = self.get_state(components=COMPONENT_RL_MODULE, inference_only=True)
            weights = {COMPONENT_RL_MODULE: weights[COMPONENT_RL_MODULE], WEIGHTS_SEQ_NO: sync.weights_version(self)}
        return {
            "metrics": self.metrics.reduce(),
            "owed": self.limiter.steps_owed(),
            "grad_steps_lifetime": self.limiter.num_updates,
            "weights": weights,
        }

    def _train_batch(self) -> MultiAgentBatch:
        """One uniform replay batch in RLlib's column names (numpy; RLlib moves it to the device)."""
        size = self.config.train_batch_size_per_learner
        b = self.replay.sample(size)
        columns = {
            Columns.OBS: b["obs"],
            Columns.NEXT_OBS: b["next_obs"],
            Columns.ACTIONS: b["noise"],
            EXECUTED: b["executed"],
            Columns.REWARDS: b["reward"],
            Columns.TERMINATEDS: b["terminated"],
            Columns.TRUNCATEDS: b["truncated"],
            WEIGHTS_SEQ_NO: b[WEIGHTS_SEQ_NO],
        }
        return MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch({k: v.numpy() for k, v in columns.items()})}, size)

    # ------------------------------------------------------------------ checkpoints
    @override(SACTorchLearner)
    def get_state(self, components=None, *, not_components=None, **kwargs) -> dict[str, Any]:
        """RLlib's learner state plus log-alpha, limiter, RNG and base-policy digest (and the replay)."""
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component(DSRL_STATE, components, not_components):
            state[DSRL_STATE] = {
                "log_alpha": {mid: self.curr_log_alpha[mid].detach().cpu().numpy() for mid in self.module.keys()},
                "limiter": self.limiter.state_dict(),
                "torch_generator": self._gen.get_state(),
                "replay_rng": self.replay.rng.bit_generator.state,
                "base_policy_sha256": self.config.base_policy_sha256,
            }
        if self.config.store_buffer_in_checkpoints and self._check_component(REPLAY_STATE, components, not_components):
            state[REPLAY_STATE] = self.replay.state_dict()
        return state

    @override(SACTorchLearner)
    def set_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`get_state`; a full (checkpoint) state always overwrites the module weights."""
        dsrl = state.get(DSRL_STATE)
        if dsrl is not None:
            expected = dsrl["base_policy_sha256"]
            if expected != self.config.base_policy_sha256:
                from dsrl_ray.policies.spec import BasePolicyMismatchError

                raise BasePolicyMismatchError(
                    f"checkpoint was trained with base policy sha256 {expected}, but this learner uses "
                    f"{self.config.base_policy_sha256} ({self.config.base_policy_path!r})"
                )
            sync.set_weights_version(self, 0)  # Learner.set_state skips older weights otherwise
        super().set_state(state)
        if dsrl is not None:
            with torch.no_grad():
                for mid, value in dsrl["log_alpha"].items():
                    self.curr_log_alpha[mid].copy_(torch.as_tensor(value))  # in place: Adam holds this tensor
            self.limiter.load_state_dict(dsrl["limiter"])
            self._gen.set_state(dsrl["torch_generator"])
            self.replay.rng.bit_generator.state = dsrl["replay_rng"]
        if REPLAY_STATE in state:
            self.replay.load_state_dict(state[REPLAY_STATE])
