"""Several accuracy-against-training curves in one figure (the JSON files of scripts/checkpoint_curve.py).

    python scripts/plot_curves.py --out FIG.png --curve "LABEL=RUN/analysis/NAME.json" ... \\
        [--points "LABEL=STEP:ACC,STEP:ACC,..."] [--title TEXT]

Left panel: target accuracy against training step; right panel: hue error. ``--points`` adds measured points
that have no JSON (e.g. an earlier recipe's figures from RESULTS.md) as markers without a hue error.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def parse_points(spec: str) -> tuple[str, list[tuple[int, float]]]:
    label, _, pairs = spec.rpartition("=")
    pts = []
    for pair in pairs.split(","):
        step, _, acc = pair.partition(":")
        pts.append((int(step), float(acc)))
    return label, pts


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--curve", action="append", default=[], help="LABEL=path/to/curve.json (repeatable)")
    p.add_argument("--points", action="append", default=[], help="LABEL=STEP:ACC,... (repeatable)")
    p.add_argument("--title", default="")
    args = p.parse_args()
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_hue) = plt.subplots(1, 2, figsize=(11, 3.8))
    for spec in args.curve:
        label, _, path = spec.rpartition("=")
        rows = sorted(json.loads(Path(path).read_text())["rows"], key=lambda r: r["step"])
        steps = [r["step"] for r in rows]
        ax_acc.plot(steps, [r["target_accuracy"] for r in rows], marker="o", label=label)
        ax_hue.plot(steps, [r["hue_error_deg"] for r in rows], marker="o", label=label)
    for spec in args.points:
        label, pts = parse_points(spec)
        ax_acc.plot(*zip(*pts), marker="s", linestyle="--", label=label)
    ax_acc.set_ylabel("target accuracy")
    ax_hue.set_ylabel("hue error (deg)")
    for ax in (ax_acc, ax_hue):
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=7, loc="lower right")
    fig.suptitle(args.title, fontsize=9)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
