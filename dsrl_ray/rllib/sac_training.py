"""Plain SAC (RLlib's, new API stack) on a gymnasium task, for the learned demonstrators.

The glue between :class:`~dsrl_ray.envs.demos.sac_demonstrator.SACDemoSettings` and RLlib:
build the :class:`SACConfig`, call ``train()`` until the target return or the env-step budget,
and hand back the actor as a TorchScript module (no Ray needed to run it). Caching and acting
live in :mod:`dsrl_ray.envs.demos.sac_demonstrator`.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from ray.rllib.algorithms.sac import SACConfig
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.base import ENCODER_OUT
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, EPISODE_RETURN_MEAN, NUM_ENV_STEPS_SAMPLED_LIFETIME
from tqdm import tqdm

from dsrl_ray.envs.demos.sac_demonstrator import SACDemoSettings, TrainingRecord

_REPORT_EVERY = 1_000
"""Env steps per ``algo.train()`` call at most (how often the progress bar moves)."""


def sac_config(gym_id: str, settings: SACDemoSettings) -> SACConfig:
    """RLlib's SAC on gymnasium env ``gym_id`` with ``settings``: one env sampled in the driver,
    uniform replay, twin critics, ``settings.utd`` gradient steps per env step."""
    return (
        SACConfig()
        .environment(gym_id)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1,
                     rollout_fragment_length=settings.rollout_fragment_length)
        .training(
            lr=None,
            actor_lr=settings.actor_lr,
            critic_lr=settings.critic_lr,
            alpha_lr=settings.alpha_lr,
            gamma=settings.gamma,
            tau=settings.tau,
            twin_q=True,
            initial_alpha=1.0,
            target_entropy="auto",
            n_step=1,
            train_batch_size_per_learner=settings.batch_size,
            num_steps_sampled_before_learning_starts=settings.learning_starts,
            replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": settings.buffer_capacity},
            # RLlib's unit: replayed transitions per sampled one (with the sampling done in the driver).
            training_intensity=settings.utd * settings.batch_size,
        )
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(settings.hidden_sizes),
                                                   fcnet_activation="relu", head_fcnet_hiddens=[]))
        .reporting(min_time_s_per_iteration=0,
                   min_sample_timesteps_per_iteration=min(_REPORT_EVERY, settings.eval_every, settings.max_env_steps))
        .debugging(seed=settings.seed)
    )


class _Actor(torch.nn.Module):
    """RLlib's SAC policy network alone: obs ``(B, obs_dim)`` -> squashed-Gaussian inputs ``(B, 2 * act_dim)``."""

    def __init__(self, module: Any) -> None:
        super().__init__()
        self.encoder = copy.deepcopy(module.pi_encoder)
        self.head = copy.deepcopy(module.pi)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder({Columns.OBS: obs})[ENCODER_OUT])


def export_actor(module: Any, obs_dim: int) -> torch.jit.ScriptModule:
    """A TorchScript copy of the policy network of RLlib SAC module ``module`` (runs without Ray)."""
    actor = _Actor(module).eval()
    return torch.jit.trace(actor, torch.zeros(1, obs_dim))


@contextmanager
def _local_ray() -> Iterator[None]:
    """A local Ray without dashboard, one thread per worker, unless Ray is already initialised (used as it is)."""
    import ray

    if ray.is_initialized():
        yield
        return
    ray.init(address="local", num_cpus=max(2, os.cpu_count() or 1), include_dashboard=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}}, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def train_sac(
    gym_id: str,
    settings: SACDemoSettings,
    *,
    evaluate: Callable[[torch.nn.Module], float],
    progress: bool = True,
) -> tuple[torch.jit.ScriptModule, TrainingRecord]:
    """Train SAC on ``gym_id`` until ``evaluate(actor) >= settings.target_return`` or ``settings.max_env_steps``.

    ``evaluate`` (mean deterministic return of an exported actor) runs every ``settings.eval_every``
    env steps and once at the end. Returns the actor of the last evaluation and the record.
    """
    started = time.perf_counter()
    evaluations: list[tuple[int, float]] = []
    with _local_ray(), tqdm(total=settings.max_env_steps, unit="step", desc=f"SAC {gym_id}",
                            disable=not progress) as bar:
        algo = sac_config(gym_id, settings).build_algo()
        logdir = algo.logdir
        try:
            obs_dim = int(algo.get_module().observation_space.shape[0])
            next_eval, steps = settings.eval_every, 0
            while True:
                result = algo.train()
                steps = int(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])
                bar.update(steps - bar.n)
                out_of_budget, reached = steps >= settings.max_env_steps, False
                if steps >= next_eval or out_of_budget:
                    actor = export_actor(algo.get_module(), obs_dim)
                    evaluations.append((steps, evaluate(actor)))
                    next_eval = (steps // settings.eval_every + 1) * settings.eval_every
                    reached = evaluations[-1][1] >= settings.target_return
                train_return = result[ENV_RUNNER_RESULTS].get(EPISODE_RETURN_MEAN)
                bar.set_postfix(train_return=f"{train_return:.0f}" if train_return is not None else "-",
                                eval_return=f"{evaluations[-1][1]:.0f}" if evaluations else "-")
                if reached or out_of_budget:
                    break
        finally:
            algo.stop()
            try:  # RLlib makes an unused ~/ray_results/<timestamp> per algorithm
                os.rmdir(logdir)
            except OSError:
                pass
    record = TrainingRecord(env_steps=steps, evaluations=evaluations, reached_target=reached,
                            wall_time_s=round(time.perf_counter() - started, 1))
    return actor, record
