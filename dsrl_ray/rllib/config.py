"""``DSRLConfig``: SAC's config plus DSRL's knobs, with the paper's defaults.

Usage::

    config = (
        DSRLConfig()
        .environment("dsrl/lift")
        .training(base_policy_path="runs/lift/base_policy/pretrain_step_00020000.pt", variant="na")
        .env_runners(num_env_runners=2, num_envs_per_env_runner=4)
    )
    algo = config.build_algo()

Every DSRL setting (name, type, default, bounds, meaning) is declared once, in
:class:`dsrl_ray.core.settings.DSRLSettings`; this class takes its defaults from there,
``training()`` accepts its fields and ``validate()`` checks them against their declarations.
All step counts are in latent-action (chunk) steps, the env steps RLlib counts.
"""

from __future__ import annotations

import os
from typing import Any

from typing_extensions import Self

from ray.rllib.algorithms.algorithm_config import NotProvided
from ray.rllib.algorithms.sac.sac import SACConfig
from ray.rllib.core.learner.learner import Learner
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.utils.annotations import override

from dsrl_ray.core.settings import PROFILES, RLLIB, SETTINGS, check_setting, default
from dsrl_ray.envs.tasks import TASK_OPTIONS, TaskOptions, get_task_spec
from dsrl_ray.policies.spec import BasePolicySpec, check_digest
from dsrl_ray.rllib import runner_sync as sync
from dsrl_ray.rllib.callbacks import DSRLMetricsCallback
from dsrl_ray.rllib.env import task_of

_DSRL_OWN = tuple(name for name, f in SETTINGS.items() if not f.metadata[RLLIB])
"""Settings DSRLConfig adds; the others are SACConfig's, with DSRL's defaults."""


class DSRLConfig(SACConfig):
    """Configuration of :class:`~dsrl_ray.rllib.algorithm.DSRL` (see the module docstring).

    DSRL fields: see :class:`~dsrl_ray.core.settings.DSRLSettings` (set them with :meth:`training`,
    which also takes ``profile="paper" | "locomotion" | "cpu"`` for ``hidden_sizes``).

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
        from dsrl_ray.rllib.algorithm import DSRL

        super().__init__(algo_class=algo_class or DSRL)
        for name in SETTINGS:
            setattr(self, name, default(name))
        self.num_steps_sampled_before_learning_starts = 0  # the limiter handles warm-up
        self.replay_buffer_config = {"type": "EpisodeReplayBuffer", "no_local_replay_buffer": True}
        self.rollout_fragment_length = 10
        # Async mode: a runner starts its next fragment while the driver is busy with the last
        # one (or with a local learner's gradient steps) instead of waiting for a new request.
        self.max_requests_in_flight_per_env_runner = 2
        # RLlib plumbing DSRL relies on.
        self.normalize_actions = False
        self.clip_actions = False
        self.use_env_runner_state_server = True
        self.min_time_s_per_iteration = 0
        self.min_sample_timesteps_per_iteration = 0
        self.evaluation_config = {"explore": False}
        self.callbacks_class = DSRLMetricsCallback
        sync.disable_auto_state_sync(self)

    # ------------------------------------------------------------------ setters
    @override(SACConfig)
    def training(self, *, profile: str = NotProvided, **kwargs: Any) -> Self:
        """SAC's ``training()`` plus every :class:`~dsrl_ray.core.settings.DSRLSettings` field.

        ``profile`` ("paper", "locomotion", "cpu") sets ``hidden_sizes`` by name.
        """
        own = {name: kwargs.pop(name) for name in _DSRL_OWN if name in kwargs}
        super().training(**kwargs)
        if profile is not NotProvided:
            if profile not in PROFILES:
                raise ValueError(f"DSRLConfig.profile={profile!r}; expected one of {sorted(PROFILES)}")
            self.hidden_sizes = list(PROFILES[profile])
        for name, value in own.items():
            if value is NotProvided:
                continue
            if isinstance(value, os.PathLike):
                value = os.fspath(value)
            setattr(self, name, list(value) if isinstance(value, tuple) else value)
        return self

    # ------------------------------------------------------------------ validation
    @override(SACConfig)
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
        if self.variant == "na" and self.q_w_pairs == "actor" and self.aliasing_pairs < 1:
            raise ValueError(
                f"DSRLConfig.aliasing_pairs={self.aliasing_pairs}; q_w_pairs='actor' needs at least 1 pair per "
                "transition (or q_w_pairs='learner': the learner denoises its own draws)"
            )
        if self.learning_starts is not None and self.learning_starts > self.init_rollout_steps:
            raise ValueError(
                f"DSRLConfig.learning_starts={self.learning_starts}; expected at most init_rollout_steps="
                f"{self.init_rollout_steps} (the noise policy would act before its first gradient step)"
            )
        if self.offline_data_path is not None and self.variant != "na":
            raise ValueError(
                f"offline_data_path={self.offline_data_path!r} needs variant='na' (offline data has no noise); "
                f"got variant={self.variant!r}"
            )
        sha = check_digest(self.base_policy_spec)
        if sha != self.base_policy_sha256:
            self.base_policy_sha256 = sha
        task = task_of(self.env)
        if task is not None:
            self._fill_env_config(task)

    def _fill_env_config(self, task: str) -> None:
        """Put the base policy and the task options set here into ``env_config`` (checked against the task)."""
        given = {name: getattr(self, name) for name in TASK_OPTIONS if getattr(self, name) is not None}
        try:
            TaskOptions.from_mapping({**self.env_config, **given}).for_task(get_task_spec(task))
        except ValueError as err:
            raise ValueError(f"DSRLConfig on {self.env!r}: {err}") from None
        filled = {**self.env_config, "base_policy": self.base_policy_spec.to_dict(), **given}
        if filled != self.env_config:
            self.env_config = filled

    def _validate_dsrl_fields(self) -> None:
        """Every setting against its declaration, then the facts declarations cannot state."""
        for name in SETTINGS:
            check_setting(name, getattr(self, name))
        if (self.base_policy_path is None) == (self.base_policy_factory is None):
            raise ValueError(
                f"DSRLConfig.base_policy_path={self.base_policy_path!r}, base_policy_factory="
                f"{self.base_policy_factory!r}; expected exactly one: the path of a base-policy checkpoint "
                "(training(base_policy_path=...)) or a 'package.module:function' factory"
            )
        for name in ("base_policy_path", "offline_data_path"):
            path = getattr(self, name)
            if path is not None and not os.path.isfile(path):
                raise ValueError(f"DSRLConfig.{name}={path!r}; expected an existing file")

    # ------------------------------------------------------------------ derived settings
    @property
    def base_policy_spec(self) -> BasePolicySpec:
        """Path, recorded sha256 and DPPO loader arguments of pi_dp."""
        return BasePolicySpec(
            path=self.base_policy_path,
            sha256=self.base_policy_sha256,
            dppo_kwargs=self.base_policy_dppo_kwargs,
            factory=self.base_policy_factory,
            factory_kwargs=self.base_policy_factory_kwargs,
        )

    @property
    def runner_aliasing_pairs(self) -> int:
        """Aliasing pairs the training runners denoise per step: ``aliasing_pairs`` for NA with pairs from the
        actors, else 0 (SAC, ``q_w_pairs="learner"``, evaluation runners)."""
        actor_pairs = self.variant == "na" and self.q_w_pairs == "actor" and not self.in_evaluation
        return int(self.aliasing_pairs) if actor_pairs else 0

    @property
    @override(SACConfig)
    def _model_config_auto_includes(self) -> dict[str, Any]:
        from dsrl_ray.rllib.module import ACT_BASE_NOISE, ACT_NOISE_POLICY

        dsrl = {
            "variant": self.variant,
            "hidden": list(self.hidden_sizes),
            "layer_norm": self.layer_norm,
            "activation": self.activation,
            "log_std_min": float(self.log_std_min),
            "n_critics": self.n_critics,
            "action_magnitude": float(self.action_magnitude),
            "initial_acting_source": ACT_BASE_NOISE if self.init_rollout_steps > 0 else ACT_NOISE_POLICY,
            "aliasing_pairs": self.runner_aliasing_pairs,
            "noise_mode": self.noise_mode,
            "base_policy": self.base_policy_spec.to_dict(),
        }
        return super()._model_config_auto_includes | {"dsrl": dsrl}

    @override(SACConfig)
    def get_default_rl_module_spec(self) -> RLModuleSpec:
        from dsrl_ray.rllib.module import DSRLTorchRLModule

        return RLModuleSpec(module_class=DSRLTorchRLModule)

    @override(SACConfig)
    def get_default_learner_class(self) -> type[Learner]:
        from dsrl_ray.rllib.learner import DSRLTorchLearner

        return DSRLTorchLearner
