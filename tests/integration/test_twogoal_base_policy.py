"""End to end without Ray: scripted demos -> BC pretraining -> evaluation, on the small CI task."""

import json

import numpy as np
import pytest
import torch

from dsrl_ray.app.cli import main
from dsrl_ray.envs import load_demos, twogoal
from dsrl_ray.eval import evaluate_policy
from dsrl_ray.policies import load_policy
from dsrl_ray.app.pretrain import pretrain_from_dataset
from dsrl_ray.policies.checkpoint import resolve_policy_path


@pytest.fixture(scope="module")
def base_policy_dir(twogoal_run):
    return twogoal_run


def test_demos_cover_both_goals_regardless_of_cue(base_policy_dir):
    dataset = load_demos(base_policy_dir / "demos.hdf5")
    assert len(dataset.episodes) == 100
    reached_cued = [
        np.linalg.norm(ep.next_obs[-1, :2] - twogoal.GOALS[int(np.argmax(ep.obs[0, 2:]))]) <= twogoal.GOAL_RADIUS
        for ep in dataset.episodes
    ]
    assert 0.35 <= np.mean(reached_cued) <= 0.65


def test_pretraining_lowers_the_loss(base_policy_dir):
    result = pretrain_from_dataset(base_policy_dir / "demos.hdf5", base_policy_dir / "base_policy", progress=False)
    assert result.resumed_from == 5000  # already trained by the fixture: resumes, does no more steps
    history = [loss for _, loss in result.loss_history]
    assert history[-1] < 0.5 * history[0]


def test_base_policy_is_bimodal_and_imperfect(base_policy_dir, tmp_path):
    out = tmp_path / "eval.json"
    main(["eval", "--policy", str(base_policy_dir / "base_policy"), "--episodes", "200", "--json", str(out)])
    result = json.loads(out.read_text())
    # Demos go to either goal whatever the cue, so w ~ N(0, I) picks the rewarded one about half the time.
    assert 0.3 <= result["success_rate"] <= 0.7
    policy = load_policy(resolve_policy_path(base_policy_dir / "base_policy"))
    # Noise chosen by the cue succeeds nearly always: the room DSRL exploits. From 64 candidate
    # noises, take the one whose first chunk heads furthest left (goal 0) and furthest right (goal 1).
    candidates = torch.randn(64, *policy.noise_shape, generator=torch.Generator().manual_seed(0))
    start = policy.normalizer.normalize_obs(torch.tensor([[0.0, -0.2, 1.0, 0.0]])).repeat(64, 1)
    dx = policy.sample(start, candidates)[:, :, 0].sum(dim=1)
    left, right = candidates[dx.argmin()].numpy(), candidates[dx.argmax()].numpy()

    def cue_noise(obs: np.ndarray, rngs) -> np.ndarray:
        return np.where((obs[:, 2] > obs[:, 3])[:, None, None], left, right)

    steered = evaluate_policy("twogoal", policy, 100, seed=7, noise_fn=cue_noise, progress=False)
    assert steered.success_rate >= 0.9
