import numpy as np
import pytest
import torch

from dsrl_ray.policies.schedule import alphas_cumprod, cosine_betas, ddim_timesteps, make_ddim_schedule

from .numpy_reference import alpha_bar


def test_ddim_timesteps_leading_spacing():
    assert ddim_timesteps(20, 8) == [14, 12, 10, 8, 6, 4, 2, 0]
    assert ddim_timesteps(20, 5) == [16, 12, 8, 4, 0]
    assert ddim_timesteps(100, 8) == [84, 72, 60, 48, 36, 24, 12, 0]
    assert ddim_timesteps(100, 100) == list(range(99, -1, -1))


@pytest.mark.parametrize("k", [0, 21])
def test_ddim_timesteps_rejects_bad_k(k):
    with pytest.raises(ValueError, match=f"ddim_steps={k} with denoising_steps=20"):
        ddim_timesteps(20, k)


@pytest.mark.parametrize("steps", [20, 100])
def test_cosine_schedule_matches_closed_form(steps):
    betas = cosine_betas(steps)
    assert betas.dtype == torch.float32 and betas.shape == (steps,)
    assert betas[-1].item() == pytest.approx(0.999, abs=1e-7)
    assert float(betas.min()) > 0
    abar = alphas_cumprod(betas)
    assert abar.dtype == torch.float32
    np.testing.assert_allclose(abar.numpy(), alpha_bar(steps), rtol=2e-6, atol=1e-9)


def test_alpha_bar_is_float32_cumprod_of_float32_betas():
    # torch's CPU cumprod accumulates in double and rounds each entry; a strictly sequential
    # float32 product (as on CUDA) differs by at most an ulp or so.
    betas = cosine_betas(20)
    alphas = (1.0 - betas).numpy()
    ours = alphas_cumprod(betas).numpy()
    np.testing.assert_array_equal(ours, np.cumprod(alphas.astype(np.float64)).astype(np.float32))
    np.testing.assert_allclose(ours, np.cumprod(alphas, dtype=np.float32), rtol=3e-7, atol=0)


def test_known_values_t20():
    abar = alphas_cumprod(cosine_betas(20)).numpy()
    f = lambda u: np.cos((u + 0.008) / 1.008 * np.pi / 2) ** 2  # noqa: E731
    assert abar[0] == pytest.approx(f(1 / 20) / f(0), rel=1e-6)
    assert abar[14] == pytest.approx(f(15 / 20) / f(0), rel=1e-5)


def test_ddim_schedule_prev_alphas():
    sched = make_ddim_schedule(20, 8)
    abar = alphas_cumprod(cosine_betas(20))
    assert sched.timesteps == (14, 12, 10, 8, 6, 4, 2, 0)
    assert torch.equal(sched.alphas, abar[list(sched.timesteps)])
    assert torch.equal(sched.alphas_prev[:-1], sched.alphas[1:])
    assert sched.alphas_prev[-1].item() == 1.0
    assert torch.equal(sched.sqrt_one_minus_alphas, (1.0 - sched.alphas) ** 0.5)
