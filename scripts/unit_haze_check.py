"""Diagnostic for RESULTS.md: UNIT-DDPM's background haze, and what the digit classifier reads once it is removed.

    python scripts/unit_haze_check.py RUN N

Translates the first N test 2s of RUN (a run directory or shipped name; seed 0, the model's own steps and
t_r) and prints: the mean over outputs of the median pixel brightness (of [0, 1]), the share that the shipped
cMNIST classifier reads as 3, and that share again after every pixel whose brightest channel is below 0.35
is set to black. Then the same for the first N real test 3s. Not a translab metric: a check of what the
target accuracy measures on hazy outputs.
"""
import sys

import torch

from translab.data import build_domain_pair
from translab.data.base import stack_dataset
from translab.metrics.classifier import classifier_outputs, load_classifier, shipped_classifier_path
from translab.metrics.color import median_brightness
from translab.shipped import resolve_run
from translab.training import load_method

HAZE_LEVEL = 0.35


def report(name: str, images: torch.Tensor, clf) -> None:
    """images (N, 3, H, W) in [-1, 1]."""
    unit = (images + 1) / 2
    brightness = median_brightness(images)
    _, pred = classifier_outputs(clf, images)
    keep = (unit.amax(1, keepdim=True) >= HAZE_LEVEL).float()
    _, pred_clean = classifier_outputs(clf, keep * images - (1 - keep))
    print(f"{name}: median brightness {brightness:.3f}; read as 3: {(pred == 3).float().mean():.3f}; "
          f"after haze removal: {(pred_clean == 3).float().mean():.3f}; classes 0-9 "
          f"{torch.bincount(pred, minlength=10).tolist()} -> {torch.bincount(pred_clean, minlength=10).tolist()}")


def main() -> None:
    run, n = sys.argv[1], int(sys.argv[2])
    torch.set_num_threads(1)
    method, cfg, info = load_method(resolve_run(run))
    pair = build_domain_pair(cfg.data)
    clf = load_classifier(shipped_classifier_path("cmnist"))
    x = stack_dataset(pair.get("a", "test"), n)
    with torch.no_grad():
        y = method.translate(x, "a2b", generator=torch.Generator().manual_seed(0)).images
    report(f"{run} (step {info['step']}) on the first {n} test 2s", y, clf)
    report(f"the first {n} real test 3s", stack_dataset(pair.get("b", "test"), n), clf)


if __name__ == "__main__":
    main()
