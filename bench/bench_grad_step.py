"""One DSRL gradient step (batch 256): our RLlib learner vs a plain PyTorch loop doing the same maths.

Both sides use the same networks (``GaussianActor``, ``EnsembleCritic`` with 2 members and
LayerNorm), the same losses (``dsrl_ray.core.losses``), Adam optimisers for the critic(s),
the actor and log-alpha, and a Polyak target update (tau 0.005) after every step. The plain
loop draws its batch from torch tensors with ``torch.randint`` and does one ``backward()`` of
the summed losses (the parameter sets are disjoint, so the gradients are the same).

Timed, per gradient step (milliseconds, best of several alternating rounds):

- ``plain``: the plain loop (batch indexed from in-memory tensors, then the step);
- ``update``: ``DSRLTorchLearner.update(batch=...)`` on a batch sampled from its
  ``FlatReplay`` beforehand (RLlib's update path alone);
- ``insert_and_train``: ``DSRLTorchLearner.insert_and_train``, the real path: one call per
  round inserts one transition with ``utd`` = steps per round (20 for locomotion, the paper's
  UTD; 1 for robomimic, where a step takes about a second and the few ms of per-call work are
  noise), then replay sample + ``update()`` per step, the metrics reduce and the weights
  snapshot for the runners.

Networks: ``locomotion`` 3x128 (obs 11, act 3, chunk 4: Hopper) and ``robomimic`` 3x2048
(obs 19, act 7, chunk 4: Lift). The frozen base policy (needed by the learner and by NA's
Q_A target) is a randomly initialised DPPO-style ``DiffusionPolicy`` of the task's preset
architecture, written to a temporary directory with the project's checkpoint writer. NA distils
Q_W on stored aliasing pairs (the default ``q_w_pairs="actor"``; 4 random pairs per synthetic
transition), one per row, on both sides, so each side calls pi_dp once per step.
Goal: ``insert_and_train / plain <= 1.5``.

Usage: ``python bench/bench_grad_step.py [--quick] [--sizes locomotion robomimic] [--variants sac na]``
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import copy
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from dsrl_ray.rllib import DSRLConfig, DSRLTorchLearner
from dsrl_ray.core.losses import (
    alpha_loss,
    na_actor_loss,
    na_q_a_loss,
    na_q_w_pair_loss,
    sac_actor_loss,
    sac_critic_loss,
)
from dsrl_ray.core.networks import EnsembleCritic, GaussianActor
from dsrl_ray.core.noise_policy import squashed_gaussian_sample
from dsrl_ray.policies import DiffusionArch, DiffusionPolicy
from dsrl_ray.policies.checkpoint import checkpoint_path, normalizer_to_tensors, write_checkpoint
from dsrl_ray.envs.tasks import get_task_spec
from ray.rllib.core import DEFAULT_MODULE_ID
from ray.rllib.policy.sample_batch import MultiAgentBatch
from ray.rllib.utils.metrics import NUM_ENV_STEPS_SAMPLED_LIFETIME, WEIGHTS_SEQ_NO
from dsrl_ray.rllib.episodes import PAIR_VALID
from dsrl_ray.rllib.module import PAIR_EXECUTED, PAIR_NOISE

BATCH = 256
REPLAY_SIZE = 100_000
PAIRS = 4  # aliasing pairs per transition (DSRLConfig's default; NA distils on them)
GOAL = 1.5


@dataclass(frozen=True)
class Size:
    """One network size: task dimensions, hidden widths and how many steps to time."""

    task: str
    obs_dim: int
    act_dim: int
    chunk_len: int
    hidden: tuple[int, ...]
    steps: int
    rounds: int
    quick_steps: int
    quick_rounds: int


SIZES: dict[str, Size] = {
    "locomotion": Size("hopper", 11, 3, 4, (128, 128, 128), steps=20, rounds=6, quick_steps=10, quick_rounds=2),
    "robomimic": Size("lift", 19, 7, 4, (2048, 2048, 2048), steps=1, rounds=6, quick_steps=1, quick_rounds=1),
}


def write_base_policy(size: Size, out_dir: Path) -> Path:
    """A randomly initialised base policy of the task's preset architecture, as a pretrain checkpoint."""
    preset_arch = get_task_spec(size.task).preset.arch
    arch = DiffusionArch(obs_dim=size.obs_dim, act_dim=size.act_dim, chunk_len=size.chunk_len, **preset_arch)
    torch.manual_seed(0)
    policy = DiffusionPolicy(arch)
    payload = {
        "arch": arch.to_dict(),
        "normalizer": normalizer_to_tensors(policy.normalizer),
        "model": policy.state_dict(),
        "ema": policy.state_dict(),
        "step": 0,
        "dataset_sha256": "random-init",
    }
    return write_checkpoint(payload, checkpoint_path(out_dir, 0))


def synthetic_transitions(n: int, obs_dim: int, noise_dim: int, seed: int, pairs: int = 0) -> dict[str, np.ndarray]:
    """``n`` random transitions in :class:`FlatReplay` layout (plus ``weights_seq_no`` and ``pairs`` aliasing pairs)."""
    rng = np.random.default_rng(seed)
    extra = {}
    if pairs:
        extra = {
            PAIR_NOISE: rng.standard_normal((n, pairs, noise_dim), dtype=np.float32),
            PAIR_EXECUTED: rng.uniform(-1.0, 1.0, (n, pairs, noise_dim)).astype(np.float32),
            PAIR_VALID: np.ones(n, bool),
        }
    return extra | {
        "obs": rng.standard_normal((n, obs_dim), dtype=np.float32),
        "noise": rng.uniform(-1.5, 1.5, (n, noise_dim)).astype(np.float32),
        "executed": rng.uniform(-1.0, 1.0, (n, noise_dim)).astype(np.float32),
        "reward": rng.standard_normal(n, dtype=np.float32),
        "next_obs": rng.standard_normal((n, obs_dim), dtype=np.float32),
        "terminated": rng.random(n) < 0.01,
        "truncated": rng.random(n) < 0.01,
        WEIGHTS_SEQ_NO: np.zeros(n, np.int64),
    }


def build_learner(size: Size, variant: str, policy_path: Path, utd: int) -> DSRLTorchLearner:
    """Our learner, built in-process (no Ray cluster), its replay preloaded with synthetic data."""
    noise_dim = size.chunk_len * size.act_dim
    config = (
        DSRLConfig()
        .training(
            base_policy_path=str(policy_path),
            variant=variant,
            hidden_sizes=list(size.hidden),
            utd=utd,
            init_rollout_steps=0,
            replay_capacity=REPLAY_SIZE + 10_000,
            train_batch_size_per_learner=BATCH,
        )
        .debugging(seed=0)
    )
    obs_space = gym.spaces.Box(-np.inf, np.inf, (size.obs_dim,), np.float32)
    noise_space = gym.spaces.Box(-1.5, 1.5, (noise_dim,), np.float32)
    learner = config.build_learner(spaces={DEFAULT_MODULE_ID: (obs_space, noise_space)})
    pairs = PAIRS if learner.pairs_from_actors else 0
    learner.preload(synthetic_transitions(REPLAY_SIZE, size.obs_dim, noise_dim, seed=1, pairs=pairs))
    return learner


class PlainSAC:
    """The same DSRL-SAC / DSRL-NA step as the learner, written as a plain PyTorch loop.

    Networks are copies of the learner module's networks (same sizes and initial weights);
    pi_dp is the same frozen base policy object.
    """

    def __init__(self, learner: DSRLTorchLearner, data: dict[str, np.ndarray]) -> None:
        module = learner.dsrl_module
        cfg = learner.config
        self.variant = module.variant
        self.magnitude = module.action_magnitude
        self.gamma, self.backup, self.tau = cfg.gamma, cfg.backup, cfg.tau
        self.q_w_target = cfg.q_w_target
        self.target_entropy = float(cfg.target_entropy)
        self.actor: GaussianActor = copy.deepcopy(module.pi)
        self.critic: EnsembleCritic = copy.deepcopy(module.qf)
        self.target_critic: EnsembleCritic = copy.deepcopy(module.qf).requires_grad_(False)
        self.log_alpha = torch.zeros(1, requires_grad=True)
        self.optimizers = [
            torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr),
            torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr),
            torch.optim.Adam([self.log_alpha], lr=cfg.alpha_lr),
        ]
        self.critic_w: EnsembleCritic | None = None
        if self.variant == "na":
            self.critic_w = copy.deepcopy(module.qf_w)
            self.optimizers.append(torch.optim.Adam(self.critic_w.parameters(), lr=cfg.critic_lr))
        self.policy = module.pi_dp
        self.target_params = list(self.target_critic.parameters())
        self.online_params = list(self.critic.parameters())
        self.data = {k: torch.from_numpy(v) for k, v in data.items()}
        self.size = len(data["obs"])
        self.gen = torch.Generator().manual_seed(0)

    def pi_dp_flat(self, obs: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Frozen base policy on flattened noise and chunks."""
        with torch.no_grad():
            chunk = self.policy.sample(obs, noise.view(len(noise), self.policy.chunk_len, self.policy.act_dim))
        return chunk.reshape(len(obs), -1)

    def sample(self) -> dict[str, torch.Tensor]:
        """A uniform batch of ``BATCH`` rows, indexed from the in-memory tensors."""
        idx = torch.randint(self.size, (BATCH,), generator=self.gen)
        return {k: v[idx] for k, v in self.data.items()}

    def step(self, b: dict[str, torch.Tensor]) -> None:
        """One gradient step on every network, then the Polyak target update."""
        alpha = self.log_alpha.detach().exp()[0]
        obs, next_obs, reward, term = b["obs"], b["next_obs"], b["reward"], b["terminated"]
        with torch.no_grad():
            next_noise, next_logp = squashed_gaussian_sample(*self.actor(next_obs), self.magnitude, generator=self.gen)
        noise_pi, logp_pi = squashed_gaussian_sample(*self.actor(obs), self.magnitude, generator=self.gen)
        common = dict(alpha=alpha, discount=self.gamma, backup=self.backup)
        if self.critic_w is None:
            q_loss, _ = sac_critic_loss(
                self.critic, self.target_critic, obs, b["noise"], reward, next_obs, term, next_noise, next_logp,
                **common,
            )
            pi_loss, _ = sac_actor_loss(
                partial(self.critic, detach_params=True), obs, noise_pi, logp_pi, alpha, reduce=self.backup
            )
            total = q_loss + pi_loss
        else:
            q_loss, _ = na_q_a_loss(
                self.critic, self.target_critic, self.pi_dp_flat, obs, b["executed"], reward, next_obs, term,
                next_noise, next_logp, **common,
            )
            k = torch.randint(b[PAIR_NOISE].shape[1], (len(obs),), generator=self.gen)  # one stored pair per row
            rows = torch.arange(len(obs))
            qw_loss, _ = na_q_w_pair_loss(
                self.critic_w, self.critic, obs, b[PAIR_NOISE][rows, k], b[PAIR_EXECUTED][rows, k], self.q_w_target
            )
            pi_loss, _ = na_actor_loss(
                partial(self.critic_w, detach_params=True), obs, noise_pi, logp_pi, alpha, reduce=self.backup
            )
            total = q_loss + qw_loss + pi_loss
        total = total + alpha_loss(self.log_alpha, logp_pi, self.target_entropy)
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        total.backward()
        for opt in self.optimizers:
            opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(self.target_params, self.online_params, self.tau)


def ms_per_step(fn: Callable[[], None], steps: int) -> float:
    """Wall time of ``fn()`` (which performs ``steps`` gradient steps) per step, in ms."""
    start = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - start) / steps


def bench_case(size: Size, variant: str, policy_path: Path, steps: int, rounds: int) -> dict[str, float]:
    """Best-of-``rounds`` ms/step of the three contenders, measured in alternating rounds."""
    learner = build_learner(size, variant, policy_path, utd=steps)
    noise_dim = size.chunk_len * size.act_dim
    plain = PlainSAC(learner, {k: v.copy() for k, v in learner.replay.storage().items()})
    pairs = PAIRS if learner.pairs_from_actors else 0
    fresh = synthetic_transitions(rounds + 1, size.obs_dim, noise_dim, seed=2, pairs=pairs)
    timesteps = {NUM_ENV_STEPS_SAMPLED_LIFETIME: 0}
    calls = iter(range(rounds + 1))

    def run_plain() -> None:
        for _ in range(steps):
            plain.step(plain.sample())

    batches: list[MultiAgentBatch] = []

    def run_update() -> None:
        for batch in batches:
            learner.update(batch=batch, timesteps=timesteps, _no_metrics_reduce=True)
        learner.metrics.reduce()

    def run_insert_and_train() -> None:
        i = next(calls)
        out = learner.insert_and_train({k: v[i : i + 1] for k, v in fresh.items()}, timesteps=timesteps)
        assert out["owed"] == 0 and out["weights"] is not None

    contenders = {"plain": run_plain, "update": run_update, "insert_and_train": run_insert_and_train}
    best = dict.fromkeys(contenders, float("inf"))
    for round_ in range(rounds + 1):  # round 0 warms up
        batches[:] = [learner._train_batch() for _ in range(steps)]  # sampled outside the timed region
        for name, fn in contenders.items():
            elapsed = ms_per_step(fn, steps)
            if round_ > 0:
                best[name] = min(best[name], elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few steps per round (under a minute)")
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=list(SIZES))
    parser.add_argument("--variants", nargs="+", choices=("sac", "na"), default=["sac", "na"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch={torch.__version__} threads={torch.get_num_threads()} batch={BATCH} replay={REPLAY_SIZE}")
    print("unit: ms per gradient step (best round); ratio = insert_and_train / plain")
    print(
        f"{'size':<11} {'variant':<7} {'steps':>5} {'plain':>9} {'update':>9} {'ins+train':>9} "
        f"{'upd/plain':>9} {'ratio':>7}"
    )
    worst = 0.0
    with tempfile.TemporaryDirectory(prefix="bench_grad_step_") as tmp:
        for size_name in args.sizes:
            size = SIZES[size_name]
            policy_path = write_base_policy(size, Path(tmp) / size_name)
            steps, rounds = (size.quick_steps, size.quick_rounds) if args.quick else (size.steps, size.rounds)
            for variant in args.variants:
                t = bench_case(size, variant, policy_path, steps, rounds)
                ratio = t["insert_and_train"] / t["plain"]
                worst = max(worst, ratio)
                print(
                    f"{size_name:<11} {variant:<7} {steps:>5} {t['plain']:>9.2f} {t['update']:>9.2f} "
                    f"{t['insert_and_train']:>9.2f} {t['update'] / t['plain']:>8.2f}x {ratio:>6.2f}x",
                    flush=True,
                )
    verdict = "met" if worst <= GOAL else "MISSED"
    print(f"ratio {worst:.2f}x  (worst insert_and_train/plain; goal <= {GOAL}x: {verdict})")


if __name__ == "__main__":
    main()
