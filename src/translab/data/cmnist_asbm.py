"""The Colored MNIST test sets of the published 2 -> 3 tables (ASBM, Gushchin et al. NeurIPS 2024, and the
DSBM and ENOT rows they report), rebuilt from the public description of their evaluation notebook.

Each MNIST test digit set is tiled (repeated in order, before colouring) to ``size`` images, 10,000 there; each
grey 28x28 digit is resized to 32x32 with PIL's bilinear filter (torchvision's Resize on a PIL image) and read as
uint8 / 255; then every copy gets its own hue from one seeded NumPy stream, ``np.random.seed(seed)`` followed by
``360 * np.random.rand(size)`` (seed 42 for both the inputs and the reference set, so the i-th 2 and the i-th 3
share a hue). Their colouring maps the grey level V and hue H to RGB by the six HSV sectors with saturation 1,
but picks the sector with round(H / 60) mod 6 while ramping with H mod 60, which we reproduce as published.
Images are returned in [-1, 1], as every translab dataset.
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from translab.data.base import DataError, TensorImages
from translab.data.cmnist import load_mnist_digit

#: the published protocol's constants
SIZE = 10_000
SEED = 42
IMAGE_SIZE = 32
#: per sector: which of (V, rising ramp, falling ramp, zero) fills the R, G and B channels
_SECTORS = ((0, 1, 3), (2, 0, 3), (3, 0, 1), (3, 2, 0), (1, 3, 0), (0, 3, 2))


def asbm_colorize(grey: np.ndarray, hues: np.ndarray) -> np.ndarray:
    """grey (N, H, W) in [0, 1] and hues (N,) in degrees -> RGB (N, 3, H, W) in [0, 1] by the published
    sector rule: a = V (H mod 60) / 60, sector round(H / 60) mod 6 (see the module docstring)."""
    ramp = grey * (hues % 60.0)[:, None, None] / 60.0
    parts = np.stack([grey, ramp, grey - ramp, np.zeros_like(grey)])  # (4, N, H, W)
    sector = np.round(hues / 60.0).astype(np.int64) % 6
    table = np.asarray(_SECTORS)[sector]  # (N, 3): the part index of each channel
    n = np.arange(grey.shape[0])
    return np.stack([parts[table[:, c], n] for c in range(3)], axis=1)


def resized_digits(digit: int, root: str | None = None) -> np.ndarray:
    """The MNIST test images of ``digit`` resized to 32x32 as PIL does (bilinear, uint8), in [0, 1] (N, 32, 32)."""
    grey, _ = load_mnist_digit(digit, "test", root)
    out = [np.asarray(Image.fromarray(g).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)) for g in grey]
    return np.stack(out).astype(np.float32) / 255.0


def asbm_test_set(digit: int, size: int = SIZE, seed: int = SEED, root: str | None = None) -> TensorImages:
    """The published protocol's test images of one digit: tiled to ``size``, one hue per copy from ``seed``."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise DataError(f"the published Colored MNIST protocol needs a positive set size, got {size!r}")
    grey = resized_digits(digit, root)
    tiled = np.concatenate([grey] * (size // grey.shape[0] + 1))[:size]
    rng = np.random.RandomState(seed)  # np.random.seed(seed); np.random.rand(size) draws this stream
    hues = 360.0 * rng.rand(size)
    rgb = torch.from_numpy(asbm_colorize(tiled, hues).astype(np.float32)) * 2.0 - 1.0
    names = [f"test_{digit}_{i % grey.shape[0]:05d}_copy{i // grey.shape[0]}" for i in range(size)]
    return TensorImages(rgb, {"hue": torch.from_numpy(hues).float()}, names)
