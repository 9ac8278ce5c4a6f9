"""The "transport cost / exact OT" column: each transport cost divided by the exact optimal transport cost
between the same test sets, from an ``ot-exact`` run among the compared runs (``translab ot-exact --out DIR``
writes one, and ``translab demo`` compares its own).

The report reads only the run directories it is given: no cache, no other folder. "The same test sets" compares
translab.ot_exact.data_identity (data config, dataset, direction, numbers of images); when no ot-exact run
matches, the cell is n/a and the notes say why, once per reason.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from translab.report.tables import Column, entry_label, get, rows_named

OT_RATIO_HEADER = "transport cost / exact OT"
NO_RUN = ("no ot-exact run among the compared runs (write one with `translab ot-exact --out DIR` on the same test "
          "sets and add DIR to `translab compare`)")


@dataclass
class Match:
    """The ot-exact evaluation ``ref`` whose exact OT cost divides an entry's transport cost, or ``why`` not."""
    ref: dict | None = None
    why: str | None = None


def _is_reference(r: dict) -> bool:
    from translab.ot_exact import METHOD

    return r.get("method") == METHOD and bool(get(r, "metrics", "ot_exact", "cost"))


def _flat(ident: str) -> dict:
    """A data_identity string as one flat mapping ('data.limit': 24, 'n_inputs': 6, ...)."""
    d = json.loads(ident)
    out = {f"data.{k}": v for k, v in (d.pop("data", None) or {}).items()}
    return {**out, **d}


def difference(ident: str, ref_ident: str, limit: int = 3) -> str:
    """The fields where two data identities differ: 'n_inputs 6 here, 5 in the ot-exact run; ...'."""
    a, b = _flat(ident), _flat(ref_ident)
    keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
    parts = [f"{k} {json.dumps(a.get(k))} here, {json.dumps(b.get(k))} in the ot-exact run" for k in keys[:limit]]
    return "; ".join(parts) + (f"; and {len(keys) - limit} more" if len(keys) > limit else "")


def match_reference(e: dict, refs: list[tuple[dict, str | None]]) -> Match:
    """The ot-exact evaluation of the same test sets as ``e`` among ``refs`` ((evaluation, identity) pairs)."""
    from translab.ot_exact import data_identity

    if get(e, "metrics", "transport_cost", "value") is None:
        return Match()  # no transport cost: its own note says why
    if not refs:
        return Match(why=NO_RUN)
    ident = data_identity(e)
    if ident is None:
        return Match(why="the run's data config (RUN/config.yaml) cannot be read, so its test sets cannot be "
                         "matched with the ot-exact run's")
    for r, ref_ident in refs:
        if ref_ident == ident:
            return Match(ref=r)
    diffs = "; or ".join(dict.fromkeys(difference(ident, ri) for _, ri in refs if ri is not None))
    return Match(why="the test sets differ from those of the ot-exact run" + (f" ({diffs})" if diffs else ""))


def match_all(evals: list[dict]) -> list[Match]:
    """A Match per evaluation, against the ot-exact evaluations among ``evals`` only."""
    from translab.ot_exact import data_identity

    refs = [(r, data_identity(r)) for r in evals if _is_reference(r)]
    return [match_reference(e, refs) for e in evals]


def ot_ratio(e: dict, ref: dict | None) -> float | None:
    """e's transport cost / the reference's exact OT cost; None when either is missing (or the cost is 0)."""
    cost = get(e, "metrics", "transport_cost", "value")
    ref_cost = get(ref, "metrics", "ot_exact", "cost") if ref else None
    return cost / ref_cost if cost is not None and ref_cost else None


def ratio_column(evals: list[dict], matches: list[Match]) -> Column:
    refs = {id(e): m.ref for e, m in zip(evals, matches)}
    return Column(OT_RATIO_HEADER, lambda e: ot_ratio(e, refs.get(id(e))), "{:.3f}", better="lower")


def ratio_notes(evals: list[dict], labels: list[str], matches: list[Match]) -> list[str]:
    """Why the ratio is n/a, once per reason, naming the rows."""
    groups: dict[str, list[str]] = {}
    for label, m in zip(labels, matches):
        if m.why:
            groups.setdefault(m.why, []).append(label)
    return [f"{OT_RATIO_HEADER} n/a for {rows_named(names, labels)}: {why}" for why, names in groups.items()]


def reference_lines(evals: list[dict], matches: list[Match]) -> list[str]:
    """Protocol lines naming each exact OT cost the ratio column divides by (none when there is no ratio)."""
    lines, seen = [], set()
    for e, m in zip(evals, matches):
        if ot_ratio(e, m.ref) is None or id(m.ref) in seen:
            continue
        seen.add(id(m.ref))
        d = m.ref.get("dataset") or {}
        cost = get(m.ref, "metrics", "ot_exact", "cost")
        lines.append(f"{OT_RATIO_HEADER}: each transport cost divided by {cost:.5f}, the exact optimal transport "
                     f"cost between the same {d.get('n_inputs')} source and {d.get('n_reference')} real target "
                     f"test images of {d.get('name')} (uniform weights, network simplex; {entry_label(m.ref)}). No "
                     f"coupling of the inputs with the real target images pays less; a translator that outputs new "
                     f"images can (ratio < 1).")
    return lines
