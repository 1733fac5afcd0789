"""Read experiment YAMLs: strict keys and types, profiles, overrides, and the shipped configs.

:func:`load_experiment` rejects unknown keys, ill-typed values and duplicate keys with an
:class:`~dsrl_ray.experiment.schema.ExperimentError` naming the YAML path of the key (e.g.
``training.utd``), the value, the file and what was expected. The shipped configs live in
:data:`CONFIG_DIR` (package data); :func:`resolve_config` finds one by name.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
import typing
from pathlib import Path
from typing import Any, Mapping

import yaml

from dsrl_ray.core.typecheck import TypeCheckError, convert, describe, union_members
from dsrl_ray.experiment.schema import Experiment, ExperimentError, yaml_keys

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
"""The experiment YAMLs shipped with dsrl_ray: ``<task>_<variant>.yaml``."""


def resolve_config(config: str | os.PathLike) -> Path:
    """An experiment YAML: an existing path, or the name of a shipped config (``lift_na``, ``lift_na.yaml``).

    Raises:
        FileNotFoundError: neither a file nor a shipped config; the message lists the shipped names.
    """
    path = Path(config)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if shipped.is_file():
        return shipped
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    raise FileNotFoundError(f"experiment config {os.fspath(config)!r} does not exist; expected a YAML file or "
                            f"one of the shipped configs: {', '.join(names)}")


_FLAG_SECTIONS: dict[str, str | None] = {
    "base_policy": None,
    "seed": None,
    "checkpoint_every": None,
    "env_steps": "stop",
    "mode": "training",
    "num_env_runners": "env_runners",
    "num_envs_per_env_runner": "env_runners",
    "num_cpus_per_env_runner": "env_runners",
    "num_gpus_per_env_runner": "env_runners",
    "num_learners": "learners",
    "num_gpus_per_learner": "learners",
}
"""Experiment-YAML section of each command-line flag (``None``: top level)."""


def flag_overrides(**flags: Any) -> dict[str, Any]:
    """Experiment overrides (YAML nesting) for the command-line flags that were given (not ``None``).

    Keyword names are those of :data:`_FLAG_SECTIONS` (e.g. ``env_steps=5000`` becomes
    ``{"stop": {"env_steps": 5000}}``); paths become strings. A ``base_policy`` flag is chosen by
    what the file is: one of our pretrain checkpoints (or a pretrain directory) also drops the
    YAML's ``base_policy_dppo`` section, which would otherwise load it as a DPPO checkpoint with the
    YAML's normalisation file; any other file keeps that section (another DPPO checkpoint).
    """
    from dsrl_ray.policies.checkpoint import is_pretrain_checkpoint

    overrides: dict[str, Any] = {}
    for name, value in flags.items():
        if name not in _FLAG_SECTIONS:
            raise TypeError(f"flag_overrides() got unknown flag {name!r}; expected one of {sorted(_FLAG_SECTIONS)}")
        if value is None:
            continue
        value = os.fspath(value) if isinstance(value, os.PathLike) else value
        section = _FLAG_SECTIONS[name]
        if section is None:
            overrides[name] = value
            if name == "base_policy" and is_pretrain_checkpoint(value):
                overrides["base_policy_dppo"] = None
        else:
            overrides.setdefault(section, {})[name] = value
    return overrides


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
        path: the YAML file, or the name of a shipped config (see :func:`resolve_config`).
        profile: a key of the file's ``profiles`` to deep-merge over it (mappings merge,
            everything else is replaced).

    Raises:
        FileNotFoundError: no such file.
        ExperimentError: malformed YAML, an unknown key, an ill-typed or out-of-range value,
            an unknown task/variant/profile, or DPPO dimensions that do not fit the task.
    """
    source = os.fspath(resolve_config(path))
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


def override_experiment(experiment: Experiment, overrides: Mapping[str, Any], what: str) -> Experiment:
    """:meth:`Experiment.override`: ``overrides`` deep-merged into ``experiment`` and re-validated."""
    source = f"{experiment.source} + {what}"
    _check_mapping(Experiment, dict(overrides), "", source, partial=True)
    merged = _deep_merge(experiment.to_dict(), overrides)
    return _build(merged, source, experiment.profile)


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


def _check_mapping(cls: type, data: Any, path: str, source: str, *, partial: bool) -> dict[str, Any]:
    """Check ``data`` against dataclass ``cls``; return the converted field values.

    With ``partial`` (profiles, overrides) missing keys are allowed and nested sections are
    returned as plain dicts; otherwise nested sections become dataclass instances.
    """
    if not isinstance(data, dict):
        where = f"{path}={data!r}" if path else f"top level {data!r}"
        raise ExperimentError(f"{where} in {source}: expected a mapping with keys {[f.name for f in yaml_keys(cls)]}")
    hints = typing.get_type_hints(cls)
    allowed = {f.name: f for f in yaml_keys(cls)}
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
                raise ExperimentError(f"missing key {key_path!r} in {source}: expected {describe(hints[name], f.metadata)}")
            continue
        values[name] = _convert(data[name], hints[name], f, key_path, source, partial=partial)
    return values


def _convert(value: Any, tp: Any, f: dataclasses.Field, path: str, source: str, *, partial: bool) -> Any:
    """``value`` checked against annotation ``tp`` (and ``f``'s metadata), converted (int -> float, paths)."""
    for option in union_members(tp):
        if dataclasses.is_dataclass(option) and isinstance(value, dict):
            values = _check_mapping(option, value, path, source, partial=partial)
            return values if partial else option(**values)
    try:
        return convert(value, tp, f.metadata, resolve_paths=True)
    except TypeCheckError as err:
        raise ExperimentError(f"{path}={value!r} in {source}: expected {err.expected}") from None


def _is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


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

