"""Losses shared by more than one method."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from torch import nn

from translab.settings import ConfigError

CYCLE_DISTANCES = ("l1", "l2")


def jacobian_free_surrogate(residual: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A scalar whose gradient w.r.t. x is 2 residual / numel: the gradient of mean((net(x) - target)^2) with the
    network's Jacobian dropped, residual = (net(x) - target) computed without grad (score distillation, Poole et
    al. 2022, DreamFusion eq. 3). residual and x have the same shape; its value carries no meaning."""
    return 2 * (residual.detach() * x).sum() / x.numel()


def cycle_losses(x_a: torch.Tensor, x_b: torch.Tensor, g_a2b: Callable, g_b2a: Callable, kind: str = "l1",
                 fake_b: torch.Tensor | None = None, fake_a: torch.Tensor | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cycle consistency (CycleGAN, Zhu et al. 2017, eq. 2; UNIT-DDPM, Sasaki et al. 2021, eq. 13):
    (mean d(g_b2a(g_a2b(x_a)), x_a), mean d(g_a2b(g_b2a(x_b)), x_b)) with d = |.| ('l1') or (.)^2 ('l2'),
    averaged over elements. x_a, x_b (N, C, H, W); ``fake_b`` = g_a2b(x_a) and ``fake_a`` = g_b2a(x_b) may be
    passed when already computed."""
    if kind not in CYCLE_DISTANCES:
        raise ConfigError(f"cycle loss: expected one of {', '.join(CYCLE_DISTANCES)}, got '{kind}'")
    dist = F.l1_loss if kind == "l1" else F.mse_loss
    fake_b = g_a2b(x_a) if fake_b is None else fake_b
    fake_a = g_b2a(x_b) if fake_a is None else fake_a
    return dist(g_b2a(fake_b), x_a), dist(g_a2b(fake_a), x_b)


def lsgan_loss(pred: torch.Tensor, target_real: bool) -> torch.Tensor:
    """Least-squares GAN loss (Mao et al. 2017): mean((pred - 1)^2) for real targets, mean(pred^2) for fake."""
    return F.mse_loss(pred, torch.full_like(pred, 1.0 if target_real else 0.0))


def discriminator_loss(d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """0.5 * (LSGAN(D(real), 1) + LSGAN(D(fake), 0)); the fake is detached from its generator."""
    return 0.5 * (lsgan_loss(d(real), True) + lsgan_loss(d(fake.detach()), False))


def identity_loss(g_a2b: nn.Module, g_b2a: nn.Module, real_a: torch.Tensor, real_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(|g_a2b(b) - b|_1, |g_b2a(a) - a|_1), unweighted means (Sec. 5.2, after Taigman et al. 2017)."""
    return F.l1_loss(g_a2b(real_b), real_b), F.l1_loss(g_b2a(real_a), real_a)


def pooled_discriminator_losses(d_a: nn.Module, d_b: nn.Module, real_a: torch.Tensor, real_b: torch.Tensor,
                                fake_a: torch.Tensor, fake_b: torch.Tensor, pool_a, pool_b,
                                generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
    """CycleGAN's discriminator losses with history pools (Zhu et al. 2017, Sec. 4): (d_a's, d_b's).

    d_b tells real B from ``pool_b``'s answer to the g_a2b fakes ``fake_b``, d_a real A from ``pool_a``'s answer
    to ``fake_a``; images (N, C, H, W) in [-1, 1]. ``pool_b`` is queried first, so the draws from ``generator``
    come in one fixed order (a resumed run continues exactly)."""
    pooled_b = pool_b.query(fake_b, generator)
    pooled_a = pool_a.query(fake_a, generator)
    return discriminator_loss(d_a, real_a, pooled_a), discriminator_loss(d_b, real_b, pooled_b)
