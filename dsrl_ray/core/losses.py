"""DSRL losses, CleanRL style: plain functions over tensors and callables. No Ray, no RLlib.

Shapes: ``B`` batch, ``E`` ensemble members, ``D`` latent-action (noise) length
(``chunk_len * act_dim``, or ``act_dim`` with ``noise_mode="shared"``), ``A`` executed-chunk
length (``chunk_len * act_dim``).

Callables used below:

- ``critic(obs (B, O), action (B, ·)) -> (E, B)``: an ensemble of Q-functions, e.g.
  :class:`dsrl_ray.core.networks.EnsembleCritic`. Where the actor is trained through
  a critic, pass a callable whose *parameters* get no gradient, e.g.
  ``functools.partial(critic, detach_params=True)``.
- ``base_policy(obs (B, O), noise (B, D)) -> executed (B, A)``: the frozen pi_dp on
  latent noise and flattened chunks (e.g. :meth:`dsrl_ray.core.steering.Steering.flat`). Always called under
  ``torch.no_grad()`` here.

Conventions (matching Stable-Baselines3 SAC, which the DSRL reference code builds on,
and RLlib's ``TorchSquashedGaussian`` where they overlap):

- Noise policy samples and log-probabilities: :mod:`dsrl_ray.core.noise_policy`.
- Critic regression: ``0.5 * MSE`` per member, summed over members (SB3/DSRL; RLlib's SAC
  uses a Huber loss instead).
- TD target: ``r + discount * (1 - terminated) * (reduce_i Q_targ_i(s', a') - alpha * logp(w'))``;
  truncation bootstraps. ``discount`` is applied once per transition, i.e. once per chunk.
- Ensemble reduction for backups and the actor: ``"min"`` (default) or ``"mean"``.
- Q_W distillation (DSRL-NA) takes pairs ``(w, pi_dp(s, w))``: denoised by the caller's
  ``base_policy`` (:func:`na_q_w_distill_loss`) or given, e.g. stored by the actors
  (:func:`na_q_w_pair_loss`). Target: per-member ``Q_W_i <- Q_A_i`` (``"paired"``, what the
  public DSRL-NA code does: SB3-based ``update_noise_critic`` loops over members, the
  JAX port regresses member-wise with the reduction commented out) or ``"min"``/``"mean"``
  over the Q_A ensemble. Q_A is the *online* critic and receives no gradient.
"""

from __future__ import annotations

from typing import Callable

import torch

Critic = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
BasePolicyFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# --------------------------------------------------------------------------- building blocks
def reduce_ensemble(q: torch.Tensor, how: str = "min") -> torch.Tensor:
    """``(E, B) -> (B,)``: minimum or mean over ensemble members."""
    if how == "min":
        return q.min(dim=0).values
    if how == "mean":
        return q.mean(dim=0)
    raise ValueError(f"ensemble reduction must be 'min' or 'mean', got {how!r}")


def td_target(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    next_value: torch.Tensor,
    discount: float | torch.Tensor,
) -> torch.Tensor:
    """``reward + discount * (1 - terminated) * next_value``, all ``(B,)``; truncation is not masked."""
    return reward + discount * (1.0 - terminated.float()) * next_value


def ensemble_regression_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``sum_i 0.5 * mean_b (pred[i, b] - target[(i,) b])^2``; ``pred (E, B)``, ``target (B,)`` or ``(E, B)``."""
    return 0.5 * ((pred - target) ** 2).mean(dim=-1).sum()


def _detached(alpha: float | torch.Tensor) -> torch.Tensor | float:
    return alpha.detach() if isinstance(alpha, torch.Tensor) else alpha


# --------------------------------------------------------------------------- SAC (DSRL-SAC)
def sac_critic_loss(
    critic: Critic,
    target_critic: Critic,
    obs: torch.Tensor,
    action: torch.Tensor,
    reward: torch.Tensor,
    next_obs: torch.Tensor,
    terminated: torch.Tensor,
    next_action: torch.Tensor,
    next_logp: torch.Tensor,
    alpha: float | torch.Tensor,
    discount: float | torch.Tensor,
    backup: str = "min",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Soft TD loss of an ensemble critic.

    Args:
        critic: online ensemble, called on ``(obs, action)``.
        target_critic: target ensemble, called on ``(next_obs, next_action)`` without grad.
        obs, next_obs: ``(B, O)``.
        action: ``(B, ·)`` replayed action (the noise ``w`` in DSRL-SAC).
        reward, terminated: ``(B,)``.
        next_action: ``(B, ·)`` action at ``next_obs`` from the current policy.
        next_logp: ``(B,)`` its log-probability.
        alpha: entropy coefficient (detached here).
        discount: per-transition (per-chunk) discount, scalar or ``(B,)``.
        backup: ``"min"`` or ``"mean"`` over target members.

    Returns:
        ``loss`` (scalar) and ``{"q_pred": (E, B) detached, "target": (B,)}``.
    """
    with torch.no_grad():
        q_next = target_critic(next_obs, next_action)  # (E, B)
        next_value = reduce_ensemble(q_next, backup) - _detached(alpha) * next_logp  # (B,)
        target = td_target(reward, terminated, next_value, discount)  # (B,)
    q_pred = critic(obs, action)  # (E, B)
    loss = ensemble_regression_loss(q_pred, target)
    return loss, {"q_pred": q_pred.detach(), "target": target}


def sac_actor_loss(
    critic: Critic,
    obs: torch.Tensor,
    action_pi: torch.Tensor,
    logp_pi: torch.Tensor,
    alpha: float | torch.Tensor,
    reduce: str = "min",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``mean(alpha * logp - reduce_i Q_i(s, a_pi))``.

    Args:
        critic: ensemble whose parameters must get no gradient (``detach_params=True``).
        obs: ``(B, O)``.
        action_pi: ``(B, D)`` reparameterised policy sample (carries the actor's graph).
        logp_pi: ``(B,)`` its log-probability.
        alpha: entropy coefficient (detached here).
        reduce: ``"min"`` or ``"mean"`` over members.

    Returns:
        ``loss`` and ``{"q_pi": (B,) detached}``.
    """
    q_pi = reduce_ensemble(critic(obs, action_pi), reduce)  # (B,)
    loss = (_detached(alpha) * logp_pi - q_pi).mean()
    return loss, {"q_pi": q_pi.detach()}


def alpha_loss(log_alpha: torch.Tensor, logp: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """Temperature loss ``-mean(log_alpha * (logp + target_entropy))``, ``logp`` detached.

    Same form as RLlib's ``SACTorchLearner`` and SB3: alpha grows while the policy's
    entropy ``-logp`` is below ``target_entropy``.
    """
    return -(log_alpha * (logp.detach() + target_entropy)).mean()


# --------------------------------------------------------------------------- DSRL-NA
def na_q_a_loss(
    q_a: Critic,
    q_a_target: Critic,
    base_policy: BasePolicyFn,
    obs: torch.Tensor,
    executed: torch.Tensor,
    reward: torch.Tensor,
    next_obs: torch.Tensor,
    terminated: torch.Tensor,
    next_noise: torch.Tensor,
    next_logp: torch.Tensor,
    alpha: float | torch.Tensor,
    discount: float | torch.Tensor,
    backup: str = "min",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """TD loss of the action-space critic Q_A on executed chunks.

    The bootstrap action is the base policy's chunk for the noise policy's next noise:
    ``a' = pi_dp(s', w')``, ``w' ~ pi_w(s')`` (``next_noise``, ``next_logp``).

    Args:
        q_a, q_a_target: online / target action-space ensembles.
        base_policy: frozen pi_dp on flattened tensors.
        obs, next_obs: ``(B, O)``.
        executed: ``(B, A)`` chunk the env executed (from the replay).
        reward, terminated: ``(B,)``.
        next_noise: ``(B, D)`` ``w' ~ pi_w(next_obs)``.
        next_logp: ``(B,)`` its log-probability.
        alpha, discount, backup: as in :func:`sac_critic_loss`.

    Returns:
        ``loss`` and ``{"q_pred", "target", "next_executed": (B, A)}``.
    """
    with torch.no_grad():
        next_executed = base_policy(next_obs, next_noise)  # (B, A)
    loss, info = sac_critic_loss(
        q_a, q_a_target, obs, executed, reward, next_obs, terminated, next_executed, next_logp, alpha, discount, backup
    )
    return loss, {**info, "next_executed": next_executed}


def na_q_w_distill_loss(
    q_w: Critic,
    q_a: Critic,
    base_policy: BasePolicyFn,
    obs: torch.Tensor,
    noise: torch.Tensor,
    target: str = "paired",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Distil the noise-space critic: ``Q_W(s, w) <- Q_A(s, pi_dp(s, w))``, ``w ~ N(0, I)``, denoising here.

    :func:`na_q_w_pair_loss` on the pairs ``(noise, base_policy(obs, noise))``.

    Args:
        q_w, q_a, obs, target: as in :func:`na_q_w_pair_loss`.
        base_policy: frozen pi_dp on flattened tensors.
        noise: ``(B, D)`` standard-normal draws (see :func:`standard_normal_noise`).
    """
    with torch.no_grad():
        executed = base_policy(obs, noise)  # (B, A)
    return na_q_w_pair_loss(q_w, q_a, obs, noise, executed, target)


def na_q_w_pair_loss(
    q_w: Critic,
    q_a: Critic,
    obs: torch.Tensor,
    noise: torch.Tensor,
    executed: torch.Tensor,
    target: str = "paired",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Distil the noise-space critic on given aliasing pairs: ``Q_W(s, w) <- Q_A(s, a)``, ``a = pi_dp(s, w)``.

    The pairs may come from the actors (stored in the replay) or be denoised by the caller;
    the base policy is not called here.

    Args:
        q_w: noise-space ensemble (trained).
        q_a: online action-space ensemble (teacher; no gradient).
        obs: ``(B, O)``.
        noise: ``(B, D)`` draws ``w ~ N(0, I)``.
        executed: ``(B, A)`` their chunks ``pi_dp(obs, noise)``.
        target: ``"paired"`` (member i of Q_W regresses on member i of Q_A; needs equal
            ensemble sizes), ``"min"`` or ``"mean"`` (every Q_W member regresses on the
            reduced Q_A).

    Returns:
        ``loss`` and ``{"q_w_pred": (E, B) detached, "target": (E, B) or (B,)}``.
    """
    with torch.no_grad():
        q_a_values = q_a(obs, executed)  # (E_A, B)
        teacher = q_a_values if target == "paired" else reduce_ensemble(q_a_values, target)
    q_w_pred = q_w(obs, noise)  # (E_W, B)
    if target == "paired" and q_w_pred.shape != teacher.shape:
        raise ValueError(
            f"'paired' distillation needs equal ensemble sizes; Q_W gives {tuple(q_w_pred.shape)}, "
            f"Q_A gives {tuple(teacher.shape)}"
        )
    loss = ensemble_regression_loss(q_w_pred, teacher)
    return loss, {"q_w_pred": q_w_pred.detach(), "target": teacher}


def na_actor_loss(
    q_w: Critic,
    obs: torch.Tensor,
    noise_pi: torch.Tensor,
    logp_pi: torch.Tensor,
    alpha: float | torch.Tensor,
    reduce: str = "min",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DSRL-NA actor loss: SAC's actor loss on the distilled noise critic Q_W.

    ``q_w`` must give its parameters no gradient (``detach_params=True``); see
    :func:`sac_actor_loss` for the arguments.
    """
    return sac_actor_loss(q_w, obs, noise_pi, logp_pi, alpha, reduce)
