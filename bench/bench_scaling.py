"""Scaling inputs: env-runner throughput (1 and 2 runners) vs the raw simulator loop, driver ingest, learner steps/s.

Unit of env throughput: chunk steps per second (one latent-action step = one base-policy call +
one open-loop chunk of ``chunk_len`` simulator steps; RLlib counts these as env steps), summed
over envs and runners.

- ``raw``: the raw loop in one process (``bench_sampling.RawLoop``): ``--num-envs`` chunked envs
  in lockstep, ``w ~ N(0, I)`` -> one batched ``policy.sample`` -> ``env.step``;
- ``runners=N``: a DSRL algorithm on a local Ray instance with N remote env runners (1 CPU
  each, ``--num-envs`` envs each) in ``--mode`` (sync: sample on all runners, insert, repeat;
  async: runners never wait). ``utd=0`` and an endless warm-up: runners act with
  ``w ~ N(0, I)`` like the raw loop and the learner only inserts, so this is the rate of the
  whole sampling path (runners, Ray transfer, driver, replay insert) without gradient steps;
- ``driver ingest``: transitions per second the driver's own work per runner result allows
  (unpickle episodes and metrics, aggregate the metrics, ``episodes_to_transitions``,
  ``insert_and_train`` with no gradient steps), one result of ``num_envs x fragment`` steps at
  a time, in-process: the cap on what any number of runners can feed one driver (Ray's own
  transfer and scheduling cost is not included);
- ``learner``: gradient steps per second of ``DSRLTorchLearner.insert_and_train`` (batch 256,
  the ``--profile`` widths, the task's dimensions, ``--variant``) on this CPU.

The base policy is made first, as in ``bench_sampling.py`` (scripted demos + short BC run). Each
rate is the best of ``--rounds`` rounds of ``--seconds`` seconds after a warm-up. At the end it
prints the throughput model of ``docs/cluster.md`` evaluated with these numbers.

Usage: ``python bench/bench_scaling.py [--quick] [--task twogoal|lift] [--num-envs 2] [--mode sync|async] [--utd 1]``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import pickle
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import ray
import torch
from bench_grad_step import BATCH, Size, build_learner, synthetic_transitions
from bench_sampling import TASK_SETTINGS, RawLoop, build_runner, make_base_policy

import dsrl_ray
from dsrl_ray.rllib import DSRLConfig
from dsrl_ray.policies.spec import BasePolicySpec, load_base_policy
from dsrl_ray.core.settings import PROFILES
from dsrl_ray.rllib.module import ACT_BASE_NOISE
from dsrl_ray.rllib.episodes import episodes_to_transitions
from dsrl_ray.envs import get_task_spec
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME

FRAGMENT = {"twogoal": 100, "lift": 10}
"""Default rollout fragment per task: about half a second of sampling per runner call."""
ENDLESS_WARM_UP = 10**12


def best_rate(fn: Callable[[], tuple[int, float]], rounds: int) -> float:
    """Best ``count / seconds`` over ``rounds`` calls of ``fn() -> (count, seconds)`` after one warm-up call."""
    fn()
    return max(count / seconds for count, seconds in (fn() for _ in range(rounds)))


def raw_rate(task: str, policy_path: Path, num_envs: int, seconds: float, rounds: int) -> float:
    """Chunk steps/s of the raw chunked-env loop in this process."""
    loop = RawLoop(task, load_base_policy(BasePolicySpec(str(policy_path))), num_envs)

    def timed() -> tuple[int, float]:
        start, done = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            done += loop.run(num_envs)
        return done, time.perf_counter() - start

    return best_rate(timed, rounds)


def runners_rate(
    task: str, policy_path: Path, hidden: list[int], runners: int, num_envs: int, fragment: int, mode: str,
    seconds: float, rounds: int,
) -> float:
    """Chunk steps/s of a DSRL algorithm with ``runners`` remote runners that only samples and inserts."""
    config = (
        DSRLConfig()
        .environment(f"dsrl/{task}")
        .training(
            base_policy_path=str(policy_path),
            hidden_sizes=hidden,
            utd=0,
            init_rollout_steps=ENDLESS_WARM_UP,
            replay_capacity=200_000,
            mode=mode,
            log_tensorboard=False,
        )
        .env_runners(num_env_runners=runners, num_envs_per_env_runner=num_envs, rollout_fragment_length=fragment)
        .debugging(seed=0)
    )
    algo = config.build_algo()
    try:
        def timed() -> tuple[int, float]:
            first = algo.train()[NUM_ENV_STEPS_SAMPLED_LIFETIME]
            start = time.perf_counter()
            while True:
                steps = algo.train()[NUM_ENV_STEPS_SAMPLED_LIFETIME]
                elapsed = time.perf_counter() - start
                if elapsed >= seconds:
                    return steps - first, elapsed

        return best_rate(timed, rounds)
    finally:
        logdir = algo.logdir
        algo.stop()
        try:
            os.rmdir(logdir)
        except OSError:
            pass


def ingest_rate(task: str, policy_path: Path, hidden: list[int], num_envs: int, fragment: int, rounds: int) -> float:
    """Transitions/s of the driver's work per runner result, one result (``num_envs x fragment`` steps) at a time.

    Per result: unpickle ``(episodes, metrics)`` as Ray would, aggregate the metrics into a root
    logger, flatten the episodes and insert them into the learner's replay (no gradient steps).
    """
    from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

    runner = build_runner(task, policy_path, hidden, num_envs)
    runner.module.acting_source.fill_(ACT_BASE_NOISE)
    runner.sample(num_timesteps=num_envs * fragment)
    payload = pickle.dumps((runner.sample(num_timesteps=num_envs * fragment), runner.get_metrics()))
    runner.stop()
    spec = get_task_spec(task)
    size = Size(task, spec.obs_dim, spec.act_dim, spec.chunk_len, tuple(hidden), 1, 1, 1, 1)
    learner = build_learner(size, "na", policy_path, utd=0)
    root = MetricsLogger(root=True)
    timesteps = {NUM_ENV_STEPS_SAMPLED_LIFETIME: 0}

    def timed() -> tuple[int, float]:
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < 1.0:
            episodes, metrics = pickle.loads(payload)
            root.aggregate([metrics], key="env_runners")
            data = episodes_to_transitions(episodes)
            learner.insert_and_train(data, timesteps=timesteps, max_steps=0)
            done += len(data["obs"])
        return done, time.perf_counter() - start

    return best_rate(timed, rounds)


def learner_rate(task: str, policy_path: Path, hidden: list[int], variant: str, steps: int, rounds: int) -> float:
    """Gradient steps/s of ``insert_and_train`` owing ``steps`` steps per call (replay of 100k synthetic rows)."""
    spec = get_task_spec(task)
    size = Size(task, spec.obs_dim, spec.act_dim, spec.chunk_len, tuple(hidden), steps, rounds, steps, rounds)
    learner = build_learner(size, variant, policy_path, utd=steps)
    fresh = synthetic_transitions(rounds + 1, spec.obs_dim, spec.chunk_len * spec.act_dim, seed=2)
    calls = iter(range(rounds + 1))
    timesteps = {NUM_ENV_STEPS_SAMPLED_LIFETIME: 0}

    def timed() -> tuple[int, float]:
        i = next(calls)
        start = time.perf_counter()
        out = learner.insert_and_train({k: v[i : i + 1] for k, v in fresh.items()}, timesteps=timesteps)
        assert out["owed"] == 0
        return steps, time.perf_counter() - start

    return best_rate(timed, rounds)


def model_table(single: float, ingest: float, grad: float, utd: float, counts: list[int]) -> list[str]:
    """Predicted chunk steps/s for N runners: sync = 1 / (1/(N S) + utd/G), async = min(N S, D, G/utd)."""
    lines = [f"{'runners N':>9} {'sampling N*S':>13} {'async':>10} {'sync':>10}  bottleneck (async)"]
    learner_cap = grad / utd if utd > 0 else float("inf")
    for n in counts:
        sampling = n * single
        async_rate = min(sampling, ingest, learner_cap)
        sync_rate = 1.0 / (1.0 / sampling + (utd / grad if utd > 0 else 0.0) + 1.0 / ingest)
        neck = "runners" if async_rate == sampling else ("driver" if async_rate == ingest else "learner")
        lines.append(f"{n:>9} {sampling:>13.0f} {async_rate:>10.0f} {sync_rate:>10.0f}  {neck}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short rounds (about two minutes on twogoal)")
    parser.add_argument("--task", choices=sorted(TASK_SETTINGS), default="twogoal")
    parser.add_argument("--num-envs", type=int, default=2, help="envs per runner (and in the raw loop)")
    parser.add_argument("--fragment", type=int, default=None, help="rollout fragment length (default per task)")
    parser.add_argument("--mode", choices=["sync", "async"], default="async")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu", help="noise-policy and critic widths")
    parser.add_argument("--variant", choices=["na", "sac"], default="na", help="learner variant timed")
    parser.add_argument("--utd", type=float, default=1.0, help="update-to-data ratio used by the model at the end")
    args = parser.parse_args()
    torch.set_num_threads(1)
    dsrl_ray.register()
    seconds, rounds = (4.0, 1) if args.quick else (10.0, 2)
    fragment = args.fragment or FRAGMENT[args.task]
    hidden = PROFILES[args.profile]
    settings = TASK_SETTINGS[args.task]
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench_scaling_") as tmp:
        start = time.perf_counter()
        policy_path = make_base_policy(args.task, settings, Path(tmp))
        setup_s = time.perf_counter() - start
        rates["raw"] = raw_rate(args.task, policy_path, args.num_envs, seconds, rounds)
        print(f"raw loop: {rates['raw']:.1f} chunk steps/s", flush=True)
        # In-process parts first: the env registry of a shut-down Ray instance is gone with it.
        rates["ingest"] = ingest_rate(args.task, policy_path, hidden, args.num_envs, fragment, rounds)
        print(f"driver ingest: {rates['ingest']:.1f} transitions/s", flush=True)
        learner_steps = 4 if args.quick else 16
        rates["learner"] = learner_rate(args.task, policy_path, hidden, args.variant, learner_steps, rounds)
        print(f"learner: {rates['learner']:.1f} gradient steps/s", flush=True)
        ray.init(num_cpus=max(2, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
        try:
            for n in (1, 2):
                rates[f"runners={n}"] = runners_rate(
                    args.task, policy_path, hidden, n, args.num_envs, fragment, args.mode, seconds, rounds
                )
                print(f"{n} runner(s): {rates[f'runners={n}']:.1f} chunk steps/s", flush=True)
        finally:
            ray.shutdown()
    print()
    print(
        f"task={args.task} cpus={os.cpu_count()} torch={torch.__version__} threads={torch.get_num_threads()} "
        f"(base policy made in {setup_s:.1f} s); envs per runner {args.num_envs}, fragment {fragment}, "
        f"mode {args.mode}; learner {args.variant} {hidden} batch {BATCH}"
    )
    print(f"unit: chunk steps/s (best of {rounds} rounds of {seconds:g} s), transitions/s, gradient steps/s")
    print(f"{'measurement':<22} {'rate':>10} {'vs raw':>8}")
    for name in ("raw", "runners=1", "runners=2"):
        print(f"{name:<22} {rates[name]:>10.1f} {rates[name] / rates['raw']:>7.2f}x")
    print(f"{'driver ingest':<22} {rates['ingest']:>10.1f}  transitions/s")
    print(f"{'learner':<22} {rates['learner']:>10.1f}  gradient steps/s")
    scaling = rates["runners=2"] / (2 * rates["runners=1"])
    print(f"2-runner efficiency {scaling:.2f} (runners=2 / (2 x runners=1); {os.cpu_count()} cores for "
          "runners, driver and learner together)")
    print()
    print(f"model (docs/cluster.md) with S = runners=1, D = driver ingest, G = learner, utd = {args.utd:g}:")
    for line in model_table(rates["runners=1"], rates["ingest"], rates["learner"], args.utd, [1, 2, 4, 8, 16, 32, 64]):
        print(line)
    print(f"ratio {rates['runners=1'] / rates['raw']:.2f}x  (1 runner / raw loop chunk steps per second)")


if __name__ == "__main__":
    main()
