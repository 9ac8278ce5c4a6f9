"""Any folder pair in the CycleGAN layout (Zhu et al., arXiv 1703.10593, datasets of the official repo)::

    root/trainA/*.jpg|png|...   domain A, train split
    root/trainB/                domain B, train split
    root/testA/                 domain A, test split
    root/testB/                 domain B, test split

Items are (3, S, S) float32 in [-1, 1]: centre square crop, bilinear resize to S (data/images.py). With
``channels=1`` (data.channels) items are (1, S, S): every file is converted to greyscale (PIL's "L", after
transparency is composited on black), so a pair of greyscale folders (e.g. 28x28 L-mode PNGs) stays greyscale.

A pairing file ``root/test_pairs.csv`` (optional) names the true counterpart of test inputs, one pair per line:
``testA_file,testB_file`` (file names inside testA/ and testB/; blank lines and lines starting with # are
ignored). With it the test splits hold the listed pairs only, aligned in the file's order (test item k of B is
the counterpart of test item k of A, ``meta['pair']`` = k), and ``translab evaluate`` adds the counterpart
metrics (translab.metrics.counterpart). A pair with an unusable file is dropped from both sides and counted.
"""
from __future__ import annotations

from pathlib import Path

from translab.data.base import DataError, DomainPair
from translab.data.images import IMAGE_EXTENSIONS, ImageFiles, list_images

PAIRS_FILE = "test_pairs.csv"
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
    notes = {"layout": "cyclegan"}
    datasets = {key: ImageFiles(listed[key], image_size, limit=limit, what=f"{root / FOLDER_NAMES[key]}",
                                channels=channels)
                for key in FOLDER_NAMES if key[1] == "train"}
    if (root / PAIRS_FILE).is_file():
        test, paired = paired_test_sets(root, image_size, limit, channels)
        datasets.update(test)
        notes.update(paired)
    else:
        datasets.update({key: ImageFiles(listed[key], image_size, limit=limit, what=f"{root / FOLDER_NAMES[key]}",
                                         channels=channels)
                         for key in FOLDER_NAMES if key[1] == "test"})
    notes["skipped_files"] = sum(len(ds.skipped) for ds in datasets.values())
    return DomainPair(f"folders-{root.name}", ("A", "B"), image_size, datasets, f"CycleGAN folder pair at {root}",
                      notes, channels)


def read_pairs(root: Path) -> list[tuple[Path, Path]]:
    """The (testA file, testB file) pairs of ``root/test_pairs.csv``; one-line DataError naming the file and line
    for a malformed line, a file that is not in its folder, or a file listed twice."""
    path = root / PAIRS_FILE
    pairs, seen = [], set()
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2 or not all(parts):
            raise DataError(f"{path} line {n}: expected 'testA_file,testB_file', got {line!r}")
        pair = (root / "testA" / parts[0], root / "testB" / parts[1])
        for f in pair:
            if not f.is_file():
                raise DataError(f"{path} line {n}: {f} is not a file")
            if f in seen:
                raise DataError(f"{path} line {n}: {f} is listed twice")
            seen.add(f)
        pairs.append(pair)
    if not pairs:
        raise DataError(f"{path} lists no pairs; expected lines 'testA_file,testB_file'")
    return pairs


def paired_test_sets(root: Path, image_size: int, limit: int | None, channels: int) -> tuple[dict, dict]:
    """The aligned test sets of the pairing file (pairs with an unusable file dropped from both sides; files
    decoded in full when scanned, so none fails later and shifts the alignment) and the pairing notes."""
    import torch

    pairs = read_pairs(root)
    whats = {d: f"{root / FOLDER_NAMES[(d, 'test')]}" for d in "ab"}
    scanned = {d: ImageFiles([p[i] for p in pairs], image_size, scan="full", what=whats[d], channels=channels)
               for i, d in enumerate("ab")}
    good = {d: set(scanned[d].paths) for d in "ab"}
    kept = [(pa, pb) for pa, pb in pairs if pa in good["a"] and pb in good["b"]]
    if not kept:
        raise DataError(f"{root / PAIRS_FILE}: no pair has two usable images")
    test = {}
    for i, d in enumerate("ab"):
        # every kept file decoded in full above: the second pass only needs to see that it is still there
        ds = ImageFiles([p[i] for p in kept], image_size, limit=limit, scan="stat", what=whats[d], channels=channels)
        ds.skipped = scanned[d].skipped + ds.skipped
        ds.meta = {"pair": torch.arange(len(ds))}
        test[(d, "test")] = ds
    return test, {"paired_test": True, "pairs_file": PAIRS_FILE, "pairs_listed": len(pairs),
                  "pairs_dropped": len(pairs) - len(kept)}
