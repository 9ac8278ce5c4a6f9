"""Test fixtures (kept out of the package): small synthetic image sets written to disk in each real layout.

Domain A images are warm (red-orange) filled squares, domain B images cool (blue-cyan) filled discs, on a
dark background, so the two domains differ visibly and a test can tell them apart by colour alone
(A: red channel mean > blue channel mean; B: the opposite). CelebA sets are JPEG, folder pairs PNG.

Each writer returns ``{(domain, split): [file names]}`` (sorted), the files it wrote per domain and split.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from translab.data.cmnist import hsv_to_rgb

#: hue ranges in degrees: A warm, B cool
HUES = {"a": (0.0, 40.0), "b": (190.0, 240.0)}
SHAPES = {"a": "square", "b": "disc"}

#: the 40 attribute names of list_attr_celeba.txt, in the official order (Male is column 21)
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()


def draw_domain_image(domain: str, width: int, height: int, rng: np.random.Generator) -> Image.Image:
    """One RGB image (height x width) of domain 'a' (warm square) or 'b' (cool disc) on a dark background."""
    import torch

    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    side = min(width, height)
    r = rng.uniform(0.22, 0.32) * side
    cy = height / 2 + rng.uniform(-0.08, 0.08) * side
    cx = width / 2 + rng.uniform(-0.08, 0.08) * side
    if SHAPES[domain] == "square":
        mask = (np.abs(yy - cy) <= r) & (np.abs(xx - cx) <= r)
    else:
        mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    hue = float(rng.uniform(*HUES[domain]))
    value = np.where(mask, rng.uniform(0.8, 1.0), 0.08).astype(np.float32)
    rgb = hsv_to_rgb(torch.full(value.shape, hue), torch.full(value.shape, 0.9), torch.from_numpy(value))
    return Image.fromarray((rgb.numpy() * 255).round().astype(np.uint8), "RGB")


def _write(img: Image.Image, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        img.save(path, quality=95)
    else:
        img.save(path)


def make_folder_pair(root: str | Path, n: int = 6, size: int = 24, seed: int = 0) -> dict:
    """root/{trainA,trainB,testA,testB}/NNN.png, ``n`` square PNGs of side ``size`` per folder."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    written = {}
    for split in ("train", "test"):
        for dom in ("a", "b"):
            names = [f"{split}{dom.upper()}_{i:03d}.png" for i in range(n)]
            for name in names:
                _write(draw_domain_image(dom, size, size, rng), root / f"{split}{dom.upper()}" / name)
            written[(dom, split)] = names
    return written


def _celeba_plan(n: int, rng: np.random.Generator) -> list[tuple[str, int, str]]:
    """(file name, partition 0|1|2, domain) for n images per domain and partition, shuffled so that ids
    interleave males and females and partitions, as in the real lists."""
    plan = [(p, d) for p in (0, 1, 2) for d in ("a", "b") for _ in range(n)]
    order = rng.permutation(len(plan))
    return [(f"{k + 1:06d}.jpg", plan[j][0], plan[j][1]) for k, j in enumerate(order)]


def _written(plan) -> dict:
    """{(domain, split): sorted names} for train (partition 0) and test (partition 2)."""
    return {(d, s): sorted(name for name, p, dd in plan if p == pid and dd == d)
            for s, pid in (("train", 0), ("test", 2)) for d in ("a", "b")}


def make_celeba_official(root: str | Path, n: int = 4, size: tuple[int, int] = (36, 44), seed: int = 0) -> dict:
    """Official CelebA layout: root/img_align_celeba/*.jpg, list_attr_celeba.txt, list_eval_partition.txt.

    ``n`` images per domain in each partition (train 0, validation 1, test 2), of ``size`` = (width, height)
    (CelebA's aligned images are 178 x 218, taller than wide). Male = 1 for domain A, -1 for B; the other
    39 attributes are random. Returns {(domain, split): names} for train and test.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    plan = _celeba_plan(n, rng)
    for name, _, dom in plan:
        _write(draw_domain_image(dom, size[0], size[1], rng), root / "img_align_celeba" / name)
    male_col = CELEBA_ATTRIBUTES.index("Male")
    lines = [str(len(plan)), " ".join(CELEBA_ATTRIBUTES) + " "]
    for name, _, dom in plan:
        values = rng.choice([-1, 1], size=len(CELEBA_ATTRIBUTES))
        values[male_col] = 1 if dom == "a" else -1
        lines.append(name + " " + " ".join(f"{v:2d}" for v in values))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{name} {p}\n" for name, p, _ in plan))
    return _written(plan)


def make_celeba_kaggle(root: str | Path, n: int = 4, size: tuple[int, int] = (36, 44), seed: int = 0,
                       nested: str | None = None) -> dict:
    """Kaggle "gender recognition 200k images celeba" layout: [root/nested/]Dataset/{Train,Validation,Test}/
    {Male,Female}/*.jpg, ``n`` JPEGs per folder. Returns {(domain, split): names} for train and test."""
    base = Path(root) / nested if nested else Path(root)
    rng = np.random.default_rng(seed)
    written = {}
    k = 0
    for split, folder in (("train", "Train"), ("validation", "Validation"), ("test", "Test")):
        for dom, gender in (("a", "Male"), ("b", "Female")):
            names = []
            for _ in range(n):
                k += 1
                names.append(f"{k:06d}.jpg")
                _write(draw_domain_image(dom, size[0], size[1], rng), base / "Dataset" / folder / gender / names[-1])
            if split != "validation":
                written[(dom, split)] = names
    return written
