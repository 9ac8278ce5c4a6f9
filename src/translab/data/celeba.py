"""CelebA male -> female (Liu et al., "Deep Learning Face Attributes in the Wild", ICCV 2015).

Two on-disk layouts are recognised under ``root``:

* **official** (the CelebA site / Google Drive archive)::

      root/img_align_celeba/000001.jpg ...      (also root/img_align_celeba/img_align_celeba/ and
                                                 root/Img/img_align_celeba/ as the archives unpack)
      root/list_attr_celeba.txt                  (also under root/Anno/; or the Kaggle-mirror .csv)
      root/list_eval_partition.txt               (also under root/Eval/; or the .csv)

  list_attr_celeba.txt: line 1 the image count, line 2 the 40 attribute names, then one row per image,
  ``000001.jpg  -1  1 ...`` (values 1 / -1). list_eval_partition.txt: ``000001.jpg 0`` with 0 = train,
  1 = validation, 2 = test. Domain A = Male == 1, domain B = Male == -1. Train = partition 0,
  test = partition 2; **the validation partition (1) is left unused** (neither folded into train nor
  test), so it stays available as held-out data for choosing checkpoints or settings.

* **Kaggle** "Gender recognition 200K images CelebA"::

      root/Dataset/{Train,Validation,Test}/{Male,Female}/*.jpg

  ROOT may also be the ``Dataset`` folder itself, or ``Dataset`` may sit up to two folders deeper
  (archives often add a level, e.g. ROOT/archive/Dataset/); it is found breadth-first as the first folder
  with Train/ and Test/ each holding Male/ and Female/. Domain A = Male,
  B = Female; train = Train, test = Test, **Validation unused**, as above.

Images: centre square crop, bilinear antialiased resize to ``image_size`` (64 by default), values in
[-1, 1] (data/images.py), RGB, or greyscale with ``channels=1`` (data.channels). ``limit`` keeps the first N files (by file name) per domain and split.
The reverse direction (female -> male) is DomainPair.swapped(), applied by build_domain_pair.
"""
from __future__ import annotations

import csv
from pathlib import Path

from translab.data.base import DataError, DomainPair
from translab.data.images import ImageFiles, list_images

DOMAIN_NAMES = ("male", "female")
#: official partition ids used for each split; 1 (validation) is unused
PARTITIONS = {"train": 0, "test": 2}
KAGGLE_SPLITS = {"train": "Train", "test": "Test"}
KAGGLE_DOMAINS = {"a": "Male", "b": "Female"}

LAYOUTS = (
    "the official layout (ROOT/img_align_celeba/*.jpg with ROOT/list_attr_celeba.txt and "
    "ROOT/list_eval_partition.txt, or the same under Img/, Anno/, Eval/), or the Kaggle 'gender recognition "
    "200k images celeba' layout (ROOT/Dataset/{Train,Validation,Test}/{Male,Female}/*.jpg, the Dataset "
    "folder possibly up to two folders deeper, e.g. ROOT/archive/Dataset/)"
)


# --------------------------------------------------------------------------------------------------
# layout detection


def _first_existing(candidates: list[Path], want_dir: bool) -> Path | None:
    for p in candidates:
        if (p.is_dir() if want_dir else p.is_file()):
            return p
    return None


def find_official(root: Path) -> dict[str, Path] | None:
    """Paths of the official layout's image folder and two lists, or None if no attribute list is there."""
    attr = _first_existing([root / d / f"list_attr_celeba.{ext}" for d in (".", "Anno") for ext in ("txt", "csv")],
                           want_dir=False)
    if attr is None:
        return None
    part = _first_existing([root / d / f"list_eval_partition.{ext}" for d in (".", "Eval") for ext in ("txt", "csv")],
                           want_dir=False)
    imgs = _first_existing([root / "img_align_celeba" / "img_align_celeba", root / "img_align_celeba",
                            root / "Img" / "img_align_celeba"], want_dir=True)
    missing = []
    if part is None:
        missing.append(f"{root}/list_eval_partition.txt (or .csv, or under Eval/)")
    if imgs is None:
        missing.append(f"{root}/img_align_celeba/ (or under Img/)")
    if missing:
        raise DataError(f"CelebA at {root} has {attr.name} but lacks {' and '.join(missing)}; expected {LAYOUTS}")
    return {"attr": attr, "partition": part, "images": imgs}


def _is_kaggle_dataset_dir(d: Path) -> bool:
    return all((d / split / dom).is_dir() for split in KAGGLE_SPLITS.values() for dom in KAGGLE_DOMAINS.values())


def find_kaggle(root: Path) -> Path | None:
    """The folder holding Train/ and Test/ (each with Male/ and Female/): root or a folder up to 3 levels
    below it (ROOT/Dataset, ROOT/x/Dataset, ROOT/x/y/Dataset), breadth-first, 'Dataset' first per level."""
    if _is_kaggle_dataset_dir(root):
        return root
    level = [root]
    for _ in range(3):
        nxt = []
        for d in level:
            children = sorted((c for c in d.iterdir() if c.is_dir() and not c.name.startswith(".")),
                              key=lambda c: (c.name != "Dataset", c.name))
            for c in children:
                if _is_kaggle_dataset_dir(c):
                    return c
            nxt += children
        level = nxt
    return None


# --------------------------------------------------------------------------------------------------
# official lists


def _read_rows(path: Path) -> list[list[str]]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read CelebA list {path}: {e}") from None
    if path.suffix.lower() == ".csv":
        return [[c.strip() for c in row] for row in csv.reader(text.splitlines()) if row]
    return [line.split() for line in text.splitlines() if line.strip()]


def read_male_attribute(path: Path) -> dict[str, int]:
    """list_attr_celeba.txt (count line, names line, rows) or .csv (header row) -> {file name: +1 | -1}."""
    rows = _read_rows(path)
    if path.suffix.lower() == ".csv":
        if not rows:
            raise DataError(f"CelebA attribute list {path} is empty; expected a header row with 'Male'")
        names, body, first_line = rows[0][1:], rows[1:], 2
    else:
        if len(rows) < 2 or len(rows[0]) != 1 or not rows[0][0].isdigit():
            raise DataError(f"CelebA attribute list {path}: expected an image count on line 1 and the "
                            f"attribute names on line 2")
        names, body, first_line = rows[1], rows[2:], 3
        if int(rows[0][0]) != len(body):
            raise DataError(f"CelebA attribute list {path}: line 1 says {rows[0][0]} images but "
                            f"{len(body)} rows follow (truncated download?)")
    if "Male" not in names:
        raise DataError(f"CelebA attribute list {path} has no 'Male' attribute among its names")
    col = names.index("Male") + 1
    out = {}
    for k, row in enumerate(body):
        if len(row) != len(names) + 1 or row[col] not in ("1", "-1"):
            raise DataError(f"CelebA attribute list {path}, line {first_line + k}: expected a file name and "
                            f"{len(names)} values of 1 or -1, got {' '.join(row)[:80]!r}")
        out[row[0]] = int(row[col])
    return out


def read_partition(path: Path) -> dict[str, int]:
    """list_eval_partition.txt (``name 0|1|2``) or .csv (header ``image_id,partition``) -> {name: id}."""
    rows = _read_rows(path)
    if path.suffix.lower() == ".csv":
        rows = rows[1:]
    out = {}
    for k, row in enumerate(rows):
        if len(row) != 2 or row[1] not in ("0", "1", "2"):
            raise DataError(f"CelebA partition list {path}, row {k + 1}: expected 'file_name 0|1|2', "
                            f"got {' '.join(row)[:80]!r}")
        out[row[0]] = int(row[1])
    return out


# --------------------------------------------------------------------------------------------------
# building the pair


def _official_paths(found: dict[str, Path]) -> dict[tuple[str, str], list[Path]]:
    male = read_male_attribute(found["attr"])
    part = read_partition(found["partition"])
    out: dict[tuple[str, str], list[Path]] = {}
    for split, pid in PARTITIONS.items():
        names = sorted(n for n, p in part.items() if p == pid and n in male)
        out[("a", split)] = [found["images"] / n for n in names if male[n] == 1]
        out[("b", split)] = [found["images"] / n for n in names if male[n] == -1]
    return out


def _kaggle_paths(d: Path) -> dict[tuple[str, str], list[Path]]:
    return {(dom, split): list_images(d / KAGGLE_SPLITS[split] / KAGGLE_DOMAINS[dom])
            for dom in KAGGLE_DOMAINS for split in KAGGLE_SPLITS}


def build_celeba(root: str | Path, image_size: int = 64, limit: int | None = None, channels: int = 3) -> DomainPair:
    """CelebA male (A) -> female (B) from the official or the Kaggle layout under ``root`` (see module doc).

    Items are (channels, image_size, image_size) float32 in [-1, 1] (channels 3: RGB, 1: greyscale). Raises one DataError naming ``root`` and
    describing both layouts when neither is found, or naming the folder that is empty.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"CelebA root {root} does not exist or is not a folder; expected {LAYOUTS}")
    official = find_official(root)
    if official is not None:
        paths, layout, where = _official_paths(official), "official", official["images"]
    else:
        kaggle = find_kaggle(root)
        if kaggle is None:
            raise DataError(f"no CelebA layout found at {root}; expected {LAYOUTS}")
        paths, layout, where = _kaggle_paths(kaggle), "kaggle", kaggle
    datasets = {}
    for (dom, split), files in paths.items():
        what = f"CelebA {DOMAIN_NAMES[0 if dom == 'a' else 1]} {split} ({layout} layout at {where})"
        if not files:
            raise DataError(f"{what} has no images; expected {LAYOUTS}")
        datasets[(dom, split)] = ImageFiles(files, image_size, limit=limit, what=what, channels=channels)
    skipped = sum(len(ds.skipped) for ds in datasets.values())
    return DomainPair("celeba-m2f", DOMAIN_NAMES, image_size, datasets, f"CelebA {layout} layout at {where}",
                      {"layout": layout, "validation": "unused", "skipped_files": skipped}, channels)
