"""The forward process and its conversions (Ho et al. 2020, "Denoising Diffusion Probabilistic Models").

Shapes: x0, xt, eps are (N, C, H, W) (or any (N, ...)); t is (N,) long in [0, T-1]; images in [-1, 1].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from translab.diffusion.schedule import NoiseSchedule


def q_sample(schedule: NoiseSchedule, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Ho et al. eq. 4: x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps."""
    ab = schedule.alpha_bar_at(t, like=x0)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * eps


def x0_from_eps(schedule: NoiseSchedule, xt: torch.Tensor, t: torch.Tensor | int, eps: torch.Tensor) -> torch.Tensor:
    """Invert eq. 4 for x0 given the noise."""
    ab = schedule.alpha_bar_at(t, like=xt)
    return (xt - (1 - ab).sqrt() * eps) / ab.sqrt()


def eps_from_x0(schedule: NoiseSchedule, xt: torch.Tensor, t: torch.Tensor | int, x0: torch.Tensor) -> torch.Tensor:
    """Invert eq. 4 for the noise given x0."""
    ab = schedule.alpha_bar_at(t, like=xt)
    return (xt - ab.sqrt() * x0) / (1 - ab).sqrt()


def sample_t(schedule: NoiseSchedule, n: int, generator: torch.Generator | None = None,
             device: torch.device | str = "cpu") -> torch.Tensor:
    """Uniform training timesteps (N,) in [0, T-1] (Ho et al. Algorithm 1)."""
    return torch.randint(0, schedule.num_timesteps, (n,), generator=generator).to(device)


def loss_simple(net_eps: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Ho et al. eq. 14, L_simple = E || eps - eps_theta(x_t, t) ||^2 (mean over all elements)."""
    return F.mse_loss(net_eps, eps)


def timestep_batch(t: int, x: torch.Tensor) -> torch.Tensor:
    """The integer timestep t as a (N,) long tensor on x's device, N = x.shape[0] (one per image)."""
    return torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)


def seeded_noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """N(0, I) noise of x's shape and dtype from ``generator`` (drawn on the CPU, so a seed repeats on any
    device), moved to x's device."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
