"""The comparison table: one row per evaluation (RUN/eval/*.json), one column per metric.

Every FID/KID column names its feature extractor in the header. Values that do not exist for an entry
are shown as "n/a" and the reasons are collected as notes, never filled in.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from translab.rundir import RunDir, RunDirError


def load_evals(run_dirs: list[str | Path]) -> list[dict]:
    """Every evaluation JSON under RUN/eval/ of each run, in argument order then file name order.

    Adds ``_run_dir`` (Path) and ``_json`` (Path) to each dict. RunDirError for a missing run directory
    and when no run holds any evaluation.
    """
    evals = []
    for rd in run_dirs:
        run = RunDir(rd)
        if not run.path.is_dir():
            raise RunDirError(f"run directory {run.path} does not exist")
        for p in sorted(run.eval.glob("*.json")) if run.eval.is_dir() else []:
            try:
                data = json.loads(p.read_text())
            except ValueError as e:
                raise RunDirError(f"{p} is not valid JSON ({e})") from None
            if not isinstance(data, dict) or "metrics" not in data or "method" not in data:
                continue  # not an evaluation file
            data["_run_dir"], data["_json"] = run.path, p
            evals.append(data)
    if not evals:
        raise RunDirError(f"no evaluations found in {', '.join(str(r) + '/eval' for r in run_dirs)}: "
                          f"run `translab evaluate --run RUN` first")
    return evals


def entry_label(e: dict) -> str:
    """Short unique-ish label: method direction steps [overrides] @ run."""
    steps = f"{e['steps']} steps" if e.get("steps") else "one pass"
    over = ", ".join(f"{k}={v}" for k, v in (e.get("overrides") or {}).items())
    return f"{e['method']} {e['direction']} ({steps}{'; ' + over if over else ''}) @ {e.get('run_name', '?')}"


def get(e: dict, *path: str) -> Any:
    """Nested lookup; None when any key is missing or an entry is marked unavailable."""
    node: Any = e
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
        if isinstance(node, dict) and node.get("available") is False:
            return None
    return node


def fid_value(e: dict, extractor: str, key: str = "fid") -> float | None:
    return get(e, "metrics", "fid_kid", extractor, key)


def faithfulness(e: dict) -> tuple[str, float | None]:
    """('hue error (deg)', value) for hue-coloured datasets, else ('transport cost', value)."""
    hue = get(e, "metrics", "hue_error", "mean_deg")
    if "hue_error" in e.get("metrics", {}):
        return "hue error (degrees)", hue
    return "transport cost (MSE per pixel, [-1, 1])", get(e, "metrics", "transport_cost", "value")


@dataclass
class Column:
    header: str
    value: Callable[[dict], Any]
    fmt: str = "{:.3f}"
    always: bool = False  # shown even when no entry has a value (the labelled FID/KID columns)

    def text(self, e: dict) -> str:
        v = self.value(e)
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "n/a"
        return self.fmt.format(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)


def _record(e: dict, key: str):
    rec = e.get("training") or {}
    return rec.get(key)


COLUMNS = [
    Column("FID (inception)", lambda e: fid_value(e, "inception"), "{:.2f}", True),
    Column("KID (inception)", lambda e: fid_value(e, "inception", "kid_mean"), "{:.4f}", True),
    Column("FID (classifier)", lambda e: fid_value(e, "classifier"), "{:.3f}", True),
    Column("KID (classifier)", lambda e: fid_value(e, "classifier", "kid_mean"), "{:.4f}", True),
    Column("target accuracy", lambda e: get(e, "metrics", "target_accuracy", "value"), "{:.3f}"),
    Column("attribute accuracy", lambda e: get(e, "metrics", "attribute_accuracy", "value"), "{:.3f}"),
    Column("hue error (deg)", lambda e: get(e, "metrics", "hue_error", "mean_deg"), "{:.2f}"),
    Column("no-foreground outputs", lambda e: get(e, "metrics", "hue_error", "no_foreground_share"), "{:.3f}"),
    Column("transport cost (MSE, [-1,1])", lambda e: get(e, "metrics", "transport_cost", "value"), "{:.4f}"),
    Column("SSIM", lambda e: get(e, "metrics", "ssim", "mean"), "{:.3f}"),
    Column("cycle error (MSE, [-1,1])", lambda e: get(e, "metrics", "cycle_error", "value"), "{:.4f}"),
    Column("NFE / image", lambda e: get(e, "cost", "nfe_per_image"), "{:d}"),
    Column("images / s", lambda e: get(e, "cost", "images_per_s"), "{:.2f}"),
    Column("device", lambda e: f"{get(e, 'cost', 'device')} x{get(e, 'cost', 'threads')}"),
    Column("train steps", lambda e: _record(e, "steps"), "{:d}"),
    Column("train wall (s)", lambda e: _record(e, "wall_seconds"), "{:.0f}"),
    Column("test images (inputs / reference)",
           lambda e: f"{get(e, 'dataset', 'n_inputs')} / {get(e, 'dataset', 'n_reference')}"),
]


def build_table(evals: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows of cell strings): the method label then every column that has a value somewhere."""
    cols = [c for c in COLUMNS if c.always or any(c.value(e) is not None for e in evals)]
    headers = ["method (run)"] + [c.header for c in cols]
    rows = [[entry_label(e)] + [c.text(e) for c in cols] for e in evals]
    return headers, rows


def unavailable_notes(evals: list[dict]) -> list[str]:
    """One line per metric an entry could not compute, with the recorded reason."""
    notes = []
    for e in evals:
        for name, entry in (e.get("metrics") or {}).items():
            subs = entry.items() if name == "fid_kid" else [(None, entry)]
            for sub, val in subs:
                if isinstance(val, dict) and val.get("available") is False:
                    what = f"FID/KID ({sub})" if sub else name.replace("_", " ")
                    notes.append(f"{entry_label(e)}: {what} n/a: {val.get('reason', 'no reason recorded')}")
    return notes


def extractor_descriptions(evals: list[dict]) -> list[str]:
    """Distinct descriptions of the feature extractors used."""
    seen = []
    for e in evals:
        for name, entry in (get(e, "metrics", "fid_kid") or {}).items():
            if isinstance(entry, dict) and entry.get("available"):
                line = f"{name}: {entry.get('features')}"
                if line not in seen:
                    seen.append(line)
    return seen
