"""Pictures of the latent analyses, drawn with matplotlib's Agg backend and saved as PNG files.

Images are (N, 3, H, W) tensors in [-1, 1], or greyscale (N, 1, H, W) drawn grey (clamped for display); every function returns the written path.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from translab.image_io import as_rgb


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def _rgb(img: torch.Tensor) -> np.ndarray:
    """(3, H, W) or greyscale (1, H, W) in [-1, 1] -> (H, W, 3) float in [0, 1]."""
    return ((as_rgb(img).detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()


def image_table(rows: list[torch.Tensor], path: str | Path, row_labels: list[str] | None = None,
                col_labels: list[str] | None = None, title: str | None = None, cell: float = 0.9) -> Path:
    """A table of images: rows[i] (M_i, 3, H, W) in [-1, 1]; optional labels left of rows and above columns."""
    plt = _plt()
    nrow, ncol = len(rows), max(r.shape[0] for r in rows)
    fig, axes = plt.subplots(nrow, ncol, figsize=(cell * ncol + 1.2, cell * nrow + 0.6), squeeze=False)
    for i, r in enumerate(rows):
        for j in range(ncol):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            for s in ax.spines.values():
                s.set_visible(False)
            if j < r.shape[0]:
                ax.imshow(_rgb(r[j]), interpolation="nearest")
            if i == 0 and col_labels and j < len(col_labels):
                ax.set_title(col_labels[j], fontsize=7)
        if row_labels and i < len(row_labels):
            axes[i][0].set_ylabel(row_labels[i], fontsize=7, rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def pca_scatter(coords: torch.Tensor, domain: torch.Tensor, path: str | Path, domain_names: tuple[str, str],
                hue_deg: torch.Tensor | None = None, explained: list[float] | None = None,
                title: str = "PCA of latents") -> Path:
    """coords (N, 2); domain (N,) 0/1 -> markers o/^; colour = hue (hsv colour map) where given."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.4))
    markers = ("o", "^")
    sc = None
    for d in (0, 1):
        m = (domain == d).cpu()
        if not bool(m.any()):
            continue
        c = coords[m].cpu().numpy()
        label = f"domain {'AB'[d]} ({domain_names[d]})"
        if hue_deg is not None:
            sc = ax.scatter(c[:, 0], c[:, 1], c=hue_deg[m].cpu().numpy(), cmap="hsv", vmin=0, vmax=360, s=12,
                            marker=markers[d], label=label, edgecolors="k", linewidths=0.2)
        else:
            ax.scatter(c[:, 0], c[:, 1], s=12, marker=markers[d], label=label)
    if sc is not None:
        fig.colorbar(sc, ax=ax, label="hue (degrees)")
    ev = explained or []
    ax.set_xlabel(f"PC 1 ({100 * ev[0]:.1f}% of variance)" if len(ev) > 0 else "PC 1")
    ax.set_ylabel(f"PC 2 ({100 * ev[1]:.1f}% of variance)" if len(ev) > 1 else "PC 2")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    return _save(fig, path)


def latent_histogram(values: dict[str, torch.Tensor], path: str | Path, bins: int = 80) -> Path:
    """Density histograms of all values of each named tensor beside the N(0, 1) density (log scale)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    lo = min(float(v.min()) for v in values.values())
    hi = max(float(v.max()) for v in values.values())
    lo, hi = min(lo, -4.0), max(hi, 4.0)
    edges = np.linspace(lo, hi, bins + 1)
    for name, v in values.items():
        ax.hist(v.detach().flatten().double().cpu().numpy(), bins=edges, density=True, histtype="step", label=name)
    grid = np.linspace(lo, hi, 400)
    ax.plot(grid, np.exp(-grid ** 2 / 2) / math.sqrt(2 * math.pi), "k--", lw=1, label="N(0, 1) density")
    ax.set_yscale("log")
    ax.set_ylim(bottom=1e-5)
    ax.set_xlabel("latent value")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    ax.set_title("Values of the encoded latents", fontsize=9)
    return _save(fig, path)


def steps_sweep_plot(sweep: dict, path: str | Path) -> Path:
    """Reconstruction and cycle error (mean solid, max dashed) against DDIM steps, log-log."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.8))
    steps = [r["steps"] for r in sweep["rows"]]
    for key, label in sweep["series"].items():
        mean = [r[key]["mean"] for r in sweep["rows"]]
        mx = [r[key]["max"] for r in sweep["rows"]]
        line, = ax.plot(steps, mean, "o-", label=f"{label} (mean)")
        ax.plot(steps, mx, "x--", color=line.get_color(), alpha=0.7, label=f"{label} (max)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(steps)
    ax.set_xticklabels([str(s) for s in steps])
    from matplotlib.ticker import NullLocator

    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("DDIM steps per chain")
    ax.set_ylabel(sweep.get("units_short", "MSE per pixel and channel"))
    ax.set_title(f"Encode/decode error against steps ({sweep['n_images']} images per domain)", fontsize=9)
    ax.legend(fontsize=6)
    return _save(fig, path)


def release_tradeoff_plot(rows: list[dict], panels: list[tuple[str, str]], tradeoff: tuple[str, str] | None,
                          path: str | Path, title: str) -> Path:
    """Each metric against the release time t_r (one panel per (key, label)), then realism against faithfulness.

    rows: [{"release_t": int, key: float or None, ...}]; ``tradeoff`` = (x key, y key) or None.
    """
    plt = _plt()
    n = len(panels) + (1 if tradeoff else 0)
    fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 3.0), squeeze=False)
    ts = [r["release_t"] for r in rows]
    for ax, (key, label) in zip(axes[0], panels):
        pts = [(t, r[key]) for t, r in zip(ts, rows) if r.get(key) is not None]
        if pts:
            ax.plot(*zip(*pts), "o-")
        ax.set_xlabel("release time t_r")
        ax.set_title(label, fontsize=8)
    if tradeoff:
        ax = axes[0][-1]
        xk, yk = tradeoff
        pts = [(r[xk], r[yk], r["release_t"]) for r in rows if r.get(xk) is not None and r.get(yk) is not None]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-")
            for x, y, t in pts:
                ax.annotate(f"t_r={t}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
        labels = dict(panels)
        ax.set_xlabel(labels.get(xk, xk), fontsize=8)
        ax.set_ylabel(labels.get(yk, yk), fontsize=8)
        ax.set_title("trade-off", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
