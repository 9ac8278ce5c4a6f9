"""Figures of the comparison report, drawn with matplotlib (Agg) from evaluation files only.

Each function returns a ``Figure`` (title, caption, PNG bytes).
- side_by_side: the same first test inputs (top row) and each method's translations, one row per method;
- realism_vs_faithfulness: FID against hue error (hue-coloured data) or transport cost;
- quality_vs_nfe: FID against network evaluations per image;
- accuracy_vs_faithfulness: target accuracy against hue error or transport cost, one line per run across its
  settings (e.g. DDIB's guidance scale), where a digit classifier scored the outputs.

Every figure names an evaluation by its row label in the tables (translab.report.tables.short_labels) and draws it
in the same colour and marker; legends sit outside the plotted area, never over a point.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from translab.image_io import as_rgb
from translab.report.tables import faithfulness, fid_value, get, short_labels

MARKERS = "osD^vPX*<>"


@dataclass
class Figure:
    key: str
    title: str
    caption: str
    png: bytes


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------
# side by side


def load_samples(e: dict) -> dict | None:
    """{"inputs", "outputs"} uint8 (N, C, H, W), C = 3 or 1, from RUN/eval/<stem>_samples.pt (weights_only), or
    None."""
    name = (e.get("samples") or {}).get("tensors")
    if not name:
        return None
    p = Path(e["_json"]).parent / name
    if not p.is_file():
        return None
    data = torch.load(p, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or "inputs" not in data or "outputs" not in data:
        return None
    return data


def _strip(images: torch.Tensor, n: int, pad: int = 2) -> np.ndarray:
    """uint8 (N, C, H, W), C = 3 or 1 (drawn grey) -> one (H + 2 pad, n (W + pad) + pad, 3) row, white padding,
    blank slots past N."""
    h, w = images.shape[-2:]
    out = np.full((h + 2 * pad, n * (w + pad) + pad, 3), 255, np.uint8)
    arr = as_rgb(images).permute(0, 2, 3, 1).numpy()
    for j in range(min(n, arr.shape[0])):
        out[pad:pad + h, pad + j * (w + pad):pad + j * (w + pad) + w] = arr[j]
    return out


def side_by_side(evals: list[dict]) -> list[Figure]:
    """One figure per distinct set of inputs: inputs on top, then one row per evaluation that used them."""
    groups: list[tuple[torch.Tensor, dict, list[tuple[dict, torch.Tensor]]]] = []
    for e in evals:
        s = load_samples(e)
        if s is None:
            continue
        for inputs, _first, members in groups:
            if inputs.shape == s["inputs"].shape and torch.equal(inputs, s["inputs"]):
                members.append((e, s["outputs"]))
                break
        else:
            groups.append((s["inputs"], e, [(e, s["outputs"])]))
    figs, names = [], dict(zip(map(id, evals), short_labels(evals)))
    plt = _plt()
    for gi, (inputs, first, members) in enumerate(groups):
        n = inputs.shape[0]
        rows = [("input: " + first["dataset"]["source_domain"], inputs)] + [(names[id(e)], out) for e, out in members]
        truth = load_samples(first).get("counterparts")
        if truth is not None:
            rows.append(("true counterpart", truth))
        h, w = inputs.shape[-2:]
        width = max(6.0, n * 0.55 * max(1.0, w / 32))
        fig, axes = plt.subplots(len(rows), 1, figsize=(width, 0.62 * len(rows) * max(1.0, h / 32) + 0.4),
                                 squeeze=False)
        for ax, (label, imgs) in zip(axes[:, 0], rows):
            ax.imshow(_strip(imgs, n), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for sp in ax.spines.values():
                sp.set_visible(False)
            ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        d = first["dataset"]
        title = (f"{d['name']} {first['direction']}: the first {n} test images of {d['source_domain']} "
                 f"and each method's translation")
        fig.suptitle(title, fontsize=9)
        caption = (f"Top row: the first {n} test images of domain {d['source_domain']} "
                   f"(identical for every row below); "
                   f"each further row: one evaluation's translations of those images into {d['target_domain']}"
                   + (f"; bottom row: each input's true counterpart in {d['target_domain']}." if truth is not None
                      else "."))
        figs.append(Figure(f"side_by_side_{gi}", title, caption, _png(fig)))
    return figs


# --------------------------------------------------------------------------------------------------
# scatter plots


def choose_extractor(evals: list[dict]) -> str | None:
    """The FID extractor available for the most entries (inception wins ties); None when no FID exists."""
    counts = {name: sum(fid_value(e, name) is not None for e in evals) for name in ("inception", "classifier")}
    best = max(counts, key=lambda k: (counts[k], k == "inception"))
    return best if counts[best] else None


def style(evals: list[dict]) -> dict[int, tuple[str, str, str]]:
    """id(evaluation) -> (row label, colour, marker): one look per evaluation in every figure."""
    return {id(e): (label, f"C{i % 10}", MARKERS[i % len(MARKERS)])
            for i, (e, label) in enumerate(zip(evals, short_labels(evals)))}


def outside_legend(ax) -> None:
    """The legend to the right of the axes, outside the plotted points."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)


def _log_y_if_spread(ax, ys: list[float], ylabel: str) -> None:
    """A log y axis when the values span decades (one outlier would flatten the rest); symlog (linear below 1)
    when some value is below 1 (an FID of 0 on the log scale would stretch it over many empty decades)."""
    big = [y for y in ys if y >= 1]
    if not big or max(big) <= 20 * min(big):
        return
    if len(big) == len(ys):
        ax.set_yscale("log")
        ax.set_ylim(min(big) / 1.6, max(big) * 1.6)
    else:
        ax.set_yscale("symlog", linthresh=1.0, linscale=0.5)
        ax.set_ylim(min(min(ys), 0.0) - 0.2, max(big) * 1.6)
    ax.set_ylabel(f"{ylabel}, log scale\nlower = more realistic")


def _scatter(points: list[tuple[tuple[str, str, str], float, float]], xlabel: str, ylabel: str, title: str,
             logx: bool = False):
    """points: ((label, colour, marker), x, y)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    if points:
        for (label, colour, marker), x, y in points:
            ax.scatter([x], [y], s=55, color=colour, marker=marker, label=label, zorder=3, edgecolors="white",
                       linewidths=0.6)
        outside_legend(ax)
        if logx:
            ax.set_xscale("log")
        _log_y_if_spread(ax, [y for _, _, y in points], ylabel)
        ax.grid(True, alpha=0.3)
    else:
        ax.text(0.5, 0.5, "no entry has both values", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    if not ax.get_ylabel():
        ax.set_ylabel(f"{ylabel}\nlower = more realistic")
    ax.set_title(title, fontsize=10)
    return fig


def faithfulness_axis(evals: list[dict]) -> tuple[str, Callable[[dict], float | None]]:
    """(label, value of an entry) of the faithfulness axis: hue error when every entry is on hue-coloured data,
    else transport cost."""
    if all("hue_error" in e.get("metrics", {}) for e in evals):
        return faithfulness(evals[0])[0], lambda e: faithfulness(e)[1]
    return "transport cost (MSE per pixel, [-1, 1])", lambda e: get(e, "metrics", "transport_cost", "value")


def realism_vs_faithfulness(evals: list[dict]) -> Figure:
    """FID (y) against hue error when every entry is on hue-coloured data, else against transport cost (x)."""
    ex = choose_extractor(evals)
    xlabel, faithful = faithfulness_axis(evals)
    pts, missing, look = [], [], style(evals)
    for e in evals:
        fx = faithful(e)
        fy = fid_value(e, ex) if ex else None
        (pts.append((look[id(e)], fx, fy)) if fx is not None and fy is not None else missing.append(look[id(e)][0]))
    ylabel = f"FID ({ex} features)" if ex else "FID (none available)"
    fig = _scatter(pts, f"{xlabel}  (lower = more faithful)", ylabel, "realism against faithfulness")
    caption = f"Each point is one evaluation; y: FID with the {ex or 'no'} feature extractor, x: {xlabel}."
    if missing:
        caption += f" Left out (a value is missing): {'; '.join(missing)}."
    return Figure("realism_vs_faithfulness", "Realism (FID) against faithfulness", caption, _png(fig))


def quality_vs_nfe(evals: list[dict]) -> Figure:
    ex = choose_extractor(evals)
    pts, missing, look = [], [], style(evals)
    for e in evals:
        nfe, fy = get(e, "cost", "nfe_per_image"), (fid_value(e, ex) if ex else None)
        (pts.append((look[id(e)], nfe, fy)) if nfe and fy is not None else missing.append(look[id(e)][0]))
    fig = _scatter(pts, "network evaluations per image (NFE, log scale)", f"FID ({ex or 'none available'} features)",
                   "quality against sampling cost", logx=True)
    caption = f"Each point is one evaluation; y: FID with the {ex or 'no'} feature extractor, x: NFE per image."
    if missing:
        caption += f" Left out (a value is missing): {'; '.join(missing)}."
    return Figure("quality_vs_nfe", "Quality (FID) against network evaluations per image", caption, _png(fig))


def _curves(evals: list[dict], faithful) -> tuple[dict[tuple, list], list[str]]:
    """Points (x, y, evaluation) per (run, method, direction), and the labels of entries left out."""
    curves: dict[tuple, list[tuple[float, float, dict]]] = {}
    missing, look = [], style(evals)
    for e in evals:
        fx, fy = faithful(e), get(e, "metrics", "target_accuracy", "value")
        if fx is None or fy is None:
            missing.append(look[id(e)][0])
            continue
        key = (str(e.get("_run_dir")), e.get("method"), e.get("direction"))
        curves.setdefault(key, []).append((fx, fy, e))
    return curves, missing


def accuracy_vs_faithfulness(evals: list[dict]) -> Figure | None:
    """Target accuracy (y) against hue error or transport cost (x), one point per evaluation; evaluations of the
    same run, method and direction that differ only in a setting (e.g. ``model.guidance`` or the steps) are
    joined by a line in order of x: the trade-off a user picks a setting on. None when no entry has a target
    accuracy (data without a digit classifier)."""
    if not any(get(e, "metrics", "target_accuracy", "value") is not None for e in evals):
        return None
    xlabel, faithful = faithfulness_axis(evals)
    curves, missing = _curves(evals, faithful)
    look = style(evals)
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    for pts in curves.values():
        pts.sort(key=lambda p: (p[0], p[1]))
        if len(pts) > 1:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color="0.6", lw=1, zorder=2)
        for fx, fy, e in pts:
            label, colour, marker = look[id(e)]
            ax.scatter([fx], [fy], s=55, color=colour, marker=marker, label=label, zorder=3, edgecolors="white",
                       linewidths=0.6)
    outside_legend(ax)
    ax.grid(True, alpha=0.3)
    ax.set_xlabel(f"{xlabel}  (lower = more faithful)")
    ax.set_ylabel("target accuracy (higher = more translated)")
    ax.set_title("translation against faithfulness", fontsize=10)
    caption = ("Each point is one evaluation; y: the share of outputs the shipped target reader reads as the target "
               f"class, x: {xlabel}. Points of one run, method and direction are joined by a grey line (they differ "
               f"only in a setting, named in their label).")
    if missing:
        caption += f" Left out (a value is missing): {'; '.join(missing)}."
    return Figure("accuracy_vs_faithfulness", "Target accuracy against faithfulness", caption, _png(fig))
