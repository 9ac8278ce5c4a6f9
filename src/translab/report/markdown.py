"""report.md: the comparison as Markdown, figures written as PNG files under OUT/figures/ and analysis
files copied under OUT/analysis/<run>/."""
from __future__ import annotations

from pathlib import Path

from translab.paths import safe_name


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def constant_line(table) -> str | None:
    """The columns left out of a table because every row had the same cell, as one sentence (or None)."""
    return ("Same in every row: " + "; ".join(table.constant) + ".") if table.constant else None


def _tables(report) -> list[str]:
    parts = ["## Metrics", "", markdown_table(report.headers, report.rows), "", report.legend]
    same = constant_line(report.table)
    parts += ["", same] if same else []
    if report.notes:
        parts += ["", "Notes:", ""] + [f"- {n}" for n in report.notes]
    parts += ["", "### Rows", "", markdown_table(report.settings.headers, report.settings.rows)]
    same = constant_line(report.settings)
    parts += ["", same] if same else []
    parts += ["", "### Protocol", ""] + [f"- {line}" for line in report.protocol]
    return parts


def write_markdown(report, out: Path) -> Path:
    """Write OUT/report.md for a translab.report.compare.Report; returns its path."""
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    parts = [f"# {report.title}", "", f"Created {report.created} from: " + ", ".join(f"`{r}`" for r in report.runs), ""]
    parts += _tables(report)
    parts += ["", "## Figures", ""]
    for fig in report.figures:
        name = f"{safe_name(fig.key)}.png"
        (fig_dir / name).write_bytes(fig.png)
        parts += [f"### {fig.title}", "", f"![{fig.title}](figures/{name})", "", fig.caption, ""]
    if report.analysis:
        parts += ["## Analysis", ""]
        for item in report.analysis:
            folder = out / "analysis" / safe_name(item.run)
            folder.mkdir(parents=True, exist_ok=True)
            rel = f"analysis/{safe_name(item.run)}/{safe_name(Path(item.name).stem)}{Path(item.name).suffix}"
            parts += [f"### {item.run}: {item.name}", ""]
            if item.kind == "png":
                (out / rel).write_bytes(item.png)
                parts += [f"![{item.name}]({rel})", ""]
            else:
                (out / rel).write_text(item.text)
                note = " (truncated)" if item.truncated else ""
                parts += [f"[{item.name}]({rel}){note}", "", "```json", item.text, "```", ""]
    path = out / "report.md"
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")
    return path
