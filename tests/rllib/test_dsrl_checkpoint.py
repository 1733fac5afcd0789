"""Checkpoints of DSRL: everything the learner needs comes back bit-exact, runners act with it at once."""

from __future__ import annotations

import shutil
from collections.abc import Mapping

import numpy as np
import pytest
import torch

from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME

from dsrl_ray.rllib import DSRL
from dsrl_ray.policies.spec import BasePolicyMismatchError
from dsrl_ray.rllib.learner import DSRL_STATE, REPLAY_STATE
from dsrl_ray.rllib.module import NoiseModeMismatchError
from dsrl_ray.rllib.noise_policy import load_noise_policy


ENV_STEPS = (ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME)


def _flatten(tree, prefix: str = "") -> dict[str, object]:
    """Nested dicts/lists -> ``{"a/b/0": leaf}``."""
    if isinstance(tree, Mapping):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return {prefix: tree}
    out: dict[str, object] = {}
    for key, value in items:
        out.update(_flatten(value, f"{prefix}/{key}" if prefix else str(key)))
    return out


def _as_array(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _assert_trees_equal(expected, actual) -> None:
    flat_e, flat_a = _flatten(expected), _flatten(actual)
    assert flat_e.keys() == flat_a.keys()
    for key in flat_e:
        np.testing.assert_array_equal(_as_array(flat_a[key]), _as_array(flat_e[key]), err_msg=key)


def _learner_state(algo) -> dict:
    return algo.learner_group.get_state()["learner"]


def _runner_pi_weights(algo) -> list[dict[str, np.ndarray]]:
    def pi_weights(er):
        return {k: v.detach().cpu().numpy() for k, v in er.module.pi.state_dict().items()}

    return algo.env_runner_group.foreach_env_runner(pi_weights, local_env_runner=False)


@pytest.mark.parametrize("noise_mode", ["full", "shared"])
def test_checkpoint_round_trip_is_bit_exact(ray_local, twogoal_config, tmp_path, noise_mode):
    config = twogoal_config(runners=1, variant="na", utd=2, q_w_utd=1, store_buffer_in_checkpoints=True,
                            noise_mode=noise_mode)
    algo = config.build_algo()
    try:
        for _ in range(4):
            algo.train()
        checkpoint = algo.save_to_path(str(tmp_path / "checkpoint"))
        before = _learner_state(algo)
        env_steps = algo.metrics.peek(ENV_STEPS)
        iteration = algo.iteration
    finally:
        algo.stop()

    restored = DSRL.from_checkpoint(checkpoint)
    try:
        after = _learner_state(restored)
        # Weights (actor, critics, target critics), every optimiser incl. alpha's Adam.
        _assert_trees_equal(before["rl_module"], after["rl_module"])
        _assert_trees_equal(before["optimizer"], after["optimizer"])
        # log-alpha (not in RLlib's own learner state), limiter counters, RNG states, the replay.
        _assert_trees_equal(before[DSRL_STATE], after[DSRL_STATE])
        _assert_trees_equal(before[REPLAY_STATE], after[REPLAY_STATE])  # incl. the runners' aliasing pairs
        pairs = after[REPLAY_STATE]["data"]["pair_executed"]
        assert pairs.shape[1:] == (4, 8) and np.isfinite(pairs).all() and np.abs(pairs).max() > 0
        latent = 8 if noise_mode == "full" else 2  # TwoGoal: chunks of 4 steps x 2 action dimensions
        assert after[REPLAY_STATE]["data"]["noise"].shape[1:] == (latent,)
        assert after[REPLAY_STATE]["data"]["pair_noise"].shape[1:] == (4, latent)
        assert restored.config.noise_mode == noise_mode
        assert after[DSRL_STATE]["limiter"]["num_updates"] > 0
        assert after[DSRL_STATE]["q_w_limiter"]["num_updates"] > 0
        assert float(after[DSRL_STATE]["log_alpha"]["default_policy"][0]) != 0.0  # trained, not reset to log(1)
        assert restored.iteration == iteration
        assert env_steps > 0 and restored.metrics.peek(ENV_STEPS) == env_steps
        # The runner already holds the restored actor before its first sample.
        learner_pi = {k[len("pi."):]: v for k, v in after["rl_module"]["default_policy"].items() if k.startswith("pi.")}
        for runner_pi in _runner_pi_weights(restored):
            _assert_trees_equal(learner_pi, runner_pi)
        # And training goes on from there.
        result = restored.train()
        assert result["num_env_steps_sampled_lifetime"] > before[DSRL_STATE]["limiter"]["num_inserted"]
    finally:
        restored.stop()


def test_restore_against_another_base_policy_file_is_refused(ray_local, twogoal_config, twogoal_policy_path, tmp_path):
    policy_copy = tmp_path / "base_policy.pt"
    shutil.copy(twogoal_policy_path, policy_copy)
    algo = twogoal_config(runners=0, base_policy_path=str(policy_copy)).build_algo()
    try:
        algo.train()
        checkpoint = algo.save_to_path(str(tmp_path / "checkpoint"))
    finally:
        algo.stop()
    with open(policy_copy, "ab") as f:  # the file changes under the checkpoint
        f.write(b"\0")
    with pytest.raises(BasePolicyMismatchError, match="base_policy.pt.*sha256"):
        DSRL.from_checkpoint(checkpoint)


def test_a_shared_noise_checkpoint_keeps_its_mode(ray_local, twogoal_config, tmp_path):
    algo = twogoal_config(runners=0, noise_mode="shared").build_algo()
    try:
        for _ in range(2):  # past the warm-up of 20 steps: the noise policy acts
            algo.train()
        checkpoint = algo.save_to_path(str(tmp_path / "checkpoint"))
    finally:
        algo.stop()
    # The steered evaluation of a run directory uses the checkpoint's mode: one act_dim vector per chunk.
    noise_fn = load_noise_policy(checkpoint, explore=True)
    obs = np.zeros((3, 4), np.float32)
    noise = noise_fn(obs, [np.random.default_rng(i) for i in range(3)])
    assert noise.shape == (3, 4, 2) and np.array_equal(noise, np.repeat(noise[:, :1], 4, axis=1))
    # Restoring it into a run with the full noise is refused, naming both modes, before any weight is loaded.
    full = twogoal_config(runners=0).build_algo()
    try:
        with pytest.raises(NoiseModeMismatchError, match="noise_mode='shared'.*noise_mode='full'"):
            full.restore_from_path(checkpoint)
    finally:
        full.stop()
