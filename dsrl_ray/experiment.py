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
    checkpoint_every: 500       # training iterations between checkpoints
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

:func:`load_experiment` rejects unknown keys, ill-typed values and duplicate keys with an
:class:`ExperimentError` naming the YAML path of the key (e.g. ``training.utd``), the value,
the file and what was expected. Ray is imported only by :meth:`Experiment.to_dsrl_config`.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import numbers
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Mapping, Union

import yaml

if TYPE_CHECKING:
    from dsrl_ray.algorithm.config import DSRLConfig

VARIANTS = ("na", "sac")

_PATH = "path"
"""Field metadata flag: a file path, resolved against the working directory at load time."""
_MIN = "min"
"""Field metadata: the smallest allowed value of a number."""
_INTERNAL = "internal"
"""Field metadata flag: set by the loader, not a YAML key."""


class ExperimentError(ValueError):
    """An experiment YAML (or an override of it) is malformed; the message names key, value and file."""


# ---------------------------------------------------------------------------- schema


def _path() -> Any:
    return field(default=None, metadata={_PATH: True})


def _at_least(minimum: float, default: Any = None) -> Any:
    return field(default=default, metadata={_MIN: minimum})


def _required(minimum: float | None = None) -> Any:
    return field(metadata={} if minimum is None else {_MIN: minimum})


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

    def to_kwargs(self) -> dict[str, Any]:
        """The ``load_dppo`` keyword arguments that are set (``None`` ones keep load_dppo's defaults)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Training:
    """Keywords of ``DSRLConfig.training()`` an experiment may set; ``None``: DSRLConfig's default.

    See :class:`dsrl_ray.algorithm.config.DSRLConfig` for their meaning. ``variant``, the base
    policy and the TensorBoard directory are set elsewhere (top level and the trainer).
    """

    action_magnitude: float | None = None
    n_critics: int | None = _at_least(1)
    backup: Literal["min", "mean"] | None = None
    layer_norm: bool | None = None
    hidden_sizes: list[int] | None = None
    activation: Literal["relu", "elu", "gelu", "tanh", "mish", "silu"] | None = None
    auto_entropy: bool | None = None
    utd: float | None = _at_least(0)
    init_rollout_steps: int | None = _at_least(0)
    replay_capacity: int | None = _at_least(1)
    q_w_target: Literal["paired", "min", "mean"] | None = None
    mode: Literal["sync", "async"] | None = None
    async_max_backlog: int | None = _at_least(1)
    async_max_steps_per_call: int | None = _at_least(1)
    offline_data_path: str | None = _path()
    check_executed: bool | None = None
    store_buffer_in_checkpoints: bool | None = None
    actor_lr: float | None = _at_least(0)
    critic_lr: float | None = _at_least(0)
    alpha_lr: float | None = _at_least(0)
    gamma: float | None = _at_least(0)
    tau: float | None = _at_least(0)
    initial_alpha: float | None = _at_least(0)
    target_entropy: float | Literal["auto"] | None = None
    train_batch_size_per_learner: int | None = _at_least(1)
    grad_clip: float | None = _at_least(0)

    def to_kwargs(self) -> dict[str, Any]:
        """The keywords that are set, for ``DSRLConfig.training(**kwargs)``."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


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

    def to_kwargs(self) -> dict[str, Any]:
        """The keywords that are set, for ``DSRLConfig.env_runners(**kwargs)``."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Learners:
    """Keywords of ``DSRLConfig.learners()``: 0 learners = the learner runs in the driver."""

    num_learners: int | None = _at_least(0)
    num_gpus_per_learner: float | None = _at_least(0)

    def to_kwargs(self) -> dict[str, Any]:
        """The keywords that are set, for ``DSRLConfig.learners(**kwargs)``."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


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
        checkpoint_every: training iterations between checkpoints.
        training, env_runners, learners, evaluation: see their classes.
        source: the file (and profile / overrides) this came from, for messages.
        profile: the profile merged in, if any.
    """

    task: str
    variant: Literal["na", "sac"]
    stop: Stop
    seed: int = 0
    base_policy: str | None = _path()
    base_policy_dppo: DppoBasePolicy | None = None
    base_policy_sha256: str | None = None
    checkpoint_every: int = _at_least(1, default=100)
    training: Training = field(default_factory=Training)
    env_runners: EnvRunners = field(default_factory=EnvRunners)
    learners: Learners = field(default_factory=Learners)
    evaluation: Evaluation = field(default_factory=Evaluation)
    source: str = field(default="<dict>", metadata={_INTERNAL: True}, compare=False)
    profile: str | None = field(default=None, metadata={_INTERNAL: True})

    # ------------------------------------------------------------------ conversions
    def to_dict(self) -> dict[str, Any]:
        """The YAML keys as a nested dict (unset optional keys left out); loads back unchanged."""
        values = dataclasses.asdict(self)
        return _strip_none({f.name: values[f.name] for f in _yaml_keys(Experiment)})

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
        source = f"{self.source} + {what}"
        _check_mapping(Experiment, dict(overrides), "", source, partial=True)
        merged = _deep_merge(self.to_dict(), overrides)
        return _build(merged, source, self.profile)

    def resolve_base_policy(self) -> Path:
        """The base-policy file to load (the newest ``pretrain_step_*.pt`` of a directory).

        Raises:
            ExperimentError: no base policy is configured.
            FileNotFoundError: the file (or a checkpoint in the directory) does not exist.
        """
        if self.base_policy is None:
            raise ExperimentError(
                f"base_policy=None in {self.source}: expected the path of a base-policy checkpoint "
                "(set base_policy in the YAML or pass --base-policy)"
            )
        if self.base_policy_dppo is not None:
            path = Path(self.base_policy)
            if not path.is_file():
                raise FileNotFoundError(
                    f"base_policy {str(path)!r} in {self.source} does not exist; expected a DPPO checkpoint "
                    "(state_*.pt, e.g. from the DSRL paper's released base policies) or pass --base-policy"
                )
            return path
        from dsrl_ray.pretraining import resolve_policy_path

        try:
            return resolve_policy_path(self.base_policy)
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"{err} (base_policy in {self.source}); create it with `dsrl-ray pipeline --task {self.task}` "
                "or pass --base-policy"
            ) from None

    def to_dsrl_config(self, *, tensorboard_dir: str | os.PathLike | None = None) -> DSRLConfig:
        """The :class:`~dsrl_ray.algorithm.config.DSRLConfig` of this experiment (imports Ray/RLlib).

        Args:
            tensorboard_dir: where the algorithm writes TensorBoard event files
                (default: DSRLConfig's, ``<logdir>/tensorboard``).

        Raises:
            ExperimentError, FileNotFoundError: see :meth:`resolve_base_policy`.
        """
        from dsrl_ray.algorithm.config import DSRLConfig
        from dsrl_ray.algorithm.env import env_name

        dppo = self.base_policy_dppo.to_kwargs() if self.base_policy_dppo is not None else None
        config = (
            DSRLConfig()
            .environment(env_name(self.task))
            .training(
                variant=self.variant,
                base_policy_path=os.fspath(self.resolve_base_policy()),
                base_policy_dppo_kwargs=dppo,
                base_policy_sha256=self.base_policy_sha256,
                **self.training.to_kwargs(),
            )
            .env_runners(**self.env_runners.to_kwargs())
            .learners(**self.learners.to_kwargs())
            .debugging(seed=self.seed)
        )
        if tensorboard_dir is not None:
            config.training(tensorboard_dir=os.fspath(tensorboard_dir))
        ev = self.evaluation
        if ev.interval is not None:
            config.evaluation(
                evaluation_interval=ev.interval,
                evaluation_duration=ev.episodes,
                evaluation_duration_unit="episodes",
                evaluation_num_env_runners=ev.num_env_runners,
            )
            if ev.explore is not None:
                config.evaluation(evaluation_config={**(config.evaluation_config or {}), "explore": ev.explore})
        return config


# ---------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that reads ``3e-4`` as a float (YAML 1.1 wants ``3.0e-4``) and refuses duplicate keys."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _construct_mapping_no_duplicates(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_no_duplicates)


def load_experiment(path: str | os.PathLike, profile: str | None = None) -> Experiment:
    """Read, validate and (with ``profile``) deep-merge one experiment YAML.

    Every profile in the file is checked, whichever is selected. Relative paths are resolved
    against the working directory; files are not required to exist yet.

    Args:
        path: the YAML file.
        profile: a key of the file's ``profiles`` to deep-merge over it (mappings merge,
            everything else is replaced).

    Raises:
        FileNotFoundError: no such file.
        ExperimentError: malformed YAML, an unknown key, an ill-typed or out-of-range value,
            an unknown task/variant/profile, or DPPO dimensions that do not fit the task.
    """
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"experiment config {source!r} does not exist")
    try:
        with open(source, encoding="utf-8") as f:
            raw = yaml.load(f, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as err:
        raise ExperimentError(f"{source} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise ExperimentError(f"{source}: expected a mapping of experiment keys at the top level; got {raw!r}")
    profiles = raw.pop("profiles", None) or {}
    if not isinstance(profiles, dict):
        raise ExperimentError(f"profiles={profiles!r} in {source}: expected a mapping of profile name -> overrides")
    for name, overrides in profiles.items():
        _check_mapping(Experiment, overrides, f"profiles.{name}", source, partial=True)
    if profile is not None:
        if profile not in profiles:
            raise ExperimentError(
                f"unknown profile {profile!r} for {source}; available profiles: {sorted(map(str, profiles)) or 'none'}"
            )
        raw = _deep_merge(raw, profiles[profile])
        source = f"{source} (profile {profile})"
    return _build(raw, source, profile)


def _build(data: dict[str, Any], source: str, profile: str | None) -> Experiment:
    """Validate a full experiment dict and check task-level facts."""
    values = _check_mapping(Experiment, data, "", source, partial=False)
    experiment = Experiment(**values, source=source, profile=profile)
    _check_task(experiment)
    return experiment


def _check_task(experiment: Experiment) -> None:
    """The task exists and DPPO dimensions fit it."""
    from dsrl_ray.envs import TASKS

    source = experiment.source
    spec = TASKS.get(experiment.task)
    if spec is None:
        raise ExperimentError(f"task={experiment.task!r} in {source}: expected one of {sorted(TASKS)}")
    dppo = experiment.base_policy_dppo
    if dppo is None:
        return
    for key, expected in (("obs_dim", spec.obs_dim), ("action_dim", spec.act_dim), ("horizon_steps", spec.chunk_len)):
        value = getattr(dppo, key)
        if value != expected:
            raise ExperimentError(
                f"base_policy_dppo.{key}={value!r} in {source}: expected {expected} "
                f"(task {spec.name!r} has obs_dim={spec.obs_dim}, act_dim={spec.act_dim}, chunk_len={spec.chunk_len})"
            )


# ---------------------------------------------------------------------------- validation


def _yaml_keys(cls: type) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if not f.metadata.get(_INTERNAL)]


def _is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check_mapping(cls: type, data: Any, path: str, source: str, *, partial: bool) -> dict[str, Any]:
    """Check ``data`` against dataclass ``cls``; return the converted field values.

    With ``partial`` (profiles, overrides) missing keys are allowed and nested sections are
    returned as plain dicts; otherwise nested sections become dataclass instances.
    """
    if not isinstance(data, dict):
        where = f"{path}={data!r}" if path else f"top level {data!r}"
        raise ExperimentError(f"{where} in {source}: expected a mapping with keys {[f.name for f in _yaml_keys(cls)]}")
    hints = typing.get_type_hints(cls)
    allowed = {f.name: f for f in _yaml_keys(cls)}
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = f" (did you mean {_join(path, close[0])!r}?)" if close else ""
            raise ExperimentError(
                f"unknown key {_join(path, str(key))!r} in {source}{hint}; allowed keys"
                f"{' of ' + repr(path) if path else ''}: {sorted(allowed)}"
            )
    values: dict[str, Any] = {}
    for name, f in allowed.items():
        key_path = _join(path, name)
        if name not in data:
            if _is_required(f) and not partial:
                raise ExperimentError(f"missing key {key_path!r} in {source}: expected {_describe(hints[name], f)}")
            continue
        values[name] = _convert(data[name], hints[name], f, key_path, source, partial=partial)
    return values


def _convert(value: Any, tp: Any, f: dataclasses.Field | None, path: str, source: str, *, partial: bool) -> Any:
    """``value`` checked against annotation ``tp`` (and ``f``'s metadata), converted (int -> float, paths)."""
    options = _union_members(tp)
    if value is None:
        if type(None) in options:
            return None
        raise ExperimentError(f"{path}=None in {source}: expected {_describe(tp, f)}")
    for option in options:
        if option is type(None):
            continue
        if dataclasses.is_dataclass(option) and isinstance(value, dict):
            values = _check_mapping(option, value, path, source, partial=partial)
            return values if partial else option(**values)
        converted = _match_scalar(value, option)
        if converted is not _NO_MATCH:
            if f is not None and _MIN in f.metadata and converted < f.metadata[_MIN]:
                raise ExperimentError(f"{path}={value!r} in {source}: expected {_describe(tp, f)}")
            if f is not None and f.metadata.get(_PATH):
                converted = os.path.abspath(os.path.expanduser(converted))
            return converted
    raise ExperimentError(f"{path}={value!r} in {source}: expected {_describe(tp, f)}")


_NO_MATCH = object()


def _match_scalar(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` if it is one (ints count as floats, bools as neither), else ``_NO_MATCH``."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _NO_MATCH  # a section given as something other than a mapping
    if origin is Literal:
        return value if isinstance(value, str) and value in typing.get_args(tp) else _NO_MATCH
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, list) or not value:
            return _NO_MATCH
        items = [_match_scalar(v, item) for v in value]
        return _NO_MATCH if any(i is _NO_MATCH for i in items) else items
    if tp is bool:
        return value if isinstance(value, bool) else _NO_MATCH
    if tp is int:
        return int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else _NO_MATCH
    if tp is float:
        return float(value) if isinstance(value, numbers.Real) and not isinstance(value, bool) else _NO_MATCH
    if tp is str:
        return value if isinstance(value, str) else _NO_MATCH
    raise TypeError(f"unsupported annotation {tp!r} in the experiment schema")


def _union_members(tp: Any) -> tuple[Any, ...]:
    if typing.get_origin(tp) in (Union, types.UnionType):
        return typing.get_args(tp)
    return (tp,)


def _describe(tp: Any, f: dataclasses.Field | None = None) -> str:
    """Human words for an annotation: ``a number >= 0``, ``one of 'min', 'mean'``, ``... or null``."""
    parts = [_describe_one(option) for option in _union_members(tp) if option is not type(None)]
    text = " or ".join(parts)
    if f is not None and _MIN in f.metadata:
        text += f" >= {f.metadata[_MIN]}"
    if type(None) in _union_members(tp):
        text += " (or null)"
    return text


def _describe_one(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a non-empty list of {_PLURAL[typing.get_args(tp)[0]]}"
    if dataclasses.is_dataclass(tp):
        return f"a mapping with keys {[f.name for f in _yaml_keys(tp)]}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[tp]


_PLURAL = {int: "integers", float: "numbers", str: "strings"}


# ---------------------------------------------------------------------------- dict helpers


def _deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in: mappings merge recursively, other values replace."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _strip_none(value: Any) -> Any:
    """Drop ``None`` entries of nested dicts (unset optional keys)."""
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    return value
