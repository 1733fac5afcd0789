"""Plain SAC on a gym task, for the learned demonstrators: DSRL-SAC over the identity base policy.

SAC on a task is DSRL-SAC on the same task with ``pi_dp(s, w) = clip(w, -1, 1)`` and one action
per chunk (:class:`~dsrl_ray.policies.identity.IdentityPolicy`): the latent action is the action,
the noise policy with ``action_magnitude=1`` is SAC's tanh-squashed Gaussian actor, and the
learner's DSRL-SAC losses are SAC's. So the demonstrators train on the same RLlib algorithm,
flat replay and learner as every DSRL run, about ten times faster than RLlib's own ``SAC``
with its episode replay and learner connectors on this 2-core box (``docs/demonstrations.md``).

The glue between :class:`~dsrl_ray.envs.demos.sac_demonstrator.SACDemoSettings` and RLlib:
build the :class:`DSRLConfig`, call ``train()`` until the target return or the env-step budget,
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
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME
from tqdm import tqdm

from dsrl_ray.envs.demos.sac_demonstrator import SACDemoSettings, TrainingRecord
from dsrl_ray.envs.tasks import get_task_spec
from dsrl_ray.policies.identity import IDENTITY_FACTORY
from dsrl_ray.rllib.config import DSRLConfig
from dsrl_ray.rllib.env import env_name

_REPORT_EVERY = 1_000
"""Env steps per ``algo.train()`` call at most (how often the progress bar moves)."""

_EPISODE_RETURN = "episode_return_mean"


def sac_config(task: str, settings: SACDemoSettings, gym_version: str) -> DSRLConfig:
    """SAC on gym task ``task`` (gymnasium model ``gym_version``) with ``settings``, as DSRL-SAC over the identity
    base policy: one env sampled in the driver, uniform replay, twin critics, ``settings.utd`` gradient steps per
    env step, warm-up actions ``clip(N(0, I), -1, 1)`` for ``settings.learning_starts`` env steps."""
    spec = get_task_spec(task)
    return (
        DSRLConfig()
        .environment(env_name(task))
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1,
                     rollout_fragment_length=settings.rollout_fragment_length)
        .training(
            variant="sac",
            base_policy_factory=IDENTITY_FACTORY,
            base_policy_factory_kwargs={"obs_dim": spec.obs_dim, "act_dim": spec.act_dim},
            gym_version=gym_version,
            mode="sync",
            hidden_sizes=list(settings.hidden_sizes),
            layer_norm=False,
            activation="relu",
            n_critics=2,
            backup="min",
            action_magnitude=1.0,
            log_std_min=-20.0,
            actor_lr=settings.actor_lr,
            critic_lr=settings.critic_lr,
            alpha_lr=settings.alpha_lr,
            gamma=settings.gamma,
            tau=settings.tau,
            initial_alpha=1.0,
            auto_entropy=True,
            target_entropy=-float(spec.act_dim),
            train_batch_size_per_learner=settings.batch_size,
            utd=float(settings.utd),
            init_rollout_steps=settings.learning_starts,
            learning_starts=settings.learning_starts,
            replay_capacity=settings.buffer_capacity,
            log_tensorboard=False,
        )
        .reporting(min_time_s_per_iteration=0,
                   min_sample_timesteps_per_iteration=min(_REPORT_EVERY, settings.eval_every, settings.max_env_steps))
        .debugging(seed=settings.seed)
    )


class _Actor(torch.nn.Module):
    """The noise policy's network alone: obs ``(B, obs_dim)`` -> squashed-Gaussian inputs ``(B, 2 * act_dim)``
    (the pre-tanh mean, then the clamped log std)."""

    def __init__(self, actor: torch.nn.Module) -> None:
        super().__init__()
        self.actor = actor

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mean, log_std = self.actor(obs)
        return torch.cat([mean, log_std], dim=-1)


def export_actor(module: Any, obs_dim: int) -> torch.jit.ScriptModule:
    """A TorchScript copy of the actor ``pi`` of DSRL module ``module`` (runs without Ray)."""
    actor = _Actor(copy.deepcopy(module.pi)).eval()
    with torch.no_grad():
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
    task: str,
    gym_version: str,
    settings: SACDemoSettings,
    *,
    evaluate: Callable[[torch.nn.Module], float],
    progress: bool = True,
) -> tuple[torch.jit.ScriptModule, TrainingRecord]:
    """Train SAC on gym task ``task`` until ``evaluate(actor) >= settings.target_return`` or ``settings.max_env_steps``.

    ``evaluate`` (mean deterministic return of an exported actor) runs every ``settings.eval_every``
    env steps and once at the end. Returns the actor of the last evaluation and the record.
    """
    started = time.perf_counter()
    evaluations: list[tuple[int, float]] = []
    gym_id = get_task_spec(task).gym_id(gym_version)
    with _local_ray(), tqdm(total=settings.max_env_steps, unit="step", desc=f"SAC {gym_id}",
                            disable=not progress) as bar:
        algo = sac_config(task, settings, gym_version).build_algo()
        logdir = algo.logdir
        try:
            obs_dim = int(get_task_spec(task).obs_dim)
            next_eval, steps = settings.eval_every, 0
            while True:
                result = algo.train()
                steps = int(result[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])
                bar.update(steps - bar.n)
                out_of_budget, reached = steps >= settings.max_env_steps, False
                if steps >= next_eval or out_of_budget:
                    actor = export_actor(algo.get_module().unwrapped(), obs_dim)
                    evaluations.append((steps, evaluate(actor)))
                    next_eval = (steps // settings.eval_every + 1) * settings.eval_every
                    reached = evaluations[-1][1] >= settings.target_return
                train_return = result[ENV_RUNNER_RESULTS].get(_EPISODE_RETURN)
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
