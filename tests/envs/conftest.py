"""Shared fixtures of the env tests."""

import numpy as np
import pytest

from dsrl_ray.envs import load_demos


def _read_with_robomimic(path, keys):
    import robomimic.utils.obs_utils as obs_utils
    from robomimic.utils.dataset import SequenceDataset

    obs_utils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": list(keys)}})
    dataset = SequenceDataset(
        hdf5_path=str(path),
        obs_keys=tuple(keys),
        dataset_keys=("actions", "rewards", "dones"),
        load_next_obs=True,
        hdf5_cache_mode=None,
        filter_by_attribute="train",
    )
    items = [dataset[i] for i in range(len(dataset))]
    return {
        "obs": np.concatenate([np.concatenate([it["obs"][k] for k in keys], -1) for it in items]),
        "next_obs": np.concatenate([np.concatenate([it["next_obs"][k] for k in keys], -1) for it in items]),
        "actions": np.concatenate([it["actions"] for it in items]),
        "rewards": np.concatenate([it["rewards"] for it in items]),
        "dones": np.concatenate([it["dones"] for it in items]),
    }


def _assert_same_as_robomimic(path):
    ours = load_demos(path)
    theirs = _read_with_robomimic(path, ours.obs_keys)
    theirs = {k: v.astype(np.float32) for k, v in theirs.items()}  # ours are float32 by design
    np.testing.assert_array_equal(theirs["obs"], ours.all_obs())
    np.testing.assert_array_equal(theirs["next_obs"], np.concatenate([ep.next_obs for ep in ours.episodes]))
    np.testing.assert_array_equal(theirs["actions"], ours.all_actions())
    np.testing.assert_array_equal(theirs["rewards"], np.concatenate([ep.rewards for ep in ours.episodes]))
    np.testing.assert_array_equal(theirs["dones"], np.concatenate([ep.dones for ep in ours.episodes]))


@pytest.fixture
def assert_same_as_robomimic():
    """A check that robomimic's own SequenceDataset reads the same arrays from a file as ``load_demos``."""
    return _assert_same_as_robomimic
