"""Base-policy sources: checkpoint digests, and user factories ('package.module:function') with interface checks."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch

from dsrl_ray.policies.spec import (
    BasePolicyFactoryError,
    BasePolicyInterfaceError,
    BasePolicyMismatchError,
    BasePolicySpec,
    check_digest,
    load_base_policy,
    spec_digest,
)

USER_MODULE = '''
import torch
from dsrl_ray.policies import Normalizer


class MyPolicy(torch.nn.Module):
    def __init__(self, obs_dim, act_dim, chunk_len):
        super().__init__()
        self.obs_dim, self.act_dim, self.chunk_len = obs_dim, act_dim, chunk_len
        self.noise_shape = (chunk_len, act_dim)
        self.normalizer = Normalizer.identity(obs_dim, act_dim)
        self.net = torch.nn.Linear(obs_dim, chunk_len * act_dim)

    def sample(self, obs, noise):
        return torch.tanh(self.net(obs).view(-1, self.chunk_len, self.act_dim) + noise)


def make_policy(obs_dim=4, act_dim=2, chunk_len=4, weights=None):
    torch.manual_seed(0)
    policy = MyPolicy(obs_dim, act_dim, chunk_len)
    if weights is not None:
        policy.load_state_dict(torch.load(weights))
    return policy


class NoSample:
    obs_dim, act_dim, chunk_len, noise_shape = 4, 2, 4, (4, 2)
    normalizer = Normalizer.identity(4, 2)


def make_without_sample():
    return NoSample()


def make_wrong_noise_shape():
    policy = make_policy()
    policy.noise_shape = (2, 4)
    return policy
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A user's module ``my_policies`` on ``sys.path`` (removed again afterwards)."""
    path = tmp_path / "my_policies.py"
    path.write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield path
    sys.modules.pop("my_policies", None)


def test_factory_policy_loads_and_acts(user_module):
    spec = BasePolicySpec(factory="my_policies:make_policy", factory_kwargs={"obs_dim": 4})
    policy = load_base_policy(spec)
    assert not policy.training and not any(p.requires_grad for p in policy.parameters())
    chunk = policy.sample(torch.zeros(3, 4), torch.zeros(3, 4, 2))
    assert chunk.shape == (3, 4, 2)
    assert load_base_policy(spec) is policy  # cached per process


def test_factory_digest_covers_source_and_named_files(user_module, tmp_path):
    weights = tmp_path / "weights.pt"
    torch.save(__import__("my_policies").make_policy().state_dict(), weights)
    spec = BasePolicySpec(factory="my_policies:make_policy", factory_kwargs={"weights": str(weights)})
    digest = spec_digest(spec)
    assert check_digest(BasePolicySpec(**{**spec.to_dict(), "sha256": digest})) == digest
    weights.write_bytes(weights.read_bytes() + b"\0")
    with pytest.raises(BasePolicyMismatchError, match="weights.pt"):
        check_digest(BasePolicySpec(**{**spec.to_dict(), "sha256": digest}))
    assert spec_digest(BasePolicySpec(factory="my_policies:make_policy", factory_kwargs={"obs_dim": 5})) != digest


def test_factory_without_sample_is_refused_by_name(user_module):
    with pytest.raises(BasePolicyInterfaceError, match=r"no method 'sample'.*\(B, 4, 2\)"):
        load_base_policy(BasePolicySpec(factory="my_policies:make_without_sample"))


def test_factory_with_wrong_noise_shape_is_refused(user_module):
    with pytest.raises(BasePolicyInterfaceError, match=r"noise_shape=\(2, 4\); expected .* \(4, 2\)"):
        load_base_policy(BasePolicySpec(factory="my_policies:make_wrong_noise_shape"))


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        ("my_policies.make_policy", "expected 'package.module:function'"),
        ("no_such_module_xyz:make", "cannot import module 'no_such_module_xyz'"),
        ("my_policies:nothing_here", "has no function 'nothing_here'"),
    ],
)
def test_bad_factory_names_are_explained(user_module, factory, message):
    with pytest.raises(BasePolicyFactoryError, match=message):
        load_base_policy(BasePolicySpec(factory=factory))


def test_factory_keywords_are_checked_against_its_signature(user_module):
    with pytest.raises(BasePolicyFactoryError, match=r"cannot take .*'depth'.*make_policy\(obs_dim=4"):
        load_base_policy(BasePolicySpec(factory="my_policies:make_policy", factory_kwargs={"depth": 3}))


def test_spec_needs_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        BasePolicySpec()
    with pytest.raises(ValueError, match="exactly one"):
        BasePolicySpec(path="a.pt", factory="m:f")
    spec = BasePolicySpec(factory="m:f", factory_kwargs={"a": 1})
    assert BasePolicySpec.from_dict(spec.to_dict()) == spec
