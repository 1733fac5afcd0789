"""Simulators and wrappers: the task table, robomimic / gymnasium / toy tasks, action chunking,
the latent-action env, and (in :mod:`dsrl_ray.envs.demos`) scripted demonstrators and datasets.

robosuite is imported only when a robomimic task is built.
"""

from dsrl_ray.envs.chunking import SIM_ERROR, ChunkedEnv, SimulatorError
from dsrl_ray.envs.demos import (
    CanDemonstrator,
    CollectSummary,
    DemoDataset,
    DemoDatasetError,
    DemoEpisode,
    EpisodeRecord,
    LiftDemonstrator,
    ScriptedDemonstrator,
    TwoGoalDemonstrator,
    collect_demos,
    load_demos,
    make_demonstrator,
    task_env_args,
    write_demos,
)
from dsrl_ray.envs.gym_tasks import GymTaskEnv
from dsrl_ray.envs.latent import LatentActionEnv, make_latent_env
from dsrl_ray.envs.make import check_policy_fits, make_chunked_env, make_task
from dsrl_ray.envs.robomimic_tasks import RobomimicTaskEnv, load_env_meta
from dsrl_ray.envs.tasks import (
    TASKS,
    TaskOptions,
    TaskPreset,
    TaskSpec,
    demo_tasks,
    get_task_spec,
    task_for_env_name,
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
    "GymTaskEnv",
    "LatentActionEnv",
    "LiftDemonstrator",
    "RobomimicTaskEnv",
    "ScriptedDemonstrator",
    "SimulatorError",
    "TaskOptions",
    "TaskPreset",
    "TaskSpec",
    "TwoGoalDemonstrator",
    "TwoGoalEnv",
    "check_policy_fits",
    "collect_demos",
    "demo_tasks",
    "get_task_spec",
    "load_demos",
    "load_env_meta",
    "make_chunked_env",
    "make_demonstrator",
    "make_latent_env",
    "make_task",
    "task_env_args",
    "task_for_env_name",
    "write_demos",
]
