"""Assemble the side-by-side comparison report from run directories only (no model is loaded).

Reads RUN/eval/*.json (+ the ``*_samples.pt`` they name) and RUN/analysis/*.json, *.png, then writes
OUT/report.md (figures as PNG files next to it) and OUT/report.html (self-contained: images as data URIs).
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from translab.shipped import portable_path
from translab.report.plots import (Figure, accuracy_vs_faithfulness, quality_vs_nfe, realism_vs_faithfulness,
                                   side_by_side)
from translab.report.tables import (build_table, extractor_descriptions, load_evals, ot_reference_lines,
                                    unavailable_notes)

ANALYSIS_JSON_MAX_CHARS = 20000


@dataclass
class AnalysisItem:
    run: str
    name: str
    kind: str  # "json" | "png"
    text: str | None = None
    png: bytes | None = None
    truncated: bool = False


@dataclass
class Report:
    title: str
    created: str
    runs: list[str]
    headers: list[str]
    rows: list[list[str]]
    protocol: list[str]
    notes: list[str]
    figures: list[Figure]
    analysis: list[AnalysisItem] = field(default_factory=list)


def protocol_lines(evals: list[dict]) -> list[str]:
    """What the numbers mean: FID protocol, units, reference sets, limits."""
    lines = [
        "Inception FID/KID use torchmetrics with antialias=False (torch-fidelity's resize), computed on the plain "
        "test sets (not tiled to 10,000 images).",
        "FID and KID compare each method's translations of the source test split with the target domain's real "
        "test images; KID uses 100 random subsets of min(1000, n_real, n_generated) images and the cubic "
        "polynomial kernel.",
        "Transport cost and cycle error: mean squared difference per pixel and channel, images in [-1, 1] "
        "(cycle error: input against its back-translation, same steps).",
        "Hue error: circular distance in degrees between the foreground hues of input and output, over outputs "
        "that have a foreground; the share without one is its own column.",
    ]
    lines += [f"Feature extractor {d}" for d in extractor_descriptions(evals)]
    lines += ot_reference_lines(evals)
    limited = [e for e in evals if (e.get("dataset") or {}).get("limit")]
    for e in limited:
        d = e["dataset"]
        lines.append(f"{e['method']} {e['direction']} @ {e.get('run_name')}: evaluated on the first {d['n_inputs']} "
                     f"test images only (--limit {d['limit']}); small sets bias FID upwards.")
    return lines


def collect_analysis(run_dirs: list[Path]) -> list[AnalysisItem]:
    """RUN/analysis/*.json (pretty-printed, truncated past 20,000 characters) and RUN/analysis/*.png."""
    items = []
    for rd in run_dirs:
        folder = Path(rd) / "analysis"
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob("*.json")):
            try:
                text = json.dumps(json.loads(p.read_text()), indent=2)
            except ValueError as e:
                text = f"(not valid JSON: {e})"
            cut = len(text) > ANALYSIS_JSON_MAX_CHARS
            items.append(AnalysisItem(Path(rd).name, p.name, "json", text[:ANALYSIS_JSON_MAX_CHARS], truncated=cut))
        for p in sorted(folder.glob("*.png")):
            items.append(AnalysisItem(Path(rd).name, p.name, "png", png=p.read_bytes()))
    return items


def build_report(run_dirs: list[str | Path], title: str = "translab comparison") -> Report:
    evals = load_evals(run_dirs)
    headers, rows = build_table(evals)
    trade_off = accuracy_vs_faithfulness(evals)
    figures = side_by_side(evals) + [realism_vs_faithfulness(evals), quality_vs_nfe(evals)]
    figures += [trade_off] if trade_off is not None else []
    runs = list(dict.fromkeys(portable_path(e["_run_dir"]) for e in evals))
    return Report(title=title, created=_dt.datetime.now().isoformat(timespec="seconds"), runs=runs,
                  headers=headers, rows=rows, protocol=protocol_lines(evals), notes=unavailable_notes(evals),
                  figures=figures, analysis=collect_analysis([Path(r) for r in run_dirs]))


def write_report(run_dirs: list[str | Path], out_dir: str | Path, title: str = "translab comparison") -> dict:
    """Build and write OUT/report.md (+ OUT/figures/*.png, OUT/analysis/...) and OUT/report.html."""
    from translab.report.html import render_html
    from translab.report.markdown import write_markdown

    report = build_report(run_dirs, title)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = write_markdown(report, out)
    html = out / "report.html"
    html.write_text(render_html(report), encoding="utf-8")
    return {"markdown": md, "html": html, "entries": len(report.rows), "figures": len(report.figures),
            "analysis_items": len(report.analysis)}
