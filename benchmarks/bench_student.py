"""Benchmark: the one-step student's throughput against its teacher's, measured in one process.

Both translate the same batch of test 2s (A -> B) at their own defaults, in alternating rounds (teacher,
student, teacher, ...), so that a busy machine slows both alike; the figure is the median images/s of each over
its rounds and their ratio. Wall seconds of one thread by default: on a shared machine, compare the ratio, not
the absolute figures.

    python benchmarks/bench_student.py --student cmnist-2to3/distill --teacher cmnist-2to3/ddib --threads 1

Prints a table and writes it as JSON to ``--out`` (default docs/results/distill/bench_student.json).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from translab.data import build_domain_pair
from translab.data.base import stack_dataset
from translab.shipped import portable_path, resolve_run
from translab.training import load_method


def images_per_s(method, x: torch.Tensor) -> float:
    """One timed A -> B translation of the batch x (N, C, H, W)."""
    t0 = time.perf_counter()
    with torch.no_grad():
        method.translate(x, "a2b")
    return x.shape[0] / (time.perf_counter() - t0)


def measure(models: dict, x: torch.Tensor, rounds: int) -> dict[str, list[float]]:
    """Alternating rounds after one untimed call each (oneDNN set-up): name -> images/s of each round."""
    for method in models.values():
        images_per_s(method, x)
    speeds: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, method in models.items():
            speeds[name].append(images_per_s(method, x))
    return speeds


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--student", default="cmnist-2to3/distill")
    p.add_argument("--teacher", default="cmnist-2to3/ddib")
    p.add_argument("--images", type=int, default=64, help="batch of test inputs translated per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="docs/results/distill/bench_student.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    models, cfgs = {}, {}
    for role in ("teacher", "student"):
        method, cfg, _ = load_method(resolve_run(getattr(args, role)))
        models[role], cfgs[role] = method.eval(), cfg
    x = stack_dataset(build_domain_pair(cfgs["student"].data).get("a", "test"), args.images).float()
    speeds = measure(models, x, args.rounds)
    rows = {role: {"run": portable_path(resolve_run(getattr(args, role))), "nfe": models[role].nfe("a2b"),
                   "images_per_s": statistics.median(v), "images_per_s_rounds": v}
            for role, v in speeds.items()}
    ratio = rows["student"]["images_per_s"] / rows["teacher"]["images_per_s"]
    result = {"command": "python benchmarks/bench_student.py " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "batch": args.images, "threads": args.threads, "rows": rows, "student_over_teacher": ratio}
    print("| model | NFE | images/s (median) |\n|---|---|---|")
    for role, row in rows.items():
        print(f"| {role} {row['run']} | {row['nfe']} | {row['images_per_s']:.1f} |")
    print(f"student / teacher throughput: {ratio:.1f}x")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
