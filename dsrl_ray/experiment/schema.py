"""Typed experiment configs: one YAML file describes one DSRL training run.

Schema (``configs/<task>_<variant>.yaml``; only ``task``, ``variant`` and ``stop.env_steps``
are required)::

    task: lift                  # a key of dsrl_ray.envs.TASKS
    variant: na                 # na | sac
    seed: 0
    base_policy: runs/lift/base_policy   # pretrain checkpoint file, or its directory (newest
                                         # pretrain_step_*.pt), or a DPPO state_*.pt; null: pass --base-policy
    base_policy_dppo: null      # load_dppo keyword arguments: base_policy is a DPPO checkpoint
    base_policy_sha256: null    # refuse a base-policy file with another digest
    base_policy_factory: null   # 'package.module:function' building the base policy (instead of base_policy)
    base_policy_factory_kwargs: null   # its keyword arguments
    checkpoint_every: 500       # training iterations between checkpoints
    best_checkpoint_episodes: null   # also keep checkpoints/best: best mean training success (return)
                                     # over this many episodes at a checkpoint; null: latest only
    training: {...}             # DSRLConfig.training() keywords (see Training)
    env_runners: {num_env_runners: 2, num_envs_per_env_runner: 1, rollout_fragment_length: 10}
    learners: {num_learners: 0, num_gpus_per_learner: 1}
    evaluation: {interval: 150, episodes: 200, explore: true, num_env_runners: 1}
    stop: {env_steps: 250000}
    profiles:                   # named partial overrides, deep-merged over the file by --profile
      cpu: {training: {hidden_sizes: [256, 256]}, learners: {num_gpus_per_learner: 0}}

Every step count (``env_steps``, ``init_rollout_steps``) is in latent-action (chunk) steps, the
env steps RLlib counts. Keys left out of ``training``, ``env_runners`` and ``learners`` keep
``DSRLConfig``'s defaults. Relative paths (``base_policy``, ``training.offline_data_path``,
``base_policy_dppo.normalization_path``) are resolved against the working directory at load time.

:func:`dsrl_ray.experiment.loader.load_experiment` rejects unknown keys, ill-typed values and duplicate keys with an
:class:`ExperimentError` naming the YAML path of the key (e.g. ``training.utd``), the value,
the file and what was expected. Ray is imported only by :meth:`Experiment.to_dsrl_config`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping

import yaml

from dsrl_ray.core.settings import SETTINGS, YAML, annotation
from dsrl_ray.core.typecheck import MIN, PATH, literal_values

if TYPE_CHECKING:
    from dsrl_ray.rllib.config import DSRLConfig

VARIANTS: tuple[str, ...] = literal_values(annotation("variant"))
"""The DSRL variants, as declared in :class:`~dsrl_ray.core.settings.DSRLSettings`."""

INTERNAL = "internal"
"""Field metadata flag: set by the loader, not a YAML key."""


class ExperimentError(ValueError):
    """An experiment YAML (or an override of it) is malformed; the message names key, value and file."""


# ---------------------------------------------------------------------------- schema


def _path() -> Any:
    return field(default=None, metadata={PATH: True})


def _at_least(minimum: float, default: Any = None) -> Any:
    return field(default=default, metadata={MIN: minimum})


def _required(minimum: float | None = None) -> Any:
    return field(metadata={} if minimum is None else {MIN: minimum})


def _set_keywords(self: Any) -> dict[str, Any]:
    """The keywords that are set (``None`` ones keep the defaults), for the matching ``DSRLConfig`` setter."""
    return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class DppoBasePolicy:
    """Keyword arguments of :func:`dsrl_ray.policies.load_dppo` (DPPO's ``model:`` names).

    The first seven are required; the others keep ``load_dppo``'s defaults when left out.
    """

    obs_dim: int = _required(1)
    action_dim: int = _required(1)
    horizon_steps: int = _required(1)
    denoising_steps: int = _required(1)
    ddim_steps: int = _required(1)
    mlp_dims: list[int] = _required()
    time_dim: int = _required(1)
    cond_steps: int | None = _at_least(1)
    activation_type: str | None = None
    residual_style: bool | None = None
    denoised_clip_value: float | None = None
    cond_mlp_dims: list[int] | None = None
    use_layernorm: bool | None = None
    normalization_path: str | None = _path()
    use_ema: bool | None = None

    to_kwargs = _set_keywords


Training = dataclasses.make_dataclass(
    "Training",
    [
        (name, annotation(name) | None, field(default=None, metadata=f.metadata))
        for name, f in SETTINGS.items()
        if f.metadata[YAML]
    ],
    frozen=True,
    namespace={
        "to_kwargs": _set_keywords,
        "__doc__": "The ``training:`` section: every DSRLSettings field marked ``yaml``; ``None``: its default.\n\n"
        "Derived from :class:`dsrl_ray.core.settings.DSRLSettings`, which declares each key's type, default,\n"
        "bounds and meaning. ``variant``, the base policy and the TensorBoard directory are set elsewhere.",
    },
)
Training.__module__ = __name__


@dataclass(frozen=True)
class EnvRunners:
    """Keywords of ``DSRLConfig.env_runners()``; ``None``: RLlib's/DSRLConfig's default.

    ``num_cpus_per_env_runner`` / ``num_gpus_per_env_runner`` are the Ray resources each runner
    actor reserves (RLlib's defaults: 1 CPU, 0 GPUs); fractions are allowed. A runner given a
    GPU runs its RLModule, including its pi_dp replica, there.
    """

    num_env_runners: int | None = _at_least(0)
    num_envs_per_env_runner: int | None = _at_least(1)
    rollout_fragment_length: int | None = _at_least(1)
    num_cpus_per_env_runner: float | None = _at_least(0)
    num_gpus_per_env_runner: float | None = _at_least(0)

    to_kwargs = _set_keywords


@dataclass(frozen=True)
class Learners:
    """Keywords of ``DSRLConfig.learners()``: 0 learners = the learner runs in the driver."""

    num_learners: int | None = _at_least(0)
    num_gpus_per_learner: float | None = _at_least(0)

    to_kwargs = _set_keywords


@dataclass(frozen=True)
class Evaluation:
    """Periodic evaluation on separate env runners.

    Attributes:
        interval: training iterations between evaluations; ``None``: no evaluation.
        episodes: episodes per evaluation.
        explore: act with the sampled noise (the DSRL paper's evaluation) instead of the
            deterministic ``action_magnitude * tanh(mean)``; ``None``: DSRLConfig's default.
        num_env_runners: evaluation env runners (0: the driver's local runner).
    """

    interval: int | None = _at_least(1)
    episodes: int = _at_least(1, default=10)
    explore: bool | None = None
    num_env_runners: int = _at_least(0, default=1)


@dataclass(frozen=True)
class Stop:
    """When training ends.

    Attributes:
        env_steps: budget of sampled env (chunk) steps; training stops at the first
            iteration that reaches it.
    """

    env_steps: int = _required(1)


@dataclass(frozen=True)
class Experiment:
    """One DSRL training run, as read from a YAML file by :func:`load_experiment`.

    Attributes:
        task: a key of ``dsrl_ray.envs.TASKS``.
        variant: ``"na"`` (DSRL-NA) or ``"sac"`` (DSRL-SAC).
        stop: the env-step budget.
        seed: RLlib's ``debugging(seed=...)``.
        base_policy: absolute path of the base policy: our pretrain checkpoint or its directory,
            or a DPPO checkpoint when ``base_policy_dppo`` is set; ``None``: must be given later.
        base_policy_dppo: ``load_dppo`` keyword arguments for a DPPO checkpoint.
        base_policy_sha256: expected digest of the base-policy file (``None``: not checked).
        base_policy_factory: ``"package.module:function"`` returning the base policy (any object
            with the ``BasePolicy`` interface); excludes ``base_policy``.
        base_policy_factory_kwargs: keyword arguments of the factory.
        checkpoint_every: training iterations between checkpoints.
        best_checkpoint_episodes: at every checkpoint, score the mean training success (return,
            for tasks without success) of the last this many episodes and keep the best-scoring
            checkpoint as ``checkpoints/best`` (see :mod:`dsrl_ray.app.best_checkpoint`); the
            pipeline evaluates that one. ``None``: keep only the latest.
        training, env_runners, learners, evaluation: see their classes.
        source: the file (and profile / overrides) this came from, for messages.
        profile: the profile merged in, if any.
    """

    task: str
    variant: Literal["na", "sac"]  # DSRLSettings.variant
    stop: Stop
    seed: int = 0
    base_policy: str | None = _path()
    base_policy_dppo: DppoBasePolicy | None = None
    base_policy_sha256: str | None = None
    base_policy_factory: str | None = None
    base_policy_factory_kwargs: dict | None = None
    checkpoint_every: int = _at_least(1, default=100)
    best_checkpoint_episodes: int | None = _at_least(1)
    training: Training = field(default_factory=Training)
    env_runners: EnvRunners = field(default_factory=EnvRunners)
    learners: Learners = field(default_factory=Learners)
    evaluation: Evaluation = field(default_factory=Evaluation)
    source: str = field(default="<dict>", metadata={INTERNAL: True}, compare=False)
    profile: str | None = field(default=None, metadata={INTERNAL: True})

    # ------------------------------------------------------------------ conversions
    def to_dict(self) -> dict[str, Any]:
        """The YAML keys as a nested dict (unset optional keys left out); loads back unchanged."""
        values = dataclasses.asdict(self)
        return strip_none({f.name: values[f.name] for f in yaml_keys(Experiment)})

    def to_yaml(self) -> str:
        """:meth:`to_dict` as YAML text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def override(self, overrides: Mapping[str, Any], what: str = "overrides") -> Experiment:
        """A new experiment with ``overrides`` (same nesting as the YAML) deep-merged in and re-validated.

        Args:
            overrides: e.g. ``{"stop": {"env_steps": 1000}, "training": {"mode": "async"}}``.
            what: how messages name the origin of the overrides (e.g. ``"command line"``).

        Raises:
            ExperimentError: an override is an unknown key or ill-typed.
        """
        from dsrl_ray.experiment.loader import override_experiment

        return override_experiment(self, overrides, what)

    def resolve_base_policy(self) -> Path:
        """The base-policy file to load (the newest ``pretrain_step_*.pt`` of a directory).

        Raises:
            ExperimentError: no base policy is configured.
            FileNotFoundError: the file (or a checkpoint in the directory) does not exist.
        """
        if self.base_policy is None:
            raise ExperimentError(
                f"base_policy=None in {self.source}: expected the path of a base-policy checkpoint "
                "(set base_policy or base_policy_factory in the YAML, or pass --base-policy)"
            )
        if self.base_policy_dppo is not None:
            path = Path(self.base_policy)
            if not path.is_file():
                raise FileNotFoundError(
                    f"base_policy {str(path)!r} in {self.source} does not exist; expected a DPPO checkpoint "
                    "(state_*.pt, e.g. from the DSRL paper's released base policies) or pass --base-policy"
                )
            return path
        from dsrl_ray.policies.checkpoint import resolve_policy_path

        try:
            return resolve_policy_path(self.base_policy)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"{err} (base_policy in {self.source}); create it with `dsrl-ray pipeline --task {self.task}` "
                "or pass --base-policy"
            ) from None

    def to_dsrl_config(self, *, tensorboard_dir: str | os.PathLike | None = None) -> DSRLConfig:
        """The :class:`~dsrl_ray.rllib.config.DSRLConfig` of this experiment (imports Ray/RLlib); see
        :func:`dsrl_ray.experiment.to_rllib.to_dsrl_config`."""
        from dsrl_ray.experiment.to_rllib import to_dsrl_config

        return to_dsrl_config(self, tensorboard_dir=tensorboard_dir)


def yaml_keys(cls: type) -> list[dataclasses.Field]:
    """The fields of a schema dataclass that are YAML keys."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get(INTERNAL)]


def strip_none(value: Any) -> Any:
    """Drop ``None`` entries of nested dicts (unset optional keys)."""
    if isinstance(value, dict):
        return {k: strip_none(v) for k, v in value.items() if v is not None}
    return value
