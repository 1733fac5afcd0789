"""Demo datasets: robomimic layout, round trips through our loader and robomimic's, bad input."""

import hashlib
import json
import os

import h5py
import numpy as np
import pytest

from dsrl_ray.envs import DemoDatasetError, EpisodeRecord, collect_demos, load_demos, twogoal, write_demos

_KEYS = ("agent_pos", "goal_cue")
_ENV_ARGS = {"env_name": "TwoGoal", "type": 2, "env_kwargs": {}}


def _records(lengths, seed=0):
    rng = np.random.default_rng(seed)
    records = []
    for length in lengths:
        obs = {"agent_pos": rng.normal(size=(length, 2)), "goal_cue": rng.normal(size=(length, 2))}
        next_obs = {k: v + 1.0 for k, v in obs.items()}
        dones = np.zeros(length, np.int64)
        dones[-1] = 1
        actions, rewards = rng.uniform(-1, 1, (length, 2)), rng.integers(0, 2, length).astype(float)
        records.append(EpisodeRecord(obs, next_obs, actions, rewards, dones))
    return records


def test_layout_is_robomimics(tmp_path):
    path = tmp_path / "demos.hdf5"
    write_demos(path, _records([3, 5]), _ENV_ARGS, _KEYS)
    with h5py.File(path, "r") as f:
        assert f["data"].attrs["total"] == 8
        assert json.loads(f["data"].attrs["env_args"]) == _ENV_ARGS
        assert [n.decode() for n in f["mask/train"][()]] == ["demo_0", "demo_1"]
        demo = f["data/demo_1"]
        assert demo.attrs["num_samples"] == 5
        assert demo["obs/agent_pos"].shape == (5, 2) and demo["next_obs/goal_cue"].shape == (5, 2)
        assert demo["actions"].dtype == np.float64 and demo["rewards"].shape == (5,)
        assert demo["dones"].dtype == np.int64 and list(demo["dones"][()]) == [0, 0, 0, 0, 1]


def test_round_trip_through_our_loader(tmp_path):
    path = tmp_path / "demos.hdf5"
    records = _records([4, 2, 6])
    write_demos(path, records, _ENV_ARGS, _KEYS)
    dataset = load_demos(path)
    assert dataset.obs_keys == _KEYS  # from env_args' env_name, TwoGoal
    assert dataset.env_args == _ENV_ARGS and dataset.num_transitions == 12
    assert dataset.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    for episode, record in zip(dataset.episodes, records, strict=True):
        np.testing.assert_array_equal(episode.obs, np.concatenate([record.obs[k] for k in _KEYS], 1).astype(np.float32))
        np.testing.assert_array_equal(
            episode.next_obs, np.concatenate([record.next_obs[k] for k in _KEYS], 1).astype(np.float32)
        )
        np.testing.assert_array_equal(episode.actions, record.actions.astype(np.float32))
        np.testing.assert_array_equal(episode.rewards, record.rewards.astype(np.float32))
        np.testing.assert_array_equal(episode.dones, record.dones.astype(bool))
    assert dataset.all_obs().shape == (12, 4) and dataset.all_actions().shape == (12, 2)
    reordered = load_demos(path, obs_keys=("goal_cue", "agent_pos"))
    np.testing.assert_array_equal(reordered.episodes[0].obs[:, :2], dataset.episodes[0].obs[:, 2:])


def test_robomimic_reads_the_same_arrays(tmp_path, assert_same_as_robomimic):
    path = tmp_path / "demos.hdf5"
    write_demos(path, _records([3, 7, 1]), _ENV_ARGS, _KEYS)
    assert_same_as_robomimic(path)


def test_collect_twogoal_successes_only(tmp_path, assert_same_as_robomimic):
    path = tmp_path / "twogoal.hdf5"
    summary = collect_demos("twogoal", 6, sigma=0.1, seed=0, out_path=path, progress=False)
    assert summary.n_demos == 6 and summary.n_successes == 6 and summary.n_attempts >= 6
    assert summary.success_rate == 6 / summary.n_attempts
    dataset = load_demos(path)
    assert dataset.env_args["env_name"] == "TwoGoal" and dataset.sha256 == summary.sha256
    for episode in dataset.episodes:
        assert episode.rewards[-1] == 1.0 and episode.rewards[:-1].sum() == 0.0  # no per-step offset
        assert episode.dones[-1] and not episode.dones[:-1].any()
        np.testing.assert_array_equal(episode.obs[1:], episode.next_obs[:-1])
    assert summary.mean_length == np.mean([len(ep) for ep in dataset.episodes])
    assert_same_as_robomimic(path)


def test_collect_is_reproducible_and_keeps_failures_on_request(tmp_path):
    a = collect_demos("twogoal", 8, sigma=0.2, seed=4, out_path=tmp_path / "a.hdf5", keep_failures=True, progress=False)
    b = collect_demos("twogoal", 8, sigma=0.2, seed=4, out_path=tmp_path / "b.hdf5", keep_failures=True, progress=False)
    assert a.sha256 == b.sha256 and a.n_attempts == 8
    episodes = load_demos(tmp_path / "a.hdf5").episodes
    # A demo ends where the demonstrator's chosen goal is reached, rewarded or not.
    wrong_goal_ends = 0
    for episode in episodes:
        final = episode.next_obs[-1]
        distances = np.linalg.norm(twogoal.GOALS - final[:2], axis=1)
        assert distances.min() <= twogoal.GOAL_RADIUS and len(episode) < 50 and episode.dones[-1]
        wrong_goal_ends += int(distances[int(np.argmax(final[2:]))] > twogoal.GOAL_RADIUS)
    assert wrong_goal_ends == 8 - a.n_successes > 0


def test_collect_gives_up_after_max_attempts_without_writing(tmp_path):
    path = tmp_path / "none.hdf5"
    with pytest.raises(RuntimeError, match=r"collected only \d of 20 twogoal demos in 3 attempts"):
        collect_demos("twogoal", 20, sigma=0.0, seed=0, out_path=path, max_attempts=3, progress=False)
    assert not path.exists()


def test_collect_needs_a_demonstrator(tmp_path):
    with pytest.raises(ValueError, match=r"'transport' has no demonstrator; tasks with one: \[.*'hopper'"):
        collect_demos("transport", 1, sigma=0.0, seed=0, out_path=tmp_path / "x.hdf5", progress=False)


def test_filter_key(tmp_path):
    path = tmp_path / "demos.hdf5"
    write_demos(path, _records([2, 3]), _ENV_ARGS, _KEYS)
    with h5py.File(path, "a") as f:
        f.create_dataset("mask/valid", data=np.array(["demo_1"], dtype="S"))
    assert [len(ep) for ep in load_demos(path, filter_key="valid").episodes] == [3]
    with pytest.raises(DemoDatasetError, match=r"no filter key 'test'; available: \['train', 'valid'\]"):
        load_demos(path, filter_key="test")


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.hdf5: no such file"):
        load_demos(tmp_path / "nope.hdf5")


def test_corrupt_file(tmp_path):
    path = tmp_path / "corrupt.hdf5"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(ValueError, match=r"corrupt\.hdf5: not a readable HDF5 file"):
        load_demos(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "demos.hdf5"
    write_demos(path, _records([40, 40]), _ENV_ARGS, _KEYS)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"demos\.hdf5: "):
        load_demos(path)


def test_empty_hdf5(tmp_path):
    path = tmp_path / "empty.hdf5"
    h5py.File(path, "w").close()
    with pytest.raises(ValueError, match=r"empty\.hdf5: no 'data' group"):
        load_demos(path)


def test_zero_demos(tmp_path):
    path = tmp_path / "zero.hdf5"
    with h5py.File(path, "w") as f:
        f.create_group("data")
    with pytest.raises(ValueError, match=r"zero\.hdf5: 'data' holds no demos"):
        load_demos(path)


def test_missing_key_names_it_and_lists_available(tmp_path):
    path = tmp_path / "demos.hdf5"
    write_demos(path, _records([2]), _ENV_ARGS, _KEYS)
    message = r"data/demo_0: obs lacks key 'object'; available keys: \['agent_pos', 'goal_cue'\]"
    with pytest.raises(ValueError, match=message):
        load_demos(path, obs_keys=("agent_pos", "object"))


def test_ragged_lengths(tmp_path):
    path = tmp_path / "demos.hdf5"
    write_demos(path, _records([4]), _ENV_ARGS, _KEYS)
    with h5py.File(path, "a") as f:
        del f["data/demo_0/actions"]
        f["data/demo_0/actions"] = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"demos\.hdf5: data/demo_0: ragged lengths .*'actions': 3"):
        load_demos(path)


def test_bad_env_args(tmp_path):
    path = tmp_path / "demos.hdf5"
    write_demos(path, _records([2]), _ENV_ARGS, _KEYS)
    with h5py.File(path, "a") as f:
        f["data"].attrs["env_args"] = "{not json"
    with pytest.raises(ValueError, match=r"env_args'\] is not valid JSON"):
        load_demos(path)


def test_unknown_env_name_uses_sorted_file_keys(tmp_path):
    path = tmp_path / "demos.hdf5"
    write_demos(path, _records([2]), {"env_name": "Elsewhere", "type": 2, "env_kwargs": {}}, ("goal_cue", "agent_pos"))
    assert load_demos(path).obs_keys == ("agent_pos", "goal_cue")


def test_failed_write_leaves_no_file(tmp_path):
    path = tmp_path / "demos.hdf5"
    bad = _records([3, 3])
    bad[1].actions = np.array([[object(), object()]] * 3, dtype=object)  # h5py cannot store this
    with pytest.raises(TypeError):
        write_demos(path, bad, _ENV_ARGS, _KEYS)
    assert list(tmp_path.iterdir()) == []
    write_demos(path, _records([2]), _ENV_ARGS, _KEYS)
    before = path.read_bytes()
    with pytest.raises(TypeError):
        write_demos(path, bad, _ENV_ARGS, _KEYS)
    assert list(tmp_path.iterdir()) == [path] and path.read_bytes() == before


def test_write_validates_records(tmp_path):
    records = _records([3])
    with pytest.raises(ValueError, match=r"episode 0 obs lacks key 'object'; it has \['agent_pos', 'goal_cue'\]"):
        write_demos(tmp_path / "x.hdf5", records, _ENV_ARGS, ("agent_pos", "object"))
    records[0].rewards = np.zeros(2)
    with pytest.raises(ValueError, match=r"episode 0 rewards has 2 rows; expected 3"):
        write_demos(tmp_path / "x.hdf5", records, _ENV_ARGS, _KEYS)
    with pytest.raises(ValueError, match="no episodes to write"):
        write_demos(tmp_path / "x.hdf5", [], _ENV_ARGS, _KEYS)
    assert list(tmp_path.iterdir()) == []
