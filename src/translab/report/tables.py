"""The comparison table: one row per evaluation (RUN/eval/*.json), one column per metric.

Every FID/KID column names its feature extractor in the header. Values that do not exist for an entry
are shown as "n/a" and the reasons are collected as notes, never filled in. When the exact optimal transport
between the same test sets is known (an ``ot-exact`` evaluation among the compared runs, else one kept in the
cache by ``translab ot-exact``; see translab.ot_exact), a column beside the transport cost gives each entry's
transport cost divided by that exact OT cost.
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
        fields += [("metrics", "fid_kid", name, "fid"), ("metrics", "fid_kid", name, "kid_mean")]
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


_TO_TRUTH = ("metrics", "counterpart", "distance")


def _retrieval(e: dict) -> str | None:
    """'output top-1 (input top-1)' of the true-counterpart retrieval, or None."""
    r = get(e, "metrics", "counterpart", "retrieval")
    if not r:
        return None
    return f"{r['output']['top1']:.3f} ({r['input']['top1']:.3f})"


COLUMNS = [
    Column("FID (inception)", lambda e: fid_value(e, "inception"), "{:.2f}", True),
    Column("KID (inception)", lambda e: fid_value(e, "inception", "kid_mean"), "{:.4f}", True),
    Column("FID (classifier)", lambda e: fid_value(e, "classifier"), "{:.3f}", True),
    Column("KID (classifier)", lambda e: fid_value(e, "classifier", "kid_mean"), "{:.4f}", True),
    Column("target accuracy", lambda e: get(e, "metrics", "target_accuracy", "value"), "{:.3f}"),
    Column("attribute accuracy", lambda e: get(e, "metrics", "attribute_accuracy", "value"), "{:.3f}"),
    Column("tone kept", lambda e: get(e, "metrics", "tone_kept", "value"), "{:.3f}"),
    Column("concept kept", lambda e: get(e, "metrics", "concept_kept", "value"), "{:.3f}"),
    Column("counterpart top-1 (input's)", lambda e: _retrieval(e), "{}"),
    Column("to counterpart, pixels (/ input's)", lambda e: get(e, *_TO_TRUTH, "pixel", "ratio"), "{:.3f}"),
    Column("to counterpart, Inception (/ input's)", lambda e: get(e, *_TO_TRUTH, "inception", "ratio"), "{:.3f}"),
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


OT_RATIO_HEADER = "transport cost / exact OT"


def ot_reference(e: dict, evals: list[dict]) -> dict | None:
    """The ot-exact evaluation of the same test sets as ``e``: one among ``evals``, else the cached one, or None.

    "Same" compares translab.ot_exact.data_identity (data config, dataset, direction, numbers of images).
    """
    from translab.ot_exact import METHOD, cached_result, data_identity

    ident = data_identity(e)
    if ident is None:
        return None
    for r in evals:
        if r.get("method") == METHOD and get(r, "metrics", "ot_exact", "cost") and data_identity(r) == ident:
            return r
    return cached_result(ident)


def ot_ratio(e: dict, ref: dict | None) -> float | None:
    """e's transport cost / the reference's exact OT cost; None when either is missing (or the cost is 0)."""
    cost = get(e, "metrics", "transport_cost", "value")
    ref_cost = get(ref, "metrics", "ot_exact", "cost") if ref else None
    return cost / ref_cost if cost is not None and ref_cost else None


def table_columns(evals: list[dict]) -> list[Column]:
    """COLUMNS with the ratio column inserted after the transport cost; only those with a value somewhere."""
    refs = {id(e): ot_reference(e, evals) for e in evals}
    ratio = Column(OT_RATIO_HEADER, lambda e: ot_ratio(e, refs.get(id(e))), "{:.3f}")
    cols = []
    for c in COLUMNS:
        cols.append(c)
        if c.header.startswith("transport cost"):
            cols.append(ratio)
    return [c for c in cols if c.always or any(c.value(e) is not None for e in evals)]


def ot_reference_lines(evals: list[dict]) -> list[str]:
    """Protocol lines naming each exact OT cost the ratio column divides by (none when there is no ratio)."""
    lines, seen = [], set()
    for e in evals:
        ref = ot_reference(e, evals)
        if ot_ratio(e, ref) is None:
            continue
        key = ref.get("cached_from") or str(ref.get("_json"))
        if key in seen:
            continue
        seen.add(key)
        d = ref.get("dataset") or {}
        where = f"kept in the cache from {ref['cached_from']}" if ref.get("cached_from") else entry_label(ref)
        cost = get(ref, "metrics", "ot_exact", "cost")
        lines.append(f"{OT_RATIO_HEADER}: each transport cost divided by {cost:.5f}, the exact optimal transport "
                     f"cost between the same {d.get('n_inputs')} source and {d.get('n_reference')} real target "
                     f"test images of {d.get('name')} (uniform weights, network simplex; {where}). No coupling of "
                     f"the inputs with the real target images pays less; a translator that outputs new images "
                     f"can (ratio < 1).")
    return lines


def build_table(evals: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows of cell strings): the method label then every column that has a value somewhere."""
    cols = table_columns(evals)
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
