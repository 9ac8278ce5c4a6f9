"""DDIB's quality against its number of network evaluations, for each ODE solver (DDIM, DPM-Solver++(2M),
EDICT) and classifier-free guidance scale (``--guidance``, models trained with label dropout).

For every (solver, steps per chain) it translates the first ``--limit`` test 2s with the shipped (or given)
DDIB and measures, with the same metric code as ``translab evaluate --limit N``:
- target accuracy (share read as a 3 by the shipped digit classifier) and hue error (degrees);
- Inception FID (and classifier FID) against the first ``--limit`` test 3s (the reference of
  ``translab evaluate --limit N``; FID on a few hundred images is biased upwards: compare rows, not papers);
- within-domain reconstruction error: encode -> decode in domain A with the same solver and steps,
  mean squared difference per pixel and channel in [-1, 1] units, on the first ``--recon-limit`` inputs;
- images/s of the translation (for reference only: the machine may be shared).

Prints a table and writes ``OUT/NAME.json`` (rewritten after every row), ``OUT/NAME.png`` (the four measures
against NFE) and ``OUT/NAME_outputs.png`` (the first GRID_IMAGES inputs, then one row of outputs per setting).

    python benchmarks/ddib_nfe_sweep.py --run cmnist-2to3/ddib --limit 256 --steps 5,10,20,50 \\
        --samplers ddim,dpmpp2m --threads 1 --out docs/results/ddib_nfe
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from translab.analysis.ddib_latents import batched
from translab.data import build_domain_pair
from translab.data.base import stack_dataset
from translab.evaluation import (EvalOptions, build_extractors, classifier_accuracy, features_for,
                                 reference_key)
from translab.metrics.color import hue_error, mean_squared_distance, transport_cost
from translab.metrics.frechet import labelled_distances
from translab.shipped import portable_path, resolve_run
from translab.training import load_method

GRID_IMAGES = 12
COLUMNS = ("sampler", "guidance", "guidance_on", "interval", "steps", "t_max", "nfe", "target_accuracy", "hue_error_deg", "fid_inception",
           "fid_classifier", "recon_mse", "transport_cost", "images_per_s")


def translate(method, x: torch.Tensor, steps: int, batch_size: int) -> tuple[torch.Tensor, float]:
    """x (N, 3, H, W) in [-1, 1] -> (a2b translations (N, 3, H, W), seconds)."""
    t0 = time.perf_counter()
    y = batched(lambda v: method.translate(v, "a2b", steps=steps).images, x, batch_size)
    return y, time.perf_counter() - t0


def reconstruct(method, x: torch.Tensor, steps: int, batch_size: int) -> torch.Tensor:
    """Encode -> decode in domain A with the method's solver: x (N, 3, H, W) -> (N, 3, H, W)."""
    return batched(lambda v: method.decode(method.encode(v, "a", steps), "a", steps, reference=v), x, batch_size)


def measure(method, x, real_f, extractors, clf, steps: int, args) -> dict:
    """One row of the sweep for the method's current ``cfg.sampler`` and ``cfg.t_max``."""
    y, seconds = translate(method, x, steps, args.batch_size)
    fake_f = features_for(extractors, y)
    fid = labelled_distances(extractors, real_f, fake_f)
    n_rec = min(args.recon_limit, x.shape[0])
    rec = reconstruct(method, x[:n_rec], steps, args.batch_size)

    def fid_of(name):
        entry = fid.get(name, {})
        return entry.get("fid") if entry.get("available") else None

    return {"sampler": method.cfg.sampler, "guidance": method.cfg.guidance, "guidance_on": method.cfg.guidance_on,
            "interval": method.cfg.guidance_interval, "lowpass_factor": method.cfg.lowpass_factor, "steps": steps, "t_max": method.timesteps(steps)[0],
            "nfe": method.nfe("a2b", steps),
            "target_accuracy": classifier_accuracy(clf, y, "3", args.batch_size).get("value"),
            "hue_error_deg": hue_error(x, y)["mean_deg"], "fid_inception": fid_of("inception"),
            "fid_classifier": fid_of("classifier"), "recon_mse": mean_squared_distance(x[:n_rec], rec),
            "recon_images": n_rec, "transport_cost": transport_cost(x, y),
            "images_per_s": x.shape[0] / seconds, "translate_seconds": seconds}


def fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.2f}"
    return str(value)


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(fmt(r.get(c)) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path, title: str) -> None:
    """Four panels (accuracy, hue error, Inception FID, reconstruction MSE) against NFE, one line per solver."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    panels = (("target_accuracy", "target accuracy"), ("hue_error_deg", "hue error (deg)"),
              ("fid_inception", "Inception FID"), ("recon_mse", "reconstruction MSE (A -> A)"))
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, (key, label) in zip(axes, panels):
        for name in sorted({line_label(r) for r in rows}):
            pts = sorted((r["nfe"], r[key]) for r in rows if line_label(r) == name and r[key] is not None)
            if pts:
                ax.plot(*zip(*pts), marker="o", label=name)
        ax.set_xscale("log")
        ax.set_xlabel("NFE per image")
        ax.set_ylabel(label)
        if key == "recon_mse":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def line_label(row: dict) -> str:
    """One plotted line per solver, start and guidance scale."""
    w, gi, on = row.get("guidance", 1.0), row.get("interval"), row.get("guidance_on", "all")
    low = row.get("lowpass_factor", 0)
    return (row["sampler"] + row.get("t_max_label", "") + ("" if w == 1.0 else f" w={w:g}")
            + ("" if not low else f" low-pass {low}")
            + ("" if w == 1.0 or on == "all" else f" on {on}")
            + ("" if gi is None or w == 1.0 else f" t in [{gi[0]}, {gi[1]}]"))


def grid_outputs(method, x: torch.Tensor, rows: list[dict]) -> list[torch.Tensor]:
    """The a2b translations of x (n, 3, H, W) with each row's solver, guidance, steps and start (n, 3, H, W)."""
    outs = []
    for r in rows:
        view = method.with_inference(sampler=r["sampler"], t_max=r["t_max"], guidance=r.get("guidance", 1.0),
                                     guidance_interval=r.get("interval"), guidance_on=r.get("guidance_on", "all"),
                                     lowpass_factor=r.get("lowpass_factor", 0))
        outs.append(view.translate(x, "a2b", steps=r["steps"]).images)
    return outs


def save_outputs(x: torch.Tensor, shown: list[torch.Tensor], labels: list[str], path: Path) -> None:
    """Inputs x (n, 3, H, W) in [-1, 1] above one row of outputs per setting, labelled on the left."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    rows = [x[:GRID_IMAGES]] + shown
    width = GRID_IMAGES * 0.6 + 3.0
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, len(rows) * 0.62))
    for ax, images, label in zip(axes, rows, ["inputs"] + labels):
        strip = torch.cat(list(((images.clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1)), dim=1)
        ax.imshow(strip.numpy())
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.subplots_adjust(left=2.9 / width, right=0.99, top=0.99, bottom=0.01, hspace=0.08)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def command_line(args) -> str:
    """The command that reproduces this run (every option spelled out)."""
    flags = [f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}")
             for k, v in vars(args).items() if v is not None and v is not False]
    return "python benchmarks/ddib_nfe_sweep.py " + " ".join(flags)


def row_key(row: dict) -> tuple:
    gi = row.get("interval")
    return (row["sampler"], row.get("guidance", 1.0), row.get("guidance_on", "all"), None if gi is None else tuple(gi),
            row["steps"], row["t_max"], row.get("lowpass_factor", 0))


def previous_rows(path: Path) -> list[dict]:
    return json.loads(path.read_text())["rows"] if path.is_file() else []


def kept_commands(path: Path) -> list[str]:
    if not path.is_file():
        return []
    data = json.loads(path.read_text())
    return data.get("commands", [data.get("command")])


def merged(kept: list[dict], new: list[dict]) -> list[dict]:
    """``kept`` rows not measured again, then the new ones, sorted by solver, start and NFE."""
    keys = {row_key(r) for r in new}
    rows = [r for r in kept if row_key(r) not in keys] + new
    return sorted(rows, key=lambda r: (line_label(r), r["nfe"]))


def parse_intervals(text: str) -> list[list[int] | None]:
    """'all,400:999' -> [None, [400, 999]]."""
    out = []
    for item in text.split(","):
        if item == "all":
            out.append(None)
        else:
            lo, hi = item.split(":")
            out.append([int(lo), int(hi)])
    return out


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", default="cmnist-2to3/ddib")
    p.add_argument("--limit", type=int, default=256, help="first N test 2s (and N test 3s as reference); 0: all")
    p.add_argument("--recon-limit", type=int, default=256, help="inputs used for the reconstruction error")
    p.add_argument("--steps", default="5,10,20,50", help="solver steps per chain, comma-separated")
    p.add_argument("--samplers", default="ddim,dpmpp2m")
    p.add_argument("--guidance", default="1", help="classifier-free guidance scales w, comma-separated")
    p.add_argument("--intervals", default="all",
                   help="guidance intervals, comma-separated: 'all' (every decoding step) or LO:HI (guide only "
                        "decoding steps with LO <= t <= HI, model.guidance_interval)")
    p.add_argument("--t-max", type=int, default=None, help="start every chain here (default: T - T/steps)")
    p.add_argument("--guidance-on", default="all", choices=("all", "luminance"),
                   help="what guidance extrapolates (model.guidance_on)")
    p.add_argument("--lowpass-factor", type=int, default=0,
                   help="ILVR-style low-pass consistency with the input while decoding (model.lowpass_factor; 0: off)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-inception", action="store_true")
    p.add_argument("--out", default="docs/results/ddib_nfe")
    p.add_argument("--name", default="nfe_sweep", help="stem of the JSON and PNG written under --out")
    p.add_argument("--figures-only", action="store_true",
                   help="measure nothing: redraw OUT/NAME.png and _outputs.png from the rows of OUT/NAME.json")
    p.add_argument("--merge", action="store_true",
                   help="keep the rows of an existing OUT/NAME.json that this run does not measure again")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    method, cfg, info = load_method(resolve_run(args.run))
    method.cfg.t_max = args.t_max
    pair = build_domain_pair(cfg.data)
    limit = args.limit or None
    x = stack_dataset(pair.get("a", "test"), limit).float()
    real = stack_dataset(pair.get("b", "test"), limit).float()
    out = Path(args.out)
    if args.figures_only:
        saved = json.loads((out / f"{args.name}.json").read_text())
        draw_figures(method, x, saved["rows"], out, args.name,
                     f"DDIB {args.run}: {saved['inputs']}, reference {saved['reference']}")
        return
    extractors, clf = build_extractors(cfg.data.dataset, EvalOptions(inception=not args.no_inception,
                                                                     batch_size=args.batch_size))
    real_f = features_for(extractors, real, reference_key("b"))
    out.mkdir(parents=True, exist_ok=True)
    info = dict(info, checkpoint=portable_path(info["checkpoint"]))
    header = {"run": args.run, "checkpoint": info, "inputs": f"first {x.shape[0]} test 2s",
              "reference": f"first {real.shape[0]} test 3s", "threads": torch.get_num_threads(),
              "recon": "encode -> decode in domain A, MSE per pixel and channel, [-1, 1] units",
              "command": command_line(args)}
    kept = previous_rows(out / f"{args.name}.json") if args.merge else []
    header["commands"] = ([] if not args.merge else kept_commands(out / f"{args.name}.json")) + [header["command"]]
    rows = []
    settings = [(sampler, float(w), gi) for sampler in args.samplers.split(",") for w in args.guidance.split(",")
                for gi in parse_intervals(args.intervals)]
    for sampler, w, gi in settings:
        if w == 1.0 and gi is not None:
            continue  # unguided: the interval changes nothing
        view = method.with_inference(sampler=sampler, guidance=w, guidance_interval=gi, guidance_on=args.guidance_on,
                                     lowpass_factor=args.lowpass_factor)
        for steps in (int(s) for s in args.steps.split(",")):
            row = measure(view, x, real_f, extractors, clf, steps, args)
            row["t_max_label"] = "" if args.t_max is None else f" (t_max {args.t_max})"
            rows.append(row)
            print(table(rows[-1:]).splitlines()[-1], flush=True)
            (out / f"{args.name}.json").write_text(json.dumps({**header, "rows": merged(kept, rows)}, indent=1))
    rows = merged(kept, rows)
    print(table(rows))
    draw_figures(method, x, rows, out, args.name, f"DDIB {args.run}: {header['inputs']}, reference {header['reference']}")


def output_label(row: dict) -> str:
    """A grid row's label: solver, guidance, steps and start ('dpmpp2m w=8 luminance, 2x8 from t=850')."""
    w, on = row.get("guidance", 1.0), row.get("guidance_on", "all")
    guide = "" if w == 1.0 else f" w={w:g}" + ("" if on == "all" else f" {on}")
    low = row.get("lowpass_factor", 0)
    return f"{row['sampler']}{guide}{f' low-pass {low}' if low else ''}, 2x{row['steps']} from t={row['t_max']}"


def draw_figures(method, x: torch.Tensor, rows: list[dict], out: Path, name: str, title: str) -> None:
    """OUT/NAME.png (the measures against NFE) and OUT/NAME_outputs.png (the first inputs and each row's outputs)."""
    plot(rows, out / f"{name}.png", title)
    save_outputs(x, grid_outputs(method, x[:GRID_IMAGES], rows), [output_label(r) for r in rows],
                 out / f"{name}_outputs.png")
    print(f"wrote {out / name}.json, .png and _outputs.png")


if __name__ == "__main__":
    main()
