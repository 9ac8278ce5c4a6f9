"""Tiny generated domain pair for tests: coloured squares (A) and coloured discs (B) on black.

Hues are random per image, so a translation must change the shape and keep the colour, like Colored MNIST.
"""
from __future__ import annotations

import numpy as np
import torch

from translab.data.base import DomainPair, TensorImages
from translab.data.cmnist import colorize


def shape_masks(kind: str, n: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """(n, size, size) grey masks in [0, 1] of squares or discs with random centre and radius."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.zeros((n, size, size), np.float32)
    for i in range(n):
        r = rng.uniform(0.18, 0.32) * size
        cy, cx = rng.uniform(0.35, 0.65, size=2) * size
        if kind == "square":
            out[i] = ((np.abs(yy - cy) <= r * 0.8) & (np.abs(xx - cx) <= r * 0.8)).astype(np.float32)
        else:
            out[i] = (((yy - cy) ** 2 + (xx - cx) ** 2) <= r * r).astype(np.float32)
    return torch.from_numpy(out)


def build_synthetic(image_size: int = 16, n: int = 64, seed: int = 0) -> DomainPair:
    datasets = {}
    for si, split in enumerate(("train", "test")):
        for di, (dom, kind) in enumerate((("a", "square"), ("b", "disc"))):
            rng = np.random.default_rng([seed, si, di])
            masks = shape_masks(kind, n, image_size, rng)
            hues = torch.from_numpy(rng.uniform(0, 360, size=n)).float()
            datasets[(dom, split)] = TensorImages(colorize(masks, hues) * 2 - 1, {"hue": hues})
    return DomainPair("synthetic", ("square", "disc"), image_size, datasets, "generated in memory")
