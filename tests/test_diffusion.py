"""Diffusion core against analytic oracles (exact predictors of Gaussian data)."""
from __future__ import annotations

import math

import pytest
import torch

from gaussian_oracle import gaussian_eps_fn
from translab.diffusion.process import eps_from_x0, q_sample, x0_from_eps
from translab.diffusion.samplers import invert_ddim, sample_ddim, sample_ddpm
from translab.diffusion.schedule import NoiseSchedule, cosine_betas


@pytest.fixture(scope="module")
def sched():
    return NoiseSchedule.make("cosine", 1000)


def test_cosine_schedule_matches_closed_form(sched):
    # Nichol & Dhariwal eq. 17: alpha_bar(t) = f(t)/f(0) with f(t) = cos^2(((t/T + s)/(1+s)) pi/2)
    def f(t):
        return math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2

    for t in (0, 100, 500, 900):
        assert sched.alpha_bar[t].item() == pytest.approx(f(t + 1) / f(0), rel=1e-6)
    assert sched.alpha_bar[999].item() < 1e-6  # the chain's end is (almost) pure noise
    assert (cosine_betas(1000) <= 0.999).all()


def test_timesteps_descending_and_start(sched):
    ts = sched.timesteps(50)
    assert len(ts) == 50 and ts[0] == 980 and ts[-1] == 0
    assert all(a > b for a, b in zip(ts, ts[1:]))
    assert sched.timesteps(10, t_max=500)[0] == 500
    assert len(sched.timesteps(1000)) == 1000
    with pytest.raises(ValueError):
        sched.timesteps(10, t_max=1000)


def test_half_log_snr_is_log_alpha_over_sigma_and_falls(sched):
    """lambda_t = log(alpha_t / sigma_t) (Lu et al. 2022, Sec. 3.1): +inf on clean data, strictly decreasing."""
    lam = [sched.log_snr_half_at(t) for t in range(-1, 1000)]
    assert lam[0] == math.inf
    assert all(a > b for a, b in zip(lam, lam[1:]))
    ab = sched.alpha_bar[500].item()
    assert lam[501] == pytest.approx(math.log(math.sqrt(ab) / math.sqrt(1 - ab)), rel=1e-12)
    assert sched.log_snr_half_at(0) == pytest.approx(5.05, abs=0.01)  # sigma ~ 0.006: almost clean


def test_eps_x0_conversions_invert_each_other(sched):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 3, 8, 8, generator=g)
    eps = torch.randn(4, 3, 8, 8, generator=g)
    t = torch.tensor([0, 10, 500, 990])
    xt = q_sample(sched, x0, t, eps)
    torch.testing.assert_close(x0_from_eps(sched, xt, t, eps), x0, atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(eps_from_x0(sched, xt, t, x0), eps, atol=1e-4, rtol=1e-4)


def test_ddim_encode_decode_error_shrinks_with_steps(sched):
    """Exact predictor of N(0.3, 0.5^2): DDIM encode -> decode returns the input, better with more steps."""
    eps_fn = gaussian_eps_fn(sched, 0.3, 0.5)
    g = torch.Generator().manual_seed(1)
    x0 = (0.3 + 0.5 * torch.randn(64, 1, 4, 4, generator=g)).double()
    errors = []
    for n in (10, 50, 200):
        ts = sched.timesteps(n)
        z = invert_ddim(eps_fn, sched, x0, ts)
        errors.append((sample_ddim(eps_fn, sched, z, ts) - x0).abs().max().item())
    assert errors[0] > errors[1] > errors[2], errors
    assert errors[2] < 0.05, errors  # first-order solver: 0.52, 0.12, 0.03 measured
    # the latent is (close to) standard normal: std of the encoded data ~ 1
    z = invert_ddim(eps_fn, sched, x0, sched.timesteps(200))
    assert 0.8 < z.std().item() < 1.2


def test_ddib_between_1d_gaussians_is_the_monotone_ot_map(sched):
    """Encode with the model of N(m1, s1^2), decode with that of N(m2, s2^2): x -> m2 + (s2/s1)(x - m1)."""
    m1, s1, m2, s2 = -1.0, 0.4, 2.0, 1.5
    enc, dec = gaussian_eps_fn(sched, m1, s1), gaussian_eps_fn(sched, m2, s2)
    x = torch.linspace(m1 - 2 * s1, m1 + 2 * s1, 41, dtype=torch.float64).view(-1, 1, 1, 1)
    expected = m2 + (s2 / s1) * (x - m1)
    errs = {}
    for n in (200, 1000):
        ts = sched.timesteps(n)
        y = sample_ddim(dec, sched, invert_ddim(enc, sched, x, ts), ts)
        errs[n] = (y - expected).abs().max().item()
        assert (y.flatten().diff() > 0).all()  # monotone
    # outputs span about [-1, 5]; measured 0.074 at 200 steps and 0.009 at 1000 (first-order ODE solver)
    assert errs[200] < 0.1 and errs[1000] < 0.02, errs


def test_ancestral_ddpm_reproduces_mean_and_std(sched):
    m, s = 0.5, 0.3
    eps_fn = gaussian_eps_fn(sched, m, s)
    g = torch.Generator().manual_seed(2)
    x_T = torch.randn(20000, 1, 1, 1, generator=g, dtype=torch.float64)
    x0 = sample_ddpm(eps_fn, sched, x_T, sched.timesteps(100, t_max=999), generator=g)
    assert x0.mean().item() == pytest.approx(m, abs=0.02)
    assert x0.std().item() == pytest.approx(s, abs=0.02)


def test_ddim_with_eta_one_is_stochastic_and_seeded(sched):
    eps_fn = gaussian_eps_fn(sched, 0.0, 1.0)
    x = torch.randn(8, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    ts = sched.timesteps(20)
    a = sample_ddim(eps_fn, sched, x, ts, eta=1.0, generator=torch.Generator().manual_seed(5))
    b = sample_ddim(eps_fn, sched, x, ts, eta=1.0, generator=torch.Generator().manual_seed(5))
    c = sample_ddim(eps_fn, sched, x, ts, eta=1.0, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(a, b)
    assert (a - c).abs().max() > 1e-3
