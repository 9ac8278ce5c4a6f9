"""Colour-distribution consistency with a reference image while denoising: the input's colours, not its layout.

Each denoising step's clean-image estimate has its distribution of colours moved to the reference's by sliced
optimal transport in RGB: Pitie, Kokaram & Dahyot, "N-dimensional probability density function transfer and its
application to colour transfer" (ICCV 2005), whose iteration rotates colour space and matches the 1-D marginal of
each rotated axis by quantiles (the exact 1-D optimal transport map). The estimate x0_hat becomes
x0_hat + s (T(x0_hat) - x0_hat) with T the transfer and s the strength, and the noise prediction is rewritten to
match it, as the low-pass step does (translab.diffusion.lowpass); no network evaluation is added. Unlike the
low-pass step it imposes no spatial structure: the output keeps the input's palette (a skin tone, an ink colour)
wherever its own model puts the pixels.

Shapes: images (N, 3, H, W) in [-1, 1]; the reference has the images' shape.
"""
from __future__ import annotations

from typing import Callable

import torch

from translab.diffusion.process import eps_from_x0, x0_from_eps
from translab.diffusion.schedule import NoiseSchedule

#: rotations of colour space per transfer: the RGB axes themselves, then fixed random ones
TRANSFER_ROTATIONS = 4


def colour_rotations(k: int = TRANSFER_ROTATIONS, dtype=torch.float32, device=None) -> list[torch.Tensor]:
    """k orthonormal 3 x 3 matrices: the identity, then k - 1 drawn from a fixed seed (the same every call, so a
    translation is deterministic)."""
    gen = torch.Generator().manual_seed(0)
    out = [torch.eye(3, dtype=torch.float64)]
    for _ in range(k - 1):
        q, r = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64))
        out.append(q * torch.sign(torch.diagonal(r))[None, :])  # Haar-distributed (Mezzadri 2007)
    return [m.to(dtype=dtype, device=device) for m in out]


def sorted_marginals(reference: torch.Tensor, rotations: list[torch.Tensor]) -> list[torch.Tensor]:
    """The reference's (N, 3, H, W) pixel coordinates along each axis of each rotation, sorted: (N, 3, H*W) each."""
    ref = reference.flatten(2)
    return [(rot @ ref).sort(-1).values for rot in rotations]


def transfer_to_marginals(x: torch.Tensor, marginals: list[torch.Tensor], rotations: list[torch.Tensor]) -> torch.Tensor:
    """x (N, 3, H, W) moved to the colour distribution whose ``sorted_marginals`` are given: for each rotation R
    in turn, the pixels' coordinates along each axis of R take the marginal's values of the same rank (ties keep
    their order)."""
    pixels = x.flatten(2)
    for rot, marginal in zip(rotations, marginals):
        along = rot @ pixels
        pixels = rot.T @ torch.empty_like(along).scatter_(-1, along.argsort(dim=-1, stable=True), marginal)
    return pixels.reshape(x.shape)


def transfer_colours(x: torch.Tensor, reference: torch.Tensor, rotations: list[torch.Tensor]) -> torch.Tensor:
    """x (N, 3, H, W) with each image's colour distribution moved to its reference image's (N, 3, H, W)."""
    return transfer_to_marginals(x, sorted_marginals(reference, rotations), rotations)


def colour_consistent(eps_fn: Callable, schedule: NoiseSchedule, reference: torch.Tensor,
                      strength: float) -> Callable:
    """``eps_fn`` whose clean-image estimate (clipped to [-1, 1]) is moved by ``strength`` in (0, 1] towards the
    colour distribution of ``reference`` (N, 3, H, W). ``eps_fn`` takes (x, ..., t): the image first, the
    timesteps (N,) last, any condition between (UNIT-DDPM's partner chain); so does the returned function."""
    rotations = colour_rotations(dtype=reference.dtype, device=reference.device)  # once per chain, as are
    marginals = sorted_marginals(reference, rotations)  # the reference's sorted coordinates

    def matched(x: torch.Tensor, *rest: torch.Tensor) -> torch.Tensor:
        eps = eps_fn(x, *rest)
        step = int(rest[-1][0])
        x0 = x0_from_eps(schedule, x, step, eps).clamp(-1, 1)
        x0 = x0 + strength * (transfer_to_marginals(x0, marginals, rotations) - x0)
        return eps_from_x0(schedule, x, step, x0)

    return matched
