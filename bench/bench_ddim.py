"""Base-policy sampling throughput: fast samplers vs their plain reference loops.

Two policy types: DDIM (``DiffusionPolicy.sample`` vs ``sample_reference``) and flow matching
(``FlowPolicy.sample`` vs ``sample_reference``, Euler and midpoint, 10 steps each).

Unit: action chunks per second, i.e. denoised ``(chunk_len, act_dim)`` chunks (one per
observation) per second of wall time, each chunk a full sampler run (all K DDIM steps, or all
ODE steps). Both samplers run in the same process on the same randomly initialised network,
after a warm-up, in alternating rounds; each reports its best round (robust to load from other
processes).

Usage: ``python bench/bench_ddim.py [--device cuda] [--seconds 1.0] [--threads 1] [--policy all|ddim|flow]``
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

from dsrl_ray.policies import DiffusionArch, FlowArch
from dsrl_ray.policies.policy_types import PolicyArch, build_policy

DDIM_NETWORKS: dict[str, DiffusionArch] = {
    "lift": DiffusionArch(
        obs_dim=19, act_dim=7, chunk_len=4, mlp_dims=(512, 512, 512), time_dim=16, denoising_steps=20, ddim_steps=8
    ),
    "square": DiffusionArch(
        obs_dim=23,
        act_dim=7,
        chunk_len=4,
        mlp_dims=(1024, 1024, 1024),
        time_dim=32,
        cond_mlp_dims=(512, 64),
        denoising_steps=100,
        ddim_steps=8,
    ),
}
_LIFT_FLOW = dict(obs_dim=19, act_dim=7, chunk_len=4, mlp_dims=(512, 512, 512), time_dim=16, flow_steps=10)
FLOW_NETWORKS: list[tuple[str, FlowArch]] = [
    ("lift", FlowArch(**_LIFT_FLOW, sampler="euler")),
    ("lift", FlowArch(**_LIFT_FLOW, sampler="midpoint")),
]
BATCHES = (1, 16, 256)
ROUNDS = 3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def chunks_per_second(fn: Callable[[], torch.Tensor], batch: int, device: torch.device, seconds: float) -> float:
    """Run ``fn`` (one batch of ``batch`` chunks) repeatedly for about ``seconds``; return chunks/s."""
    _sync(device)
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        if calls % 4 == 0:
            _sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return calls * batch / elapsed


def _sampler_label(arch: PolicyArch) -> str:
    if isinstance(arch, FlowArch):
        return f"{arch.sampler}-{arch.flow_steps}"
    return f"ddim-{arch.ddim_steps}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.add_argument("--seconds", type=float, default=1.0, help="measuring time per cell")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--policy", choices=("all", "ddim", "flow"), default="all", help="policy types to time")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available in this torch build/machine")
    networks: list[tuple[str, PolicyArch]] = []
    if args.policy in ("all", "ddim"):
        networks += list(DDIM_NETWORKS.items())
    if args.policy in ("all", "flow"):
        networks += FLOW_NETWORKS
    print(f"device={device} torch={torch.__version__} threads={torch.get_num_threads()}")
    print("unit: action chunks/s (one (chunk_len, act_dim) chunk per observation, all sampler steps)")
    print(f"{'network':<8} {'sampler':<11} {'batch':>5} {'fast':>12} {'reference':>12} {'ratio':>7}")
    for name, arch in networks:
        torch.manual_seed(0)
        policy = build_policy(arch).to(device).eval().requires_grad_(False)
        for batch in BATCHES:
            obs = torch.randn(batch, policy.obs_dim, device=device)
            noise = torch.randn(batch, *policy.noise_shape, device=device)
            samplers = {"fast": lambda: policy.sample(obs, noise), "ref": lambda: policy.sample_reference(obs, noise)}
            for fn in samplers.values():
                for _ in range(5):
                    fn()
            best = dict.fromkeys(samplers, 0.0)
            for _ in range(ROUNDS):
                for key, fn in samplers.items():
                    rate = chunks_per_second(fn, batch, device, args.seconds / ROUNDS)
                    best[key] = max(best[key], rate)
            fast, ref = best["fast"], best["ref"]
            label = _sampler_label(arch)
            print(f"{name:<8} {label:<11} {batch:>5} {fast:>12.1f} {ref:>12.1f} {fast / ref:>6.2f}x")


if __name__ == "__main__":
    main()
