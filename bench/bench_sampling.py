"""Sampling throughput: one RLlib ``SingleAgentEnvRunner`` of DSRL vs the raw chunked-env loop.

Unit: chunk steps per second (one latent-action step = one base-policy call + one open-loop
chunk of ``chunk_len`` simulator steps; RLlib counts these as its env steps), summed over envs.

- ``raw``: ``--num-envs`` copies of the task's ``ChunkedEnv`` (``dsrl_ray.envs.make_chunked_env``)
  stepped in lockstep in a plain loop: ``w ~ N(0, I)`` -> one batched ``policy.sample(obs, w)``
  -> ``env.step(chunk)`` per env, reset at episode end;
- ``runner``: ``SingleAgentEnvRunner.sample(num_timesteps=...)`` built in-process (no Ray
  cluster) from a ``DSRLConfig`` with env ``"dsrl/<task>"`` and ``--num-envs`` envs, its
  RLModule hosting the same (cached) base policy. The module is in its warm-up mode, so it
  also draws ``w ~ N(0, I)``: the same work as ``raw`` plus RLlib's connectors, vector env and
  episode bookkeeping (and the noise-policy MLP forward pass the module computes in every mode);
- ``runner (noise policy)``: the same runner after warm-up (``w`` from the tanh-Gaussian noise
  policy), for reference.

The base policy is made first, in a temporary directory: scripted demos
(``dsrl_ray.envs.collect_demos``) and a short behaviour-cloning run
(``dsrl_ray.app.pretrain.pretrain_from_dataset``, the task preset's architecture). Contenders
run in alternating rounds after a warm-up round; each reports its best round.
Goal: ``runner / raw >= 0.85``.

Usage: ``python bench/bench_sampling.py [--quick] [--task twogoal|lift] [--num-envs 1] [--profile cpu]``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import dsrl_ray
from dsrl_ray.rllib import DSRLConfig
from dsrl_ray.policies.spec import BasePolicySpec, load_base_policy
from dsrl_ray.core.settings import PROFILES
from dsrl_ray.rllib.module import ACT_BASE_NOISE, ACT_NOISE_POLICY
from dsrl_ray.envs import collect_demos, make_chunked_env
from dsrl_ray.policies import BasePolicy
from dsrl_ray.envs.tasks import get_task_spec
from dsrl_ray.app.pretrain import pretrain_from_dataset
from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

GOAL = 0.85


@dataclass(frozen=True)
class TaskSettings:
    """How to make a base policy for the task and how many chunk steps to time per round."""

    n_demos: int
    pretrain_steps: int
    steps: int
    rounds: int
    quick_steps: int
    quick_rounds: int


TASK_SETTINGS: dict[str, TaskSettings] = {
    "twogoal": TaskSettings(n_demos=30, pretrain_steps=300, steps=2000, rounds=5, quick_steps=300, quick_rounds=2),
    "lift": TaskSettings(n_demos=5, pretrain_steps=100, steps=200, rounds=3, quick_steps=40, quick_rounds=1),
}


def make_base_policy(task: str, settings: TaskSettings, out_dir: Path) -> Path:
    """Scripted demos + a short BC run in ``out_dir``; returns the checkpoint path."""
    demos = out_dir / "demos.hdf5"
    preset = get_task_spec(task).preset
    collect_demos(
        task, settings.n_demos, sigma=preset.demo_sigma, seed=0, out_path=demos, keep_failures=True, progress=False
    )
    result = pretrain_from_dataset(
        demos, out_dir / "base_policy", task=task, steps=settings.pretrain_steps, progress=False
    )
    return result.checkpoint


class RawLoop:
    """``num_envs`` chunked envs stepped in lockstep with one batched base-policy call and ``w ~ N(0, I)``."""

    def __init__(self, task: str, policy: BasePolicy, num_envs: int, seed: int = 0) -> None:
        self.policy = policy
        self.envs = [make_chunked_env(task, policy.normalizer, chunk_len=policy.chunk_len) for _ in range(num_envs)]
        self.gen = torch.Generator().manual_seed(seed)
        self.obs = np.stack([env.reset(seed=seed + i)[0] for i, env in enumerate(self.envs)])

    def run(self, steps: int) -> int:
        """Take at least ``steps`` chunk steps over all envs (resetting at episode ends); returns the count."""
        rounds = -(-steps // len(self.envs))
        for _ in range(rounds):
            w = torch.randn(len(self.envs), *self.policy.noise_shape, generator=self.gen)
            with torch.no_grad():
                chunks = self.policy.sample(torch.from_numpy(self.obs), w).numpy()
            for i, env in enumerate(self.envs):
                obs, _, terminated, truncated, _ = env.step(chunks[i])
                self.obs[i] = env.reset()[0] if terminated or truncated else obs
        return rounds * len(self.envs)


def build_runner(task: str, policy_path: Path, hidden: list[int], num_envs: int) -> SingleAgentEnvRunner:
    """A local (in-process) DSRL env runner for ``"dsrl/<task>"`` with ``num_envs`` vector envs."""
    config = (
        DSRLConfig()
        .environment(f"dsrl/{task}")
        .training(base_policy_path=str(policy_path), hidden_sizes=hidden)
        .env_runners(num_env_runners=0, num_envs_per_env_runner=num_envs)
        .debugging(seed=0)
    )
    config.validate()
    return SingleAgentEnvRunner(config=config)


def runner_sampler(runner: SingleAgentEnvRunner, acting_source: int) -> Callable[[int], int]:
    """``f(steps)``: sample ``steps`` chunk steps, the module acting from ``acting_source``; returns the steps."""

    def sample(steps: int) -> int:
        runner.module.acting_source.fill_(acting_source)
        episodes = runner.sample(num_timesteps=steps)
        return sum(len(e) for e in episodes)

    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps per round (under a minute)")
    parser.add_argument("--task", choices=sorted(TASK_SETTINGS), default="twogoal")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu", help="noise-policy MLP widths")
    parser.add_argument(
        "--num-envs", type=int, default=1, help="envs per runner (and in the raw loop's lockstep batch)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    dsrl_ray.register()
    settings = TASK_SETTINGS[args.task]
    steps, rounds = (settings.quick_steps, settings.quick_rounds) if args.quick else (settings.steps, settings.rounds)
    with tempfile.TemporaryDirectory(prefix="bench_sampling_") as tmp:
        start = time.perf_counter()
        policy_path = make_base_policy(args.task, settings, Path(tmp))
        setup_s = time.perf_counter() - start
        runner = build_runner(args.task, policy_path, PROFILES[args.profile], args.num_envs)
        policy = load_base_policy(BasePolicySpec(str(policy_path)))
        raw = RawLoop(args.task, policy, args.num_envs)
        contenders: dict[str, Callable[[int], int]] = {
            "raw": raw.run,
            "runner": runner_sampler(runner, ACT_BASE_NOISE),
            "runner (noise policy)": runner_sampler(runner, ACT_NOISE_POLICY),
        }
        best = dict.fromkeys(contenders, 0.0)
        for round_ in range(rounds + 1):  # round 0 warms up
            for name, fn in contenders.items():
                start = time.perf_counter()
                counted = fn(steps)
                rate = counted / (time.perf_counter() - start)
                if round_ > 0:
                    best[name] = max(best[name], rate)
        runner.stop()
    print(
        f"task={args.task} torch={torch.__version__} threads={torch.get_num_threads()} "
        f"base policy: {policy.arch.mlp_dims} x {policy.arch.ddim_steps} DDIM steps, chunk {policy.chunk_len} "
        f"(made in {setup_s:.1f} s); noise policy {PROFILES[args.profile]}; envs per sampler {args.num_envs}"
    )
    print(f"unit: chunk steps/s (best of {rounds} rounds of {steps} chunk steps)")
    print(f"{'sampler':<24} {'steps/s':>10} {'vs raw':>8}")
    for name, rate in best.items():
        print(f"{name:<24} {rate:>10.1f} {rate / best['raw']:>7.2f}x")
    ratio = best["runner"] / best["raw"]
    verdict = "met" if ratio >= GOAL else "MISSED"
    print(f"ratio {ratio:.2f}x  (runner / raw chunk steps per second; goal >= {GOAL}x: {verdict})")


if __name__ == "__main__":
    main()
