"""DSRL on a multi-node Ray cluster (several raylets on this machine): placement, runner kill, node loss.

Every test checks the learner's bookkeeping after the fault: the replay holds every inserted
transition, the update-to-data ratio is exact (sync mode: ``updates == utd * (inserted -
warm-up)``), and the weights version keeps growing.
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
import ray

from dsrl_ray.rllib import DSRL
from .helpers import (
    LEARNER_RESOURCE,
    add_worker_node,
    delivered,
    learner_counters,
    on_learner,
    runner_info,
    train_until,
)

WARM_UP = 20  # init_rollout_steps of small_config


def _assert_learner_intact(algo, result: dict) -> dict:
    """Every transition that reached the driver is in the replay (or queued for it), at the exact ratio."""
    counters = learner_counters(algo)
    assert counters["replay"] == counters["inserted"]
    assert counters["inserted"] + algo._num_pending() == result["num_env_steps_sampled_lifetime"]
    assert counters["updates"] + on_learner(algo, lambda lrn: lrn.limiter.steps_owed()) == counters["inserted"] - WARM_UP
    return counters


def test_runners_spread_over_worker_nodes_and_the_learner_sits_on_the_head(cluster, small_config):
    workers = [add_worker_node(cluster) for _ in range(2)]
    config = small_config(runners=2).learners(
        num_learners=1, num_cpus_per_learner=0, custom_resources_per_learner={LEARNER_RESOURCE: 1}
    )
    algo = config.build_algo()
    try:
        head = cluster.head_node.node_id
        runners = runner_info(algo)
        assert sorted(r["node"] for r in runners.values()) == sorted(n.node_id for n in workers)
        assert on_learner(algo, lambda lrn: ray.get_runtime_context().get_node_id()) == head
        assert on_learner(algo, lambda lrn: os.getpid()) != os.getpid()  # a learner actor, not the driver
        server_node = ray.get(algo._server.__ray_call__.remote(lambda server: ray.get_runtime_context().get_node_id()))
        assert server_node == head
        for _ in range(3):
            result = algo.train()
        counters = _assert_learner_intact(algo, result)
        assert counters["updates"] == counters["inserted"] - WARM_UP > 0
        assert delivered(result, 1) > 0 and delivered(result, 2) > 0  # both nodes delivered samples
        assert delivered(result, 1) + delivered(result, 2) == counters["inserted"]
    finally:
        algo.stop()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_killed_runner_is_restarted_with_the_current_weights(cluster, small_config, mode):
    for _ in range(2):
        add_worker_node(cluster)
    algo = small_config(runners=2, mode=mode, async_max_steps_per_call=16).build_algo()
    try:
        for _ in range(3):
            algo.train()
        before = runner_info(algo)
        victim, survivor = 1, 2
        os.kill(before[victim]["pid"], signal.SIGKILL)

        # Training goes on with the survivor while Ray restarts the victim's process.
        result = train_until(algo, lambda r: r["dsrl"].get("healthy_env_runners") == 1, timeout_s=20)
        survivor_steps, victim_steps = delivered(result, survivor), delivered(result, victim)
        result = train_until(algo, lambda r: r["dsrl"].get("env_runners_restored_lifetime", 0) >= 1, timeout_s=45)
        assert result["dsrl"]["healthy_env_runners"] == 2
        assert delivered(result, survivor) > survivor_steps

        restored = runner_info(algo)[victim]
        assert restored["pid"] != before[victim]["pid"] and restored["node"] == before[victim]["node"]
        assert restored["version"] > before[victim]["version"]  # adopted the learner's version, not 0
        # The new process samples, pulling weights from the state server like the others.
        result = train_until(algo, lambda r: delivered(r, victim) > victim_steps, timeout_s=20)
        if mode == "sync":
            result = algo.train()
            after = runner_info(algo)
            assert after[victim]["version"] == after[survivor]["version"]
            for key, value in after[survivor]["pi"].items():
                np.testing.assert_array_equal(after[victim]["pi"][key], value, err_msg=key)
            assert result["dsrl"]["runner_version_lag"]["runner_1"] == result["dsrl"]["runner_version_lag"]["runner_2"]
        # A sample in flight on the killed runner is lost; everything delivered is in the replay.
        _assert_learner_intact(algo, result)
    finally:
        algo.stop()


def test_a_lost_node_costs_only_its_runner_and_a_checkpoint_after_recovery_restores(cluster, small_config, tmp_path):
    nodes = [add_worker_node(cluster) for _ in range(2)]
    algo = small_config(runners=2).build_algo()
    checkpoint = None
    try:
        for _ in range(3):
            algo.train()
        runners = runner_info(algo)
        (victim,) = [i for i, r in runners.items() if r["node"] == nodes[0].node_id]
        (survivor,) = [i for i in runners if i != victim]
        counters = learner_counters(algo)

        cluster.remove_node(nodes[0], allow_graceful=False)  # processes killed, as in a crash
        # Its runner cannot come back (no free CPU anywhere): training must neither stop nor stall.
        result = train_until(algo, lambda r: r["dsrl"].get("healthy_env_runners") == 1, timeout_s=30)
        started = time.monotonic()
        for _ in range(3):
            result = algo.train()
        assert time.monotonic() - started < 15, "training stalled on the lost runner"
        assert result["dsrl"]["healthy_env_runners"] == 1
        later = _assert_learner_intact(algo, result)
        assert later["replay"] > counters["replay"] and later["version"] > counters["version"]
        assert set(runner_info(algo)) == {survivor}

        # A replacement node joins: Ray restarts the runner there and it rejoins with current weights.
        replacement = add_worker_node(cluster)
        result = train_until(algo, lambda r: r["dsrl"].get("env_runners_restored_lifetime", 0) >= 1, timeout_s=45)
        restored = runner_info(algo)[victim]
        assert restored["node"] == replacement.node_id
        assert restored["version"] >= later["version"]
        result = algo.train()
        _assert_learner_intact(algo, result)

        checkpoint = algo.save_to_path(str(tmp_path / "checkpoint"))
        saved = learner_counters(algo)
        saved_pi = on_learner(
            algo, lambda lrn: {k: v.detach().cpu().numpy() for k, v in lrn.dsrl_module.pi.state_dict().items()}
        )
    finally:
        algo.stop()

    restored_algo = DSRL.from_checkpoint(checkpoint)
    try:
        counters = learner_counters(restored_algo)
        assert (counters["inserted"], counters["updates"], counters["version"]) == (
            saved["inserted"], saved["updates"], saved["version"]
        )
        for runner in runner_info(restored_algo).values():
            for key, value in saved_pi.items():
                np.testing.assert_array_equal(runner["pi"][key], value, err_msg=key)
        result = restored_algo.train()
        assert learner_counters(restored_algo)["inserted"] > saved["inserted"]
        assert result["num_env_steps_sampled_lifetime"] == learner_counters(restored_algo)["inserted"]
    finally:
        restored_algo.stop()
