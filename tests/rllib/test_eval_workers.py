"""Evaluation spread over Ray workers gives exactly the one-process result (real Ray tasks, TwoGoal)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from ray import cloudpickle

from dsrl_ray.eval import evaluate_policy
from dsrl_ray.policies import load_policy
from dsrl_ray.rllib.eval_workers import evaluate_on_workers, evaluation_workers


def half_scale_random_noise(obs: np.ndarray, rngs) -> np.ndarray:
    """A NoiseFn that draws from the episodes' generators: ``0.5 * N(0, I)``, ``(B, 4, 2)``."""
    return np.stack([0.5 * rng.standard_normal((4, 2), dtype=np.float32) for rng in rngs])


cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import this test module


@pytest.mark.parametrize("noise_fn", [None, half_scale_random_noise], ids=["base noise", "noise fn"])
def test_workers_reproduce_the_one_process_evaluation(ray_local, twogoal_policy_path, noise_fn):
    policy = load_policy(twogoal_policy_path)
    here = evaluate_policy("twogoal", policy, 11, seed=5, noise_fn=noise_fn, progress=False)
    spread = evaluate_on_workers("twogoal", policy, 11, seed=5, workers=2, noise_fn=noise_fn, progress=False)
    assert spread == here
    assert [e.seed for e in spread.episodes] == list(range(5, 16))


def test_worker_count_comes_from_ray_or_the_caller(ray_local):
    assert evaluation_workers(None) == 2  # the session's ray.init(num_cpus=2)
    assert evaluation_workers(3) == 3
    with pytest.raises(ValueError, match="evaluation workers=0; expected at least 1"):
        evaluation_workers(0)
