"""Colour faithfulness and pixel-space cost of a translation (Colored MNIST and other hue-coloured pairs).

- hue error: circular distance in degrees between the foreground hue of each input and of its translation
  (translab.data.cmnist.foreground_hue / hue_distance). Outputs with no foreground (NaN hue) cannot be
  measured: they are left out of the mean and their share is reported separately.
- transport cost: mean over images of the mean squared difference per pixel and channel between input and
  output, in [-1, 1] pixel units (the quadratic cost of neural OT, Korotin et al. ICLR 2023, averaged rather
  than summed over pixels, so that it does not grow with the image size).
- target accuracy: share of outputs that a classifier reads as the target class.
"""
from __future__ import annotations

import math

import torch

from translab.data.cmnist import foreground_hue, hue_distance


def hue_error(inputs: torch.Tensor, outputs: torch.Tensor) -> dict:
    """inputs, outputs (N, 3, H, W) in [-1, 1] -> hue error summary.

    {"mean_deg", "median_deg" (over pairs where both hues exist; NaN when none), "n_measured",
     "no_foreground_share" (share of outputs with no foreground), "no_foreground_inputs" (count)}.
    """
    if inputs.shape != outputs.shape:
        raise ValueError(f"inputs {tuple(inputs.shape)} and outputs {tuple(outputs.shape)} differ in shape")
    h_in, h_out = foreground_hue(inputs), foreground_hue(outputs)
    ok = ~(h_in.isnan() | h_out.isnan())
    d = hue_distance(h_in[ok], h_out[ok])
    n = int(ok.sum())
    return {
        "mean_deg": float(d.mean()) if n else math.nan,
        "median_deg": float(d.median()) if n else math.nan,
        "n_measured": n,
        "no_foreground_share": float(h_out.isnan().float().mean()) if len(h_out) else math.nan,
        "no_foreground_inputs": int(h_in.isnan().sum()),
    }


def mean_squared_distance(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over images of mean((x - y)^2) per pixel and channel; x, y (N, 3, H, W) in [-1, 1]."""
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    return float((x.float() - y.float()).pow(2).flatten(1).mean(1).mean())


def transport_cost(inputs: torch.Tensor, outputs: torch.Tensor) -> float:
    """Mean squared pixel distance between inputs and their translations, [-1, 1] units (see module doc)."""
    return mean_squared_distance(inputs, outputs)


def target_accuracy(predicted: torch.Tensor, target: int) -> float:
    """Share of predicted labels (N,) equal to ``target``."""
    return float((predicted == int(target)).float().mean()) if predicted.numel() else math.nan
