"""Image files on disk as a lazy Dataset of (C, S, S) float tensors in [-1, 1], C = 3 (RGB) or 1 (greyscale).

Every image goes through one pipeline (:func:`load_image`): open with PIL, apply the EXIF orientation,
convert any mode to RGB (greyscale, palette, 16-bit ``I;16``/``I``, RGBA/LA composited on black), crop the
centre square, resize to S x S (bilinear, antialiased), map [0, 1] -> [-1, 1]. With ``channels=1`` the
conversion goes one step further, to PIL's "L" (after the same compositing on black; 16/32-bit greyscale
stays in float), and items are (1, S, S).

Bad files never stop a run: :class:`ImageFiles` scans its files once when built and skips zero-byte files,
files PIL cannot identify, unreadable files and truncated/corrupt files, with one warning that names them.
Modest sets are fully decoded by the scan; very large ones (e.g. all of CelebA) get a lighter scan (headers
only, or existence and size only; see FULL_SCAN_MAX_FILES). A file that still fails later (missed by a
light scan, or changed on disk) is replaced by the next good one at ``__getitem__`` time and recorded in
``skipped``. Decompression bombs (more pixels than :data:`MAX_IMAGE_PIXELS`) are skipped like the other bad
files, with the claimed size as the reason; :func:`load_image` on its own refuses them with an
:class:`ImageTooLargeError` (a DataError) naming the file.
"""
from __future__ import annotations

import os
import re
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch.utils.data import Dataset

from translab.data.base import DataError, check_channels

#: file name endings read as images (compared case-insensitively)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

#: images with more pixels than this are refused as decompression bombs; PIL's own default
#: ``Image.MAX_IMAGE_PIXELS`` (1024**3 // 4 // 3 = 89,478,485 pixels, about 256 MiB as 24-bit RGB).
MAX_IMAGE_PIXELS = 1024 * 1024 * 1024 // 4 // 3

#: scan depth chosen by ImageFiles(scan="auto") from the number of files it keeps: up to
#: FULL_SCAN_MAX_FILES are fully decoded (finds truncated files, ~1 ms each), up to HEADER_SCAN_MAX_FILES
#: have their headers read (format, size, bomb check), more (e.g. all of CelebA's 160k train images) are
#: only checked for existence and non-zero size. Whatever a lighter scan misses falls back at __getitem__.
FULL_SCAN_MAX_FILES = 5000
HEADER_SCAN_MAX_FILES = 50_000
SCAN_LEVELS = ("stat", "header", "full")

#: how many bad files a warning names before it only counts the rest
WARN_NAMES = 5


class SkippedImagesWarning(UserWarning):
    """Some image files were skipped (zero bytes, not an image, unreadable, truncated or too large)."""


class ImageTooLargeError(DataError):
    """An image above MAX_IMAGE_PIXELS (a possible decompression bomb); ``reason`` says why without the path."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"refusing image {path}: {reason}; expected an ordinary photo or drawing")
        self.path, self.reason = path, reason


# --------------------------------------------------------------------------------------------------
# listing


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder`` (see IMAGE_EXTENSIONS, any case), sorted by file name.

    Hidden files (leading dot, e.g. macOS ``._x.jpg``) are ignored. The folder must exist (caller checks).
    """
    folder = Path(folder)
    out = [p for p in folder.iterdir()
           if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()]
    return sorted(out, key=lambda p: p.name)


def output_names(paths: list[Path]) -> list[str]:
    """Names for outputs: the file stems; a stem shared by several files gets its extension appended.

    Stems pass through translab.paths.safe_name first (so names are safe file names, kept verbatim by the
    writers), and names are unique ignoring case, so that no output overwrites another even on
    case-insensitive file systems or when two stems sanitise alike ('a b' and 'a_b').
    """
    from translab.paths import unique_names

    stems = [safe_name_stem(p) for p in paths]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    names = [f"{s}_{p.suffix.lstrip('.').lower()}" if counts[s] > 1 else s for s, p in zip(stems, paths)]
    return unique_names(names)  # still clashing (e.g. a.png and a.PNG): numbered _2, _3, ...


def safe_name_stem(path: Path) -> str:
    """A safe output stem for ``path``: accented Latin letters lose their accents first ('é' -> 'e'), so that
    'café.png' becomes 'cafe' rather than 'caf_'; what has no ASCII form is replaced by translab.paths.safe_name."""
    from translab.paths import safe_name

    plain = unicodedata.normalize("NFKD", path.stem)
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return safe_name(plain)


# --------------------------------------------------------------------------------------------------
# opening and converting one file


def _bomb_error(path: Path, size: tuple[int, int] | None, pil_error: Exception | None = None) -> ImageTooLargeError:
    """The refusal of ``path``: its claimed size (w, h), or the pixel count in PIL's own bomb message."""
    if size:
        dims = f"{size[0]} x {size[1]} = {size[0] * size[1]:,} pixels"
    else:
        found = re.search(r"Image size \((\d+) pixels\)", str(pil_error))
        dims = f"{int(found.group(1)):,} pixels" if found else "a size above PIL's limit"
    return ImageTooLargeError(path, f"it claims {dims}, more than the limit of {MAX_IMAGE_PIXELS:,} pixels "
                                    f"(possible decompression bomb)")


def open_image(path: str | Path, decode: bool = True) -> Image.Image:
    """Open ``path`` with PIL, refusing decompression bombs; decode all pixels if ``decode``.

    Raises ImageTooLargeError (a DataError) for images above MAX_IMAGE_PIXELS; PIL's own errors
    (UnidentifiedImageError, OSError for truncated data, ...) pass through for the caller to classify.
    """
    path = Path(path)
    with warnings.catch_warnings():
        # PIL warns above its limit and raises above twice its limit; both are refusals here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise _bomb_error(path, None, e) from None
        w, h = im.size
        if w * h > MAX_IMAGE_PIXELS:  # read at call time, so tests may lower it
            im.close()
            raise _bomb_error(path, (w, h))
        if decode:
            try:
                im.load()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                im.close()
                raise _bomb_error(path, (w, h)) from None
            except BaseException:
                im.close()
                raise
    return im


def is_high_depth(mode: str) -> bool:
    """16-bit and 32-bit greyscale modes, which must not be squeezed through 8 bits."""
    return mode.startswith("I;16") or mode in ("I", "F")


def high_depth_grey(im: Image.Image) -> np.ndarray:
    """A 16/32-bit greyscale PIL image -> float32 (H, W) in [0, 1].

    ``I;16*`` is scaled by 1/65535; 32-bit ``I`` by 1/65535 when its maximum exceeds 255 (a 16-bit source,
    the usual case) and by 1/255 otherwise; float ``F`` is read as [0, 1] when its maximum is at most 1,
    else as [0, 255].
    """
    grey = np.asarray(im, dtype=np.float64)
    finite = np.isfinite(grey)
    top = grey[finite].max(initial=0)  # float files may hold NaN/inf: they must not pick the scale
    if im.mode.startswith("I;16"):
        scale = 65535.0
    elif im.mode == "I":
        scale = 65535.0 if top > 255 else 255.0
    else:
        scale = 1.0 if top <= 1.0 else 255.0
    # NaN -> 0 (black), +inf -> 1, -inf -> 0: a broken float pixel never reaches a network as NaN
    grey = np.nan_to_num(grey / scale, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(grey, 0.0, 1.0).astype(np.float32)


def to_rgb8(im: Image.Image) -> Image.Image:
    """Any 8-bit PIL mode -> RGB. Transparent modes (RGBA, LA, PA, palette with transparency) are
    composited on opaque black, i.e. rgb * alpha."""
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        black = Image.new("RGBA", im.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, im.convert("RGBA")).convert("RGB")
    return im if im.mode == "RGB" else im.convert("RGB")


def to_grey8(im: Image.Image) -> Image.Image:
    """Any 8-bit PIL mode -> "L": transparent modes are composited on opaque black first (as in to_rgb8), then
    PIL's ITU-R 601-2 luma, L = (299 R + 587 G + 114 B) / 1000; an "L" image is returned as is."""
    return im if im.mode == "L" else to_rgb8(im).convert("L")


def centre_square_box(width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred square of side min(width, height)."""
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def load_image(path: str | Path, size: int, channels: int = 3) -> torch.Tensor:
    """One image file -> (channels, size, size) float32 in [-1, 1]; channels 3 (RGB) or 1 (greyscale, PIL's "L").
    Raises PIL/OS errors for bad files.

    Centre square crop, then bilinear resize with antialiasing: PIL's BILINEAR (its filter widens with the
    downscale factor) on 8-bit RGB or L, torch's ``interpolate(antialias=True)`` (which mirrors PIL) on 16/32-bit
    greyscale, kept in float so no precision is lost.
    """
    check_channels(channels)
    with open_image(path, decode=True) as im:
        im = ImageOps.exif_transpose(im)
        square = im.crop(centre_square_box(*im.size))
        if is_high_depth(square.mode):
            grey = torch.from_numpy(high_depth_grey(square))
            side = grey.shape[0]
            x = grey[None, None].expand(1, channels, side, side)
            if side != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
            return (x[0].clamp(0.0, 1.0) * 2.0 - 1.0).contiguous()
        converted = to_rgb8(square) if channels == 3 else to_grey8(square)
        if converted.size != (size, size):
            converted = converted.resize((size, size), Image.Resampling.BILINEAR)
        arr = np.asarray(converted, dtype=np.uint8)
    pixels = torch.from_numpy(arr.copy())
    pixels = pixels.permute(2, 0, 1) if pixels.ndim == 3 else pixels[None]  # (H, W, 3) or (H, W) -> (C, H, W)
    return pixels.float().div(127.5).sub(1.0).contiguous()


def classify_failure(path: Path, level: str = "full") -> str | None:
    """Why ``path`` cannot be used (a short reason), or None if it passes the scan ``level``: "stat"
    (exists, not empty), "header" (also PIL identifies it and its size is allowed), "full" (also decodes).
    """
    try:
        if os.path.getsize(path) == 0:
            return "empty file (0 bytes)"
    except OSError as e:
        return f"unreadable ({e.strerror or type(e).__name__})"
    if level == "stat":
        return None
    try:
        with open_image(path, decode=level == "full"):
            pass
    except ImageTooLargeError as e:
        return f"too large: {e.reason}"
    except UnidentifiedImageError:
        return "not an image (PIL cannot identify it)"
    except PermissionError as e:
        return f"unreadable ({e.strerror or 'permission denied'})"
    except Exception as e:  # truncated or corrupt data: OSError, SyntaxError, ValueError, EOFError, zlib.error
        return f"truncated or corrupt ({type(e).__name__}: {e})"
    return None


# --------------------------------------------------------------------------------------------------
# the dataset


def auto_scan_level(n: int) -> str:
    """Scan level for n files: "full", "header" or "stat" (see FULL_SCAN_MAX_FILES)."""
    return "full" if n <= FULL_SCAN_MAX_FILES else "header" if n <= HEADER_SCAN_MAX_FILES else "stat"


class ImageFiles(Dataset):
    """Lazy dataset over image files: item i is (channels, size, size) float32 in [-1, 1].

    Args:
        paths: candidate image files, in the order the dataset should keep.
        size: side S of the output squares.
        limit: keep at most this many good files (the first ones in ``paths`` order).
        scan: "full" decodes every file when built (finds truncated files), "header" only reads headers,
            "stat" only checks that files exist and are not empty; "auto" picks by the number of files
            kept (min(len(paths), limit)): "full" up to FULL_SCAN_MAX_FILES, "header" up to
            HEADER_SCAN_MAX_FILES, "stat" above.
        what: words naming these files in messages (e.g. "domain A (trainA)").
        channels: 3 (RGB) or 1 (greyscale, PIL's "L"; see load_image).

    Attributes: ``paths`` (the good files), ``names`` (output names, file stems), ``skipped`` (list of
    (path, reason) for every file left out, at scan time or later). Raises DataError if no file is usable.
    """

    def __init__(self, paths: list[str | Path], size: int, limit: int | None = None, scan: str = "auto",
                 what: str | None = None, channels: int = 3):
        if scan not in ("auto",) + SCAN_LEVELS:
            raise DataError(f"scan must be 'auto' or one of {SCAN_LEVELS}, got {scan!r}")
        if not isinstance(size, int) or size < 1:
            raise DataError(f"image size must be a positive integer, got {size!r}")
        self.size = size
        self.channels = check_channels(channels)
        self.what = what or "image files"
        candidates = [Path(p) for p in paths]
        self.scan = scan if scan != "auto" else auto_scan_level(len(candidates) if limit is None
                                                                else min(limit, len(candidates)))
        good: list[Path] = []
        self.skipped: list[tuple[Path, str]] = []
        for p in candidates:
            if limit is not None and len(good) >= limit:
                break
            reason = classify_failure(p, self.scan)
            if reason is None:
                good.append(p)
            else:
                self.skipped.append((p, reason))
        if self.skipped:
            warnings.warn(describe_skipped(self.skipped, self.what), SkippedImagesWarning, stacklevel=2)
        if not good:
            raise DataError(f"no readable image among the {len(candidates)} file(s) of {self.what}"
                            + (f"; {describe_skipped(self.skipped, self.what)}" if self.skipped else "")
                            + f"; expected image files ({', '.join(IMAGE_EXTENSIONS)})")
        self.paths = good
        self.names = output_names(good)
        self._warned_late = False
        self._bad: set[int] = set()  # indices that failed at __getitem__ (per process)

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, i: int) -> str:
        return self.names[i]

    def __getitem__(self, i: int) -> torch.Tensor:
        n = len(self.paths)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} images")
        i %= n
        for k in range(n):  # on failure fall back to the next file, never crash mid-epoch
            j = (i + k) % n
            if j in self._bad:
                continue
            p = self.paths[j]
            try:
                return load_image(p, self.size, self.channels)
            except Exception as e:
                self._skip_late(j, e)
        raise DataError(f"none of the {n} images of {self.what} can be loaded any more (first: {self.paths[0]})")

    def _skip_late(self, j: int, error: Exception) -> None:
        """Record file j as bad after a failure at __getitem__ time (warns once per dataset)."""
        if isinstance(error, DataError) and not isinstance(error, ImageTooLargeError):
            raise error
        p = self.paths[j]
        why = f"too large: {error.reason}" if isinstance(error, ImageTooLargeError) else \
            f"{type(error).__name__}: {error}"
        self._bad.add(j)
        self.skipped.append((p, f"failed when loaded ({why})"))
        if not self._warned_late:
            self._warned_late = True
            warnings.warn(f"{self.what}: {p} failed when loaded ({why}); using the next image instead "
                          f"(further failures are recorded in .skipped)", SkippedImagesWarning, stacklevel=3)


def describe_skipped(skipped: list[tuple[Path, str]], what: str) -> str:
    """One message naming the first WARN_NAMES skipped files with reasons, and the total count."""
    shown = "; ".join(f"{p} ({r})" for p, r in skipped[:WARN_NAMES])
    more = f"; and {len(skipped) - WARN_NAMES} more" if len(skipped) > WARN_NAMES else ""
    return f"skipped {len(skipped)} unusable file(s) in {what}: {shown}{more}"


def image_folder_dataset(folder: str | Path, size: int, limit: int | None = None, channels: int = 3) -> ImageFiles:
    """All images directly inside ``folder`` as a lazy ImageFiles dataset (names = file stems) of
    (channels, size, size) items.

    Raises DataError if the folder is missing, is not a folder, or holds no readable image.
    """
    folder = Path(folder)
    expected = f"a folder of image files ({', '.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)})"
    if not folder.exists():
        raise DataError(f"input folder {folder} does not exist; expected {expected}")
    if not folder.is_dir():
        raise DataError(f"input {folder} is not a folder; expected {expected}")
    paths = list_images(folder)
    if not paths:
        raise DataError(f"input folder {folder} contains no image files; expected {expected}")
    return ImageFiles(paths, size, limit=limit, what=f"folder {folder}", channels=channels)


def load_image_folder(folder: str | Path, size: int, limit: int | None = None,
                      channels: int = 3) -> tuple[torch.Tensor, list[str]]:
    """(images (N, channels, size, size) float32 in [-1, 1], names) of the images directly inside ``folder``.

    Used by `translab translate --input DIR`; names are the file stems (for output file names), in sorted
    file-name order. Bad files are skipped with one warning; raises DataError if the folder is missing or
    holds no readable image (see image_folder_dataset).
    """
    ds = image_folder_dataset(folder, size, limit, channels)
    images = torch.stack([ds[i] for i in range(len(ds))])
    return images, list(ds.names)


@dataclass
class FolderImages:
    """The readable images of a folder with where each came from, and the files left out."""

    images: torch.Tensor  # (N, C, S, S) float32 in [-1, 1], C = 1 or 3
    names: list[str]  # output name (a safe file stem) of each image
    files: list[Path]  # the input file of each image
    skipped: list[tuple[Path, str]]  # (file, reason) of every file left out


def read_image_folder(folder: str | Path, size: int, limit: int | None = None, channels: int = 3) -> FolderImages:
    """Like load_image_folder (images (N, channels, size, size)), but bad files (empty, not images, truncated, too large, failing when decoded)
    are only listed in ``skipped``, without a warning: the caller reports them. ``limit`` keeps the first N
    readable files. Raises DataError if the folder is missing or holds no readable image."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkippedImagesWarning)
        ds = image_folder_dataset(folder, size, limit, channels)
    skipped = list(ds.skipped)
    images, keep = [], []
    for i, path in enumerate(ds.paths):
        try:
            images.append(load_image(path, size, channels))
            keep.append(i)
        except ImageTooLargeError as e:
            skipped.append((path, f"too large: {e.reason}"))
        except DataError:
            raise
        except Exception as e:  # changed on disk since the scan, or missed by a light scan
            skipped.append((path, f"failed when loaded ({type(e).__name__}: {e})"))
    if not images:
        raise DataError(f"no readable image in folder {folder}; {describe_skipped(skipped, f'folder {folder}')}")
    return FolderImages(torch.stack(images), [ds.names[i] for i in keep], [ds.paths[i] for i in keep], skipped)
