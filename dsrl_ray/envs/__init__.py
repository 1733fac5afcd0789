"""Simulators and wrappers: robomimic, gymnasium and toy tasks, action chunking, the latent-action
env, scripted demonstrators, demo datasets (robomimic HDF5 layout) and evaluation.

robosuite is imported only when a robomimic task is built.
"""

from dsrl_ray.envs.chunking import SIM_ERROR, ChunkedEnv, SimulatorError
from dsrl_ray.envs.collect import CollectSummary, collect_demos, task_env_args
from dsrl_ray.envs.datasets import (
    DemoDataset,
    DemoDatasetError,
    DemoEpisode,
    EpisodeRecord,
    file_sha256,
    load_demos,
    write_demos,
)
from dsrl_ray.envs.gym_tasks import GymTaskEnv
from dsrl_ray.envs.latent import LatentActionEnv, make_chunked_env, make_latent_env
from dsrl_ray.envs.registry import TASKS, TaskSpec, get_task_spec, make_task, task_for_env_name
from dsrl_ray.envs.robomimic_tasks import RobomimicTaskEnv, load_env_meta
from dsrl_ray.envs.rollout import EpisodeResult, EvalResult, evaluate_policy, wilson_interval
from dsrl_ray.envs.scripted import (
    CanDemonstrator,
    LiftDemonstrator,
    ScriptedDemonstrator,
    TwoGoalDemonstrator,
    make_demonstrator,
)
from dsrl_ray.envs.twogoal import TwoGoalEnv

__all__ = [
    "SIM_ERROR",
    "TASKS",
    "CanDemonstrator",
    "ChunkedEnv",
    "CollectSummary",
    "DemoDataset",
    "DemoDatasetError",
    "DemoEpisode",
    "EpisodeRecord",
    "EpisodeResult",
    "EvalResult",
    "GymTaskEnv",
    "LatentActionEnv",
    "LiftDemonstrator",
    "RobomimicTaskEnv",
    "ScriptedDemonstrator",
    "SimulatorError",
    "TaskSpec",
    "TwoGoalDemonstrator",
    "TwoGoalEnv",
    "collect_demos",
    "evaluate_policy",
    "file_sha256",
    "get_task_spec",
    "load_demos",
    "load_env_meta",
    "make_chunked_env",
    "make_demonstrator",
    "make_latent_env",
    "make_task",
    "task_env_args",
    "task_for_env_name",
    "wilson_interval",
    "write_demos",
]
