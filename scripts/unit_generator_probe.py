"""Diagnostic for UNIT-DDPM's joint training (issue 19): what the training-only generators have learnt.

    python scripts/unit_generator_probe.py RUN [RUN ...] [--limit N] [--threads 1]

For every checkpoint of each run (oldest first) it passes the first N test images of each domain through the
generators once, g_a2b(x^A) and g_b2a(x^B), and prints one line: step, training wall seconds, the share of
g_a2b(x^A) that the shipped cMNIST classifier reads as the target digit, their mean hue error (degrees), their
mean brightness in [0, 1] (near 0: the collapse to black images), the same share for g_b2a(x^B), and the L1
cycle error |g_b2a(g_a2b(x^A)) - x^A| (pixels in [-1, 1]). One network evaluation per image: cheap enough to
watch a training while it runs. Not the translation of Algorithm 2 (the generators serve training only):
`translab evaluate` or scripts/checkpoint_curve.py score that.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from translab.checkpoint import list_checkpoints
from translab.data import build_domain_pair
from translab.data.base import stack_dataset
from translab.metrics.classifier import classifier_outputs, load_classifier, shipped_classifier_path
from translab.metrics.color import hue_error, target_accuracy
from translab.training import load_method


@torch.no_grad()
def probe(ckpt: Path, x_a: torch.Tensor, x_b: torch.Tensor, digits: tuple[int, int], clf) -> dict:
    """One row for checkpoint ``ckpt``; x_a, x_b (N, 3, H, W) in [-1, 1] are test images of A and B."""
    method, _, info = load_method(ckpt)
    g_a2b, g_b2a = method.nets["g_a2b"].eval(), method.nets["g_b2a"].eval()
    fake_b, fake_a = g_a2b(x_a), g_b2a(x_b)
    _, pred_b = classifier_outputs(clf, fake_b)
    _, pred_a = classifier_outputs(clf, fake_a)
    return {"step": info["step"], "wall_s": round(float(info["wall_seconds"] or 0.0), 1),
            "a2b_target_accuracy": round(target_accuracy(pred_b, digits[1]), 4),
            "a2b_hue_error_deg": round(hue_error(x_a, fake_b)["mean_deg"], 2),
            "a2b_brightness": round(float(((fake_b + 1) / 2).mean()), 4),
            "b2a_target_accuracy": round(target_accuracy(pred_a, digits[0]), 4),
            "cycle_l1": round(float((g_b2a(fake_b) - x_a).abs().mean()), 4)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--limit", type=int, default=256)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    clf = load_classifier(shipped_classifier_path("cmnist"))
    for run in map(Path, args.runs):
        ckpts = list_checkpoints(run / "checkpoints")
        if not ckpts:
            raise SystemExit(f"error: no checkpoints in {run / 'checkpoints'}")
        _, cfg, _ = load_method(ckpts[-1])
        if cfg.method != "unit-ddpm" or cfg.data.dataset != "cmnist":
            raise SystemExit(f"error: {run} is a {cfg.method} run on {cfg.data.dataset}; expected unit-ddpm on cmnist")
        pair = build_domain_pair(cfg.data)
        x_a, x_b = stack_dataset(pair.get("a", "test"), args.limit), stack_dataset(pair.get("b", "test"), args.limit)
        print(f"{run}: first {x_a.shape[0]} test images per domain")
        print(" step  wall_s  a2b_acc  a2b_hue  a2b_bright  b2a_acc  cycle_l1")
        for ckpt in ckpts:
            r = probe(ckpt, x_a, x_b, (cfg.data.digit_a, cfg.data.digit_b), clf)
            print(f"{r['step']:5d}  {r['wall_s']:6.0f}  {r['a2b_target_accuracy']:7.3f}  {r['a2b_hue_error_deg']:7.2f}  "
                  f"{r['a2b_brightness']:10.4f}  {r['b2a_target_accuracy']:7.3f}  {r['cycle_l1']:8.4f}", flush=True)


if __name__ == "__main__":
    main()
