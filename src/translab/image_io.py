"""Image IO below every layer: tensors in [-1, 1] to uint8 arrays, grids of rows as one PNG, one PNG per image.

Images are (N, C, H, W) with C = 3 (RGB) or 1 (greyscale): grids are always RGB (a greyscale image shows as its
grey level in all three channels), per-image PNGs keep the channel count (mode "RGB" or "L")."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def as_rgb(images: torch.Tensor) -> torch.Tensor:
    """(..., C, H, W) with C = 3 -> the same tensor; with C = 1 -> (..., 3, H, W), the grey channel repeated
    three times (an expanded view, values unchanged). ValueError for any other C."""
    c = images.shape[-3] if images.ndim >= 3 else None
    if c == 3:
        return images
    if c == 1:
        return images.expand(*images.shape[:-3], 3, *images.shape[-2:])
    raise ValueError(f"expected images (..., 1 or 3, H, W), got shape {tuple(images.shape)}")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) uint8 (C = 3 or 1 kept as is)."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def grid_array(rows: list[torch.Tensor], pad: int = 2, scale: int = 1) -> np.ndarray:
    """Rows of images (each (N_i, C, H, W), C = 3 or 1, in [-1, 1]) -> one (H_total, W_total, 3) uint8 array,
    white padding; greyscale rows are drawn grey (as_rgb)."""
    h, w = rows[0].shape[-2:]
    ncol = max(r.shape[0] for r in rows)
    out = np.full((len(rows) * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        arr = to_uint8(as_rgb(r))
        for j in range(arr.shape[0]):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            out[y:y + h, x:x + w] = arr[j]
    if scale > 1:
        out = out.repeat(scale, axis=0).repeat(scale, axis=1)
    return out


def save_grid(rows: list[torch.Tensor], path: str | Path, scale: int = 2) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid_array(rows, scale=scale)).save(path)
    return path


def save_images(images: torch.Tensor, folder: str | Path, names: list[str]) -> list[Path]:
    """One PNG per image of (N, C, H, W) in [-1, 1], ``folder/name.png``: RGB for C = 3, greyscale ("L") for
    C = 1. Names are sanitised to stay inside ``folder``."""
    from translab.paths import unique_names

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for arr, name in zip(to_uint8(images), unique_names(list(names))):
        p = folder / f"{name}.png"
        Image.fromarray(arr[:, :, 0] if arr.shape[-1] == 1 else arr).save(p)
        out.append(p)
    return out
