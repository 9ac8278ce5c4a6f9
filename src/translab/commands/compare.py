"""`translab compare RUN... --out DIR`: report.md and a self-contained report.html comparing evaluations."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("compare", help="side-by-side report (table, figures) from evaluated run directories")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories with eval/*.json (translab evaluate)")
    p.add_argument("--out", required=True, help="output folder for report.md, report.html and figures/")
    p.add_argument("--title", default="translab comparison")
    p.set_defaults(func=run)


def run(args) -> int:
    from translab.commands.common import check_folder_path
    from translab.report.compare import write_report

    check_folder_path(args.out, "--out")  # before any work: a file there is a one-line error
    info = write_report(args.runs, args.out, args.title)
    print(f"{info['entries']} evaluations, {info['figures']} figures, {info['analysis_items']} analysis items")
    print(f"wrote {info['markdown']} and {info['html']}")
    return 0
