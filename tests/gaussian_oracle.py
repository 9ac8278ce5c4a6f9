"""Exact noise predictors for Gaussian data: analytic oracles for the samplers.

If x0 ~ N(m, s^2) per element, then x_t ~ N(sqrt(ab) m, ab s^2 + 1 - ab) and
E[eps | x_t] = sqrt(1 - ab) (x_t - sqrt(ab) m) / (ab s^2 + 1 - ab).
"""
from __future__ import annotations

import torch

from translab.diffusion.schedule import NoiseSchedule


def gaussian_eps_fn(schedule: NoiseSchedule, mean: float, std: float):
    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        ab = schedule.alpha_bar_at(t, like=x)
        return (1 - ab).sqrt() * (x - ab.sqrt() * mean) / (ab * std ** 2 + 1 - ab)
    return eps_fn
