"""The comparison tables: one row per evaluation (RUN/eval/*.json), one column per metric.

Two tables: the metrics (what a reader compares: realism, translation, faithfulness, sampling cost) and the
rows' settings (the full evaluation label, speed, device, training). Each metric header ends in an arrow
(lower or higher is better); a column whose cell is the same in every row leaves its table for a one-line
note under it. Rows are named by short labels (``short_labels``); the settings table spells each one out.
Every FID/KID column names its feature extractor. Values that do not exist for an entry are shown as "n/a"
and the reasons are collected as notes, never filled in. The ratio of each transport cost to the exact
optimal transport between the same test sets (translab.report.otref) needs an ``ot-exact`` run among the
compared ones: the report reads only the run directories it is given.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from translab.rundir import RunDir, RunDirError, training_total


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
            if not isinstance(data, dict) or "method" not in data:
                continue  # not an evaluation file
            check_eval_entry(data, p)
            data["_run_dir"], data["_json"] = run.path, p
            evals.append(data)
    if not evals:
        raise RunDirError(f"no evaluations found in {', '.join(str(r) + '/eval' for r in run_dirs)}: "
                          f"run `translab evaluate --run RUN` first")
    return evals


#: numeric fields of an evaluation file that the report reads: (path, ...) -> must be a number or null
NUMERIC_FIELDS = (
    ("metrics", "transport_cost", "value"), ("metrics", "target_accuracy", "value"),
    ("metrics", "attribute_accuracy", "value"), ("metrics", "hue_error", "mean_deg"),
    ("metrics", "hue_error", "no_foreground_share"), ("metrics", "cycle_error", "value"),
    ("metrics", "ssim", "mean"), ("cost", "nfe_per_image"), ("cost", "images_per_s"),
    ("metrics", "tone_kept", "value"), ("metrics", "concept_kept", "value"),
    ("metrics", "counterpart", "retrieval", "output", "top1"), ("metrics", "counterpart", "retrieval", "input", "top1"),
    ("metrics", "counterpart", "distance", "pixel", "ratio"), ("metrics", "counterpart", "distance", "inception", "ratio"),
    ("metrics", "memorisation", "ratio"), ("metrics", "translated_and_kept", "value"),
)


def check_eval_entry(data: dict, path: Path) -> None:
    """RunDirError naming ``path`` and the field when an evaluation file (a mapping with 'method') is malformed:
    'metrics' missing or not a mapping, a FID/KID entry or a read number of the wrong type. A report never
    drops such a file silently or renders its strings as numbers."""
    metrics = data.get("metrics")
    if not isinstance(metrics, dict):
        raise RunDirError(f"{path}: 'metrics' must be a mapping of metric name to result, got "
                          f"{type(metrics).__name__}; re-run `translab evaluate` for this run")
    fields = list(NUMERIC_FIELDS)
    for name in metrics.get("fid_kid") or {}:
        fields += [("metrics", "fid_kid", name, key) for key in ("fid", "kid_mean", "kid_std")]
    for keys in fields:
        node: Any = data
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None and (isinstance(node, bool) or not isinstance(node, (int, float))):
            raise RunDirError(f"{path}: {'.'.join(keys)} must be a number, got {str(node)[:60]!r}; re-run "
                              f"`translab evaluate` for this run")


def entry_label(e: dict) -> str:
    """Short unique-ish label: method direction steps [overrides] @ run."""
    steps = f"{e['steps']} steps" if e.get("steps") else "one pass"
    if e.get("reference"):
        steps = "exact OT reference"
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




def _setting_parts(e: dict) -> dict[str, str]:
    """What tells evaluations of one method and direction apart: steps, each override, the run, the test set."""
    parts = {"steps": f"{e['steps']} steps" if e.get("steps") else "one pass"}
    for k, v in (e.get("overrides") or {}).items():
        parts[f"o:{k}"] = f"{k.split('.')[-1]}={v}"
    n = get(e, "dataset", "n_inputs")
    parts["n"] = f"{n} images" if n is not None else ""
    parts["run"] = str(e.get("run_name") or "")
    return parts


def short_labels(evals: list[dict]) -> list[str]:
    """One short, unique row label per evaluation: "method direction", plus what tells it apart from the
    evaluations of the same method and direction (a setting, the steps, the run), else a number."""
    bases = [f"{e.get('method', '?')} {e.get('direction', '?')}" for e in evals]
    labels = list(bases)
    for base in dict.fromkeys(bases):
        group = [i for i, b in enumerate(bases) if b == base]
        if len(group) < 2:
            continue
        parts = [_setting_parts(evals[i]) for i in group]
        keys = list(dict.fromkeys(k for p in parts for k in p))
        differ = [k for k in keys if len({p.get(k, "") for p in parts}) > 1]
        for i, p in zip(group, parts):
            extra = ", ".join(p.get(k) or f"no {k[2:].split('.')[-1]}" for k in differ)
            labels[i] = f"{base} ({extra})" if extra else base
    seen: dict[str, int] = {}
    counts = {label: labels.count(label) for label in labels}
    for i, label in enumerate(labels):
        if counts[label] > 1:
            seen[label] = seen.get(label, 0) + 1
            labels[i] = f"{label} #{seen[label]}"
    return labels


LOWER, HIGHER = "lower", "higher"
ARROWS = {LOWER: "\u2193", HIGHER: "\u2191"}


@dataclass
class Column:
    header: str
    value: Callable[[dict], Any]
    fmt: str = "{:.3f}"
    always: bool = False  # kept even when no entry has a value (the labelled FID/KID columns): noted as n/a
    better: str | None = None  # LOWER | HIGHER: which way is better, shown as an arrow in the header

    @property
    def title(self) -> str:
        return f"{self.header} {ARROWS[self.better]}" if self.better else self.header

    def text(self, e: dict) -> str:
        v = self.value(e)
        if v is None or (isinstance(v, float) and not math.isfinite(v)):
            return "n/a"
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return str(v)
        s = self.fmt.format(v)
        return s[1:] if s.startswith("-") and not s.strip("-0.") else s  # -0.000 is 0.000 at this precision


def _record(e: dict, key: str):
    """``key`` of the evaluated weights' training record, summed over its stages (``init_from``)."""
    return training_total(e.get("training") or {}, key)


_TO_TRUTH = ("metrics", "counterpart", "distance")


def _retrieval(query: str):
    """Top-1 of the true-counterpart retrieval with the outputs (or the inputs: the baseline) as queries."""
    return lambda e: get(e, "metrics", "counterpart", "retrieval", query, "top1")


def _kid(extractor: str):
    return lambda e: fid_value(e, extractor, "kid_mean")


#: the metrics table, in order (the exact-OT ratio goes in after the transport cost, see metric_columns)
COLUMNS = [
    Column("FID (inception)", lambda e: fid_value(e, "inception"), "{:.2f}", True, LOWER),
    Column("KID (inception)", _kid("inception"), "{:.4f}", True, LOWER),
    Column("FID (classifier)", lambda e: fid_value(e, "classifier"), "{:.2f}", True, LOWER),
    Column("KID (classifier)", _kid("classifier"), "{:.4f}", True, LOWER),
    Column("target accuracy", lambda e: get(e, "metrics", "target_accuracy", "value"), "{:.3f}", better=HIGHER),
    Column("attribute accuracy", lambda e: get(e, "metrics", "attribute_accuracy", "value"), "{:.3f}", better=HIGHER),
    Column("translated, all kept", lambda e: get(e, "metrics", "translated_and_kept", "value"), "{:.3f}",
           better=HIGHER),
    Column("tone kept", lambda e: get(e, "metrics", "tone_kept", "value"), "{:.3f}", better=HIGHER),
    Column("concept kept", lambda e: get(e, "metrics", "concept_kept", "value"), "{:.3f}", better=HIGHER),
    Column("counterpart top-1", _retrieval("output"), "{:.3f}", better=HIGHER),
    Column("counterpart top-1 (input's)", _retrieval("input"), "{:.3f}"),  # the baseline: no translation
    Column("to counterpart, pixels (/ input's)", lambda e: get(e, *_TO_TRUTH, "pixel", "ratio"), "{:.3f}",
           better=LOWER),
    Column("to counterpart, Inception (/ input's)", lambda e: get(e, *_TO_TRUTH, "inception", "ratio"), "{:.3f}",
           better=LOWER),
    Column("nearest training target (/ real test's)", lambda e: get(e, "metrics", "memorisation", "ratio"),
           "{:.2f}"),
    Column("hue error (deg)", lambda e: get(e, "metrics", "hue_error", "mean_deg"), "{:.2f}", better=LOWER),
    Column("no-foreground outputs", lambda e: get(e, "metrics", "hue_error", "no_foreground_share"), "{:.3f}",
           better=LOWER),
    Column("transport cost (MSE)", lambda e: get(e, "metrics", "transport_cost", "value"), "{:.4f}", better=LOWER),
    Column("SSIM", lambda e: get(e, "metrics", "ssim", "mean"), "{:.3f}", better=HIGHER),
    Column("cycle error (MSE)", lambda e: get(e, "metrics", "cycle_error", "value"), "{:.4f}", better=LOWER),
    Column("NFE / image", lambda e: get(e, "cost", "nfe_per_image"), "{:d}", better=LOWER),
]

#: the settings table: how each row was run (the full label first)
SETTING_COLUMNS = [
    Column("evaluation: method direction (steps; settings) @ run", entry_label, "{}", True),
    Column("test images (inputs / reference)",
           lambda e: f"{get(e, 'dataset', 'n_inputs')} / {get(e, 'dataset', 'n_reference')}"),
    Column("images / s", lambda e: get(e, "cost", "images_per_s"), "{:.2f}", better=HIGHER),
    Column("device", lambda e: f"{get(e, 'cost', 'device')} x{get(e, 'cost', 'threads')}"),
    Column("train steps", lambda e: _record(e, "steps"), "{:d}"),
    Column("train wall (s)", lambda e: _record(e, "wall_seconds"), "{:.0f}"),
]

@dataclass
class Table:
    """Cells as strings. ``constant``: "header: cell" of each column dropped because every row had that cell."""
    headers: list[str]
    rows: list[list[str]]
    constant: list[str]


def make_table(evals: list[dict], labels: list[str], cols: list[Column], first: str = "method") -> Table:
    """The columns with a value somewhere (or ``always``); with two rows or more, a column whose cell is the
    same in every row becomes a ``constant`` entry instead (a single row keeps every column)."""
    cols = [c for c in cols if c.always or any(c.value(e) is not None for e in evals)]
    cells = [[c.text(e) for e in evals] for c in cols]
    keep, constant = [], []
    for c, col_cells in zip(cols, cells):
        if len(evals) > 1 and len(set(col_cells)) == 1:
            constant.append(f"{c.header} {col_cells[0]}")
        else:
            keep.append((c, col_cells))
    headers = [first] + [c.title for c, _ in keep]
    rows = [[label] + [col_cells[i] for _, col_cells in keep] for i, label in enumerate(labels)]
    return Table(headers, rows, constant)


def unavailable_notes(evals: list[dict], labels: list[str]) -> list[str]:
    """One line per metric and recorded reason it could not be computed, naming the rows (or "every row")."""
    groups: dict[tuple[str, str], list[str]] = {}
    for e, label in zip(evals, labels):
        for name, entry in (e.get("metrics") or {}).items():
            subs = entry.items() if name == "fid_kid" else [(None, entry)]
            for sub, val in subs:
                if isinstance(val, dict) and val.get("available") is False:
                    what = f"FID/KID ({sub})" if sub else name.replace("_", " ")
                    groups.setdefault((what, str(val.get("reason", "no reason recorded"))), []).append(label)
    return [f"{what} n/a for {rows_named(names, labels)}: {reason}" for (what, reason), names in groups.items()]


def rows_named(names: list[str], labels: list[str]) -> str:
    """'every row' when ``names`` covers all ``labels`` (and there are several), else the names joined."""
    names = list(dict.fromkeys(names))
    return "every row" if len(labels) > 1 and set(names) == set(labels) else ", ".join(names)


def negative_kid_note(evals: list[dict], labels: list[str]) -> str | None:
    """Why a KID below 0 is shown (the unbiased estimator), naming those cells with their spread; None if none."""
    cells = []
    for e, label in zip(evals, labels):
        for name, entry in (get(e, "metrics", "fid_kid") or {}).items():
            kid = entry.get("kid_mean") if isinstance(entry, dict) and entry.get("available") else None
            if isinstance(kid, (int, float)) and kid < 0:
                std = entry.get("kid_std")  # 0 (to rounding) when every subset is the whole small set
                shown = f"{std:.4f}" if isinstance(std, (int, float)) else "0.0000"
                spread = "" if shown == "0.0000" else f" \u00b1 {shown} (std over subsets)"
                cells.append(f"{label}: KID ({name}) {kid:.4f}{spread}")
    if not cells:
        return None
    return ("Negative KID: KID is the unbiased estimate of the squared MMD, averaged over random subsets, so it can "
            "be slightly negative when the two image sets are indistinguishable at this sample size (and it is "
            "below 0 by construction when they are the very same images, as the exact-OT reference's real target "
            "images can be); read it as 0. Here: " + "; ".join(cells) + ".")


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
