"""The domain-pair contract shared by every data source.

A domain pair holds train and test images of domain A and domain B. Every item of its datasets is a
float tensor of shape (C, H, W) with values in [-1, 1], C = 3 (RGB, the default) or 1 (greyscale,
``data.channels``); both domains share one image size and one channel count.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.data import Dataset

from translab.errors import TranslabError

DOMAINS = ("a", "b")
SPLITS = ("train", "test")


class DataError(TranslabError, ValueError):
    """Data that cannot be loaded as asked: names the path or value and what was expected."""


def check_channels(channels: int) -> int:
    """``channels`` if it is 1 (greyscale) or 3 (RGB); one-line DataError naming the value otherwise."""
    if isinstance(channels, bool) or channels not in (1, 3):
        raise DataError(f"image channels must be 1 (greyscale) or 3 (RGB), got {channels!r}")
    return channels


class TensorImages(Dataset):
    """In-memory images (N, C, H, W) in [-1, 1], C = 3 or 1, with optional per-image metadata (e.g. hue in degrees)."""

    def __init__(self, images: torch.Tensor, meta: dict[str, torch.Tensor] | None = None, names: list[str] | None = None):
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise DataError(f"expected images of shape (N, 3, H, W) or (N, 1, H, W), got {tuple(images.shape)}")
        self.images = images
        self.meta = meta or {}
        self.names = names

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]

    def name(self, i: int) -> str:
        return self.names[i] if self.names else f"{i:05d}"


@dataclass
class DomainPair:
    """Train/test images of two domains. ``datasets[(domain, split)]`` is a Dataset of (channels, H, W) in [-1, 1]."""

    name: str
    domain_names: tuple[str, str]
    image_size: int
    datasets: dict[tuple[str, str], Dataset]
    source: str
    notes: dict = field(default_factory=dict)
    channels: int = 3  # 3 (RGB) or 1 (greyscale)

    def get(self, domain: str, split: str) -> Dataset:
        if domain not in DOMAINS:
            raise DataError(f"unknown domain '{domain}': expected one of {DOMAINS}")
        if split not in SPLITS:
            raise DataError(f"unknown split '{split}': expected one of {SPLITS}")
        return self.datasets[(domain, split)]

    def counts(self) -> dict[str, int]:
        return {f"{d}/{s}": len(self.datasets[(d, s)]) for d in DOMAINS for s in SPLITS}

    def swapped(self) -> "DomainPair":
        """The same pair with A and B exchanged (for the reverse direction)."""
        ds = {(("b" if d == "a" else "a"), s): v for (d, s), v in self.datasets.items()}
        return DomainPair(self.name, self.domain_names[::-1], self.image_size, ds, self.source, dict(self.notes),
                          self.channels)


def stack_dataset(ds: Dataset, limit: int | None = None) -> torch.Tensor:
    """All (or the first ``limit``) images of a dataset as one tensor (N, C, H, W)."""
    if isinstance(ds, TensorImages):
        return ds.images[:limit] if limit else ds.images
    n = len(ds) if limit is None else min(limit, len(ds))
    return torch.stack([ds[i] for i in range(n)])
