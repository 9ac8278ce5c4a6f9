"""The words around the tables: how to read the arrows, what each metric shown measures, the protocol, and the
run names, each said once. Built from the evaluation files; no machine's absolute path is written."""
from __future__ import annotations

import os
import re
from pathlib import Path

from translab.report.tables import extractor_descriptions, get, rows_named

#: an absolute POSIX path of two or more parts inside free text (a feature extractor's weights file)
_ABS_PATH = re.compile(r"(?<![\w$.~:/-])/(?:[^\s/()\[\],;:'\"]+/)+([^\s/()\[\],;:'\"]+)")


def without_machine_paths(text: str) -> str:
    """``text`` with each absolute path cut to its file name ('/work/models/w.pth' -> 'w.pth')."""
    return _ABS_PATH.sub(lambda m: m.group(1), text)


def run_name(run_dir: str | Path, out_dir: str | Path | None = None) -> str:
    """How the report names a run folder: relative to the report's folder when inside it, else as
    translab.shipped.portable_path names it (relative to the working folder, a shipped model by its name),
    else its folder name: never an absolute path."""
    from translab.shipped import portable_path

    p = Path(run_dir).resolve()
    if out_dir is not None:
        try:
            return p.relative_to(Path(out_dir).resolve()).as_posix() or "."
        except ValueError:
            pass
    name = portable_path(p)
    return p.name if os.path.isabs(name) else name


def legend_line(headers: list[str]) -> str:
    """How to read the arrows (and which columns reward doing nothing), for the metrics headers shown."""
    text = "\u2193 lower is better, \u2191 higher is better."
    names = {"hue error": "hue error", "transport cost": "transport cost", "SSIM": "SSIM"}
    faithful = [name for key, name in names.items() if any(h.startswith(key) for h in headers)]
    if faithful:
        ref = "target accuracy and FID" if any(h.startswith("target accuracy") for h in headers) else "FID"
        listed = ", ".join(faithful[:-1]) + " and " + faithful[-1] if len(faithful) > 1 else faithful[0]
        text += (f" {listed[:1].upper() + listed[1:]} measure how close each output stays to its own input "
                 f"(faithfulness): returning the input unchanged would win them, so read them next to {ref}.")
    return text


def _accuracy_line(evals: list[dict], key: str, header: str) -> str | None:
    found = [(get(e, "metrics", key, "classifier"), get(e, "metrics", key, "target")) for e in evals]
    found = list(dict.fromkeys((c, t) for c, t in found if t is not None))
    if not found:
        return None
    readers = "; ".join(f"{c or 'the given classifier'} reading {t!r}" for c, t in found)
    return f"{header}: the share of outputs read as the target class ({readers})."


def metric_lines(evals: list[dict], headers: list[str]) -> list[str]:
    """One definition per metric column shown (beyond FID/KID, explained by the protocol)."""
    shown = lambda name: any(h.startswith(name) for h in headers)  # noqa: E731
    lines = [_accuracy_line(evals, "target_accuracy", "target accuracy") if shown("target accuracy") else None,
             _accuracy_line(evals, "attribute_accuracy", "attribute accuracy") if shown("attribute accuracy")
             else None]
    if shown("tone kept") or shown("concept kept"):
        lines.append("tone kept, concept kept: the share of outputs that a shipped reader of skin tone (of the "
                     "concept) reads as it reads their own input.")
    if shown("translated, all kept"):
        lines.append("translated, all kept: the share of outputs read as the target class with every kept "
                     "attribute (tone, concept) read as in their own input, all at once.")
    if shown("counterpart top-1"):
        lines.append("counterpart top-1: the share of outputs whose nearest image among the true counterparts (in "
                     "the space the evaluation file names: the concept reader's features on emoji) is their own "
                     "counterpart; counterpart top-1 (input's): the same "
                     "for the inputs themselves, the baseline of no translation.")
    if shown("to counterpart"):
        lines.append("to counterpart (/ input's): the mean squared distance from each output to its true "
                     "counterpart divided by the same distance from the input, in pixels or Inception features; "
                     "below 1 the method moved towards the truth.")
    if shown("nearest training target"):
        lines.append("nearest training target (/ real test's): the median pixel distance from each output to its "
                     "nearest training image of the target domain, divided by the same for the real test targets, "
                     "which no model saw; well below 1 the outputs are near copies of training images "
                     "(memorisation).")
    return [line for line in lines if line]


def protocol_lines(evals: list[dict], labels: list[str]) -> list[str]:
    """What the numbers mean: FID protocol, units, reference sets, limits; each line once."""
    lines = [
        "Inception FID/KID use torchmetrics with antialias=False (torch-fidelity's resize), computed on the plain "
        "test sets (not tiled to 10,000 images).",
        "FID and KID compare each method's translations of the source test split with the target domain's real "
        "test images; KID uses 100 random subsets of min(1000, n_real, n_generated) images and the cubic "
        "polynomial kernel.",
        "Transport cost and cycle error: mean squared difference per pixel and channel, images in [-1, 1] "
        "(cycle error: input against its back-translation, same steps).",
    ]
    if any("hue_error" in (e.get("metrics") or {}) for e in evals):
        lines.append("Hue error: circular distance in degrees between the foreground hues of input and output, over "
                     "outputs that have a foreground; 'no-foreground outputs' is the share without one.")
    lines += [without_machine_paths(f"Feature extractor {d}") for d in extractor_descriptions(evals)]
    groups: dict[tuple, list[str]] = {}
    for e, label in zip(evals, labels):
        d = e.get("dataset") or {}
        cut = any(isinstance(d.get(k), int) and d[k] >= d["limit"] for k in ("n_inputs", "n_reference")) \
            if d.get("limit") else False  # a limit above a split's size used all of it
        if cut:
            groups.setdefault((d.get("n_inputs"), d.get("n_reference"), d["limit"]), []).append(label)
    for (n, m, limit), names in groups.items():
        lines.append(f"Evaluated on the first {n} source and {m} target test images only (--limit {limit}; "
                     f"{rows_named(names, labels)}): small sets bias FID upwards.")
    return [line for line in dict.fromkeys(lines) if line]
