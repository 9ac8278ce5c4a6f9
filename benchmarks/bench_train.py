"""Benchmark: does train.compile pay for itself? The real training loop, eager against torch.compile'd.

For one method and preset it trains ``--steps`` steps twice into throw-away run directories with the shared
training loop (EMA, clipping and schedules included; no sample grids, one checkpoint at the end), once eager
and once with ``train.compile=true``, and prints for each
- the time to the end of the first step (for the compiled run: the compile warm-up),
- the median seconds per step after ``--warmup`` steps,
- the steps after which compiling has paid for its warm-up,
- the projected wall time of the preset's own ``train.steps``.

    python benchmarks/bench_train.py [--method unit-ddpm] [--preset cmnist-2to3] [--steps 60] [--threads 2]

The two runs share the process, one after the other, so their ratio is what to read on a noisy machine.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from translab.config import resolve_config
from translab.training import train


def step_times(cfg, steps: int) -> list[float]:
    """Seconds from the start of ``train`` to the end of each of ``steps`` steps (list of length steps)."""
    ends: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train(cfg, tmp, on_step=lambda step, method: ends.append(time.perf_counter() - t0))
    return ends


def summarise(ends: list[float], warmup: int) -> tuple[float, float]:
    """(seconds to the end of step 1, median seconds per step after ``warmup`` steps)."""
    per_step = [b - a for a, b in zip(ends[warmup - 1:], ends[warmup:])]
    return ends[0], statistics.median(per_step)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="unit-ddpm")
    ap.add_argument("--preset", default="cmnist-2to3")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--warmup", type=int, default=5, help="steps left out of the per-step median")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if args.steps <= args.warmup + 1:
        ap.error(f"--steps ({args.steps}) must exceed --warmup + 1 ({args.warmup + 1})")

    common = [f"train.steps={args.steps}", f"train.threads={args.threads}", "train.progress=false",
              "train.sample_every=0", f"train.checkpoint_every={args.steps}"]
    preset_steps = resolve_config(args.method, args.preset).train.steps
    print(f"{args.method}/{args.preset}: {args.steps} steps per run, {args.threads} threads, torch {torch.__version__}")
    rows = {}
    for label, extra in (("eager", "train.compile=false"), ("compiled", "train.compile=true")):
        cfg = resolve_config(args.method, args.preset, overrides=common + [extra])
        first, per_step = summarise(step_times(cfg, args.steps), args.warmup)
        rows[label] = (first, per_step)
        print(f"{label:>9s}: first step ends at {first:6.1f} s, then {per_step:.3f} s/step; "
              f"{preset_steps} steps ~ {(first + per_step * (preset_steps - 1)) / 60:.0f} min")
    (fe, se), (fc, sc) = rows["eager"], rows["compiled"]
    print(f"speed-up per step: {se / sc:.2f}x")
    if sc < se:
        print(f"compiling pays for its warm-up after {max(fc - fe, 0.0) / (se - sc):.0f} steps")
    else:
        print("compiling does not pay: its steps are not faster")


if __name__ == "__main__":
    main()
