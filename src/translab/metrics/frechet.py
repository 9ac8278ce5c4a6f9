"""FID and KID between two sets of features, through torchmetrics.

Both extractors translab uses (``inception`` pool3 and translab's ``classifier`` penultimate layer) first turn
images into feature matrices (N, D); the distances here take those matrices. torchmetrics' metrics are fed
through a pass-through "feature extractor" so that the one Frechet implementation used everywhere is
torchmetrics' (and each image is pushed through a network once, even though FID and KID both need it).

- FID (Heusel et al., NeurIPS 2017, eq. 6): d^2 = ||m1 - m2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), with the
  sample means m and unbiased sample covariances S of the two feature sets.
- KID (Binkowski et al., ICLR 2018, Sec. 3 / eq. 3): unbiased MMD^2 with the cubic polynomial kernel
  k(x, y) = (x.y / D + 1)^3, averaged over random subsets of ``subset_size`` from each set. The subset
  size adapts to small sets: min(requested, n_real, n_fake).
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000


class PassThrough(nn.Module):
    """A torchmetrics "feature extractor" that returns its input: features (N, D) -> (N, D) float64."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = int(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.num_features:
            raise ValueError(f"expected features of shape (N, {self.num_features}), got {tuple(x.shape)}")
        return x.double()


def _check(real: torch.Tensor, fake: torch.Tensor, minimum: int = 2) -> None:
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sets must be (N, D) and (M, D) with the same D, got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    if real.shape[0] < minimum or fake.shape[0] < minimum:
        raise ValueError(f"need at least {minimum} samples in each set, got {real.shape[0]} real and "
                         f"{fake.shape[0]} generated")


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID-style Frechet distance between feature sets real (N, D) and fake (M, D); N, M >= 2."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    _check(real, fake)
    metric = FrechetInceptionDistance(feature=PassThrough(real.shape[1]))
    metric.update(real.detach().cpu().double(), real=True)
    metric.update(fake.detach().cpu().double(), real=False)
    return float(metric.compute())


def kernel_distance(real: torch.Tensor, fake: torch.Tensor, subsets: int = KID_SUBSETS,
                    subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> dict:
    """KID between feature sets real (N, D) and fake (M, D): {"mean", "std", "subset_size", "subsets"}.

    The subsets are drawn from torch's global RNG inside torchmetrics; it is seeded with ``seed`` in a
    forked RNG state, so the value is reproducible and the caller's RNG is untouched.
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    _check(real, fake)
    size = int(min(subset_size, real.shape[0], fake.shape[0]))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*Metric `Kernel Inception Distance`.*")
        metric = KernelInceptionDistance(feature=PassThrough(real.shape[1]), subsets=subsets, subset_size=size)
    metric.update(real.detach().cpu().double(), real=True)
    metric.update(fake.detach().cpu().double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return {"mean": float(mean), "std": float(std), "subset_size": size, "subsets": subsets}


def distances(real: torch.Tensor, fake: torch.Tensor, seed: int = 0) -> dict:
    """{"fid", "kid_mean", "kid_std", "kid_subset_size", "n_real", "n_fake"} for two feature sets."""
    kid = kernel_distance(real, fake, seed=seed)
    return {"fid": frechet_distance(real, fake), "kid_mean": kid["mean"], "kid_std": kid["std"],
            "kid_subset_size": kid["subset_size"], "kid_subsets": kid["subsets"],
            "n_real": int(real.shape[0]), "n_fake": int(fake.shape[0])}


# --------------------------------------------------------------------------------------------------
# labelled extractors


class Extractor:
    """A named image -> feature map for FID/KID, or an unavailable one with the reason.

    ``fn``: images (N, 3, H, W) in [-1, 1] -> features (N, D). ``describe`` says what the features are;
    ``cache_id`` names the exact weights, so that cached real-set features are never reused across networks.
    """

    def __init__(self, name: str, fn=None, describe: str = "", reason: str | None = None, cache_id: str = ""):
        if fn is None and not reason:
            raise ValueError(f"extractor '{name}' needs a function or a reason why it is unavailable")
        self.name, self.fn, self.describe, self.reason = name, fn, describe, reason
        self.cache_id = cache_id or describe  # identifies the exact network (e.g. weights path) for caching

    @property
    def available(self) -> bool:
        return self.fn is not None

    def unavailable_entry(self) -> dict:
        return {"available": False, "reason": self.reason}


def labelled_distances(extractors: list[Extractor], real_features: dict, fake_features: dict, seed: int = 0) -> dict:
    """{extractor name: {"available": True, "features": describe, "fid", "kid_mean", ...} or the unavailable
    entry}, from precomputed features ``{name: (N, D)}`` of the real and the generated set."""
    out = {}
    for ex in extractors:
        if not ex.available:
            out[ex.name] = ex.unavailable_entry()
            continue
        try:
            out[ex.name] = {"available": True, "features": ex.describe,
                            **distances(real_features[ex.name], fake_features[ex.name], seed)}
        except ValueError as e:  # too few samples
            out[ex.name] = {"available": False, "reason": str(e)}
    return out
