"""``DSRLTorchLearner``: replay, update-to-data limiters and the DSRL-SAC / DSRL-NA updates.

The learner owns the replay (:class:`FlatReplay`) and the limiters
(:class:`SamplesPerInsertLimiter`). The algorithm feeds it new transitions with
:meth:`DSRLTorchLearner.insert_and_train`, which performs exactly the gradient steps the
limiters say are owed. A main step (Q or Q_A, actor, alpha) is one RLlib ``update()`` (so
RLlib's version counter, target updates, lr schedules and step counters stay right).

DSRL-NA distils Q_W on aliasing pairs ``(w, pi_dp(s, w))``, latent ``w ~ N(0, I)`` (with
``noise_mode="shared"`` one ``act_dim`` vector, broadcast over the chunk before pi_dp):

- ``q_w_pairs="actor"`` (default): the runners denoised ``aliasing_pairs`` draws per transition
  together with the executed chunk; the replay stores them and each distillation row uses one
  of its row's pairs. The learner calls pi_dp only for the Q_A target ``pi_dp(s', w')``.
  Offline rows (demos) have no pairs and take no part in distillation.
- ``q_w_pairs="learner"``: the learner draws ``w`` and denoises it itself, every step.

Q_W schedule: ``q_w_utd=None`` distils once per main step on its batch, in the same
``update()``; a number is Q_W steps per inserted transition on fresh batches, done after the
main steps of each insert with Q_W fixed during them (the released DSRL-NA block schedule:
``utd`` Q_A/actor steps, then the Q_W steps).

Optimisers (each needs a same-named ``<name>_loss`` in a step that trains it): ``qf`` (Q or
Q_A), ``qf_w`` (NA only), ``policy``, ``alpha`` (only with ``auto_entropy``).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import numpy as np
import torch

from ray.rllib.algorithms.sac.torch.sac_torch_learner import SACTorchLearner
from ray.rllib.core import COMPONENT_RL_MODULE, DEFAULT_MODULE_ID
from ray.rllib.core.columns import Columns
from ray.rllib.core.learner.torch.torch_learner import TorchLearner
from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
from ray.rllib.utils.annotations import override
from ray.rllib.utils.metrics import (
    ALL_MODULES,
    LAST_TARGET_UPDATE_TS,
    NUM_ENV_STEPS_SAMPLED_LIFETIME,
    NUM_TARGET_UPDATES,
    WEIGHTS_SEQ_NO,
)
from ray.rllib.utils.typing import ModuleID, ParamDict

from dsrl_ray.core.losses import (
    alpha_loss,
    na_actor_loss,
    na_q_a_loss,
    na_q_w_pair_loss,
    sac_actor_loss,
    sac_critic_loss,
)
from dsrl_ray.core.noise_policy import squashed_gaussian_sample, standard_normal_noise
from dsrl_ray.core.replay import FlatReplay, SamplesPerInsertLimiter, select_pairs
from dsrl_ray.rllib import runner_sync as sync
from dsrl_ray.rllib.episodes import PAIR_VALID, without_pairs
from dsrl_ray.rllib.module import (
    ACT_BASE_NOISE,
    ACT_NOISE_POLICY,
    EXECUTED,
    PAIR_EXECUTED,
    PAIR_NOISE,
    DSRLTorchRLModule,
)

DSRL_STATE = "dsrl"
REPLAY_STATE = "replay"

logger = logging.getLogger(__name__)


def all_finite(tensors: list[torch.Tensor | None]) -> bool:
    """Whether every element of every tensor is finite: one fused norm over all of them, one host sync.

    A huge but finite gradient can overflow the norm and read as not finite; callers then take
    RLlib's per-tensor path, which decides exactly.
    """
    tensors = [t for t in tensors if t is not None]
    if not tensors:
        return True
    return bool(torch.isfinite(torch.nn.utils.get_total_norm(tensors, foreach=True)))


def polyak_update(pairs: list[tuple[torch.nn.Module, torch.nn.Module]], tau: float) -> None:
    """``target <- tau * online + (1 - tau) * target`` for every ``(online, target)`` pair, fused per pair."""
    with torch.no_grad():
        for online, target in pairs:
            sources = [*online.parameters(), *(b for b in online.buffers() if b.is_floating_point())]
            targets = [*target.parameters(), *(b for b in target.buffers() if b.is_floating_point())]
            torch._foreach_lerp_(targets, sources, tau)


class DSRLTorchLearner(SACTorchLearner):
    """SAC torch learner with DSRL's losses, a flat replay and samples-per-insert limiters."""

    # ------------------------------------------------------------------ setup
    @override(SACTorchLearner)
    def build(self) -> None:
        super().build()
        cfg = self.config
        module = self.dsrl_module
        obs_dim = int(module.observation_space.shape[0])
        noise_dim, executed_dim = module.latent_dim, module.chunk_dim
        self.pairs_from_actors = module.variant == "na" and cfg.q_w_pairs == "actor"
        self.q_w_blocks = module.variant == "na" and cfg.q_w_utd is not None
        extra: dict[str, tuple[tuple[int, ...], Any]] = {WEIGHTS_SEQ_NO: ((), np.int64)}
        if self.pairs_from_actors:
            k = int(cfg.aliasing_pairs)
            extra |= {PAIR_NOISE: ((k, noise_dim), np.float32), PAIR_EXECUTED: ((k, executed_dim), np.float32),
                      PAIR_VALID: ((), np.bool_)}
        self.replay = FlatReplay(cfg.replay_capacity, obs_dim, noise_dim, executed_dim, extra_fields=extra,
                                 seed=cfg.seed)
        starts = cfg.init_rollout_steps if cfg.learning_starts is None else cfg.learning_starts
        self.limiter = SamplesPerInsertLimiter(cfg.utd, starts)
        self.q_w_limiter = SamplesPerInsertLimiter(cfg.q_w_utd, starts) if self.q_w_blocks else None
        self._gen = torch.Generator(sync.learner_device(self))
        if cfg.seed is not None:
            self._gen.manual_seed(int(cfg.seed) + 7919)
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
                optimizer=torch.optim.Adam(params, fused=True),
                params=params,
                lr_or_lr_schedule=lr,
            )
        if config.auto_entropy:
            log_alpha = self.curr_log_alpha[module_id]
            self.register_optimizer(
                module_id=module_id,
                optimizer_name="alpha",
                optimizer=torch.optim.Adam([log_alpha], fused=True),
                params=[log_alpha],
                lr_or_lr_schedule=config.alpha_lr,
            )

    # ------------------------------------------------------------------ losses
    @override(SACTorchLearner)
    def compute_loss_for_module(
        self, *, module_id: ModuleID, config: Any, batch: dict[str, Any], fwd_out: dict[str, Any]
    ) -> torch.Tensor:
        """DSRL-SAC or DSRL-NA losses on one replay batch (see ``losses.py`` for the maths).

        Batch columns: ``obs``/``new_obs`` (B, O), ``actions`` = latent noise w (B, D),
        ``executed`` (B, A), ``rewards``/``terminateds`` (B,); NA with interleaved distillation
        and pairs from the actors also ``pair_noise`` (B, D), ``pair_executed`` (B, A) and
        ``pair_valid`` (B,). ``D`` is the module's ``latent_dim``, ``A`` its ``chunk_dim``.
        """
        m: DSRLTorchRLModule = self.module[module_id].unwrapped()
        log_alpha = self.curr_log_alpha[module_id]
        alpha = log_alpha.detach().exp()[0]
        obs, next_obs = batch[Columns.OBS], batch[Columns.NEXT_OBS]
        if config.check_executed:
            self._log_executed_error(module_id, m, batch)
        with torch.no_grad():
            next_noise, next_logp = squashed_gaussian_sample(*m.pi(next_obs), m.action_magnitude, generator=self._gen)
        noise_pi, logp_pi = squashed_gaussian_sample(*m.pi(obs), m.action_magnitude, generator=self._gen)
        common = dict(alpha=alpha, discount=config.gamma, backup=config.backup)
        if m.variant == "sac":
            losses, q_info = self._sac_critic(m, batch, next_noise, next_logp, common)
        else:
            losses, q_info = self._na_critics(module_id, m, batch, next_noise, next_logp, common)
        critic_w = m.qf if m.variant == "sac" else m.qf_w  # the actor climbs Q (SAC) or Q_W (NA)
        actor = sac_actor_loss if m.variant == "sac" else na_actor_loss
        losses["policy"], pi_info = actor(
            partial(critic_w, detach_params=True), obs, noise_pi, logp_pi, alpha, reduce=config.backup
        )
        if config.auto_entropy:
            losses["alpha"] = alpha_loss(log_alpha, logp_pi, float(self.target_entropy[module_id]))
        for name, loss in losses.items():
            sync.record_loss(self, module_id, name, loss)
        self._log_step(module_id, losses, q_info, pi_info, log_alpha, logp_pi, noise_pi)
        return sum(losses.values())

    def _sac_critic(
        self, m: DSRLTorchRLModule, batch: dict[str, Any], next_noise: torch.Tensor, next_logp: torch.Tensor,
        common: dict[str, Any],
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """DSRL-SAC: the soft TD loss of Q(s, w); ``next_noise (B, D)``, ``next_logp (B,)`` drawn at ``s'``."""
        q_loss, q_info = sac_critic_loss(
            m.qf, m.target_qf, batch[Columns.OBS], batch[Columns.ACTIONS], batch[Columns.REWARDS].float(),
            batch[Columns.NEXT_OBS], batch[Columns.TERMINATEDS], next_noise, next_logp, **common,
        )
        return {"qf": q_loss}, q_info

    def _na_critics(
        self, module_id: ModuleID, m: DSRLTorchRLModule, batch: dict[str, Any], next_noise: torch.Tensor,
        next_logp: torch.Tensor, common: dict[str, Any],
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """DSRL-NA: Q_A's TD loss (one batched pi_dp call for ``pi_dp(s', w')``) and, interleaved, Q_W's."""
        q_loss, q_info = na_q_a_loss(
            m.qf, m.target_qf, m.pi_dp_flat, batch[Columns.OBS], batch[EXECUTED], batch[Columns.REWARDS].float(),
            batch[Columns.NEXT_OBS], batch[Columns.TERMINATEDS], next_noise, next_logp, **common,
        )
        losses = {"qf": q_loss}
        if not self.q_w_blocks:
            pairs = self._batch_pairs(m, batch)
            if pairs is not None:
                losses["qf_w"] = self._q_w_loss(module_id, m, *pairs)
        return losses, q_info

    # ------------------------------------------------------------------ Q_W distillation
    def _batch_pairs(
        self, m: DSRLTorchRLModule, batch: dict[str, Any]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Interleaved distillation pairs ``(obs, w, pi_dp(obs, w))`` of a main batch; None if it has none.

        From the actors: the batch rows' stored pairs, offline rows left out. From the learner:
        latent ``w ~ N(0, I)`` for every row, denoised here.
        """
        obs = batch[Columns.OBS]
        if not self.pairs_from_actors:
            noise = standard_normal_noise(len(obs), m.latent_dim, generator=self._gen, device=obs.device)
            return obs, noise, m.pi_dp_flat(obs, noise)
        noise, executed, valid = batch[PAIR_NOISE], batch[PAIR_EXECUTED], batch[PAIR_VALID]
        if not bool(valid.all()):
            if not bool(valid.any()):
                return None
            obs, noise, executed = obs[valid], noise[valid], executed[valid]
        return obs, noise, executed

    def _distill_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A fresh distillation batch ``(obs (B, O), w (B, D), pi_dp(obs, w) (B, A))`` for one Q_W step."""
        size = self.config.train_batch_size_per_learner
        device = sync.learner_device(self)
        if self.pairs_from_actors:
            b = self.replay.sample(size, fields=("obs", PAIR_NOISE, PAIR_EXECUTED), where=PAIR_VALID)
            noise, executed = select_pairs(b[PAIR_NOISE], b[PAIR_EXECUTED], self.replay.rng)
            return b["obs"].to(device), noise.to(device), executed.to(device)
        m = self.dsrl_module
        obs = self.replay.sample(size, fields=("obs",), device=device)["obs"]
        noise = standard_normal_noise(size, m.latent_dim, generator=self._gen, device=device)
        return obs, noise, m.pi_dp_flat(obs, noise)

    def _q_w_loss(
        self, module_id: ModuleID, m: DSRLTorchRLModule, obs: torch.Tensor, noise: torch.Tensor, executed: torch.Tensor
    ) -> torch.Tensor:
        """Q_W's distillation loss on the pairs ``(obs, noise, executed)``, logged (and checked: check_executed)."""
        if self.config.check_executed and self.pairs_from_actors:
            err = (executed - m.pi_dp_flat(obs, noise)).abs().max()
            self.metrics.log_value((module_id, "pair_max_abs_err"), err, reduce="max", window=1)
        loss, info = na_q_w_pair_loss(m.qf_w, m.qf, obs, noise, executed, self.config.q_w_target)
        self.metrics.log_dict(
            {"qf_w_loss": loss.detach(), "qf_w_mean": info["q_w_pred"].mean()}, key=module_id, window=1
        )
        return loss

    def _q_w_step(self) -> None:
        """One Q_W step on a fresh batch (block schedule): its own loss, gradient and Adam step, nothing else."""
        m = self.dsrl_module
        optim = self.get_optimizer(DEFAULT_MODULE_ID, "qf_w")
        loss = self._q_w_loss(DEFAULT_MODULE_ID, m, *self._distill_batch())
        optim.zero_grad(set_to_none=True)
        loss.backward()
        params = self.filter_param_dict_for_optimizer(sync.learner_params(self), optim)
        grads = self.postprocess_gradients({ref: p.grad for ref, p in params.items() if p.grad is not None})
        if not self.config.torch_skip_nan_gradients and not all_finite(list(grads.values())):
            logger.warning("Q_W gradients contain `nan/inf` values; setting them to zero (as RLlib does).")
            grads = {ref: torch.nan_to_num(g) for ref, g in grads.items()}
        for ref, grad in grads.items():
            params[ref].grad = grad
        optim.step()
        optim.zero_grad(set_to_none=True)

    # ------------------------------------------------------------------ gradients (RLlib's slow paths)
    @override(SACTorchLearner)
    def compute_gradients(self, loss_per_module: dict[ModuleID, Any], **kwargs: Any) -> ParamDict:
        """SAC's per-optimizer backward passes, for the optimizers that have a loss this step.

        Every optimizer's gradients are reset first, so one without a loss (Q_W inside a main
        step of the block schedule) has none and its Adam step leaves it unchanged.
        """
        grads: ParamDict = {}
        params = sync.learner_params(self)
        for module_id in set(loss_per_module) - {ALL_MODULES}:
            optimizers = self.get_optimizers_for_module(module_id)
            for _, optim in optimizers:
                optim.zero_grad(set_to_none=True)
            for name, optim in optimizers:
                loss = sync.pop_loss(self, module_id, name)
                if loss is None:
                    continue
                loss.backward(retain_graph=True)
                grads.update({ref: p.grad for ref, p in self.filter_param_dict_for_optimizer(params, optim).items()})
        sync.check_no_losses_left(self)
        return grads

    @override(SACTorchLearner)
    def apply_gradients(self, gradients_dict: ParamDict) -> None:
        """RLlib's ``apply_gradients`` with one fused finite-check for all gradients.

        Finite gradients (the usual case, or ``torch_skip_nan_gradients=True``): set them and step
        every optimizer, as RLlib does. Otherwise, and with AMP grad scalers or torch lr
        schedulers, RLlib's own per-parameter path runs (warnings, ``nan/inf`` set to zero).
        """
        finite = self.config.torch_skip_nan_gradients or all_finite(list(gradients_dict.values()))
        if not finite or sync.has_grad_scalers_or_lr_schedulers(self):
            super().apply_gradients(gradients_dict)
            return
        params = sync.learner_params(self)
        for ref, grad in gradients_dict.items():
            params[ref].grad = grad
        for module_id in self.module.keys():
            for _, optim in self.get_optimizers_for_module(module_id):
                optim.step()

    @override(SACTorchLearner)
    def after_gradient_based_update(self, *, timesteps: dict[str, Any]) -> None:
        """RLlib's target update (same frequency rule and metrics) as one fused lerp per target network."""
        TorchLearner.after_gradient_based_update(self, timesteps=timesteps)  # lr schedules; not DQN's Polyak
        timestep = timesteps.get(NUM_ENV_STEPS_SAMPLED_LIFETIME, 0)
        for module_id in self.module.keys():
            config = self.config.get_config_for_module(module_id)
            if timestep - self.last_update_ts_by_mid[module_id] < config.target_network_update_freq:
                continue
            polyak_update(self.module[module_id].unwrapped().get_target_network_pairs(), config.tau)
            self.metrics.log_value((module_id, NUM_TARGET_UPDATES), 1, reduce="lifetime_sum")
            self.last_update_ts_by_mid[module_id] = timestep
            self.metrics.log_value((module_id, LAST_TARGET_UPDATE_TS), timestep, reduce="max")

    # ------------------------------------------------------------------ logging
    def _log_step(
        self,
        module_id: ModuleID,
        losses: dict[str, torch.Tensor],
        q_info: dict[str, torch.Tensor],
        pi_info: dict[str, torch.Tensor],
        log_alpha: torch.Tensor,
        logp_pi: torch.Tensor,
        noise_pi: torch.Tensor,
    ) -> None:
        q_pred = q_info["q_pred"]
        self.metrics.log_dict(
            {
                "qf_loss": losses["qf"].detach(),
                "policy_loss": losses["policy"].detach(),
                "alpha_value": log_alpha.detach().exp()[0],
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

    def _log_executed_error(self, module_id: ModuleID, m: DSRLTorchRLModule, batch: dict[str, Any]) -> None:
        """Log ``max |executed - pi_dp(obs, w)|`` over the batch's online rows (offline rows have NaN noise).

        ``pi_dp_flat`` broadcasts shared latent noise over the chunk, as the runners did.
        """
        noise = batch[Columns.ACTIONS]
        online = torch.isfinite(noise).all(dim=-1)
        if not online.any():
            return
        err = (batch[EXECUTED][online] - m.pi_dp_flat(batch[Columns.OBS][online], noise[online])).abs().max()
        self.metrics.log_value((module_id, "executed_max_abs_err"), err, reduce="max", window=1)

    # ------------------------------------------------------------------ data in, gradient steps out
    def preload(self, transitions: dict[str, np.ndarray]) -> int:
        """Add offline transitions (e.g. demos for NA) without earning gradient steps; returns the replay size.

        With pairs from the actors they are stored without pairs (``pair_valid`` false).
        """
        if self.pairs_from_actors and PAIR_NOISE not in transitions:
            k = int(self.config.aliasing_pairs)
            transitions = without_pairs(transitions, k, self.replay.noise_dim, self.replay.act_chunk_dim)
        self.replay.add(transitions)
        return len(self.replay)

    def insert_and_train(
        self,
        transitions: dict[str, np.ndarray] | None,
        *,
        timesteps: dict[str, Any],
        max_steps: int | None = None,
    ) -> dict[str, Any]:
        """Insert new on-policy transitions, then do the gradient steps the limiters say are owed.

        First the main steps (Q or Q_A, actor, alpha), then, with ``q_w_utd`` set, the Q_W steps:
        in sync mode, where each call inserts one round of transitions, that is the released
        block schedule. The first insert that completes the warm-up (``init_rollout_steps``)
        switches the module's ``acting_source`` from base-policy noise to the noise policy; that
        change counts as a new weights version so runners pull it.

        Args:
            transitions: ``{field: (N, ...)}`` in :class:`FlatReplay` layout plus
                ``weights_seq_no`` (and the aliasing pairs), or ``None`` to only work off owed steps.
            timesteps: RLlib timesteps dict (``num_env_steps_sampled_lifetime``) for ``update()``.
            max_steps: at most this many main steps and this many Q_W steps now (async mode); the
                rest stay owed.

        Returns:
            ``metrics`` (``self.metrics.reduce()``), ``owed`` (main and Q_W steps still owed),
            ``grad_steps_lifetime`` (main steps) and ``weights``: the inference-only module state
            with its ``weights_seq_no`` if the weights changed, else ``None``.
        """
        n = 0 if transitions is None else len(transitions["obs"])
        if n:
            self.replay.add(transitions)
            for limiter in self._limiters():
                limiter.on_insert(n)
        changed = self._end_warm_up_if_due()
        steps = _due(self.limiter, max_steps)
        for _ in range(steps):
            sync.update_without_reduce(self, self._train_batch(), timesteps)
            self.limiter.on_update(1)
        if self.q_w_limiter is not None:
            for _ in range(_due(self.q_w_limiter, max_steps)):
                self._q_w_step()
                self.q_w_limiter.on_update(1)
        self._log_counters()
        weights = None
        if steps or changed:
            weights = self.get_state(components=COMPONENT_RL_MODULE, inference_only=True)
            weights = {COMPONENT_RL_MODULE: weights[COMPONENT_RL_MODULE], WEIGHTS_SEQ_NO: sync.weights_version(self)}
        return {
            "metrics": self.metrics.reduce(),
            "owed": sum(limiter.steps_owed() for limiter in self._limiters()),
            "grad_steps_lifetime": self.limiter.num_updates,
            "weights": weights,
        }

    def _limiters(self) -> list[SamplesPerInsertLimiter]:
        return [self.limiter] if self.q_w_limiter is None else [self.limiter, self.q_w_limiter]

    def _end_warm_up_if_due(self) -> bool:
        """Switch the runners to the noise policy once warmed up; True if the weights changed."""
        module = self.dsrl_module
        warmed_up = self.limiter.num_inserted >= self.config.init_rollout_steps
        if not warmed_up or int(module.acting_source) != ACT_BASE_NOISE:
            return False
        module.acting_source.fill_(ACT_NOISE_POLICY)
        sync.set_weights_version(self, sync.weights_version(self) + 1)
        return True

    def _log_counters(self) -> None:
        counters = {
            "replay_size": len(self.replay),
            "transitions_inserted_lifetime": self.limiter.num_inserted,
            "grad_steps_lifetime": self.limiter.num_updates,
            "grad_steps_owed": self.limiter.steps_owed(),
            "weights_version": sync.weights_version(self),
            "acting_source": int(self.dsrl_module.acting_source),
        }
        if self.q_w_limiter is not None:
            counters |= {"q_w_steps_lifetime": self.q_w_limiter.num_updates,
                         "q_w_steps_owed": self.q_w_limiter.steps_owed()}
        self.metrics.log_dict(counters, window=1)

    def _train_batch(self) -> MultiAgentBatch:
        """One uniform replay batch in RLlib's column names (numpy; RLlib moves it to the device).

        With interleaved distillation on the actors' pairs, each row brings one of its pairs.
        """
        size = self.config.train_batch_size_per_learner
        with_pairs = self.pairs_from_actors and not self.q_w_blocks
        fields = None if with_pairs else [f for f in self.replay.fields if f not in (PAIR_NOISE, PAIR_EXECUTED)]
        b = self.replay.sample(size, fields=fields)
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
        if with_pairs:
            noise, executed = select_pairs(b[PAIR_NOISE], b[PAIR_EXECUTED], self.replay.rng)
            columns |= {PAIR_NOISE: noise, PAIR_EXECUTED: executed, PAIR_VALID: b[PAIR_VALID]}
        return MultiAgentBatch({DEFAULT_MODULE_ID: SampleBatch({k: v.numpy() for k, v in columns.items()})}, size)

    # ------------------------------------------------------------------ checkpoints
    @override(SACTorchLearner)
    def get_state(self, components=None, *, not_components=None, **kwargs) -> dict[str, Any]:
        """RLlib's learner state plus log-alpha, limiters, RNG and base-policy digest (and the replay)."""
        state = super().get_state(components, not_components=not_components, **kwargs)
        if self._check_component(DSRL_STATE, components, not_components):
            state[DSRL_STATE] = {
                "log_alpha": {mid: self.curr_log_alpha[mid].detach().cpu().numpy() for mid in self.module.keys()},
                "limiter": self.limiter.state_dict(),
                "torch_generator": self._gen.get_state(),
                "replay_rng": self.replay.rng.bit_generator.state,
                "base_policy_sha256": self.config.base_policy_sha256,
            }
            if self.q_w_limiter is not None:
                state[DSRL_STATE]["q_w_limiter"] = self.q_w_limiter.state_dict()
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
                    f"{self.config.base_policy_sha256} ({self.config.base_policy_path or self.config.base_policy_factory!r})"
                )
            sync.set_weights_version(self, 0)  # Learner.set_state skips older weights otherwise
        super().set_state(state)
        if dsrl is not None:
            with torch.no_grad():
                for mid, value in dsrl["log_alpha"].items():
                    self.curr_log_alpha[mid].copy_(torch.as_tensor(value))  # in place: Adam holds this tensor
            self.limiter.load_state_dict(dsrl["limiter"])
            if self.q_w_limiter is not None and "q_w_limiter" in dsrl:
                self.q_w_limiter.load_state_dict(dsrl["q_w_limiter"])
            self._gen.set_state(dsrl["torch_generator"])
            self.replay.rng.bit_generator.state = dsrl["replay_rng"]
        if REPLAY_STATE in state:
            self.replay.load_state_dict(state[REPLAY_STATE])


def _due(limiter: SamplesPerInsertLimiter, max_steps: int | None) -> int:
    """Steps to do now: all that ``limiter`` says are owed, at most ``max_steps``."""
    owed = limiter.steps_owed()
    return owed if max_steps is None else min(max_steps, owed)
