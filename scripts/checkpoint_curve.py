"""Quality against training time: score every checkpoint of a cMNIST or emoji run on the first N test images.

    python scripts/checkpoint_curve.py RUN [--limit N] [--steps S] [--direction a2b] [--threads 1]
                                           [--set model.guidance=2 ...] [--name NAME]

For each checkpoint RUN/checkpoints/step_*.pt (oldest first) it translates the first N test images of the
direction's source domain (seed 0) and prints one line: step, training wall seconds at that checkpoint,
target accuracy (the shipped digit reader; emoji: the shipped man/woman reader), transport cost (mean squared
pixel distance in [-1, 1]) and, for cmnist, the mean hue error in degrees; for emoji, skin tone and concept kept
and the pixel distance to the true counterpart over the input's (translab.evaluation's metrics). ``--set`` applies inference settings (e.g. DDIB's guidance) to every checkpoint. The table
is also written to RUN/analysis/NAME.json (default checkpoint_curve); checkpoints already in that file with
the same settings are not scored again, so a re-run after more training scores only the new ones. No Inception: this
is the cheap curve that says what a shorter run buys; `translab evaluate` gives the full row.

``--combine-with RUN_B`` scores DDIB's two-run setting (ddib_combine): RUN trained the domain-A denoiser, RUN_B
the domain-B one, and each checkpoint of RUN is joined with RUN_B's checkpoint of the same step; its wall seconds
are the two trainings' sum (the compute of one core).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch

from translab.checkpoint import list_checkpoints
from translab.commands.common import parse_set_pairs
from translab.data import build_domain_pair
from translab.data.base import stack_dataset
from translab.evaluation import (HUE_DATASETS, KEPT_READERS, TARGET_READERS, EvalOptions, classifier_accuracy,
                                 kept_and_counterpart, kept_readers, memorisation_bank, memorisation_of,
                                 shipped_reader, target_class_name, true_counterparts)
from translab.metrics.color import hue_error, transport_cost
from translab.metrics.counterpart import translated_and_kept
from translab.training import load_method
from translab.shipped import portable_path


def score_checkpoint(ckpt: Path, x: torch.Tensor, direction: str, target: str, steps: int | None, dataset: str,
                     truth: torch.Tensor | None = None, overrides: dict | None = None,
                     memo: tuple | None = None) -> dict:
    """One row of the curve for checkpoint ``ckpt``; x (N, 3, H, W) in [-1, 1] are the source images, ``target``
    the target class name, ``truth`` their true counterparts where the test sets are paired (emoji);
    ``overrides``: {'model.key': value} inference settings, as `translab evaluate --set` gives them; ``memo``:
    (pair, target domain, real test targets, training bank) for the memorisation ratio (evaluation.memorisation_of)."""
    method, _, info = load_method(ckpt, overrides=overrides)
    with torch.no_grad():
        y = method.translate(x, direction, steps=steps, generator=torch.Generator().manual_seed(0)).images
    reader = shipped_reader(TARGET_READERS[dataset])
    row = {"step": info["step"], "wall_s": round(float(info["wall_seconds"] or 0.0), 1),
           "target_accuracy": round(classifier_accuracy(reader, y, target, 256)["value"], 4),
           "transport_cost": round(transport_cost(x, y), 4)}
    if dataset in HUE_DATASETS:
        row["hue_error_deg"] = round(hue_error(x, y)["mean_deg"], 2)
    kept = kept_and_counterpart(x, y, dataset, EvalOptions(inception=False, progress=False), truth)
    if dataset in KEPT_READERS:
        row["translated_and_kept"] = round(translated_and_kept(reader, target, kept_readers(dataset), x, y)["value"], 4)
    for key in ("tone_kept", "concept_kept"):
        if key in kept:
            row[key] = round(kept[key]["value"], 4)
    if "counterpart" in kept:
        row["counterpart_pixel_ratio"] = round(kept["counterpart"]["distance"]["pixel"]["ratio"], 4)
    if memo is not None:
        pair, tgt, real, bank = memo
        row["nearest_train_ratio"] = round(memorisation_of(pair, tgt, y, real, bank)["ratio"], 4)
    return row


def checkpoint_step(ckpt: Path) -> int:
    """The step of a checkpoint file named step_<N>.pt."""
    return int(ckpt.stem.split("_")[-1])


def combined_checkpoint(ckpt: Path, run_b: Path, folder: Path) -> tuple[Path, float] | None:
    """``ckpt`` (a domain-A DDIB checkpoint) joined with ``run_b``'s checkpoint of the same step into ``folder``
    (ddib_combine), and the two checkpoints' summed training wall seconds; None when run_b has no such step."""
    from translab.checkpoint import load_checkpoint
    from translab.ddib_combine import combine_ddib

    ckpt_b = run_b / "checkpoints" / ckpt.name
    if not ckpt_b.is_file():
        return None
    wall = sum(float(load_checkpoint(c).get("wall_seconds") or 0.0) for c in (ckpt, ckpt_b))
    return combine_ddib(ckpt, ckpt_b, folder), wall


def scored_row(ckpt: Path, args, scoring: tuple) -> dict | None:
    """One curve row for ``ckpt``: its own, or (``--combine-with``) that of it joined with RUN_B's of its step."""
    if not args.combine_with:
        return score_checkpoint(ckpt, *scoring)
    with tempfile.TemporaryDirectory() as tmp:
        joined = combined_checkpoint(ckpt, Path(args.combine_with), Path(tmp) / "joined")
        if joined is None:
            return None
        row = score_checkpoint(joined[0], *scoring)
    return {**row, "step": checkpoint_step(ckpt), "wall_s": round(joined[1], 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run")
    p.add_argument("--limit", type=int, default=256)
    p.add_argument("--steps", type=int, default=None, help="sampling steps of diffusion methods")
    p.add_argument("--direction", default="a2b", choices=("a2b", "b2a"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--plot", default=None, help="also draw the curve into this PNG")
    p.add_argument("--set", action="append", default=[], metavar="model.KEY=VALUE",
                   help="inference setting applied to every checkpoint, e.g. model.guidance=2 (repeatable)")
    p.add_argument("--every", type=int, default=0, help="score only checkpoints whose step is a multiple of this")
    p.add_argument("--name", default="checkpoint_curve", help="stem of the JSON written under RUN/analysis")
    p.add_argument("--combine-with", default=None, metavar="RUN_B",
                   help="DDIB trained one domain a run: join each checkpoint with RUN_B's of the same step")
    args = p.parse_args()
    overrides = parse_set_pairs(args.set)
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    ckpts = list_checkpoints(run / "checkpoints")
    if not ckpts:
        raise SystemExit(f"error: no checkpoints in {run / 'checkpoints'}")
    _, cfg, _ = load_method(ckpts[-1])
    dataset = cfg.data.dataset
    if dataset not in TARGET_READERS:
        raise SystemExit(f"error: {run} trains on '{dataset}'; this curve needs a dataset with a shipped reader "
                         f"({', '.join(TARGET_READERS)})")
    pair = build_domain_pair(cfg.data)
    src, tgt = args.direction[0], args.direction[-1]
    x = stack_dataset(pair.get(src, "test"), args.limit)
    target = target_class_name(pair, tgt, dataset)
    truth = true_counterparts(pair, src, tgt, args.limit)
    memo = (pair, tgt, stack_dataset(pair.get(tgt, "test"), args.limit).float(), memorisation_bank(pair, tgt))
    out = run / "analysis" / f"{args.name}.json"
    settings = {"run": portable_path(run), "direction": args.direction, "limit": int(x.shape[0]), "steps": args.steps,
                "overrides": overrides, **({"combined_with": portable_path(args.combine_with)} if args.combine_with else {})}
    scored = earlier_rows(out, settings)
    rows = []
    print(f"{run}: first {x.shape[0]} test images, {args.direction}"
          + (f" ({len(scored)} checkpoints already scored in {out})" if scored else ""))
    for ckpt in ckpts:
        if args.every and checkpoint_step(ckpt) % args.every:
            continue
        row = scored.get(checkpoint_step(ckpt)) or scored_row(ckpt, args, (x, args.direction, target, args.steps,
                                                                           dataset, truth, overrides, memo))
        if row is None:
            continue
        rows.append(row)
        print("  ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**settings, "rows": rows}, indent=1))
    print(f"written: {out}")
    if args.plot:
        name = run.name + (f" + {Path(args.combine_with).name}" if args.combine_with else "")
        print(f"written: {plot_curve(rows, args.plot, f'{name}: first {x.shape[0]} test images, {args.direction}')}")


def earlier_rows(path: Path, settings: dict) -> dict[int, dict]:
    """Rows of an earlier curve at ``path`` by step, when it was scored with the same ``settings`` (so that
    re-running the script on a training that went on scores only the new checkpoints); else {}."""
    if not path.is_file():
        return {}
    try:
        earlier = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
    if any(earlier.get(k) != v for k, v in settings.items()):
        return {}
    return {int(r["step"]): r for r in earlier.get("rows", [])}


def plot_curve(rows: list[dict], path: str, title: str) -> Path:
    """Target accuracy and hue error (emoji: tone and concept kept, distance to the counterpart) against training
    wall time (minutes), one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r["wall_s"] / 60 for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(minutes, [r["target_accuracy"] for r in rows], "o-", color="tab:blue", label="target accuracy")
    ax.set_xlabel("training wall time (min)")
    ax.set_ylabel("target accuracy", color="tab:blue")
    ax.set_ylim(0, 1.02)
    ax2 = ax.twinx()
    if "hue_error_deg" in rows[0]:
        ax2.plot(minutes, [r["hue_error_deg"] for r in rows], "s--", color="tab:red", label="hue error")
        ax2.set_ylabel("hue error (deg)", color="tab:red")
    else:  # emoji: what is kept, on the accuracy axis, and the distance to the truth over the input's
        for key, style in (("tone_kept", "^-"), ("concept_kept", "v-")):
            ax.plot(minutes, [r[key] for r in rows], style, label=key.replace("_", " "))
        ax.legend(loc="lower left", fontsize=8)
        ax2.plot(minutes, [r["counterpart_pixel_ratio"] for r in rows], "s--", color="tab:red")
        ax2.set_ylabel("pixel distance to counterpart / input's", color="tab:red")
    for r, m in zip(rows, minutes):
        if r is rows[0] or r is rows[-1]:
            ax.annotate(f"step {r['step']}", (m, r["target_accuracy"]), textcoords="offset points", xytext=(0, -14),
                        fontsize=8, ha="center")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


if __name__ == "__main__":
    main()
