"""An :class:`~dsrl_ray.experiment.schema.Experiment` as RLlib's :class:`~dsrl_ray.rllib.config.DSRLConfig`."""

from __future__ import annotations

import os

from dsrl_ray.experiment.schema import Experiment
from dsrl_ray.rllib.config import DSRLConfig
from dsrl_ray.rllib.env import env_name


def to_dsrl_config(experiment: Experiment, *, tensorboard_dir: str | os.PathLike | None = None) -> DSRLConfig:
    """The :class:`DSRLConfig` of ``experiment``.

    Args:
        experiment: the run.
        tensorboard_dir: where the algorithm writes TensorBoard event files
            (default: DSRLConfig's, ``<logdir>/tensorboard``).

    Raises:
        ExperimentError, FileNotFoundError: see :meth:`Experiment.resolve_base_policy`.
    """
    dppo = experiment.base_policy_dppo.to_kwargs() if experiment.base_policy_dppo is not None else None
    factory = experiment.base_policy_factory
    path = None if factory is not None and experiment.base_policy is None else os.fspath(experiment.resolve_base_policy())
    config = (
        DSRLConfig()
        .environment(env_name(experiment.task))
        .training(
            variant=experiment.variant,
            base_policy_path=path,
            base_policy_dppo_kwargs=dppo,
            base_policy_factory=factory,
            base_policy_factory_kwargs=experiment.base_policy_factory_kwargs,
            base_policy_sha256=experiment.base_policy_sha256,
            **experiment.training.to_kwargs(),
        )
        .env_runners(**experiment.env_runners.to_kwargs())
        .learners(**experiment.learners.to_kwargs())
        .debugging(seed=experiment.seed)
    )
    if tensorboard_dir is not None:
        config.training(tensorboard_dir=os.fspath(tensorboard_dir))
    ev = experiment.evaluation
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
