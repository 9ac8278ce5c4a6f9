"""Colored MNIST: two MNIST digits, each image coloured with one uniformly random hue.

Protocol (as in the neural-OT literature, Korotin et al. ICLR 2023): resize the 28x28 grey
digit to the image size, then read the grey level as the HSV value with saturation 1 and a random hue, so
the background stays black. Hues are deterministic per (seed, split, domain) and the seeds of A and B
differ, so the k-th image of A and the k-th of B are not paired by colour.
"""
from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from translab.data.base import DataError, DomainPair, TensorImages

SHIPPED_DIGITS = (2, 3)
SPLIT_IDS = {"train": 0, "test": 1}


def hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """HSV -> RGB. h in degrees [0, 360), s and v in [0, 1], all broadcastable; returns (..., 3) in [0, 1]."""
    h = (h % 360.0) / 60.0
    def channel(n: float) -> torch.Tensor:
        k = (n + h) % 6.0
        return v - v * s * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0)
    return torch.stack([channel(5.0), channel(3.0), channel(1.0)], dim=-1)


def colorize(grey: torch.Tensor, hue_deg: torch.Tensor) -> torch.Tensor:
    """grey (N, H, W) in [0, 1], hue (N,) degrees -> RGB (N, 3, H, W) in [0, 1] (saturation 1, value = grey)."""
    h = hue_deg[:, None, None].expand_as(grey)
    rgb = hsv_to_rgb(h, torch.ones_like(grey), grey)
    return rgb.permute(0, 3, 1, 2).contiguous()


def hues_for(seed: int, split: str, domain_index: int, digit: int, n: int) -> torch.Tensor:
    """Deterministic hues in degrees for one split and domain; different streams for A and B."""
    rng = np.random.default_rng([seed, SPLIT_IDS[split], domain_index, digit])
    return torch.from_numpy(rng.uniform(0.0, 360.0, size=n)).float()


def default_data_root() -> Path:
    env = os.environ.get("TRANSLAB_DATA")
    return Path(env) if env else Path.home() / ".cache" / "translab"


def load_mnist_digit(digit: int, split: str, root: str | None) -> tuple[np.ndarray, str]:
    """uint8 (N, 28, 28) images of one digit; shipped for 2 and 3, else from torchvision's MNIST under root."""
    if not isinstance(digit, int) or isinstance(digit, bool) or not 0 <= digit <= 9:
        raise DataError(f"MNIST digit must be an integer in 0-9, got {digit!r}")
    if digit in SHIPPED_DIGITS:
        with resources.files("translab.data").joinpath("mnist_digits_2_3.npz").open("rb") as f:
            arr = np.load(f)[f"{split}_{digit}"]
        return arr, "translab (shipped MNIST 2s and 3s)"
    imgs, labels, source = load_mnist_split(split, root)
    return imgs[labels == digit], source


def load_mnist_split(split: str, root: str | None) -> tuple[np.ndarray, np.ndarray, str]:
    """All digits of one MNIST split from torchvision's layout under root ($TRANSLAB_DATA by default):
    (images (N, 28, 28) uint8, labels (N,) int64, source). Downloads where there is internet; else a
    DataError that names the folder."""
    from torchvision.datasets import MNIST

    base = Path(root) if root else default_data_root()
    try:
        ds = MNIST(str(base), train=(split == "train"), download=False)
    except RuntimeError:
        try:
            ds = MNIST(str(base), train=(split == "train"), download=True)
        except Exception as e:  # no network, no copy
            raise DataError(
                f"no MNIST copy was found under {base} (expected {base}/MNIST/raw/*-ubyte) and the download "
                f"failed ({type(e).__name__}). Pass --data-root or set TRANSLAB_DATA to a folder holding MNIST/raw."
            ) from None
    return ds.data.numpy(), ds.targets.numpy().astype(np.int64), f"torchvision MNIST at {base}"


def colored_mnist_split(digit: int, split: str, domain_index: int, image_size: int, seed: int,
                        root: str | None, limit: int | None = None) -> tuple[TensorImages, str]:
    grey, source = load_mnist_digit(digit, split, root)
    if limit:
        grey = grey[:limit]
    g = torch.from_numpy(grey).float().div(255.0)[:, None]
    if image_size != 28:
        g = F.interpolate(g, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    g = g.clamp(0.0, 1.0)[:, 0]
    hues = hues_for(seed, split, domain_index, digit, g.shape[0])
    rgb = colorize(g, hues) * 2.0 - 1.0
    labels = torch.full((g.shape[0],), digit, dtype=torch.long)
    names = [f"{split}_{digit}_{i:05d}" for i in range(g.shape[0])]
    return TensorImages(rgb, {"hue": hues, "digit": labels}, names), source


def build_cmnist(digit_a: int = 2, digit_b: int = 3, image_size: int = 32, seed: int = 0, root: str | None = None,
                 limit: int | None = None) -> DomainPair:
    if digit_a == digit_b:
        raise DataError(f"the two Colored MNIST domains need different digits, got {digit_a} and {digit_b}")
    datasets, sources = {}, set()
    for split in ("train", "test"):
        for di, (dom, digit) in enumerate((("a", digit_a), ("b", digit_b))):
            ds, src = colored_mnist_split(digit, split, di, image_size, seed, root, limit)
            datasets[(dom, split)] = ds
            sources.add(src)
    return DomainPair(f"cmnist-{digit_a}to{digit_b}", (str(digit_a), str(digit_b)), image_size, datasets,
                      "; ".join(sorted(sources)), {"digits": (digit_a, digit_b)})
