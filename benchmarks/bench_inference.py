"""Benchmark: which inference speed-ups pay for themselves at the demo's size, measured in one process.

1. The DDIB translate path (shipped weights, the demo's solver and steps): eager vs channels_last (networks and
   inputs) vs torch.compile vs both. For each: time of the first call (compilation or oneDNN set-up), steady
   images/s (median of alternating rounds), and the time of the demo's DDIB row (``--demo-images``: 256 inputs
   + 128 cycle translations) including that first call; a speed-up pays for itself when the last number beats
   eager's. Wall and CPU seconds of this process are both reported (on a shared machine, CPU seconds are
   what one uncontended thread would take; torch.compile's compile workers are other processes, so its
   first call counts in wall seconds only).
2. Inception pool3 features (the FID extractor) at several batch sizes per forward, with and without
   channels_last weights (translab.metrics.inception.CPU_MICRO_BATCH was chosen from this table).

    python benchmarks/bench_inference.py --threads 1 [--images 64] [--inception-images 256]

Prints two tables and writes them as JSON to ``--out`` (default docs/results/ddib_nfe/bench_inference.json).
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

from translab.shipped import resolve_run
from translab.training import load_method


def load_ddib(run: str, sampler: str, channels_last: bool, compile_: bool):
    """The shipped DDIB with ``sampler``, its inference nets in the requested memory format, optionally compiled."""
    method, cfg, _ = load_method(resolve_run(run))
    if sampler is not None:
        method.cfg.sampler = sampler
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for store in (method.nets, method.ema):
        for name in list(store.keys()):
            store[name] = store[name].to(memory_format=fmt)
            if compile_:
                store[name] = torch.compile(store[name])
    return method, cfg


class Clock:
    """Wall and CPU seconds of a block (CPU time of this process: on a shared machine it is the better
    measure of what one uncontended thread would take)."""

    def __enter__(self):
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall0, time.process_time() - self.cpu0


def time_translate(method, x: torch.Tensor, steps: int, batch_size: int) -> Clock:
    """Wall and CPU seconds to translate x (N, 3, H, W) a2b in batches."""
    with Clock() as clock:
        for i in range(0, x.shape[0], batch_size):
            method.translate(x[i:i + batch_size], "a2b", steps=steps)
    return clock


def ddib_variants(args, x: torch.Tensor, variants: list[tuple[bool, bool]]) -> list[dict]:
    """For each (channels_last, compile) variant: first-call seconds (set-up or compilation), then steady
    images/s measured in ``args.repeats`` rounds that alternate between the variants (the median is reported,
    so that a slow moment of a shared machine does not land on one variant only), and the demo row's estimated
    translation seconds (first call + the rest of ``args.demo_images`` at the steady rate)."""
    built = []
    for cl, comp in variants:
        method, _ = load_ddib(args.run, args.sampler, cl, comp)
        xv = x.contiguous(memory_format=torch.channels_last) if cl else x
        first = time_translate(method, xv[:args.batch_size], args.steps, args.batch_size)  # warm-up / compile
        built.append((cl, comp, method, xv, first))
    rates: dict[int, list[Clock]] = {i: [] for i in range(len(built))}
    for _ in range(args.repeats):
        for i, (_, _, method, xv, _) in enumerate(built):
            rates[i].append(time_translate(method, xv, args.steps, args.batch_size))
    rows = []
    for i, (cl, comp, _, _, first) in enumerate(built):
        wall = statistics.median(c.wall for c in rates[i])
        cpu = statistics.median(c.cpu for c in rates[i])
        rest = max(0, args.demo_images - args.batch_size) / x.shape[0]
        rows.append({"channels_last": cl, "compile": comp, "first_call_s": first.wall, "first_call_cpu_s": first.cpu,
                     "images_per_s": x.shape[0] / wall, "images_per_cpu_s": x.shape[0] / cpu,
                     "demo_row_translate_s": first.wall + rest * wall, "demo_row_translate_cpu_s": first.cpu + rest * cpu})
    return rows


def inception_variant(images: torch.Tensor, batch_size: int, channels_last: bool) -> dict:
    """Steady images/s of Inception features at ``batch_size`` (after one warm-up batch)."""
    from translab.metrics.inception import inception_features, load_inception

    model = copy.deepcopy(load_inception("cpu"))
    model.micro_batch = None  # measure the batch size given here, not the extractor's CPU micro-batch
    if not channels_last:
        model.net = model.net.to(memory_format=torch.contiguous_format)
    inception_features(model, images[:batch_size], batch_size)
    with Clock() as clock:
        inception_features(model, images, batch_size)
    return {"batch_size": batch_size, "channels_last": channels_last,
            "images_per_s": images.shape[0] / clock.wall, "images_per_cpu_s": images.shape[0] / clock.cpu}


def print_table(rows: list[dict]) -> None:
    keys = list(rows[0])
    width = max(len(k) for k in keys) + 1
    print(" ".join(f"{k:>{width}s}" for k in keys))
    for r in rows:
        print(" ".join(f"{v:>{width}.2f}" if isinstance(v, float) else f"{str(v):>{width}s}" for v in r.values()))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", default="cmnist-2to3/ddib")
    p.add_argument("--sampler", default=None, help="ODE solver (default: the shipped model's own)")
    p.add_argument("--steps", type=int, default=None, help="solver steps per chain (default: the model's own)")
    p.add_argument("--images", type=int, default=64, help="images per steady-state DDIB measurement")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--demo-images", type=int, default=256 + 128, help="DDIB translations in the demo's row")
    p.add_argument("--inception-images", type=int, default=128)
    p.add_argument("--inception-batches", default="8,16,32,64,128")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-compile", action="store_true")
    p.add_argument("--repeats", type=int, default=3, help="alternating rounds per steady-state measurement")
    p.add_argument("--out", default="docs/results/ddib_nfe/bench_inference.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.rand(args.images, 3, 32, 32) * 2 - 1
    variants = [(False, False), (True, False)] + ([] if args.skip_compile else [(False, True), (True, True)])
    ddib = ddib_variants(args, x, variants)
    print(f"\nDDIB translate ({args.sampler or 'its own solver'}, 2 x {args.steps or 'its own'} steps, batch {args.batch_size}, "
          f"{torch.get_num_threads()} thread(s)); demo row = {args.demo_images} translations incl. first call")
    print_table(ddib)
    imgs = torch.rand(args.inception_images, 3, 32, 32) * 2 - 1
    settings = [(int(b), True) for b in args.inception_batches.split(",")] + [(64, False)]
    runs = {k: [] for k in settings}
    for _ in range(args.repeats):  # alternate the settings, report each one's median rate
        for bs, cl in settings:
            runs[(bs, cl)].append(inception_variant(imgs, bs, cl))
    inception = [{"batch_size": bs, "channels_last": cl,
                  "images_per_s": statistics.median(r["images_per_s"] for r in runs[(bs, cl)]),
                  "images_per_cpu_s": statistics.median(r["images_per_cpu_s"] for r in runs[(bs, cl)])}
                 for bs, cl in settings]
    print(f"\nInception features ({args.inception_images} images, {torch.get_num_threads()} thread(s))")
    print_table(inception)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"threads": torch.get_num_threads(), "args": vars(args), "ddib": ddib,
                               "inception": inception}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
