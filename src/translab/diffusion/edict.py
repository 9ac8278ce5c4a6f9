"""EDICT: Exact Diffusion Inversion via Coupled Transformations (Wallace, Gokul, Naik, CVPR 2023,
arXiv 2211.12446), as an exactly invertible decode/encode pair beside DDIM and DPM-Solver++.

EDICT carries two coupled copies (x, y) of the DDIM state. One denoising step from level t to level t' (the
DDIM step written as an affine map x' = a x + b eps(x, t), with a = sqrt(ab'/ab) and
b = sqrt(1 - ab') - sqrt(ab' (1 - ab) / ab), DDIM's deterministic step) is, with the mixing weight p in (0, 1]
(EDICT's coupled update; p = 0.93 in the paper):

    x_i = a x + b eps(y, t)              y_i = a y + b eps(x_i, t)
    x'  = p x_i + (1 - p) y_i            y'  = p y_i + (1 - p) x'

Each line is affine in the variable it updates given the others, so it inverts line by line (the paper's
inversion), with the same network evaluations at the same points:

    y_i = (y' - (1 - p) x') / p          x_i = (x' - (1 - p) y_i) / p
    y   = (y_i - b eps(x_i, t)) / a      x   = (x_i - b eps(y, t)) / a

so decode(encode(x0)) returns x0 up to floating-point rounding, whatever the network is. Two network
evaluations per step in each direction (DDIM: one). The latent is the pair, a (N, 2, C, H, W) tensor
(index 0: x, 1: y); encoding starts from x = y = x0, and decoding returns the x copy.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from translab.diffusion.process import timestep_batch
from translab.diffusion.schedule import NoiseSchedule

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
DEFAULT_MIX = 0.93  # the paper's p


def ddim_coefficients(schedule: NoiseSchedule, t: int, t_next: int) -> tuple[float, float]:
    """(a, b) of the deterministic DDIM step from level t to level t_next written as x' = a x + b eps
    (Song et al. 2021, eq. 12 with sigma = 0; t_next = -1: clean data). Python floats from float64."""
    ab, ab_next = float(schedule.alpha_bar_at(t)), float(schedule.alpha_bar_at(t_next))
    a = math.sqrt(ab_next / ab)
    return a, math.sqrt(1 - ab_next) - math.sqrt(ab_next * (1 - ab) / ab)


def _steps(timesteps: list[int]) -> list[tuple[int, int]]:
    ts = [int(t) for t in timesteps]
    if any(a <= b for a, b in zip(ts, ts[1:])):
        raise ValueError(f"timesteps must be strictly descending, got {ts[:5]}...")
    return list(zip(ts, ts[1:] + [-1]))


def _check_mix(mix: float) -> float:
    if not 0.0 < mix <= 1.0:
        raise ValueError(f"EDICT mixing weight p must be in (0, 1], got {mix}")
    return mix


def edict_denoise_step(eps_fn: EpsFn, schedule: NoiseSchedule, x: torch.Tensor, y: torch.Tensor, t: int,
                       t_next: int, mix: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One coupled step of the pair (x, y), each (N, C, H, W), from level t to level t_next < t."""
    a, b = ddim_coefficients(schedule, t, t_next)
    tv = timestep_batch(t, x)
    x_i = a * x + b * eps_fn(y, tv)
    y_i = a * y + b * eps_fn(x_i, tv)
    x_new = mix * x_i + (1 - mix) * y_i
    return x_new, mix * y_i + (1 - mix) * x_new


def edict_invert_step(eps_fn: EpsFn, schedule: NoiseSchedule, x_new: torch.Tensor, y_new: torch.Tensor, t: int,
                      t_next: int, mix: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact inverse of ``edict_denoise_step``: (x', y') at level t_next -> (x, y) at level t > t_next."""
    a, b = ddim_coefficients(schedule, t, t_next)
    tv = timestep_batch(t, x_new)
    y_i = (y_new - (1 - mix) * x_new) / mix
    x_i = (x_new - (1 - mix) * y_i) / mix
    y = (y_i - b * eps_fn(x_i, tv)) / a
    return (x_i - b * eps_fn(y, tv)) / a, y


@torch.no_grad()
def sample_edict(eps_fn: EpsFn, schedule: NoiseSchedule, z: torch.Tensor, timesteps: list[int],
                 mix: float = DEFAULT_MIX, progress: Callable | None = None) -> torch.Tensor:
    """Decode the latent pair z (N, 2, C, H, W) at level timesteps[0] (or a single state (N, C, H, W), used as
    x = y) to clean data (N, C, H, W): 2 x len(timesteps) network evaluations."""
    _check_mix(mix)
    x, y = (z[:, 0], z[:, 1]) if z.ndim == 5 else (z, z)
    steps = _steps(timesteps)
    it = range(len(steps)) if progress is None else progress(range(len(steps)))
    for i in it:
        x, y = edict_denoise_step(eps_fn, schedule, x, y, *steps[i], mix)
    return x


@torch.no_grad()
def invert_edict(eps_fn: EpsFn, schedule: NoiseSchedule, x0: torch.Tensor, timesteps: list[int],
                 mix: float = DEFAULT_MIX, progress: Callable | None = None) -> torch.Tensor:
    """Encode clean x0 (N, C, H, W) to the latent pair (N, 2, C, H, W) at level timesteps[0], the exact inverse
    of ``sample_edict`` over the same list: 2 x len(timesteps) network evaluations."""
    _check_mix(mix)
    x = y = x0
    steps = _steps(timesteps)[::-1]
    it = range(len(steps)) if progress is None else progress(range(len(steps)))
    for i in it:
        x, y = edict_invert_step(eps_fn, schedule, x, y, *steps[i], mix)
    return torch.stack([x, y], dim=1)
