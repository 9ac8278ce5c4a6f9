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


def min_snr_weight(schedule: NoiseSchedule, t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Min-SNR-gamma loss weights (N,) of an eps-prediction loss at timesteps t (N,): min(SNR_t, gamma) / SNR_t,
    SNR_t = alpha_bar_t / (1 - alpha_bar_t) (Hang et al., "Efficient Diffusion Training via Min-SNR Weighting
    Strategy", ICCV 2023, their weighting written for the eps target). 1 at high noise (SNR <= gamma), less where the
    image is nearly clean."""
    ab = schedule.alpha_bar_at(t.cpu())
    snr = ab / (1 - ab)
    weight = torch.where(snr <= gamma, torch.ones_like(snr), gamma / snr)  # no 0/0 where alpha_bar = 0
    return weight.float().to(t.device)


LOSS_WEIGHTINGS = ("uniform", "min_snr")


def check_loss_weighting(weighting: str) -> str:
    """``weighting`` if it names a loss weighting over t, else a ConfigError naming the valid ones."""
    if weighting not in LOSS_WEIGHTINGS:
        from translab.settings import ConfigError

        raise ConfigError(f"model.loss_weighting: expected one of {', '.join(LOSS_WEIGHTINGS)}, got '{weighting}'")
    return weighting


def weighted_loss_simple(schedule: NoiseSchedule, net_eps: torch.Tensor, eps: torch.Tensor, t: torch.Tensor,
                         weighting: str = "uniform", gamma: float = 5.0) -> torch.Tensor:
    """E_t w(t) || eps - eps_theta(x_t, t) ||^2 over a batch: net_eps, eps (N, C, H, W), t (N,) long.

    ``uniform``: w = 1, exactly ``loss_simple`` (Ho et al. eq. 14); ``min_snr``: w = min_snr_weight(t, gamma)
    per image (Hang et al. 2023), the squared error averaged over each image's elements first."""
    if check_loss_weighting(weighting) == "uniform":
        return loss_simple(net_eps, eps)
    weight = min_snr_weight(schedule, t, gamma)
    return (weight * ((net_eps - eps) ** 2).mean(dim=tuple(range(1, eps.dim())))).mean()


def drop_labels(label: torch.Tensor, p: float, generator: torch.Generator | None = None,
                null_label: int = 2) -> torch.Tensor:
    """Class labels (N,) long with each one replaced by ``null_label`` with probability p (Ho & Salimans 2022,
    "Classifier-Free Diffusion Guidance", Algorithm 1, the unconditional "p_uncond" draw). p = 0: unchanged."""
    if p <= 0:
        return label
    drop = torch.rand(label.shape, generator=generator) < p
    return torch.where(drop.to(label.device), torch.full_like(label, null_label), label)


def timestep_batch(t: int, x: torch.Tensor) -> torch.Tensor:
    """The integer timestep t as a (N,) long tensor on x's device, N = x.shape[0] (one per image)."""
    return torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)


def seeded_noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """N(0, I) noise of x's shape and dtype from ``generator`` (drawn on the CPU, so a seed repeats on any
    device), moved to x's device."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
