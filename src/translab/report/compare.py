"""Assemble the side-by-side comparison report from run directories only (no model is loaded).

Reads RUN/eval/*.json (+ the ``*_samples.pt`` they name) and RUN/analysis/*.json, *.png of the run directories
given, nothing else (no cache), then writes OUT/report.md (figures as PNG files next to it) and
OUT/report.html (self-contained: images as data URIs). The same run directories give the same tables anywhere.
"""
from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path

from translab.report.notes import legend_line, metric_lines, protocol_lines, run_name, without_machine_paths
from translab.report.otref import match_all, ratio_column, ratio_notes, reference_lines
from translab.report.plots import (Figure, accuracy_vs_faithfulness, quality_vs_nfe, realism_vs_faithfulness,
                                   side_by_side)
from translab.report.tables import (COLUMNS, SETTING_COLUMNS, Column, Table, get, load_evals, make_table,
                                    negative_kid_note, short_labels, unavailable_notes)

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
    """Everything a page shows. ``table``: the metrics, one row per evaluation (``reference``: the rows that are
    a reference, not a translator); ``legend``: how to read its arrows; ``notes``: each caveat once (why a cell
    is n/a, negative KID); ``settings``: what each row label stands for, with speed and training."""
    title: str
    created: str
    runs: list[str]
    table: Table
    legend: str
    notes: list[str]
    settings: Table
    protocol: list[str]
    figures: list[Figure]
    analysis: list[AnalysisItem] = field(default_factory=list)
    reference: list[bool] = field(default_factory=list)

    @property
    def headers(self) -> list[str]:
        return self.table.headers

    @property
    def rows(self) -> list[list[str]]:
        return self.table.rows


def metric_columns(ratio: Column) -> list[Column]:
    """COLUMNS with the exact-OT ratio after the transport cost."""
    cols = []
    for c in COLUMNS:
        cols.append(c)
        if c.header.startswith("transport cost"):
            cols.append(ratio)
    return cols


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


def _once(lines: list[str]) -> list[str]:
    """Each line once, in order, without a machine's absolute paths (a reason may quote one)."""
    return list(dict.fromkeys(without_machine_paths(line) for line in lines))


def build_report(run_dirs: list[str | Path], title: str = "translab comparison",
                 out_dir: str | Path | None = None) -> Report:
    """The report of every evaluation in ``run_dirs``, read from those folders only (``out_dir``: where it will
    be written, so that runs inside it are named relative to it)."""
    from translab.ot_exact import METHOD

    evals = load_evals(run_dirs)
    labels = short_labels(evals)
    matches = match_all(evals)
    ratio = ratio_column(evals, matches)
    ratio.always = any(get(e, "metrics", "transport_cost", "value") is not None for e in evals)
    table = make_table(evals, labels, metric_columns(ratio))
    notes = ratio_notes(evals, labels, matches) + unavailable_notes(evals, labels)
    notes += [n for n in [negative_kid_note(evals, labels)] if n]
    settings = make_table(evals, labels, SETTING_COLUMNS, first="row")
    trade_off = accuracy_vs_faithfulness(evals)
    figures = side_by_side(evals) + [realism_vs_faithfulness(evals), quality_vs_nfe(evals)]
    figures += [trade_off] if trade_off is not None else []
    runs = list(dict.fromkeys(run_name(e["_run_dir"], out_dir) for e in evals))
    protocol = metric_lines(evals, table.headers) + protocol_lines(evals, labels) + reference_lines(evals, matches)
    return Report(title=title, created=_dt.datetime.now().isoformat(timespec="seconds"), runs=runs, table=table,
                  legend=legend_line(table.headers), notes=_once(notes), settings=settings,
                  protocol=_once(protocol), figures=figures,
                  analysis=collect_analysis([Path(r) for r in run_dirs]),
                  reference=[e.get("method") == METHOD for e in evals])


def write_report(run_dirs: list[str | Path], out_dir: str | Path, title: str = "translab comparison") -> dict:
    """Build and write OUT/report.md (+ OUT/figures/*.png, OUT/analysis/...) and OUT/report.html."""
    from translab.report.html import render_html
    from translab.report.markdown import write_markdown

    out = Path(out_dir)
    report = build_report(run_dirs, title, out)
    out.mkdir(parents=True, exist_ok=True)
    md = write_markdown(report, out)
    html = out / "report.html"
    html.write_text(render_html(report), encoding="utf-8")
    return {"markdown": md, "html": html, "entries": len(report.rows), "figures": len(report.figures),
            "analysis_items": len(report.analysis)}
