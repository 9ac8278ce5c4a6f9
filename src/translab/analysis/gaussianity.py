"""How Gaussian are encoded latents? Per-image statistics beside the same statistics of true N(0, I) samples.

DDIB (Su et al., ICLR 2023, Sec. 3) encodes an image with the probability-flow ODE into the latent space of the
diffusion prior, nominally N(0, I). An encoding that is exactly N(0, I) has, per image of d = C*H*W values:
mean ~ 0 and std ~ 1 (both with spread ~ 1/sqrt(d)), norm ~ sqrt(d), excess kurtosis ~ 0, a small
Kolmogorov-Smirnov distance to N(0, 1) (~0.87/sqrt(d) on average), and no correlation between horizontally or
vertically neighbouring values or between channels. The finite-sample spread of each statistic is
what the reference (seeded N(0, I) samples of the same shape and count) shows: a latent statistic is only
"non-Gaussian" when it lies clearly outside the reference's spread.
"""
from __future__ import annotations

import math

import numpy as np
import torch

#: per-image statistics, in the order they are reported
STATISTICS = ("mean", "std", "norm_over_sqrt_d", "excess_kurtosis", "ks_statistic", "ks_pvalue",
              "autocorr_h", "autocorr_v", "channel_corr")
KS_ALPHA = 0.01
POOLED_MAX = 1_000_000


def _check(z: torch.Tensor) -> torch.Tensor:
    if z.ndim != 4:
        raise ValueError(f"latents must be (N, C, H, W), got shape {tuple(z.shape)}")
    if z.shape[0] < 1 or z[0].numel() < 2:
        raise ValueError(f"need at least one latent of at least 2 values, got shape {tuple(z.shape)}")
    return z.detach().double().cpu()


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise Pearson correlation of a, b (N, M) -> (N,); 0 where a row is constant."""
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    den = (a.pow(2).sum(1) * b.pow(2).sum(1)).sqrt()
    return torch.where(den > 0, (a * b).sum(1) / den.clamp(min=1e-300), torch.zeros_like(den))


def autocorrelation(z: torch.Tensor, axis: str) -> torch.Tensor:
    """Lag-1 spatial autocorrelation per image: z (N, C, H, W) -> (N,).

    Pearson correlation of all pairs of neighbours (z[c, i, j], z[c, i, j+1]) ('h') or (z[c, i, j], z[c, i+1, j])
    ('v'), pooled over channels and positions of one image.
    """
    z = _check(z)
    if axis == "h":
        a, b = z[..., :, :-1], z[..., :, 1:]
    elif axis == "v":
        a, b = z[..., :-1, :], z[..., 1:, :]
    else:
        raise ValueError(f"axis must be 'h' or 'v', got {axis!r}")
    if a.numel() == 0:
        return torch.zeros(z.shape[0], dtype=torch.float64)
    return _pearson(a.flatten(1), b.flatten(1))


def channel_correlation(z: torch.Tensor) -> torch.Tensor:
    """Mean over channel pairs of the Pearson correlation across pixels: z (N, C, H, W) -> (N,) (0 when C = 1)."""
    z = _check(z)
    n, c = z.shape[:2]
    pairs = [(i, j) for i in range(c) for j in range(i + 1, c)]
    if not pairs:
        return torch.zeros(n, dtype=torch.float64)
    flat = z.flatten(2)
    return torch.stack([_pearson(flat[:, i], flat[:, j]) for i, j in pairs], 1).mean(1)


def ks_against_normal(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One-sample Kolmogorov-Smirnov test of each image's values against N(0, 1) (not standardised first).

    z (N, C, H, W) -> (statistic (N,), p-value (N,)), by scipy.stats.ks_1samp.
    """
    from scipy import stats

    x = _check(z).flatten(1).numpy()
    res = stats.ks_1samp(x, stats.norm.cdf, axis=1)
    return torch.from_numpy(np.atleast_1d(res.statistic)).double(), torch.from_numpy(np.atleast_1d(res.pvalue)).double()


def per_image_statistics(z: torch.Tensor) -> dict[str, torch.Tensor]:
    """z (N, C, H, W) -> {statistic name: (N,) float64} for every name in STATISTICS.

    mean, std (population), norm / sqrt(d), excess kurtosis E[(x - m)^4] / s^4 - 3 (population moments),
    KS statistic and p-value against N(0, 1), lag-1 autocorrelation horizontally and vertically, and the mean
    correlation between channels.
    """
    z = _check(z)
    flat = z.flatten(1)
    d = flat.shape[1]
    mean = flat.mean(1)
    centred = flat - mean[:, None]
    var = centred.pow(2).mean(1)
    std = var.sqrt()
    kurt = torch.where(var > 0, centred.pow(4).mean(1) / var.clamp(min=1e-300).pow(2) - 3.0, torch.zeros_like(var))
    ks, p = ks_against_normal(z)
    return {
        "mean": mean, "std": std, "norm_over_sqrt_d": flat.norm(dim=1) / math.sqrt(d),
        "excess_kurtosis": kurt, "ks_statistic": ks, "ks_pvalue": p,
        "autocorr_h": autocorrelation(z, "h"), "autocorr_v": autocorrelation(z, "v"),
        "channel_corr": channel_correlation(z),
    }


def summarize(stats: dict[str, torch.Tensor]) -> dict[str, dict]:
    """{name: {"mean", "std", "min", "max"} over images}; the KS entry adds the share of images rejected at 1%."""
    out = {}
    for name in STATISTICS:
        v = stats[name]
        out[name] = {"mean": float(v.mean()), "std": float(v.std()) if v.numel() > 1 else 0.0,
                     "min": float(v.min()), "max": float(v.max())}
    out["ks_pvalue"]["share_below_0.01"] = float((stats["ks_pvalue"] < KS_ALPHA).double().mean())
    return out


def pooled_ks(z: torch.Tensor, seed: int = 0) -> dict:
    """KS test of all values of all images pooled (a seeded subsample of at most 1,000,000) against N(0, 1)."""
    from scipy import stats

    flat = _check(z).flatten()
    if flat.numel() > POOLED_MAX:
        g = torch.Generator().manual_seed(seed)
        flat = flat[torch.randperm(flat.numel(), generator=g)[:POOLED_MAX]]
    res = stats.ks_1samp(flat.numpy(), stats.norm.cdf)
    return {"statistic": float(res.statistic), "pvalue": float(res.pvalue), "n_values": int(flat.numel())}


def reference_normal(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """Seeded true N(0, I) samples of ``shape`` (float64)."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(tuple(shape), generator=g, dtype=torch.float64)


def gaussianity_report(z: torch.Tensor, seed: int = 0) -> dict:
    """Statistics of latents z (N, C, H, W) beside those of N(0, I) samples of the same shape (seeded).

    {"shape", "d", "latents": {summary, "pooled_ks"}, "reference_normal": {summary, "pooled_ks", "seed"}}.
    """
    z = _check(z)
    ref = reference_normal(z.shape, seed)
    return {
        "shape": list(z.shape), "d": int(z[0].numel()),
        "latents": {**summarize(per_image_statistics(z)), "pooled_ks": pooled_ks(z, seed)},
        "reference_normal": {**summarize(per_image_statistics(ref)), "pooled_ks": pooled_ks(ref, seed), "seed": seed},
    }
