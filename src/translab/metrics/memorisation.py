"""Does a translator copy its training targets? Nearest-training-image distances, against a held-out baseline.

For each output, the mean squared pixel distance to its nearest image among the target domain's *training*
images; the same for each real *test* target image, which no model saw, is the baseline. The ratio of the two
medians is below 1 when outputs sit nearer to training images than fresh real images do: the outputs are (near)
copies of training targets, the memorisation diagnostic of Somepalli et al. (CVPR 2023) and Carlini et al.
(USENIX Security 2023) in its simplest form, pixel space. ``copy_share`` is the share of outputs nearer to a
training image than the nearest 5% of the held-out real images are (a real image that close is rare).
"""
from __future__ import annotations

import torch

from translab.metrics.color import MSE_UNITS


def nearest_distances(queries: torch.Tensor, bank: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """(N, ...) queries, (M, ...) bank -> (N,) float64: each query's mean squared distance to its nearest bank row
    (float32 distances)."""
    if queries.shape[1:] != bank.shape[1:] or bank.shape[0] == 0:
        raise ValueError(f"nearest distances need queries and a non-empty bank of one image shape, got "
                         f"{tuple(queries.shape)} and {tuple(bank.shape)}")
    b = bank.flatten(1).float()
    dim = b.shape[1]
    out = []
    for q in queries.flatten(1).float().split(chunk):
        out.append(torch.cdist(q, b).min(dim=1).values.double().pow(2) / dim)
    return torch.cat(out)


def memorisation(outputs: torch.Tensor, train_targets: torch.Tensor, test_targets: torch.Tensor) -> dict:
    """Nearest-training-target distances of outputs against those of held-out real targets (module doc)."""
    d_out = nearest_distances(outputs, train_targets)
    d_real = nearest_distances(test_targets, train_targets)
    med_out, med_real = float(d_out.median()), float(d_real.median())
    rare = float(torch.quantile(d_real, 0.05))
    return {"available": True, "median_output": med_out, "median_real_test": med_real,
            "ratio": med_out / med_real if med_real > 0 else None,
            "copy_share": float((d_out < rare).float().mean()), "copy_threshold": rare,
            "n_outputs": int(outputs.shape[0]), "n_train": int(train_targets.shape[0]),
            "n_real_test": int(test_targets.shape[0]), "units": MSE_UNITS,
            "note": "ratio < 1: outputs nearer to training targets than held-out real targets are"}
