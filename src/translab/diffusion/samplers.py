"""Samplers as pure functions: each takes the noise predictor, an explicit start tensor, an explicit
descending timestep list and (where random) a torch.Generator, and owns its loop.

``eps_fn(x, t)`` maps x (N, C, H, W) and t (N,) long to predicted noise (N, C, H, W). Levels: each timestep
t in the list is a noise level alpha_bar[t]; below the last (smallest) timestep lies clean data (alpha_bar = 1).
"""
from __future__ import annotations

from typing import Callable

import torch

from translab.diffusion.process import x0_from_eps
from translab.diffusion.schedule import NoiseSchedule

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _tvec(t: int, x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)


def _check_desc(timesteps: list[int]) -> list[int]:
    ts = [int(t) for t in timesteps]
    if any(a <= b for a, b in zip(ts, ts[1:])):
        raise ValueError(f"timesteps must be strictly descending, got {ts[:5]}...")
    return ts


def _run_chain(eps_fn: EpsFn, x: torch.Tensor, timesteps: list[int], step: Callable,
               progress: Callable | None) -> torch.Tensor:
    """The shared descending loop: one network evaluation per timestep, then ``step(x, eps, t, t_next)``
    moves x to the next level (t_next = -1 after the last timestep: clean data)."""
    ts = _check_desc(timesteps)
    it = range(len(ts)) if progress is None else progress(range(len(ts)))
    for i in it:
        t = ts[i]
        t_next = ts[i + 1] if i + 1 < len(ts) else -1
        x = step(x, eps_fn(x, _tvec(t, x)), t, t_next)
    return x


def ddim_step(schedule: NoiseSchedule, x: torch.Tensor, eps: torch.Tensor, t: int, t_next: int,
              eta: float = 0.0, noise: torch.Tensor | None = None, clip_x0: bool = False) -> torch.Tensor:
    """Song et al. 2021 (DDIM) eq. 12 from level t to level t_next (t_next = -1: clean data).

    x_{t'} = sqrt(ab') x0_hat + sqrt(1 - ab' - sigma^2) eps + sigma z, with
    sigma = eta sqrt((1 - ab')/(1 - ab)) sqrt(1 - ab/ab') (eq. 16). Works both ways: with t_next > t and
    eta = 0 it is the deterministic inversion step (the ODE run forwards).
    """
    ab = schedule.alpha_bar_at(t, like=x)
    ab_next = schedule.alpha_bar_at(t_next, like=x)
    x0 = x0_from_eps(schedule, x, t, eps)
    if clip_x0:
        x0 = x0.clamp(-1, 1)
        eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
    sigma = torch.zeros_like(ab)
    if eta > 0 and t_next < t:
        sigma = eta * ((1 - ab_next) / (1 - ab) * (1 - ab / ab_next)).sqrt()
    out = ab_next.sqrt() * x0 + (1 - ab_next - sigma ** 2).clamp(min=0).sqrt() * eps
    if eta > 0 and t_next >= 0 and noise is not None:
        out = out + sigma * noise
    return out


@torch.no_grad()
def sample_ddim(eps_fn: EpsFn, schedule: NoiseSchedule, x_start: torch.Tensor, timesteps: list[int],
                eta: float = 0.0, generator: torch.Generator | None = None, clip_x0: bool = False,
                progress: Callable | None = None) -> torch.Tensor:
    """Decode x_start (at level timesteps[0]) to clean data with len(timesteps) network evaluations.

    x_start (N, C, H, W); returns (N, C, H, W). eta = 0 is the deterministic probability-flow ODE (DDIM).
    """
    def step(x, eps, t, t_next):
        noise = None
        if eta > 0 and t_next >= 0:
            noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        return ddim_step(schedule, x, eps, t, t_next, eta=eta, noise=noise, clip_x0=clip_x0)

    return _run_chain(eps_fn, x_start, timesteps, step, progress)


@torch.no_grad()
def invert_ddim(eps_fn: EpsFn, schedule: NoiseSchedule, x0: torch.Tensor, timesteps: list[int],
                progress: Callable | None = None) -> torch.Tensor:
    """Encode clean x0 to the latent at level timesteps[0] by running the DDIM ODE forwards (eta = 0, no clip).

    Uses the same (descending) timestep list as ``sample_ddim`` and the same number of network evaluations.
    Each Euler step from level s to the next higher level s' evaluates the network at the point it starts
    from, (x_s, s), the mirror of the decoding step (DDIB, Su et al. 2023, Sec. 3 / eq. 3); the first step
    leaves clean data using the smallest timestep. Returns (N, C, H, W).
    """
    ts = _check_desc(timesteps)[::-1]  # ascending
    x = x0
    levels = [-1] + ts  # clean, then each timestep
    it = range(len(ts)) if progress is None else progress(range(len(ts)))
    for i in it:
        level, nxt = levels[i], levels[i + 1]
        t_eval = ts[0] if level < 0 else level
        eps = eps_fn(x, _tvec(t_eval, x))
        ab = schedule.alpha_bar_at(level, like=x)
        ab_next = schedule.alpha_bar_at(nxt, like=x)
        x0_hat = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
        x = ab_next.sqrt() * x0_hat + (1 - ab_next).sqrt() * eps
    return x


@torch.no_grad()
def sample_ddpm(eps_fn: EpsFn, schedule: NoiseSchedule, x_start: torch.Tensor, timesteps: list[int],
                generator: torch.Generator | None = None, clip_x0: bool = False,
                progress: Callable | None = None) -> torch.Tensor:
    """Ancestral sampling (Ho et al. 2020, Algorithm 2) on a possibly respaced timestep list.

    Each step draws from the posterior q(x_{t'} | x_t, x0_hat) (Ho et al. eqs. 6-7) with the betas of the
    respaced chain, beta = 1 - ab/ab' (Nichol & Dhariwal 2021, Sec. 4); on the full list this is exactly
    x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t/sqrt(1 - ab_t) eps) + sigma_t z with sigma_t^2 = beta_tilde_t.
    """
    def step(x, eps, t, t_next):
        return ddpm_step(schedule, x, eps, t, t_next, generator, clip_x0)

    return _run_chain(eps_fn, x_start, timesteps, step, progress)


def ddpm_step(schedule: NoiseSchedule, x: torch.Tensor, eps: torch.Tensor, t: int, t_next: int,
              generator: torch.Generator | None = None, clip_x0: bool = False) -> torch.Tensor:
    """One ancestral step from level t to t_next < t via the posterior mean and variance (Ho et al. eq. 7)."""
    ab = schedule.alpha_bar_at(t, like=x)
    ab_next = schedule.alpha_bar_at(t_next, like=x)
    beta = 1 - ab / ab_next
    x0 = x0_from_eps(schedule, x, t, eps)
    if clip_x0:
        x0 = x0.clamp(-1, 1)
    coef_x0 = ab_next.sqrt() * beta / (1 - ab)
    coef_xt = (1 - beta).sqrt() * (1 - ab_next) / (1 - ab)
    mean = coef_x0 * x0 + coef_xt * x
    if t_next < 0:
        return mean
    var = beta * (1 - ab_next) / (1 - ab)
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return mean + var.sqrt() * noise
