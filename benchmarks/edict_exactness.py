"""How exact is DDIB's exactly invertible mode? Reconstruction and cycle error, EDICT against DDIM.

For each solver (``--samplers``, default ddim,edict) and each number of steps per chain it encodes the test
images of domain A with domain A's ODE and decodes them with the same ODE (within-domain reconstruction), and
translates the first ``--cycle-limit`` of them A -> B -> A (the cycle: DDIB's B latent of the translation is
taken afresh from the output image, so the cycle error is left to the two models' disagreement). Errors are the
mean squared difference per pixel and channel in [-1, 1] units (float32), with the largest per-image value.

    python benchmarks/edict_exactness.py --run cmnist-2to3/ddib --steps 10 --limit 0 --cycle-limit 128 \\
        --out docs/results/ddib_guidance/edict_exactness.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from translab.analysis.ddib_latents import batched, per_image_mse
from translab.data import build_domain_pair
from translab.data.base import stack_dataset
from translab.shipped import resolve_run
from translab.training import load_method


def errors(x: torch.Tensor, y: torch.Tensor) -> dict:
    """Per-pixel MSE of y against x (N, 3, H, W): the mean over images and the worst image."""
    per_image = per_image_mse(x, y)
    return {"mse": float(per_image.mean()), "max_image_mse": float(per_image.max())}


def measure(method, x: torch.Tensor, steps: int, cycle_limit: int, batch_size: int) -> dict:
    t0 = time.perf_counter()
    rec = batched(lambda v: method.decode(method.encode(v, "a", steps), "a", steps), x, batch_size)
    seconds = time.perf_counter() - t0
    xc = x[:cycle_limit]
    ab = batched(lambda v: method.translate(v, "a2b", steps=steps).images, xc, batch_size)
    aba = batched(lambda v: method.translate(v, "b2a", steps=steps).images, ab, batch_size)
    return {"sampler": method.cfg.sampler, "steps": steps, "nfe_reconstruction": method.nfe("a2b", steps),
            "images": int(x.shape[0]), "reconstruction": errors(x, rec), "cycle_images": int(xc.shape[0]),
            "cycle": errors(xc, aba), "reconstruction_seconds": round(seconds, 1)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", default="cmnist-2to3/ddib")
    p.add_argument("--steps", default="10", help="solver steps per chain, comma-separated")
    p.add_argument("--samplers", default="ddim,edict")
    p.add_argument("--limit", type=int, default=0, help="first N test images of domain A (0: all)")
    p.add_argument("--cycle-limit", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="write the rows as JSON here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    method, cfg, info = load_method(resolve_run(args.run))
    x = stack_dataset(build_domain_pair(cfg.data).get("a", "test"), args.limit or None).float()
    rows = []
    for sampler in args.samplers.split(","):
        view = method.with_inference(sampler=sampler, guidance=1.0, clip_decode=False)
        for steps in (int(s) for s in args.steps.split(",")):
            row = measure(view, x, steps, args.cycle_limit, args.batch_size)
            rows.append(row)
            print(f"{sampler:8s} 2x{steps:<3d} reconstruction MSE {row['reconstruction']['mse']:.3e} "
                  f"(worst image {row['reconstruction']['max_image_mse']:.3e}, {row['images']} images)  "
                  f"cycle A->B->A MSE {row['cycle']['mse']:.4f} ({row['cycle_images']} images)", flush=True)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"run": args.run, "checkpoint": info, "rows": rows}, indent=1, default=str))
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
