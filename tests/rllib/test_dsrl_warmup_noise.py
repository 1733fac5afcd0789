"""Warm-up noise in the replay after a short real run on TwoGoal: DSRL-SAC clips it to the noise
bound (as released), DSRL-NA keeps the base policy's N(0, I)."""

from __future__ import annotations

import numpy as np
import pytest

from dsrl_ray.rllib import runner_sync as sync


def _replay_noise(algo) -> np.ndarray:
    group = algo.learner_group
    (noise,) = sync.learner_results(group, group.foreach_learner(lambda lrn: np.array(lrn.replay.storage()["noise"])))
    return noise


@pytest.mark.parametrize("variant", ["sac", "na"])
def test_warm_up_noise_in_the_replay(ray_local, twogoal_config, variant):
    bound = 1.0
    config = twogoal_config(runners=0, envs=4, fragment=10, variant=variant, action_magnitude=bound,
                            init_rollout_steps=10_000)
    algo = config.build_algo()
    try:
        algo.train()
        noise = _replay_noise(algo)
    finally:
        algo.stop()
    assert len(noise) >= 40 and noise.shape[1] == 8  # >= 4 envs x 10 chunk steps, all warm-up; chunk 4 x 2
    if variant == "sac":
        assert float(np.abs(noise).max()) == bound
        assert 0.2 < float(np.mean(np.abs(noise) == bound)) < 0.45  # P(|N(0, 1)| > 1) = 0.317
    else:
        assert float(np.abs(noise).max()) > 2.0
