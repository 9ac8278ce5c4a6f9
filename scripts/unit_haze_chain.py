"""Diagnostic for RESULTS.md: where along UNIT-DDPM's Algorithm 2 chain the haze and the colour arise.

    python scripts/unit_haze_chain.py RUN[@KEY=VALUE,...] [RUN ...] --limit 64 --out docs/results/unit-haze

(``@target_start=source,t_max=925`` after a run applies those inference settings to it.)

For each run (a run directory or shipped name) it translates the first N test 2s (seed 0, the model's own steps
and t_r) and records, at every step of the target chain (timestep t, descending):

- ``x0_median``: the clean image that step predicts, x0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)
  (Ho et al. eq. 15), clipped to [-1, 1] as the sampler clips it, then the per-image median brightness (mean over
  channels, of [0, 1]) averaged over images: the background level, since digits cover a minority of pixels.
  Real 3s give 0;
- ``x0_hue_error``: the hue error (degrees) between each input and that prediction (translab.metrics.color);
- ``condition_effect``: how much the condition steers the target net at that step: ||eps(x_t, c) - eps(x_t, c')||
  / ||eps(x_t, c)|| over the batch, where c' is the condition of the next image in the batch (the same level of
  noise, another input). 0: the input is ignored at that t.

Prints one line per recorded step, writes OUT/NAME.json and OUT/haze_chain.png (the three curves against t, one
line per run). Costs one extra target-net evaluation per step (the swapped condition).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from translab.commands.common import parse_set_pairs
from translab.data import build_domain_pair
from translab.data.base import stack_dataset
from translab.diffusion.process import x0_from_eps
from translab.metrics.color import hue_error, median_brightness
from translab.shipped import resolve_run
from translab.training import load_method


def trace_chain(method, x: torch.Tensor, seed: int = 0) -> tuple[list[dict], torch.Tensor]:
    """Algorithm 2 a2b on x (N, 3, H, W) with the target net wrapped to record each step; (rows, outputs)."""
    rows = []
    original = method.eps_fn

    def recording(domain: str):
        fn = original(domain)
        if domain != "b":
            return fn

        def eps_b(x_t, cond, t):
            eps = fn(x_t, cond, t)
            swapped = fn(x_t, cond.roll(1, dims=0), t)
            step = int(t[0])
            x0 = x0_from_eps(method.schedule, x_t, step, eps).clamp(-1, 1)
            rows.append({"t": step, "x0_median": median_brightness(x0),
                         "x0_hue_error": hue_error(x, x0)["mean_deg"],
                         "condition_effect": ((eps - swapped).norm() / eps.norm()).item()})
            return eps

        return eps_b

    method.eps_fn = recording
    try:
        y = method.translate(x, "a2b", generator=torch.Generator().manual_seed(seed)).images
    finally:
        del method.eps_fn  # the instance attribute; the class method is back
    return rows, y


def plot(traces: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    panels = (("x0_median", "median brightness of predicted x0"), ("x0_hue_error", "hue error of predicted x0 (deg)"),
              ("condition_effect", "condition effect |eps(c) - eps(c')| / |eps(c)|"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.6))
    for ax, (key, label) in zip(axes, panels):
        for name, rows in traces.items():
            ax.plot([r["t"] for r in rows], [r[key] for r in rows], label=name)
        ax.set_xlabel("timestep t (the chain runs right to left)")
        ax.set_ylabel(label)
        ax.invert_xaxis()
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--limit", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="docs/results/unit-haze")
    p.add_argument("--name", default="haze_chain")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    traces, summary = {}, {}
    for spec in args.runs:
        run, _, settings = spec.partition("@")
        overrides = parse_set_pairs([f"model.{kv}" for kv in settings.split(",")]) if settings else None
        method, cfg, info = load_method(resolve_run(run), overrides=overrides)
        x = stack_dataset(build_domain_pair(cfg.data).get("a", "test"), args.limit).float()
        with torch.no_grad():
            rows, y = trace_chain(method, x)
        label = f"{run} (step {info['step']}{'; ' + settings if settings else ''})"
        traces[label] = rows
        summary[label] = {"output_median_brightness": median_brightness(y),
                          "output_hue_error": hue_error(x, y)["mean_deg"]}
        print(f"== {label}: first {x.shape[0]} test 2s; output median brightness "
              f"{summary[label]['output_median_brightness']:.3f}, hue error {summary[label]['output_hue_error']:.1f}")
        for r in rows[:: max(1, len(rows) // 20)] + rows[-3:]:
            print(f"t={r['t']:4d}  x0 median {r['x0_median']:.3f}  x0 hue error {r['x0_hue_error']:6.1f}  "
                  f"condition effect {r['condition_effect']:.3f}")
    (out / f"{args.name}.json").write_text(json.dumps({"inputs": f"first {args.limit} test 2s", "seed": 0,
                                                       "summary": summary, "traces": traces}, indent=1))
    plot(traces, out / f"{args.name}.png")
    print(f"wrote {out / args.name}.json and .png")


if __name__ == "__main__":
    main()
