"""Shared noise end to end: the replay holds act_dim latent noise and chunks that are pi_dp of it broadcast."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dsrl_ray.policies import load_policy
from dsrl_ray.rllib import runner_sync as sync
from dsrl_ray.rllib.module import PAIR_EXECUTED, PAIR_NOISE

CHUNK_LEN, ACT_DIM = 4, 2  # TwoGoal


def _replay_rows(algo) -> dict[str, np.ndarray]:
    """Copies of the (single) learner's filled replay rows."""
    group = algo.learner_group
    (rows,) = sync.learner_results(
        group, group.foreach_learner(lambda lrn: {k: np.array(v) for k, v in lrn.replay.storage().items()})
    )
    return rows


def _pi_dp_of_broadcast(policy, obs: np.ndarray, latent: np.ndarray) -> np.ndarray:
    """``pi_dp(s, w repeated at every chunk step)`` flattened, ``(N, chunk_len * act_dim)``; written without Steering."""
    noise = np.repeat(latent[:, None, :], CHUNK_LEN, axis=1)
    with torch.no_grad():
        return policy.sample(torch.as_tensor(obs), torch.as_tensor(noise)).reshape(len(obs), -1).numpy()


@pytest.mark.parametrize("policy_type, variant", [("flow", "na"), ("diffusion", "sac")])
def test_shared_replay_rows_are_pi_dp_of_the_broadcast_noise(ray_local, twogoal_config, request, policy_type,
                                                             variant):
    fixture = "twogoal_flow_policy_path" if policy_type == "flow" else "twogoal_policy_path"
    path = request.getfixturevalue(fixture)
    algo = twogoal_config(runners=1, variant=variant, noise_mode="shared", base_policy_path=str(path),
                          replay_capacity=1000, check_executed=True).build_algo()
    try:
        for _ in range(2):  # warm-up (w ~ N(0, I) in the latent space), then the noise policy
            result = algo.train()
        rows = _replay_rows(algo)
    finally:
        algo.stop()
    assert result["learners"]["default_policy"]["executed_max_abs_err"] < 1e-5
    policy = load_policy(path).eval()
    n = len(rows["obs"])
    assert n >= 40 and rows["noise"].shape == (n, ACT_DIM) and rows["executed"].shape == (n, CHUNK_LEN * ACT_DIM)
    assert np.abs(rows["executed"] - _pi_dp_of_broadcast(policy, rows["obs"], rows["noise"])).max() < 1e-5
    if variant == "na":  # the runners' aliasing pairs: latent draws, their chunks denoised from the broadcast
        k = rows[PAIR_NOISE].shape[1]
        assert rows[PAIR_NOISE].shape == (n, k, ACT_DIM) and rows[PAIR_EXECUTED].shape == (n, k, CHUNK_LEN * ACT_DIM)
        for j in range(k):
            expected = _pi_dp_of_broadcast(policy, rows["obs"], rows[PAIR_NOISE][:, j])
            assert np.abs(rows[PAIR_EXECUTED][:, j] - expected).max() < 1e-5
