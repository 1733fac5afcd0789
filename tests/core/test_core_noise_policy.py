"""``act()``: warm-up noise clipped to the noise bound on request (released DSRL-SAC), the policy's noise bounded."""

from __future__ import annotations

import pytest
import torch

from dsrl_ray.core.networks import GaussianActor
from dsrl_ray.core.noise_policy import act


@pytest.fixture
def actor() -> GaussianActor:
    torch.manual_seed(0)
    return GaussianActor(4, 32, (16,))


def test_base_noise_is_clipped_to_the_bound(actor):
    obs = torch.zeros(2000, 4)
    w = act(actor, obs, "base", 1.5, generator=torch.Generator().manual_seed(1), base_noise_bound=1.0)
    assert w.shape == (2000, 32) and float(w.abs().max()) == 1.0
    clipped = float((w.abs() == 1.0).float().mean())
    assert clipped == pytest.approx(0.3173, abs=0.01)  # P(|N(0, 1)| > 1)
    unclipped = act(actor, obs, "base", 1.5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(w, unclipped.clamp(-1.0, 1.0))
    assert float(unclipped.abs().max()) > 3.0  # NA's warm-up keeps N(0, I) as deployed


@pytest.mark.parametrize("how", ["explore", "mode"])
def test_policy_noise_stays_inside_the_magnitude(actor, how):
    w = act(actor, torch.randn(500, 4) * 10, how, 1.5, base_noise_bound=1.5)
    assert float(w.abs().max()) <= 1.5


def test_bad_bound_is_refused(actor):
    with pytest.raises(ValueError, match=r"base_noise_bound=0.0"):
        act(actor, torch.zeros(1, 4), "base", 1.5, base_noise_bound=0.0)
