"""Every DSRL hyperparameter, declared once: type, default, allowed values, bounds and meaning.

:class:`DSRLSettings` is the single source. ``DSRLConfig`` (RLlib) takes its defaults from it,
``DSRLConfig.training()`` accepts its fields, ``DSRLConfig.validate()`` checks them with
:mod:`dsrl_ray.core.typecheck`, and the experiment YAML's ``training:`` section is derived from
the fields marked ``yaml``. A new knob is one field here (plus the code that reads it).

Units: step counts are latent-action (chunk) steps, the env steps RLlib counts; ``utd`` is
gradient steps per inserted transition.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any, Literal

from dsrl_ray.core.networks import LOG_STD_MAX, LOG_STD_MIN, Activation
from dsrl_ray.core.steering import NoiseMode
from dsrl_ray.core.typecheck import TypeCheckError, convert, describe

DOC = "doc"
"""Field metadata: what the setting means."""
YAML = "yaml"
"""Field metadata flag: settable in an experiment YAML's ``training:`` section."""
RLLIB = "rllib"
"""Field metadata flag: a field of RLlib's ``SACConfig`` (DSRL only changes its default)."""

PROFILES: dict[str, list[int]] = {"paper": [2048, 2048, 2048], "locomotion": [128, 128, 128], "cpu": [256, 256]}
"""Named ``hidden_sizes`` for ``DSRLConfig.training(profile=...)``."""


def setting(default: Any, doc: str, *, yaml: bool = True, rllib: bool = False, **bounds: Any) -> Any:
    """A :class:`DSRLSettings` field: its default, its meaning and its bounds.

    ``bounds`` are :mod:`dsrl_ray.core.typecheck` metadata keys: ``min``, ``min_exclusive``,
    ``max`` (numbers and list items) and ``path=True`` (resolved against the working directory
    when read from a YAML file).
    """
    metadata = {DOC: doc, YAML: yaml, RLLIB: rllib, **bounds}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class DSRLSettings:
    """DSRL's settings with the paper's defaults (Wagenmaker et al., 2025; see docs/fidelity.md)."""

    variant: Literal["na", "sac"] = setting(
        "na", "'na' (noise aliasing: Q_A on executed chunks, Q_W distilled, actor on Q_W) or 'sac' "
        "(SAC on the latent-action MDP)", yaml=False)
    base_policy_path: str | None = setting(
        None, "our pretrain checkpoint, or a DPPO checkpoint when base_policy_dppo_kwargs is given", yaml=False)
    base_policy_dppo_kwargs: dict | None = setting(
        None, "load_dppo keyword arguments: base_policy_path is a DPPO checkpoint", yaml=False)
    base_policy_factory: str | None = setting(
        None, "'package.module:function' returning the base policy (any object with the BasePolicy interface), "
        "instead of base_policy_path", yaml=False)
    base_policy_factory_kwargs: dict | None = setting(None, "keyword arguments of base_policy_factory", yaml=False)
    base_policy_sha256: str | None = setting(
        None, "digest the base policy must have (its checkpoint's sha256, or its factory's: "
        "dsrl_ray.policies.spec.spec_digest); recorded when the algorithm is first built", yaml=False)
    noise_mode: NoiseMode = setting(
        "full", "latent action of the noise policy: 'full' (the chunk's whole chunk_len x act_dim noise, the paper's) "
        "or 'shared' (one act_dim vector broadcast over the chunk's steps before pi_dp denoises it, dsrl_pi0's)")
    action_magnitude: float = setting(1.5, "noise bound of the tanh-squashed noise policy", min_exclusive=0)
    n_critics: int = setting(2, "critic ensemble size", min=1)
    backup: Literal["min", "mean"] = setting("min", "ensemble reduction in the TD backup and the actor loss")
    layer_norm: bool = setting(True, "LayerNorm after every hidden layer of actor and critics")
    hidden_sizes: list[int] = setting(
        PROFILES["paper"], "hidden widths of actor and critics (or training(profile=...): paper, locomotion, cpu)",
        min=1)
    activation: Activation = setting("relu", "hidden activation of actor and critics (paper: tanh)")
    log_std_min: float = setting(
        LOG_STD_MIN, "lower clamp of the noise policy's pre-tanh log std (released DSRL, SB3: -20)", max=LOG_STD_MAX)
    auto_entropy: bool = setting(True, "learn alpha toward target_entropy; else alpha stays initial_alpha")
    utd: float = setting(20.0, "gradient steps per inserted transition, enforced by the learner", min=0)
    q_w_utd: float | None = setting(
        None, "NA: Q_W distillation steps per inserted transition, on their own batches (released: 2.5 robomimic, "
        "1.25 gym); None: one Q_W step per gradient step, on its batch", min=0)
    aliasing_pairs: int = setting(
        4, "NA: extra draws w_k ~ N(0, I) a runner denoises with each executed chunk, in the same batched pi_dp "
        "call, and ships as (w_k, pi_dp(s, w_k)) pairs for Q_W distillation (q_w_pairs='actor')", min=0)
    q_w_pairs: Literal["actor", "learner"] = setting(
        "actor", "NA: Q_W distillation pairs come from the replay ('actor': one stored pair per row, the learner "
        "never calls pi_dp for them) or are drawn and denoised by the learner every step ('learner')")
    init_rollout_steps: int = setting(
        2000, "transitions the runners collect with w ~ N(0, I) before the noise policy acts", min=0)
    learning_starts: int | None = setting(
        None, "transitions inserted before the first gradient step (SB3's learning_starts); None: "
        "init_rollout_steps (released DSRL: the noise policy starts acting untrained). Smaller: the learner trains "
        "on the warm-up data while the runners still act with w ~ N(0, I), so pi_w, Q_A and Q_W have had "
        "(init_rollout_steps - learning_starts) * utd steps when pi_w takes over", min=0)
    replay_capacity: int = setting(1_000_000, "transitions the replay holds", min=1)
    q_w_target: Literal["paired", "min", "mean"] = setting(
        "paired", "Q_W distillation target (NA): member-wise, or the min/mean of the Q_A ensemble")
    mode: Literal["sync", "async"] = setting(
        "sync", "sync: sample, insert, train, push, repeat (deterministic); async: runners never wait")
    async_max_backlog: int = setting(
        1000, "async: no new sample requests while the learner owes more gradient steps than this", min=1)
    async_max_steps_per_call: int = setting(50, "async: gradient steps per learner call", min=1)
    offline_data_path: str | None = setting(
        None, "robomimic-layout HDF5 preloaded into the replay (NA only: demos have no noise)", path=True)
    terminate_on_success: bool | None = setting(
        None, "a successful step ends the episode (robomimic, twogoal); false: episodes run to the limit, reward 0 "
        "per step while solved (released DSRL); None: the task's default (true)")
    horizon_is_terminal: bool | None = setting(
        None, "the episode limit is a true end (stored terminated, no bootstrap: released DSRL) instead of a "
        "truncation; None: the task's default (false)")
    gym_version: Literal["v4", "v5"] | None = setting(
        None, "gymnasium MuJoCo model of a gym task; None: the task's default (v4, closest to the D4RL data's models)")
    check_executed: bool = setting(
        False, "log executed_max_abs_err = max |executed - pi_dp(s, w)| per train batch (one extra pi_dp pass)")
    log_tensorboard: bool = setting(True, "write TensorBoard event files", yaml=False)
    tensorboard_dir: str | None = setting(None, "TensorBoard directory (default <logdir>/tensorboard)", yaml=False)
    # SAC settings of RLlib's SACConfig, with DSRL's defaults.
    actor_lr: float = setting(3e-4, "Adam learning rate of the noise policy", rllib=True, min=0)
    critic_lr: float = setting(3e-4, "Adam learning rate of the critics", rllib=True, min=0)
    alpha_lr: float = setting(3e-4, "Adam learning rate of log-alpha", rllib=True, min=0)
    gamma: float = setting(0.99, "discount per latent-action (chunk) step", rllib=True, min=0, max=1)
    tau: float = setting(0.005, "Polyak factor of the target critics, every gradient step", rllib=True,
                         min_exclusive=0, max=1)
    initial_alpha: float = setting(1.0, "initial entropy coefficient", rllib=True, min_exclusive=0)
    target_entropy: float | Literal["auto"] = setting(0.0, "entropy target of auto_entropy", rllib=True)
    train_batch_size_per_learner: int = setting(256, "replay rows per gradient step", rllib=True, min=1)
    grad_clip: float | None = setting(None, "gradient clipping (RLlib's grad_clip)", rllib=True, min=0)
    store_buffer_in_checkpoints: bool = setting(False, "put the replay into checkpoints", rllib=True)


SETTINGS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(DSRLSettings)}
"""The fields of :class:`DSRLSettings` by name."""

_HINTS = typing.get_type_hints(DSRLSettings)


def annotation(name: str) -> Any:
    """The type annotation of setting ``name``."""
    return _HINTS[name]


def default(name: str) -> Any:
    """A fresh copy of the default value of setting ``name``."""
    f = SETTINGS[name]
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def check_setting(name: str, value: Any) -> Any:
    """``value`` converted for setting ``name``; ``ValueError`` naming both and what was expected."""
    try:
        return convert(value, _HINTS[name], SETTINGS[name].metadata)
    except TypeCheckError as err:
        raise ValueError(f"DSRLConfig.{name}={value!r}; expected {err.expected}") from None


def describe_setting(name: str) -> str:
    """What setting ``name`` accepts, in words."""
    return describe(_HINTS[name], SETTINGS[name].metadata)

