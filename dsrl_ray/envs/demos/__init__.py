"""Demonstrations: scripted demonstrators with a noise knob, collection, robomimic-layout HDF5 datasets."""

from dsrl_ray.envs.demos.collect import CollectSummary, collect_demos, task_env_args
from dsrl_ray.envs.demos.datasets import (
    DemoDataset,
    DemoDatasetError,
    DemoEpisode,
    EpisodeRecord,
    load_demos,
    write_demos,
)
from dsrl_ray.envs.demos.scripted import (
    CanDemonstrator,
    LiftDemonstrator,
    ScriptedDemonstrator,
    TwoGoalDemonstrator,
    make_demonstrator,
)

__all__ = [
    "CanDemonstrator",
    "CollectSummary",
    "DemoDataset",
    "DemoDatasetError",
    "DemoEpisode",
    "EpisodeRecord",
    "LiftDemonstrator",
    "ScriptedDemonstrator",
    "TwoGoalDemonstrator",
    "collect_demos",
    "load_demos",
    "make_demonstrator",
    "task_env_args",
    "write_demos",
]
