"""Noise schedules: betas, alpha_bar and explicit descending timestep lists.

The schedule is a plain object with no network inside (the improved-diffusion design): one schedule serves
any number of independently trained denoisers, which DDIB needs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def linear_betas(num_timesteps: int, beta_start: float = 1e-4, beta_end: float = 2e-2) -> torch.Tensor:
    """Ho et al. 2020, Sec. 4: betas linear from 1e-4 to 0.02 at T = 1000 (rescaled for other T)."""
    scale = 1000.0 / num_timesteps
    return torch.linspace(beta_start * scale, beta_end * scale, num_timesteps, dtype=torch.float64)


def cosine_betas(num_timesteps: int, s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """Nichol & Dhariwal 2021, eq. 17: alpha_bar(t) = cos^2(((t/T + s)/(1 + s)) pi/2), betas clipped at 0.999."""
    def f(t: float) -> float:
        return math.cos((t / num_timesteps + s) / (1 + s) * math.pi / 2) ** 2
    betas = [min(1 - f(i + 1) / f(i), max_beta) for i in range(num_timesteps)]
    return torch.tensor(betas, dtype=torch.float64)


@dataclass
class NoiseSchedule:
    """Discrete-time variance-preserving schedule. alpha_bar[t] is the signal fraction at step t (0-based)."""

    betas: torch.Tensor  # (T,) float64

    def __post_init__(self):
        self.betas = self.betas.double()
        self.alphas = 1.0 - self.betas
        self.alpha_bar = torch.cumprod(self.alphas, dim=0)

    @classmethod
    def make(cls, kind: str = "cosine", num_timesteps: int = 1000) -> "NoiseSchedule":
        if kind == "cosine":
            return cls(cosine_betas(num_timesteps))
        if kind == "linear":
            return cls(linear_betas(num_timesteps))
        raise ValueError(f"unknown noise schedule '{kind}': expected 'cosine' or 'linear'")

    @property
    def num_timesteps(self) -> int:
        return self.betas.shape[0]

    def alpha_bar_at(self, t: torch.Tensor | int, like: torch.Tensor | None = None) -> torch.Tensor:
        """alpha_bar at integer step(s) t; t = -1 means clean data (alpha_bar = 1). Broadcast to ``like``'s ndim."""
        t = torch.as_tensor(t, dtype=torch.long)
        ab = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar])[t + 1]
        if like is not None:
            ab = ab.to(device=like.device, dtype=like.dtype)
            while ab.ndim < like.ndim:
                ab = ab[..., None]
        return ab

    def log_snr_half_at(self, t: int) -> float:
        """lambda_t = log(alpha_t / sigma_t) = 0.5 log(alpha_bar_t / (1 - alpha_bar_t)), the half log-SNR in
        which DPM-Solver integrates (Lu et al. 2022, arXiv 2206.00927, Sec. 3.1; alpha_t = sqrt(alpha_bar_t),
        sigma_t = sqrt(1 - alpha_bar_t)). Strictly decreasing in t; t = -1 (clean data) gives +inf."""
        ab = float(self.alpha_bar_at(int(t)))
        if ab >= 1.0:
            return math.inf
        return 0.5 * (math.log(ab) - math.log1p(-ab))

    def timesteps(self, num_steps: int, t_max: int | None = None) -> list[int]:
        """Descending integer timesteps for a sampler with ``num_steps`` network evaluations.

        Evenly spaced from ``t_max`` down to 0. The default ``t_max = T - T/num_steps`` is improved-diffusion's
        respacing start (Nichol & Dhariwal 2021): a deterministic chain started at T-1 of the cosine schedule
        (alpha_bar ~ 2e-9) multiplies the error of eps by ~1/sqrt(alpha_bar) in its x0 prediction
        x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar) (Song et al. 2021, DDIM eq. 12; the start measured
        on cMNIST: docs/experiment-log.md, "DDIB, first models").
        """
        T = self.num_timesteps
        if num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {num_steps}")
        if t_max is None:
            t_max = T - max(1, T // num_steps) if num_steps > 1 else T - 1
        if not 0 <= t_max < T:
            raise ValueError(f"t_max must lie in [0, {T - 1}], got {t_max}")
        num_steps = min(num_steps, t_max + 1)
        if num_steps == 1:
            return [t_max]
        ts = torch.linspace(0, t_max, num_steps, dtype=torch.float64).round().long().tolist()
        return sorted(set(ts), reverse=True)
