"""Colour faithfulness and pixel-space cost of a translation (Colored MNIST and other hue-coloured pairs).

- hue error: circular distance in degrees between the foreground hue of each input and of its translation
  (foreground_hue / hue_distance below). An output with no foreground (NaN hue) has lost
  the colour: it counts as the worst error, 180 degrees, in the reported mean and median, so a method that
  outputs black images cannot look faithful. The mean over the measurable outputs only, and the share
  without foreground, are reported beside it.
- transport cost: mean over images of the mean squared difference per pixel and channel between input and
  output, in [-1, 1] pixel units (the quadratic cost of neural OT, Korotin et al. ICLR 2023, averaged rather
  than summed over pixels, so that it does not grow with the image size).
- target accuracy: share of outputs that a classifier reads as the target class.
"""
from __future__ import annotations

import math

import torch


MSE_UNITS = "mean squared difference per pixel and channel, images in [-1, 1]"


def foreground_hue(images: torch.Tensor, threshold: float = 0.3) -> torch.Tensor:
    """Circular-mean hue in degrees of the bright pixels of each image.

    images (N, 3, H, W) in [-1, 1] -> (N,) degrees in [0, 360); ValueError for other channel counts (greyscale). Pixels whose value (max channel, in [0, 1])
    is below ``threshold`` are background; each foreground pixel's hue is weighted by value x saturation,
    so grey or dark pixels barely count. An image with no foreground gets NaN.
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"hue needs RGB images (N, 3, H, W), got {tuple(images.shape)}; greyscale images have no "
                         f"hue (translab.evaluation leaves hue error out for them)")
    x = (images.float().clamp(-1, 1) + 1.0) / 2.0
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    mx, _ = x.max(dim=1)
    mn, _ = x.min(dim=1)
    delta = mx - mn
    safe = torch.where(delta > 1e-6, delta, torch.ones_like(delta))
    hr = ((g - b) / safe) % 6.0
    hg = (b - r) / safe + 2.0
    hb = (r - g) / safe + 4.0
    h = torch.where(mx == r, hr, torch.where(mx == g, hg, hb)) * 60.0
    weight = (mx >= threshold).float() * delta
    ang = torch.deg2rad(h)
    c = (weight * torch.cos(ang)).sum(dim=(1, 2))
    s = (weight * torch.sin(ang)).sum(dim=(1, 2))
    hue = torch.rad2deg(torch.atan2(s, c)) % 360.0
    return torch.where(weight.sum(dim=(1, 2)) > 1e-6, hue, torch.full_like(hue, float("nan")))


def hue_distance(h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
    """Circular distance in degrees, in [0, 180]."""
    d = (h1 - h2).abs() % 360.0
    return torch.minimum(d, 360.0 - d)


def hue_error(inputs: torch.Tensor, outputs: torch.Tensor) -> dict:
    """inputs, outputs (N, 3, H, W) in [-1, 1] -> hue error summary.

    {"mean_deg", "median_deg" (over every input with a foreground; an output without one counts 180),
     "measured_mean_deg" (over pairs where both hues exist), "n_measured", "no_foreground_share" (share of
     outputs with no foreground), "no_foreground_inputs" (count)}. NaN where nothing can be measured.
    """
    if inputs.shape != outputs.shape:
        raise ValueError(f"inputs {tuple(inputs.shape)} and outputs {tuple(outputs.shape)} differ in shape")
    h_in, h_out = foreground_hue(inputs), foreground_hue(outputs)
    has_in = ~h_in.isnan()
    ok = has_in & ~h_out.isnan()
    d = hue_distance(h_in[ok], h_out[ok])
    n = int(ok.sum())
    scored = torch.full((int(has_in.sum()),), 180.0)  # inputs with a hue: lost colour = the worst error
    scored[ok[has_in]] = d.float()
    return {
        "mean_deg": float(scored.mean()) if len(scored) else math.nan,
        "median_deg": float(scored.median()) if len(scored) else math.nan,
        "measured_mean_deg": float(d.mean()) if n else math.nan,
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


def median_brightness(images: torch.Tensor) -> float:
    """images (N, C, H, W) in [-1, 1] -> mean over images of each image's median pixel brightness (mean over
    channels), in [0, 1]: the background level of sparse images such as digits (0 for clean black backgrounds;
    the haze figure of scripts/unit_haze_check.py and scripts/unit_haze_chain.py, a diagnostic)."""
    return ((images + 1) / 2).mean(1).flatten(1).median(dim=1).values.mean().item()


def target_accuracy(predicted: torch.Tensor, target: int) -> float:
    """Share of predicted labels (N,) equal to ``target``."""
    return float((predicted == int(target)).float().mean()) if predicted.numel() else math.nan
