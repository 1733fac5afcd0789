import numpy as np
import pytest
import torch

from dsrl_ray.policies import Normalizer


def test_npz_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    norm = Normalizer.from_data(rng.normal(size=(50, 5)), rng.normal(size=(50, 3)))
    path = tmp_path / "normalization.npz"
    norm.to_npz(path)
    with np.load(path) as data:
        assert sorted(data.files) == ["action_max", "action_min", "obs_max", "obs_min"]
    back = Normalizer.from_npz(path)
    for k, v in norm.to_dict().items():
        np.testing.assert_array_equal(getattr(back, k), v)
    assert [p.name for p in tmp_path.iterdir()] == ["normalization.npz"]


def test_formulas():
    norm = Normalizer(np.array([0.0, -2.0]), np.array([4.0, 2.0]), np.array([-1.0]), np.array([3.0]))
    obs = np.array([[2.0, 2.0]])
    np.testing.assert_allclose(norm.normalize_obs(obs), 2 * ((obs - [0, -2]) / (np.array([4, 4]) + 1e-6) - 0.5))
    a = torch.tensor([[-1.0], [1.0]])
    torch.testing.assert_close(norm.unnormalize_action(a), torch.tensor([[-1.0], [3.0]]))
    np.testing.assert_allclose(norm.normalize_action(norm.unnormalize_action(np.array([[0.3]]))), [[0.3]], atol=1e-6)


def test_missing_npz_key(tmp_path):
    path = tmp_path / "n.npz"
    np.savez(path, obs_min=np.zeros(2), obs_max=np.ones(2), action_min=np.zeros(1))
    with pytest.raises(KeyError, match="action_max"):
        Normalizer.from_npz(path)
