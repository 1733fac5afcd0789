"""Helpers of the multi-node tests: nodes, learner and runner read-outs, training until a condition."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from dsrl_ray.rllib import runner_sync as sync

LEARNER_RESOURCE = "learner_node"
"""Custom resource only the head offers: a learner actor asking for it is placed there."""


def add_worker_node(cluster: Any) -> Any:
    """A worker node with one CPU (one env runner), registered before this returns."""
    node = cluster.add_node(num_cpus=1, env_vars={"OMP_NUM_THREADS": "1"})
    cluster.wait_for_nodes()
    return node


def on_learner(algo: Any, fn: Callable[[Any], Any]) -> Any:
    """``fn(learner)`` evaluated where the (single) learner lives."""
    group = algo.learner_group
    (value,) = sync.learner_results(group, group.foreach_learner(fn))
    return value


def learner_counters(algo: Any) -> dict[str, int]:
    """Replay size, transitions inserted, gradient steps done and the weights version, read on the learner."""
    return on_learner(
        algo,
        lambda lrn: {
            "replay": len(lrn.replay),
            "inserted": lrn.limiter.num_inserted,
            "updates": lrn.limiter.num_updates,
            "version": lrn._weights_seq_no,
        },
    )


def runner_info(algo: Any) -> dict[int, dict[str, Any]]:
    """Per healthy remote runner (by index): node id, pid, weights version and noise-policy weights."""
    import ray

    def info(er: Any) -> tuple[int, dict[str, Any]]:
        pi = {k: v.detach().cpu().numpy() for k, v in er.module.pi.state_dict().items()}
        return er.worker_index, {
            "node": ray.get_runtime_context().get_node_id(),
            "pid": os.getpid(),
            "version": er._weights_seq_no,
            "pi": pi,
        }

    return dict(algo.env_runner_group.foreach_env_runner(info, local_env_runner=False))


def delivered(result: dict, index: int) -> int:
    """Transitions runner ``index`` has delivered to the learner so far (the driver's per-runner count)."""
    return int(result["dsrl"].get("runner_transitions_lifetime", {}).get(f"runner_{index}", 0))


def train_until(algo: Any, done: Callable[[dict], bool], *, timeout_s: float) -> dict:
    """``algo.train()`` until ``done(result)``; fails after ``timeout_s`` seconds."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = algo.train()
        if done(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {timeout_s} s; last dsrl metrics: {result.get('dsrl')}")
