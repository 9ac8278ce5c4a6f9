"""`translab demo` on the shipped weights: every shipped method lands in one report (tiny subset, no Inception)."""
from __future__ import annotations

from translab.cli import main
from translab.shipped import shipped_models


def test_demo_quick_fills_every_shipped_row(tmp_path, capsys):
    shipped = shipped_models()
    assert main(["demo", "--quick", "--limit", "2", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    report = (tmp_path / "demo" / "report.md").read_text()
    for model in shipped:
        method = model.split("/")[1]
        assert f"{method} a2b" in report, method
    if "cmnist-2to3/ddib" in shipped:
        assert "sdedit a2b" in report
    assert (tmp_path / "demo" / "report.html").is_file()
    assert "report:" in out
    # the installed package was not written to: evaluations live in the demo's own copies
    assert all(not (folder / "eval").exists() for folder in shipped.values())
