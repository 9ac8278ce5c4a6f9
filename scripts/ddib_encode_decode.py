"""Which of DDIB's two chains moves the colour when more solver steps are asked for: encode and decode with
different step counts, at the model's own start (model.t_max), solver and guidance.

DDIB (Su et al., ICLR 2023, Sec. 3) translates by running the source domain's probability-flow ODE from the
image to the latent at t_max (encode) and the target domain's ODE back (decode). Here each chain gets its own
step count; every other setting is the run's unless --guidance or --lowpass-factor sets it. Scored on the first
N test images of domain A: the share that the shipped digit reader reads as the target digit and the hue error
against the input (translab's own metrics).

    python scripts/ddib_encode_decode.py cmnist-2to3/ddib --pairs 8:8,8:50,50:8,50:50 --limit 256 \
        --out docs/results/ddib_steps/encode_decode.json --threads 1
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from translab.checkpoint import atomic_write_text
from translab.data import build_domain_pair
from translab.data.base import stack_dataset
from translab.evaluation import shipped_reader
from translab.metrics.classifier import classifier_outputs
from translab.metrics.color import hue_error
from translab.shipped import portable_path, resolve_run
from translab.training import load_method


def parse_pairs(text: str) -> list[tuple[int, int]]:
    """'8:8,8:50' -> [(8, 8), (8, 50)]: (encode steps, decode steps)."""
    try:
        pairs = [tuple(int(v) for v in item.split(":")) for item in text.split(",")]
    except ValueError:
        pairs = []
    if not pairs or any(len(p) != 2 or min(p) < 1 for p in pairs):
        raise SystemExit(f"--pairs: expected ENCODE:DECODE step counts such as 8:8,8:50, got {text!r}")
    return pairs


def score(method, x: torch.Tensor, encode_steps: int, decode_steps: int, target: int) -> dict:
    t0 = time.perf_counter()
    with torch.no_grad():
        y = method.decode(method.encode(x, "a", encode_steps), "b", decode_steps, reference=x).clamp(-1, 1)
    _, pred = classifier_outputs(shipped_reader("cmnist"), y)
    hue = hue_error(x, y)
    return {"encode_steps": encode_steps, "decode_steps": decode_steps,
            "encode_timesteps": method.timesteps(encode_steps), "decode_timesteps": method.timesteps(decode_steps),
            "target_accuracy": float((pred == target).float().mean()), "hue_error_deg": hue["mean_deg"],
            "hue_error_median_deg": hue["median_deg"], "seconds": round(time.perf_counter() - t0, 1)}


def run_arguments(description: str) -> argparse.ArgumentParser:
    """The arguments every DDIB script of this folder takes: the run, --limit, --out, --threads and
    --lowpass-factor."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("run", help="a Colored MNIST DDIB run directory or shipped name, e.g. cmnist-2to3/ddib")
    ap.add_argument("--limit", type=int, default=256)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lowpass-factor", type=int, default=None,
                    help="model.lowpass_factor of the translations (default: the run's own; 0: off)")
    return ap


def lowpass_flag(args) -> str:
    """The command-line spelling of --lowpass-factor for the record ('' where the run's own was used)."""
    return "" if args.lowpass_factor is None else f" --lowpass-factor {args.lowpass_factor}"


def main() -> None:
    ap = run_arguments(__doc__.splitlines()[0])
    ap.add_argument("--pairs", default="8:8,8:50,50:8,50:50", help="ENCODE:DECODE step counts, comma-separated")
    ap.add_argument("--guidance", type=float, default=None, help="guidance scale w (default: the run's own)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pairs = parse_pairs(args.pairs)
    run, method, cfg, x = load_cmnist_ddib(args.run, args.limit, args.lowpass_factor)
    if args.guidance is not None:
        method = method.with_inference(guidance=args.guidance)
    rows = []
    for e, d in pairs:
        r = score(method, x, e, d, cfg.data.digit_b)
        rows.append(r)
        print(f"encode {e:3d}  decode {d:3d}  read as {cfg.data.digit_b} {r['target_accuracy']:.3f}  "
              f"hue error {r['hue_error_deg']:.2f}  ({r['seconds']} s)", flush=True)
    write_record(args.out, run, method, x, args.threads, rows,
                 f"python scripts/ddib_encode_decode.py {args.run} --pairs {args.pairs} --limit {args.limit} "
                 f"--out {portable_path(args.out)} --threads {args.threads}{lowpass_flag(args)}"
                 + ("" if args.guidance is None else f" --guidance {args.guidance:g}"))


def load_cmnist_ddib(name: str, limit: int, lowpass_factor: int | None = None):
    """(run path, Method, Config, the first ``limit`` test images of domain A) of a Colored MNIST DDIB run or
    shipped name, with ``lowpass_factor`` set where given; SystemExit naming it for another method or dataset."""
    run = resolve_run(name)
    method, cfg, _ = load_method(run)
    if cfg.method != "ddib" or cfg.data.dataset != "cmnist":
        raise SystemExit(f"{name}: expected a Colored MNIST DDIB run, got method {cfg.method} on {cfg.data.dataset}")
    if lowpass_factor is not None:
        method = method.with_inference(lowpass_factor=lowpass_factor)
    return run, method, cfg, stack_dataset(build_domain_pair(cfg.data).get("a", "test"), limit)


def write_record(out: Path, run: Path, method, x: torch.Tensor, threads: int, rows: list, command: str) -> None:
    """OUT: the run, image count, threads, the run's solver settings, the command and the rows (atomic write)."""
    record = {"run": portable_path(run), "images": int(x.shape[0]), "threads": threads,
              "settings": {k: getattr(method.cfg, k) for k in ("sampler", "t_max", "guidance", "guidance_interval",
                                                               "guidance_on", "lowpass_factor")},
              "command": command, "rows": rows}
    atomic_write_text(out, json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
