"""Any folder pair in the CycleGAN layout (Zhu et al., arXiv 1703.10593, datasets of the official repo)::

    root/trainA/*.jpg|png|...   domain A, train split
    root/trainB/                domain B, train split
    root/testA/                 domain A, test split
    root/testB/                 domain B, test split

Items are (3, S, S) float32 in [-1, 1]: centre square crop, bilinear resize to S (data/images.py). With
``channels=1`` (data.channels) items are (1, S, S): every file is converted to greyscale (PIL's "L", after
transparency is composited on black), so a pair of greyscale folders (e.g. 28x28 L-mode PNGs) stays greyscale.
"""
from __future__ import annotations

from pathlib import Path

from translab.data.base import DataError, DomainPair
from translab.data.images import IMAGE_EXTENSIONS, ImageFiles, list_images

#: (domain, split) -> sub-folder name
FOLDER_NAMES = {("a", "train"): "trainA", ("b", "train"): "trainB", ("a", "test"): "testA", ("b", "test"): "testB"}

LAYOUT = ("root/trainA/, root/trainB/, root/testA/, root/testB/, each holding image files ("
          + ", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS) + ")")


def build_folder_pair(root: str | Path, image_size: int, limit: int | None = None, channels: int = 3) -> DomainPair:
    """DomainPair of the four CycleGAN-layout folders under ``root``; ``limit`` keeps the first N per folder.
    Items are (channels, image_size, image_size) in [-1, 1]; channels 3 (RGB) or 1 (greyscale).

    A missing root, or any missing or empty domain folder, raises one DataError naming every such path
    and the expected layout.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"folder pair root {root} does not exist or is not a folder; expected {LAYOUT}")
    problems, listed = [], {}
    for key, sub in FOLDER_NAMES.items():
        folder = root / sub
        if not folder.is_dir():
            problems.append(f"{folder} is missing")
            continue
        paths = list_images(folder)
        if not paths:
            problems.append(f"{folder} holds no image files")
        listed[key] = paths
    if problems:
        raise DataError(f"folder pair at {root} is incomplete: {'; '.join(problems)}; expected {LAYOUT}")
    datasets = {key: ImageFiles(listed[key], image_size, limit=limit, what=f"{root / FOLDER_NAMES[key]}",
                                channels=channels)
                for key in FOLDER_NAMES}
    skipped = sum(len(ds.skipped) for ds in datasets.values())
    return DomainPair(f"folders-{root.name}", ("A", "B"), image_size, datasets, f"CycleGAN folder pair at {root}",
                      {"layout": "cyclegan", "skipped_files": skipped}, channels)
