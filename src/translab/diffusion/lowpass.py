"""Low-pass consistency with a reference image while denoising: ILVR (Choi, Kim, Jeong, Gwon, Yoon, "ILVR:
Conditioning Method for Denoising Diffusion Probabilistic Models", ICCV 2021).

ILVR's eq. 4 refines each denoising step so that the sample's low frequencies are the reference's:
x_{t-1} <- phi_N(y_{t-1}) + (I - phi_N)(x'_{t-1}), with phi_N a linear low-pass filter (downsample by N, upsample
back) and y_{t-1} the reference noised to level t-1. Here phi_N keeps the lowest (H/N) x (W/N) frequencies of
the DCT (an exact orthogonal projection with a smooth basis), and it acts on the denoiser's clean-image estimate,
x0_hat <- phi_N(y) + (I - phi_N)(x0_hat); the noise prediction is rewritten to match it, so it works unchanged
inside any solver built on (x_t, eps): the deterministic ODE solvers as well as ancestral sampling. No network
evaluation is added. A departure: with ``on="chroma"`` only the low frequencies of the chroma (each pixel less its
grey level) are replaced, and the estimate keeps its own brightness.

Shapes: images (N, C, H, W) in [-1, 1]; the reference has the images' shape; H and W divisible by N, or N at
least H and W (each channel's mean only, whatever the image size).
"""
from __future__ import annotations

from typing import Callable

import torch

from translab.diffusion.process import eps_from_x0, x0_from_eps
from translab.diffusion.schedule import NoiseSchedule


def dct_matrix(n: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """The orthonormal DCT-II matrix C (n, n): row k is sqrt(2/n) cos(pi (2i + 1) k / 2n), row 0 scaled by
    1/sqrt(2); C @ C.T = I."""
    i = torch.arange(n, dtype=torch.float64)
    c = torch.cos(torch.pi * (2 * i[None, :] + 1) * i[:, None] / (2 * n)) * (2.0 / n) ** 0.5
    c[0] /= 2 ** 0.5
    return c.to(dtype=dtype, device=device)


def lowpass_basis(h: int, w: int, factor: int, dtype=torch.float32, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """The kept DCT-II rows (h/N, h) and (w/N, w) of ``lowpass`` at ``factor`` (one row each where N >= h, w);
    ValueError unless it divides h and w or is at least both."""
    if not lowpass_factor_fits(factor, h) or not lowpass_factor_fits(factor, w):
        raise ValueError(f"low-pass factor {factor}: expected a divisor of the image size {h} x {w} or at least it")
    return dct_matrix(h, dtype, device)[: max(1, h // factor)], dct_matrix(w, dtype, device)[: max(1, w // factor)]


def lowpass_factor_fits(factor: int, size: int) -> bool:
    """Whether ``factor`` N >= 1 suits an image side: it divides the side, or it is at least the side (the mean
    only), so that one setting keeps the channel means at every image size."""
    return factor >= 1 and (factor >= size or size % factor == 0)


def project(x: torch.Tensor, basis: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """x (N, C, H, W) projected onto the span of ``basis`` (rows of ``lowpass_basis``)."""
    ch, cw = basis
    return ch.T @ (ch @ x @ cw.T) @ cw


def lowpass(x: torch.Tensor, factor: int) -> torch.Tensor:
    """phi_N: x (N, C, H, W) with only its lowest (H/N) x (W/N) DCT-II frequencies kept, as many numbers as the
    N x N downsampled image ILVR keeps, but on a smooth cosine basis (no block edges). An orthogonal projection:
    lowpass(lowpass(x)) = lowpass(x); factor >= H, W keeps each channel's mean only; factor 1 changes nothing."""
    basis = lowpass_basis(*x.shape[-2:], factor, x.dtype, x.device)
    return x if factor == 1 else project(x, basis)


LOWPASS_ON = ("all", "chroma")


def chroma(x: torch.Tensor) -> torch.Tensor:
    """x (N, C, H, W) less each pixel's channel mean (its grey level): the part of the colour that a grey image
    lacks. Black, white and every grey have no chroma; the whole-image mean of a uniformly inked image is its ink
    area times its ink's chroma, whose direction is the ink's hue."""
    return x - x.mean(1, keepdim=True)


def lowpass_consistent(eps_fn: Callable, schedule: NoiseSchedule, reference: torch.Tensor, factor: int,
                       interval: list[int] | None = None, on: str = "all") -> Callable:
    """``eps_fn`` whose clean-image estimate takes its low frequencies (``lowpass`` at ``factor``) from
    ``reference`` (N, C, H, W), at timesteps inside the closed ``interval`` [t_lo, t_hi] (None: every timestep);
    elsewhere ``eps_fn`` unchanged. ``on``: "all" replaces the low frequencies of every channel (ILVR); "chroma"
    those of the ``chroma`` only, so the estimate's grey level (the ink amount on a black background) stays its
    own. ``eps_fn`` takes (x (N,C,H,W), ..., t (N,)): the image first, the timesteps last, any condition between
    (UNIT-DDPM's partner chain); so does the returned function."""
    if on not in LOWPASS_ON:
        raise ValueError(f"lowpass_consistent: on expected one of {LOWPASS_ON}, got {on!r}")
    part = chroma if on == "chroma" else (lambda v: v)
    basis = lowpass_basis(*reference.shape[-2:], factor, reference.dtype, reference.device)  # once per chain
    ref_low = project(part(reference), basis)

    def projected(x: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        eps = eps_fn(x, *rest)
        step = int(rest[-1][0])
        if interval is not None and not interval[0] <= step <= interval[1]:
            return eps
        x0 = x0_from_eps(schedule, x, step, eps)
        # part(x0) = P + R, P its low frequencies; P is replaced by the reference's (project and part commute:
        # both are linear, one acts on pixels, the other on channels)
        x0 = x0 - project(part(x0), basis) + ref_low
        return eps_from_x0(schedule, x, step, x0)

    return projected
