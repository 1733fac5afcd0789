"""``DSRLConfig``: SAC's config plus DSRL's knobs, with the paper's defaults.

Usage::

    config = (
        DSRLConfig()
        .environment("dsrl/lift")
        .training(base_policy_path="runs/lift/base_policy/pretrain_step_00020000.pt", variant="na")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=4)
    )
    algo = config.build_algo()

Paper defaults (Wagenmaker et al., 2025): ``variant="na"``, ``n_critics=2``,
``backup="min"``, ``layer_norm=True``, ``hidden_sizes=[2048, 2048, 2048]`` (use e.g.
``[256, 256]`` on a CPU), ``target_entropy=0``, automatic entropy tuning, ``tau=0.005``,
``gamma=0.99``, ``action_magnitude=1.5``, ``utd=20``, batch 256, lr 3e-4.

All step counts are in latent-action (chunk) steps, the env steps RLlib counts.
"""

from __future__ import annotations

import numbers
import os
from typing import Any

from typing_extensions import Self

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.sac.sac import SACConfig
from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from dsrl_ray.algorithm.base_policy import BasePolicySpec, check_sha256
from dsrl_ray.algorithm.callbacks import DSRLMetricsCallback
from dsrl_ray.algorithm.env import task_of
from dsrl_ray.algorithm.networks import _ACTIVATIONS

VARIANTS = ("sac", "na")
BACKUPS = ("min", "mean")
Q_W_TARGETS = ("paired", "min", "mean")
MODES = ("sync", "async")
PROFILES: dict[str, list[int]] = {"paper": [2048, 2048, 2048], "locomotion": [128, 128, 128], "cpu": [256, 256]}
"""Named ``hidden_sizes`` for ``DSRLConfig.training(profile=...)``."""

_DSRL_FIELDS = (
    "variant",
    "base_policy_path",
    "base_policy_dppo_kwargs",
    "base_policy_sha256",
    "action_magnitude",
    "n_critics",
    "backup",
    "layer_norm",
    "hidden_sizes",
    "activation",
    "auto_entropy",
    "utd",
    "init_rollout_steps",
    "replay_capacity",
    "q_w_target",
    "mode",
    "async_max_backlog",
    "async_max_steps_per_call",
    "offline_data_path",
    "check_executed",
    "log_tensorboard",
    "tensorboard_dir",
)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class DSRLConfig(SACConfig):
    """Configuration of :class:`~dsrl_ray.algorithm.algorithm.DSRL` (see the module docstring).

    DSRL fields (set them with :meth:`training`):

    - ``variant``: ``"na"`` (noise aliasing: Q_A on executed chunks, Q_W distilled, actor on
      Q_W) or ``"sac"`` (SAC on the latent-action MDP).
    - ``base_policy_path``: our ``pretrain`` checkpoint, or a DPPO checkpoint when
      ``base_policy_dppo_kwargs`` (the ``load_dppo`` keyword arguments) is given.
    - ``base_policy_sha256``: filled in when the algorithm is built; a later build or restore
      against a file with another digest is refused.
    - ``action_magnitude``: noise bound of the tanh-squashed policy (1.5).
    - ``n_critics``, ``backup`` ("min" | "mean"), ``layer_norm``, ``hidden_sizes`` (or
      ``profile`` in ``training()``: "paper", "locomotion", "cpu"), ``activation``.
    - ``auto_entropy``: learn alpha toward ``target_entropy`` (0); else alpha stays ``initial_alpha``.
    - ``utd``: gradient steps per inserted transition (20), enforced by the learner.
    - ``init_rollout_steps``: transitions collected with ``w ~ N(0, I)`` before training (2000).
    - ``replay_capacity``: transitions the replay holds (1e6).
    - ``q_w_target``: Q_W distillation target, "paired" | "min" | "mean" (NA).
    - ``mode``: "sync" (deterministic: sample, insert, train, push, repeat) or "async"
      (runners never wait for the learner; back-pressure when it falls behind).
    - ``async_max_backlog``: async mode stops handing out sample requests while the learner
      owes more than this many gradient steps.
    - ``async_max_steps_per_call``: gradient steps per learner call in async mode.
    - ``offline_data_path``: robomimic-layout HDF5 preloaded into the replay (NA only).
    - ``check_executed``: log ``executed_max_abs_err`` = max |executed - pi_dp(s, w)| per
      train batch (costs one pi_dp pass per step; for tests).
    - ``log_tensorboard``, ``tensorboard_dir``: event files (default ``<logdir>/tensorboard``).

    Placement and fault tolerance use RLlib's own settings: ``env_runners(num_cpus_per_env_runner=,
    num_gpus_per_env_runner=, custom_resources_per_env_runner=)`` size each runner actor (a GPU
    share, fractions allowed, hosts its pi_dp replica); ``learners(num_learners=1,
    num_gpus_per_learner=1)`` puts the learner, its replay and its pi_dp copy on a GPU node.
    ``fault_tolerance(restart_failed_env_runners=True)`` (the default) restarts a runner whose
    process or node died, up to ``max_num_env_runner_restarts`` times; DSRL keeps training with
    the other runners meanwhile and never blocks on a runner that is still down (so
    ``env_runner_health_probe_timeout_s`` and ``delay_between_env_runner_restarts_s`` play no
    part). With it off, a dead runner stops training with an error.
    """

    def __init__(self, algo_class: type | None = None) -> None:
        from dsrl_ray.algorithm.algorithm import DSRL

        super().__init__(algo_class=algo_class or DSRL)
        # DSRL.
        self.variant = "na"
        self.base_policy_path: str | None = None
        self.base_policy_dppo_kwargs: dict[str, Any] | None = None
        self.base_policy_sha256: str | None = None
        self.action_magnitude = 1.5
        self.n_critics = 2
        self.backup = "min"
        self.layer_norm = True
        self.hidden_sizes: list[int] = list(PROFILES["paper"])
        self.activation = "relu"
        self.auto_entropy = True
        self.utd: float = 20
        self.init_rollout_steps = 2000
        self.replay_capacity = 1_000_000
        self.q_w_target = "paired"
        self.mode = "sync"
        self.async_max_backlog = 1000
        self.async_max_steps_per_call = 50
        self.offline_data_path: str | None = None
        self.check_executed = False
        self.log_tensorboard = True
        self.tensorboard_dir: str | None = None
        # SAC settings with DSRL's defaults.
        self.target_entropy = 0.0
        self.initial_alpha = 1.0
        self.tau = 0.005
        self.gamma = 0.99
        self.actor_lr = 3e-4
        self.critic_lr = 3e-4
        self.alpha_lr = 3e-4
        self.train_batch_size_per_learner = 256
        self.num_steps_sampled_before_learning_starts = 0  # the limiter handles warm-up
        self.replay_buffer_config = {"type": "EpisodeReplayBuffer", "no_local_replay_buffer": True}
        self.rollout_fragment_length = 10
        # RLlib plumbing DSRL relies on.
        self.normalize_actions = False
        self.clip_actions = False
        self.use_env_runner_state_server = True
        self.min_time_s_per_iteration = 0
        self.min_sample_timesteps_per_iteration = 0
        self.evaluation_config = {"explore": False}
        self.callbacks_class = DSRLMetricsCallback
        self._dont_auto_sync_env_runner_states = True

    # ------------------------------------------------------------------ setters
    def training(
        self,
        *,
        variant: str = NotProvided,
        base_policy_path: str | os.PathLike = NotProvided,
        base_policy_dppo_kwargs: dict[str, Any] | None = NotProvided,
        base_policy_sha256: str | None = NotProvided,
        action_magnitude: float = NotProvided,
        n_critics: int = NotProvided,
        backup: str = NotProvided,
        layer_norm: bool = NotProvided,
        hidden_sizes: list[int] = NotProvided,
        profile: str = NotProvided,
        activation: str = NotProvided,
        auto_entropy: bool = NotProvided,
        utd: float = NotProvided,
        init_rollout_steps: int = NotProvided,
        replay_capacity: int = NotProvided,
        q_w_target: str = NotProvided,
        mode: str = NotProvided,
        async_max_backlog: int = NotProvided,
        async_max_steps_per_call: int = NotProvided,
        offline_data_path: str | os.PathLike | None = NotProvided,
        check_executed: bool = NotProvided,
        log_tensorboard: bool = NotProvided,
        tensorboard_dir: str | os.PathLike | None = NotProvided,
        **kwargs: Any,
    ) -> Self:
        """SAC's ``training()`` plus the DSRL fields (see the class docstring)."""
        super().training(**kwargs)
        if profile is not NotProvided:
            if profile not in PROFILES:
                raise ValueError(f"DSRLConfig.profile={profile!r}; expected one of {sorted(PROFILES)}")
            self.hidden_sizes = list(PROFILES[profile])
        values = dict(locals())
        for name in _DSRL_FIELDS:
            value = values.get(name, NotProvided)
            if value is NotProvided:
                continue
            if name in ("base_policy_path", "offline_data_path", "tensorboard_dir") and value is not None:
                value = os.fspath(value)
            if name == "hidden_sizes":
                value = list(value)
            setattr(self, name, value)
        return self

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """SAC's checks, then DSRL's; also records the base policy's sha256 and env_config."""
        super().validate()
        if self.is_multi_agent:
            raise ValueError("DSRL is single-agent; expected no multi_agent() policies")
        self._validate_dsrl_fields()
        if self.normalize_actions or self.clip_actions:
            raise ValueError(
                f"DSRLConfig needs environment(normalize_actions=False, clip_actions=False); got "
                f"normalize_actions={self.normalize_actions}, clip_actions={self.clip_actions} "
                "(either would replace the executed chunk pi_dp(s, w) with the noise)"
            )
        if self.num_learners > 1:
            raise ValueError(
                f"DSRLConfig.num_learners={self.num_learners}; expected 0 or 1 (the replay lives in the learner)"
            )
        if self.mode == "async" and not self.in_evaluation and self.num_env_runners < 1:
            raise ValueError(f"mode='async' needs num_env_runners >= 1; got {self.num_env_runners}")
        if self.offline_data_path is not None and self.variant != "na":
            raise ValueError(
                f"offline_data_path={self.offline_data_path!r} needs variant='na' (offline data has no noise); "
                f"got variant={self.variant!r}"
            )
        sha = check_sha256(self.base_policy_path, self.base_policy_sha256)
        if sha != self.base_policy_sha256:
            self.base_policy_sha256 = sha
        if task_of(self.env) is not None:
            spec = self.base_policy_spec.to_dict()
            if self.env_config.get("base_policy") != spec:
                self.env_config = {**self.env_config, "base_policy": spec}

    def _validate_dsrl_fields(self) -> None:
        def expect(ok: bool, name: str, expected: str) -> None:
            if not ok:
                raise ValueError(f"DSRLConfig.{name}={getattr(self, name)!r}; expected {expected}")

        expect(self.variant in VARIANTS, "variant", f"one of {VARIANTS}")
        expect(isinstance(self.base_policy_path, str) and bool(self.base_policy_path), "base_policy_path",
               "the path of a base-policy checkpoint (training(base_policy_path=...))")
        expect(os.path.isfile(self.base_policy_path), "base_policy_path", "an existing file")
        expect(self.base_policy_dppo_kwargs is None or isinstance(self.base_policy_dppo_kwargs, dict),
               "base_policy_dppo_kwargs", "None or a dict of load_dppo keyword arguments")
        expect(self.base_policy_sha256 is None or isinstance(self.base_policy_sha256, str), "base_policy_sha256",
               "None or a hex string")
        expect(_is_number(self.action_magnitude) and self.action_magnitude > 0, "action_magnitude", "a number > 0")
        expect(_is_int(self.n_critics) and self.n_critics >= 1, "n_critics", "an integer >= 1")
        expect(self.backup in BACKUPS, "backup", f"one of {BACKUPS}")
        expect(isinstance(self.layer_norm, bool), "layer_norm", "a bool")
        expect(isinstance(self.hidden_sizes, (list, tuple)) and len(self.hidden_sizes) > 0
               and all(_is_int(h) and h >= 1 for h in self.hidden_sizes), "hidden_sizes",
               "a non-empty list of integers >= 1, e.g. [2048, 2048, 2048]")
        expect(isinstance(self.activation, str) and self.activation.lower() in _ACTIVATIONS, "activation",
               f"one of {sorted(_ACTIVATIONS)}")
        expect(isinstance(self.auto_entropy, bool), "auto_entropy", "a bool")
        expect(self.target_entropy == "auto" or _is_number(self.target_entropy), "target_entropy", "a number or 'auto'")
        expect(_is_number(self.initial_alpha) and self.initial_alpha > 0, "initial_alpha", "a number > 0")
        expect(_is_number(self.tau) and 0 < self.tau <= 1, "tau", "a number in (0, 1]")
        expect(_is_number(self.gamma) and 0 <= self.gamma <= 1, "gamma", "a number in [0, 1]")
        expect(_is_number(self.utd) and self.utd >= 0, "utd", "a number >= 0 (gradient steps per transition)")
        expect(_is_int(self.init_rollout_steps) and self.init_rollout_steps >= 0, "init_rollout_steps",
               "an integer >= 0")
        expect(_is_int(self.replay_capacity) and self.replay_capacity >= 1, "replay_capacity", "an integer >= 1")
        expect(_is_int(self.train_batch_size_per_learner) and self.train_batch_size_per_learner >= 1,
               "train_batch_size_per_learner", "an integer >= 1")
        expect(self.q_w_target in Q_W_TARGETS, "q_w_target", f"one of {Q_W_TARGETS}")
        expect(self.mode in MODES, "mode", f"one of {MODES}")
        expect(_is_int(self.async_max_backlog) and self.async_max_backlog >= 1, "async_max_backlog",
               "an integer >= 1")
        expect(_is_int(self.async_max_steps_per_call) and self.async_max_steps_per_call >= 1,
               "async_max_steps_per_call", "an integer >= 1")
        expect(self.offline_data_path is None or os.path.isfile(self.offline_data_path), "offline_data_path",
               "None or an existing HDF5 file")
        expect(isinstance(self.check_executed, bool), "check_executed", "a bool")
        expect(isinstance(self.log_tensorboard, bool), "log_tensorboard", "a bool")
        expect(self.tensorboard_dir is None or isinstance(self.tensorboard_dir, str), "tensorboard_dir",
               "None or a directory path")
        expect(isinstance(self.store_buffer_in_checkpoints, bool), "store_buffer_in_checkpoints", "a bool")

    # ------------------------------------------------------------------ derived settings
    @property
    def base_policy_spec(self) -> BasePolicySpec:
        """Path, recorded sha256 and DPPO loader arguments of pi_dp."""
        return BasePolicySpec(self.base_policy_path, self.base_policy_sha256, self.base_policy_dppo_kwargs)

    @property
    def _model_config_auto_includes(self) -> dict[str, Any]:
        dsrl = {
            "variant": self.variant,
            "hidden": list(self.hidden_sizes),
            "layer_norm": self.layer_norm,
            "activation": self.activation,
            "n_critics": self.n_critics,
            "action_magnitude": float(self.action_magnitude),
            "initial_noise_mode": 1 if self.init_rollout_steps > 0 else 0,
            "base_policy": self.base_policy_spec.to_dict(),
        }
        return super()._model_config_auto_includes | {"dsrl": dsrl}

    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from dsrl_ray.algorithm.module import DSRLTorchRLModule

        return RLModuleSpec(module_class=DSRLTorchRLModule)

    def get_default_learner_class(self) -> type[Learner]:
        from dsrl_ray.algorithm.learner import DSRLTorchLearner

        return DSRLTorchLearner
