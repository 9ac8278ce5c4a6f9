"""Image IO below every layer: tensors in [-1, 1] to uint8 arrays, grids of rows as one PNG, one PNG per image."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def grid_array(rows: list[torch.Tensor], pad: int = 2, scale: int = 1) -> np.ndarray:
    """Rows of images (each (N_i, 3, H, W)) -> one (H_total, W_total, 3) uint8 array, white padding."""
    h, w = rows[0].shape[-2:]
    ncol = max(r.shape[0] for r in rows)
    out = np.full((len(rows) * (h + pad) + pad, ncol * (w + pad) + pad, 3), 255, np.uint8)
    for i, r in enumerate(rows):
        arr = to_uint8(r)
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
    """One PNG per image, ``folder/name.png``; names are sanitised to stay inside ``folder``."""
    from translab.paths import unique_names

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for arr, name in zip(to_uint8(images), unique_names(list(names))):
        p = folder / f"{name}.png"
        Image.fromarray(arr).save(p)
        out.append(p)
    return out
