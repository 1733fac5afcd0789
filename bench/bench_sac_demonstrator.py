"""Training the gym demonstrators: RLlib's own ``SAC`` vs SAC as DSRL-SAC over the identity base policy.

Both train SAC on Hopper-v4 with the demonstrator's settings (``SACDemoSettings.for_task("hopper")``:
actor and twin critics ``[256, 256]`` ReLU, batch 256, one gradient step per env step, one env
sampled in the driver), in this process, one after the other:

- ``rllib_sac``: RLlib's ``SACConfig`` (new API stack), episode replay, its default SAC module and
  learner connectors; ``training_intensity`` = batch so that one env step earns one gradient step.
  This is how the demonstrators were trained before 2026-12-07.
- ``identity``: :func:`dsrl_ray.rllib.sac_training.sac_config`, what ``dsrl-ray demos --task hopper``
  runs now (flat replay, fused learner, 8 env steps then their 8 gradient steps per iteration).

Each warms up (``learning_starts`` env steps, no gradient steps), then is timed over the same
number of env steps with learning on. Printed: env steps/s of each after warm-up and the ratio
``identity / rllib_sac`` (the goal: at least 5). The machine is noisy: compare ratios, not times.

Usage: ``python bench/bench_sac_demonstrator.py [--quick]``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import time
from collections.abc import Callable

import ray
from ray.rllib.algorithms.sac import SACConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

from dsrl_ray.envs.demos.sac_demonstrator import SACDemoSettings
from dsrl_ray.rllib.sac_training import sac_config

GOAL = 5.0


def rllib_sac_config(settings: SACDemoSettings) -> SACConfig:
    """RLlib's own SAC with the demonstrator's settings (the pre-2026-12-07 demonstrator trainer)."""
    return (
        SACConfig()
        .environment("Hopper-v4")
        .env_runners(num_env_runners=0, num_envs_per_env_runner=1, rollout_fragment_length=1)
        .training(lr=None, actor_lr=settings.actor_lr, critic_lr=settings.critic_lr, alpha_lr=settings.alpha_lr,
                  gamma=settings.gamma, tau=settings.tau, twin_q=True, initial_alpha=1.0, target_entropy="auto",
                  n_step=1, train_batch_size_per_learner=settings.batch_size,
                  num_steps_sampled_before_learning_starts=settings.learning_starts,
                  replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": settings.buffer_capacity},
                  training_intensity=settings.utd * settings.batch_size)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=list(settings.hidden_sizes),
                                                   fcnet_activation="relu", head_fcnet_hiddens=[]))
        .reporting(min_time_s_per_iteration=0, min_sample_timesteps_per_iteration=0)
        .debugging(seed=settings.seed)
    )


def env_steps_per_s(build: Callable[[], object], warm_up: int, timed: int) -> float:
    """Env steps per second of ``build()``'s algorithm over ``timed`` env steps after ``warm_up`` ones."""
    algo = build()
    try:
        def steps() -> int:
            return int(algo.train()[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED_LIFETIME])

        while (start := steps()) < warm_up:
            pass
        started = time.perf_counter()
        while (now := steps()) < start + timed:
            pass
        return (now - start) / (time.perf_counter() - started)
    finally:
        algo.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="time 100 env steps each (default 400)")
    args = parser.parse_args()
    warm_up, timed = 300, 100 if args.quick else 400
    settings = SACDemoSettings.for_task("hopper", learning_starts=warm_up)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        rates = {
            "rllib_sac": env_steps_per_s(lambda: rllib_sac_config(settings).build_algo(), warm_up, timed),
            "identity": env_steps_per_s(lambda: sac_config("hopper", settings, "v4").build_algo(), warm_up, timed),
        }
    finally:
        ray.shutdown()
    for name, rate in rates.items():
        print(f"{name:10s} {rate:7.1f} env steps/s (one gradient step each, batch {settings.batch_size})")
    ratio = rates["identity"] / rates["rllib_sac"]
    print(f"identity / rllib_sac = {ratio:.1f}x (goal >= {GOAL:.0f}x: {'met' if ratio >= GOAL else 'MISSED'})")


if __name__ == "__main__":
    main()
