"""The figures the documents cite stay true to the committed evaluation files.

Convention, for README.md, RESULTS.md and docs/**/*.md:

- A markdown table row that holds a link to a JSON file, ``[eval](docs/results/topic/eval_full_split.json)``, is
  checked against that file. The path is relative to the markdown file, as GitHub resolves it. A JSON-pointer
  fragment picks one entry of a file that holds several: ``[row](docs/results/ddib_interval/interval_sweep.json#/rows/16)``.
  Only the row's first JSON link counts.
- Each column whose header is a key of ``FIGURES`` is checked (headers compared case-insensitively, with
  ``*`` and surrounding spaces dropped). The first number in the cell must equal the value the function reads
  from the JSON, rounded to the cell's own number of decimals: ``97.4%`` is checked against round(value, 1), ``0.1152``
  against round(value, 4). Thousands separators (``1,032``) and bold (``**97.4%**``) are fine.
- A cell with no number (``n/a``) means "the file has no such figure": the function must return None there.
- Columns with other headers are not checked. A row whose JSON is missing, not committed, or lacks the fragment fails,
  and so does a run that checked no cell at all, so the test cannot pass vacuously.

To check a new column, add its header to ``FIGURES`` with a function from the JSON dict to the number the cell shows
(a share as a percentage: ``100 * value``). ``pick`` returns the first of several dotted key paths that the file
has, so one header can read files of different layouts (``translab evaluate``'s, and the rows of a sweep).

A second test keeps machine paths and lab-notebook narration out of the committed product documents.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


_MISSING = object()


def _lookup(node, parts: list[str]):
    """The value at ``parts`` below ``node``; a key may itself hold dots (``overrides["model.t0"]``)."""
    if not parts:
        return node
    if not isinstance(node, dict):
        return _MISSING
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in node:
            found = _lookup(node[key], parts[i:])
            if found is not _MISSING:
                return found
    return _MISSING


def pick(d: dict, *paths: str):
    """The value at the first dotted key path that ``d`` has (None where it has none, or holds null)."""
    for path in paths:
        found = _lookup(d, path.split("."))
        if found is not _MISSING and found is not None:
            return found
    return None


def percent(*paths: str):
    def read(d: dict):
        v = pick(d, *paths)
        return None if v is None else 100 * v
    return read


def per_minute(*paths: str):
    def read(d: dict):
        v = pick(d, *paths)
        return None if v is None else v / 60
    return read


def value(*paths: str):
    return lambda d: pick(d, *paths)


#: column header -> function(JSON dict) -> the number the cell shows (None: the file has no such figure)
FIGURES = {
    "read as 3": percent("metrics.target_accuracy.value", "metrics.attribute_accuracy.value", "target_accuracy",
                         "accuracy"),
    "hue error": value("metrics.hue_error.mean_deg", "hue_error_deg"),
    "inception fid": value("metrics.fid_kid.inception.fid", "fid_inception"),
    "classifier fid": value("metrics.fid_kid.classifier.fid", "fid_classifier"),
    "transport cost": value("metrics.transport_cost.value", "transport_cost"),
    "ssim": value("metrics.ssim.mean"),
    "cycle error": value("metrics.cycle_error.value"),
    "nfe": value("cost.nfe_per_image", "nfe", "nfe_per_image"),
    "images / s": value("cost.images_per_s", "images_per_s"),
    "images / cpu s": value("images_per_cpu_s"),
    "threads": value("cost.threads", "threads"),
    "t0": value("overrides.model.t0"),
    "guidance": value("overrides.model.guidance", "guidance"),
    "inputs": value("dataset.n_inputs", "n_inputs"),
    "reference": value("dataset.n_reference", "n_reference"),
    "train steps": value("training.steps", "step"),
    "train minutes": per_minute("training.wall_seconds", "wall_s"),
    "reconstruction mse": value("recon_mse"),
    # OpenMoji man -> woman
    "read as women": percent("metrics.target_accuracy.value", "target_accuracy"),
    "tone kept": percent("metrics.tone_kept.value", "tone_kept"),
    "concept kept": percent("metrics.concept_kept.value", "concept_kept"),
    "translated and kept": percent("metrics.translated_and_kept.value", "translated_and_kept"),
    "counterpart top-1": percent("metrics.counterpart.retrieval.output.top1"),
    "to counterpart / input's": value("metrics.counterpart.distance.pixel.ratio", "counterpart_pixel_ratio"),
    "nearest-training ratio": value("metrics.memorisation.ratio", "nearest_train_ratio"),
    "inception kid": value("metrics.fid_kid.inception.kid_mean"),
    # the published Colored MNIST protocol (translab evaluate --protocol asbm)
    "protocol floor fid": value("metrics.protocol_floor.fid_kid.inception.fid"),
}

DOCS = ["README.md", "RESULTS.md", "docs/**/*.md"]
LINK = re.compile(r"\]\(([^)\s]+?\.json)(#[^)\s]*)?\)")
NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")
CELL_SPLIT = re.compile(r"(?<!\\)\|")


def committed_files() -> set[str] | None:
    """Paths git tracks, relative to the repository (None outside a git checkout)."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    return set(out.splitlines())


def doc_files() -> list[Path]:
    found = {p for pattern in DOCS for p in ROOT.glob(pattern) if p.is_file()}
    return sorted(found)


def cells(line: str) -> list[str]:
    return [c.strip() for c in CELL_SPLIT.split(line.strip().strip("|"))]


def tables(text: str):
    """Yield (line number of the header, header cells, [(line number, row cells)]) for each markdown table."""
    lines = text.splitlines()
    i = 0
    while i < len(lines) - 1:
        if lines[i].lstrip().startswith("|") and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", lines[i + 1]) \
                and "-" in lines[i + 1]:
            header, rows, j = cells(lines[i]), [], i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                rows.append((j + 1, cells(lines[j])))
                j += 1
            yield i + 1, header, rows
            i = j
        else:
            i += 1


def header_key(header: str) -> str:
    return " ".join(header.replace("*", "").split()).lower()


def json_pointer(obj, fragment: str | None):
    """The part of ``obj`` that an RFC 6901 fragment (``#/rows/3``) names; ``obj`` itself without one."""
    if not fragment or fragment == "#":
        return obj
    for token in fragment.lstrip("#").lstrip("/").split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        obj = obj[int(token)] if isinstance(obj, list) else obj[token]
    return obj


def load_linked(doc: Path, target: str, fragment: str | None, committed: set[str] | None):
    """The JSON (part) a row links to, or an error message."""
    path = (doc.parent / target).resolve()
    if not path.is_file():
        return None, f"links {target}, which does not exist"
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)
    if committed is not None and rel not in committed:
        return None, f"links {rel}, which git does not track (commit the evaluation file it cites)"
    try:
        return json_pointer(json.loads(path.read_text()), fragment), None
    except (KeyError, IndexError, ValueError) as exc:
        return None, f"links {rel}{fragment or ''}, which has no such entry ({exc!r})"


def check_cell(cell: str, figure) -> str | None:
    """None when the cell agrees with the figure read from the JSON, else what is wrong."""
    m = NUMBER.search(cell)
    if m is None:
        return None if figure is None else f"cell {cell!r} has no number, the file says {figure!r}"
    if figure is None:
        return f"cell {cell!r} has a number, the file has no such figure"
    text = m.group(0).replace(",", "")
    decimals = len(text.split(".")[1]) if "." in text else 0
    if float(f"{float(figure):.{decimals}f}") != float(text):
        return f"cell {cell!r} should read {float(figure):.{decimals}f} (the file: {figure!r})"
    return None


def check_row(doc: Path, lineno: int, header: list[str], row: list[str], committed) -> tuple[int, list[str]]:
    """(number of cells checked, problems) for one table row."""
    line = " | ".join(row)
    link = LINK.search(line)
    if link is None:
        return 0, []
    where = f"{doc.relative_to(ROOT) if doc.is_relative_to(ROOT) else doc}:{lineno}"
    data, error = load_linked(doc, link.group(1), link.group(2), committed)
    if error:
        return 0, [f"{where}: {error}"]
    checked, problems = 0, []
    for name, cell in zip(header, row):
        read = FIGURES.get(header_key(name))
        if read is None:
            continue
        checked += 1
        problem = check_cell(cell, read(data))
        if problem:
            problems.append(f"{where}, column {name!r}: {problem}")
    return checked, problems


def test_cited_figures_match_the_committed_evaluation_files():
    committed = committed_files()
    checked, problems = 0, []
    for doc in doc_files():
        for _, header, rows in tables(doc.read_text(encoding="utf-8")):
            for lineno, row in rows:
                n, bad = check_row(doc, lineno, header, row, committed)
                checked += n
                problems += bad
    assert not problems, "\n".join(problems)
    assert checked > 0, "no table cell was checked: the docs' tables link no evaluation file, or no header is known"


# --- no machine paths, no lab-notebook narration in the product documents -----------------------------------------

FORBIDDEN = re.compile(r"/(?:work|tmp|root|home)/|session", re.IGNORECASE)

#: committed files that may still hold a match, each with the reason
KNOWN_EXCEPTIONS = {
}


def product_documents(committed: set[str]) -> list[str]:
    docs = [p for p in committed if p.startswith("docs/") and p.endswith((".md", ".json", ".html"))]
    return sorted(docs + [p for p in ("README.md", "RESULTS.md") if p in committed])


def is_exception(path: str) -> bool:
    return any(path == e or (e.endswith("/") and path.startswith(e)) for e in KNOWN_EXCEPTIONS)


def test_product_documents_hold_no_machine_paths_or_session_narration():
    committed = committed_files()
    if committed is None:
        pytest.skip("not a git checkout: the committed documents are unknown")
    problems = []
    for rel in product_documents(committed):
        if is_exception(rel) or not (ROOT / rel).is_file():
            continue
        for lineno, line in enumerate((ROOT / rel).read_text(encoding="utf-8").splitlines(), 1):
            for m in FORBIDDEN.finditer(line):
                problems.append(f"{rel}:{lineno}: {m.group(0)!r} in {line.strip()[:120]!r}")
    assert not problems, "\n".join(problems)


def test_the_checker_reads_cells_as_documented(tmp_path):
    assert check_cell("**97.4%**", 97.38) is None
    assert check_cell("97.3%", 97.38) is not None
    assert check_cell("1,032", 1032) is None
    assert check_cell("n/a", None) is None
    assert check_cell("n/a", 0.5) is not None
    assert check_cell("0.12", None) is not None
    assert json_pointer({"rows": [{"a": 1}, {"a": 2}]}, "#/rows/1") == {"a": 2}
    assert pick({"metrics": {"x": None}, "y": 3}, "metrics.x", "y") == 3
    assert pick({"overrides": {"model.t0": 0.8}}, "overrides.model.t0") == 0.8
    text = "| method | read as 3 | note |\n|---|---|---|\n| a | 50.0% | [f](missing.json) |\n"
    (_, header, rows), = tables(text)
    checked, problems = check_row(tmp_path / "doc.md", rows[0][0], header, rows[0][1], None)
    assert checked == 0 and "does not exist" in problems[0]  # a row linking a missing JSON fails
    (tmp_path / "e.json").write_text(json.dumps({"metrics": {"target_accuracy": {"value": 0.5}}}))
    row = [c.replace("missing.json", "e.json") for c in rows[0][1]]
    assert check_row(tmp_path / "doc.md", 3, header, row, None) == (1, [])
