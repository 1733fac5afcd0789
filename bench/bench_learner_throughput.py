"""DSRL-NA learner throughput: Q_W pairs from the actors (replay) vs pairs the learner denoises.

Sizes of the Lift CPU profile (``configs/lift_na.yaml``, profile ``cpu``): observation 19, chunk
4 x 7, base policy = the robomimic preset (residual MLP 3x512, 8 DDIM steps, randomly
initialised), actor and critic heads [256, 256], batch 128, interleaved Q_W (``q_w_utd: null``).
Three learners, each built in-process with ``DSRLConfig.build_learner`` (no Ray cluster), their
replays preloaded with the same 20k synthetic transitions (with ``aliasing_pairs=4`` random
pairs per row; their values do not change the cost):

- ``na actor``: ``q_w_pairs="actor"``: distillation on a stored pair per row; the learner runs
  pi_dp once per step (the Q_A target ``pi_dp(s', w')``);
- ``na learner``: ``q_w_pairs="learner"``: the learner also denoises ``w ~ N(0, I)`` for the
  distillation, a second pi_dp call per step (the path before pairs came from the actors);
- ``sac``: DSRL-SAC, no pi_dp in the learner at all.

Timed: ``insert_and_train`` of one transition with ``utd`` = steps per round (replay sample,
``update()`` per step, metrics reduce, weights snapshot), in alternating rounds after a warm-up;
each reports its best round. ``--compile`` also times the Q_A target's pi_dp call (batch 128)
eager and under ``torch.compile``, with the compile time.

Output: gradient steps/s per learner, NA / SAC step time, the cost ``P`` of one pi_dp call at
batch 128, and last ``ratio X`` = (na actor steps/s) / (na learner steps/s). Goals: ratio >= 2.5;
NA <= 1.5x SAC. Both NA learners share the same sampler and the same Q_A-target call, and the
learner path adds one pi_dp call per step, so ``ratio ~ 1 + P / T_actor`` with ``P < T_actor``:
below 2 whatever the sampler costs (the bound is printed with the measurement).

Usage: ``python bench/bench_learner_throughput.py [--quick] [--compile]``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from bench_grad_step import Size, synthetic_transitions, write_base_policy
from dsrl_ray.rllib import DSRLConfig, DSRLTorchLearner
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

LIFT_CPU = Size("lift", 19, 7, 4, (256, 256), steps=20, rounds=8, quick_steps=8, quick_rounds=4)
BATCH = 128
PAIRS = 4
REPLAY_SIZE = 20_000
RATIO_GOAL = 2.5
SAC_GOAL = 1.5
CONTENDERS = {
    "na actor": dict(variant="na", q_w_pairs="actor"),
    "na learner": dict(variant="na", q_w_pairs="learner"),
    "sac": dict(variant="sac"),
}


def build_learner(policy_path: Path, steps: int, **training) -> DSRLTorchLearner:
    """A learner at the Lift CPU profile's sizes with ``utd = steps``, its replay preloaded."""
    size = LIFT_CPU
    noise_dim = size.chunk_len * size.act_dim
    config = (
        DSRLConfig()
        .training(
            base_policy_path=str(policy_path),
            hidden_sizes=list(size.hidden),
            utd=steps,
            init_rollout_steps=0,
            aliasing_pairs=PAIRS,
            replay_capacity=REPLAY_SIZE + 1_000,
            train_batch_size_per_learner=BATCH,
            **training,
        )
        .debugging(seed=0)
    )
    obs_space = gym.spaces.Box(-np.inf, np.inf, (size.obs_dim,), np.float32)
    noise_space = gym.spaces.Box(-1.5, 1.5, (noise_dim,), np.float32)
    learner = config.build_learner(spaces={DEFAULT_MODULE_ID: (obs_space, noise_space)})
    learner.replay.add(_layout(learner, synthetic_transitions(REPLAY_SIZE, size.obs_dim, noise_dim, 1, PAIRS)))
    return learner


def _layout(learner: DSRLTorchLearner, transitions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``transitions`` restricted to the columns of the learner's replay."""
    return {k: v for k, v in transitions.items() if k in learner.replay.fields}


def time_rounds(runs: dict[str, Callable[[], None]], steps: int, rounds: int) -> dict[str, float]:
    """Best-of-``rounds`` seconds per gradient step of each run, in alternating rounds after one warm-up."""
    best = dict.fromkeys(runs, float("inf"))
    for round_ in range(rounds + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            elapsed = (time.perf_counter() - start) / steps
            if round_ > 0:
                best[name] = min(best[name], elapsed)
    return best


def learner_runs(policy_path: Path, steps: int, rounds: int) -> dict[str, Callable[[], None]]:
    """One ``insert_and_train`` call (= ``steps`` gradient steps) per contender."""
    size = LIFT_CPU
    noise_dim = size.chunk_len * size.act_dim
    runs = {}
    for name, training in CONTENDERS.items():
        learner = build_learner(policy_path, steps, **training)
        fresh = _layout(learner, synthetic_transitions(rounds + 1, size.obs_dim, noise_dim, 2, PAIRS))
        calls = iter(range(rounds + 1))

        def run(learner=learner, fresh=fresh, calls=calls) -> None:
            i = next(calls)
            out = learner.insert_and_train(
                {k: v[i : i + 1] for k, v in fresh.items()}, timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: 0}
            )
            assert out["owed"] == 0 and out["weights"] is not None

        runs[name] = run
    return runs


def compile_probe(policy_path: Path, calls: int) -> None:
    """ms per Q_A-target pi_dp call (batch 128), eager and compiled, and the compile time."""
    learner = build_learner(policy_path, 1, variant="na")
    module = learner.dsrl_module
    obs, noise = torch.randn(BATCH, LIFT_CPU.obs_dim), torch.randn(BATCH, module.action_space.shape[0])
    start = time.perf_counter()
    compiled = torch.compile(module.pi_dp_flat, dynamic=False)
    compiled(obs, noise)
    compile_s = time.perf_counter() - start
    best = time_rounds(
        {"eager": lambda: [module.pi_dp_flat(obs, noise) for _ in range(calls)],
         "compiled": lambda: [compiled(obs, noise) for _ in range(calls)]},
        calls, rounds=4,
    )
    print(f"pi_dp (batch {BATCH}): eager {1e3 * best['eager']:.2f} ms, torch.compile {1e3 * best['compiled']:.2f} ms "
          f"per call; compiling took {compile_s:.1f} s (break-even after "
          f"{compile_s / max(best['eager'] - best['compiled'], 1e-9):.0f} calls)")


def pi_dp_call_seconds(policy_path: Path, calls: int) -> float:
    """Best-of-4 seconds of one pi_dp call on a batch of 128 (the Q_A target's call), eager."""
    module = build_learner(policy_path, 1, variant="na").dsrl_module
    obs, noise = torch.randn(BATCH, LIFT_CPU.obs_dim), torch.randn(BATCH, module.action_space.shape[0])
    return time_rounds({"pi_dp": lambda: [module.pi_dp_flat(obs, noise) for _ in range(calls)]}, calls, rounds=4)["pi_dp"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds (about a minute)")
    parser.add_argument("--compile", action="store_true", help="also time pi_dp under torch.compile (minutes)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    steps, rounds = (LIFT_CPU.quick_steps, LIFT_CPU.quick_rounds) if args.quick else (LIFT_CPU.steps, LIFT_CPU.rounds)
    print(f"torch={torch.__version__} threads={torch.get_num_threads()} batch={BATCH} heads={list(LIFT_CPU.hidden)} "
          f"pairs={PAIRS} steps/round={steps} rounds={rounds}")
    with tempfile.TemporaryDirectory(prefix="bench_learner_") as tmp:
        policy_path = write_base_policy(LIFT_CPU, Path(tmp))
        best = time_rounds(learner_runs(policy_path, steps, rounds), steps, rounds)
        pi_dp_s = pi_dp_call_seconds(policy_path, calls=steps)
        if args.compile:
            compile_probe(policy_path, calls=steps)
    print(f"{'learner':<11} {'ms/step':>8} {'steps/s':>8}")
    for name, seconds in best.items():
        print(f"{name:<11} {1e3 * seconds:>8.2f} {1 / seconds:>8.1f}")
    na_vs_sac = best["na actor"] / best["sac"]
    print(f"NA / SAC step time {na_vs_sac:.2f}x (goal <= {SAC_GOAL}x: {'met' if na_vs_sac <= SAC_GOAL else 'MISSED'})")
    print(f"pi_dp call (batch {BATCH}) P = {1e3 * pi_dp_s:.2f} ms = {pi_dp_s / best['na actor']:.0%} of an "
          f"na actor step; ratio bound 1 + P / T_actor = {1 + pi_dp_s / best['na actor']:.2f}")
    ratio = best["na learner"] / best["na actor"]
    print(f"ratio {ratio:.2f}  (na actor / na learner steps/s; goal >= {RATIO_GOAL}: "
          f"{'met' if ratio >= RATIO_GOAL else 'MISSED'})")


if __name__ == "__main__":
    main()
