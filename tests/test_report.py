"""Evaluation files and the comparison report, from tiny DDIB runs trained here on the synthetic pair.

Checks the eval JSON (metrics present or unavailable with a reason, NFE from the method, the first test
inputs saved), the report's table and figures, and that report.html is self-contained and loads in
headless Chromium with every image decoded and no script error.
"""
from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from PIL import Image

from translab.cli import main

torch.set_num_threads(1)

TINY = ["data.dataset=synthetic", "data.image_size=8", "data.limit=24", "train.steps=4", "train.batch_size=4",
        "train.progress=false", "train.sample_every=0", "train.checkpoint_every=100", "train.threads=1",
        "model.unet.base_channels=8", "model.unet.channel_mult=[1,2]", "model.unet.norm_groups=4",
        "model.steps=3", "model.sample_steps=2"]
LIMIT = 6


def _train(run_dir: Path, extra: list[str]) -> Path:
    from translab.config import resolve_config
    from translab.training import train

    train(resolve_config("ddib", None, None, TINY + extra), run_dir)
    return run_dir


def _evaluate(run: Path, *args: str) -> dict:
    before = set((run / "eval").glob("*.json")) if (run / "eval").is_dir() else set()
    rc = main(["evaluate", "--run", str(run), "--limit", str(LIMIT), "--threads", "1", "--no-progress", *args])
    assert rc == 0
    new = set((run / "eval").glob("*.json")) - before
    assert len(new) == 1, new
    return json.loads(new.pop().read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    run1 = _train(root / "cond", [])
    run2 = _train(root / "uncond", ["model.conditional=false", "train.seed=1"])
    clf = root / "dom.safetensors"
    assert main(["classifier", "train", "celeba-gender", "--dataset", "synthetic", "--image-size", "8",
                 "--steps", "40", "--batch-size", "16", "--out", str(clf), "--threads", "1"]) == 0
    evals = {
        "ddib": _evaluate(run1, "--classifier", str(clf)),  # Inception too, where its weights are reachable
        "sdedit": _evaluate(run1, "--as", "sdedit", "--set", "model.t0=0.5", "--classifier", str(clf),
                            "--no-inception"),
        "uncond": _evaluate(run2, "--steps", "2", "--classifier", str(clf), "--no-inception"),
        "uncond_b2a": _evaluate(run2, "--steps", "2", "--direction", "b2a", "--classifier", str(clf),
                                "--no-inception"),
    }
    (run2 / "analysis").mkdir()
    (run2 / "analysis" / "latent_stats.json").write_text(json.dumps({"gaussianity": {"mean": 0.01}}))
    Image.new("RGB", (20, 10), (200, 30, 30)).save(run2 / "analysis" / "latent_hist.png")
    out = root / "report"
    assert main(["compare", str(run1), str(run2), "--out", str(out)]) == 0
    return {"run1": run1, "run2": run2, "clf": clf, "evals": evals, "out": out}


def test_eval_json_has_every_metric_or_a_reason(runs):
    from translab.training import load_method

    e = runs["evals"]["ddib"]
    m = e["metrics"]
    assert set(m["fid_kid"]) == {"inception", "classifier"}
    assert m["fid_kid"]["classifier"]["available"] and m["fid_kid"]["classifier"]["kid_subset_size"] == LIMIT
    inc = m["fid_kid"]["inception"]
    assert inc["available"] or inc["reason"]
    if inc["available"]:
        assert "antialias=False" in inc["features"] and inc["n_fake"] == LIMIT
    assert m["cycle_error"]["available"] and m["cycle_error"]["value"] >= 0
    assert m["attribute_accuracy"]["target"] == "disc" and 0 <= m["attribute_accuracy"]["value"] <= 1
    assert m["hue_error"]["n_measured"] + round(m["hue_error"]["no_foreground_share"] * LIMIT) == LIMIT
    assert 0 <= m["hue_error"]["mean_deg"] <= 180
    assert 0 < m["transport_cost"]["value"] and "[-1, 1]" in m["transport_cost"]["units"]
    assert -1 <= m["ssim"]["mean"] <= 1
    method, _, _ = load_method(runs["run1"])
    assert e["cost"]["nfe_per_image"] == method.nfe("a2b", 3) and e["steps"] == 3
    assert e["cost"]["threads"] == 1 and e["cost"]["images_per_s"] > 0
    assert e["training"]["steps"] == 4  # RUN/train_record.json carried along
    assert e["dataset"]["n_inputs"] == LIMIT and e["dataset"]["n_reference"] == LIMIT
    s = runs["evals"]["sdedit"]
    assert s["method"] == "sdedit" and s["trained_as"] == "ddib" and s["overrides"] == {"model.t0": 0.5}
    assert s["model_settings"]["t0"] == 0.5 and "t0" not in e["model_settings"]  # the settings each row ran with
    assert e["model_settings"]["lowpass_factor"] == method.cfg.lowpass_factor
    assert (runs["run1"] / "eval" / f"sdedit_a2b_3_t0-0.5_limit{LIMIT}.json").is_file()


def test_saved_samples_are_the_first_test_inputs(runs):
    from translab.config import build_config
    from translab.data import build_domain_pair
    from translab.report.grids import to_uint8
    from translab.rundir import RunDir

    cfg = build_config(RunDir(runs["run1"]).read_config())
    first = torch.from_numpy(to_uint8(build_domain_pair(cfg.data).get("a", "test").images[:LIMIT])).permute(0, 3, 1, 2)
    for key in ("ddib", "sdedit", "uncond"):
        e = runs["evals"][key]
        s = torch.load(Path(e["run"]) / "eval" / e["samples"]["tensors"], weights_only=True)
        assert torch.equal(s["inputs"], first) and s["outputs"].shape == first.shape
        assert (Path(e["run"]) / "eval" / e["samples"]["grid"]).is_file()


def test_stochastic_evaluation_is_seeded(runs, tmp_path):
    from translab.evaluation import EvalOptions, evaluate_run

    run = tmp_path / "copy"
    shutil.copytree(runs["run1"], run, ignore=shutil.ignore_patterns("eval"))
    opts = EvalOptions(limit=3, as_method="sdedit", inception=False, progress=False)
    a, pa = evaluate_run(run, opts)
    sa = torch.load(pa.parent / a["samples"]["tensors"], weights_only=True)["outputs"]
    b, pb = evaluate_run(run, opts)
    sb = torch.load(pb.parent / b["samples"]["tensors"], weights_only=True)["outputs"]
    assert torch.equal(sa, sb)
    c, pc = evaluate_run(run, EvalOptions(limit=3, as_method="sdedit", inception=False, progress=False, seed=1))
    sc = torch.load(pc.parent / c["samples"]["tensors"], weights_only=True)["outputs"]
    assert not torch.equal(sa, sc)


def _md_tables(md: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every Markdown table of a report: (header cells, rows of cells)."""
    tables, block = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip()[1:-1].split(" | ")])
        elif block:
            tables.append((block[0], block[2:]))  # block[1]: the |---| line
            block = []
    return tables


def test_markdown_report_has_table_protocol_and_every_figure(runs):
    out = runs["out"]
    md = (out / "report.md").read_text()
    (header, rows), (settings_header, settings_rows) = _md_tables(md)[:2]
    same = "\n".join(line for line in md.splitlines() if line.startswith("Same in every row:"))
    # every metric is a column of the metrics table, or named once in the line under it when it is the same in
    # every row; speed and device describe the rows in the second table
    for col in ("FID (inception)", "KID (inception)", "FID (classifier)", "KID (classifier)", "hue error (deg)",
                "transport cost", "SSIM", "cycle error", "NFE / image", "attribute accuracy"):
        assert any(h.startswith(col) for h in header) or col in same, col
    for col in ("images / s", "device", "test images"):
        assert any(h.startswith(col) for h in settings_header) or col in same, col
    assert header[0] == "method" and len(rows) == 4 and len(settings_rows) == 4
    labels = [r[0] for r in rows]
    assert len(set(labels)) == 4 and all(len(label) < 40 for label in labels)  # short, unique row labels
    assert [r[0] for r in settings_rows] == labels and all("@" in r[1] for r in settings_rows)
    assert "antialias=False" in md and "not tiled to 10,000" in md
    figures = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", md)
    # two sets of inputs (a2b and b2a) -> two side-by-side figures, plus the two plots
    names = sorted(Path(f).name for f in figures)
    expected = ["quality_vs_nfe.png", "realism_vs_faithfulness.png", "side_by_side_0.png", "side_by_side_1.png"]
    has_accuracy = any(h.startswith("target accuracy") for h in header) or "target accuracy" in same
    assert names == sorted(expected + (["accuracy_vs_faithfulness.png"] if has_accuracy else []))
    for f in figures:
        with Image.open(out / f) as im:
            assert im.format == "PNG" and im.size[0] > 100
    assert "latent_stats.json" in md and "latent_hist.png" in md
    assert (out / "analysis" / "uncond" / "latent_hist.png").is_file()


def test_metric_headers_say_which_way_is_better_and_caveats_come_once(runs):
    md = (runs["out"] / "report.md").read_text()
    header, _ = _md_tables(md)[0]
    for h in header[1:]:
        # baselines and the memorisation diagnostic have no better direction; every other metric has one
        assert h.endswith(("\u2193", "\u2191")) or "(input's)" in h or "(/ real test's)" in h, h
    assert "\u2193 lower is better, \u2191 higher is better." in md
    notes = [line for line in md.splitlines() if line.startswith("- ")]
    assert len(notes) == len(set(notes))  # each caveat once
    # the b2a and the limit caveats name their rows once instead of repeating per row
    assert sum("--limit" in line for line in notes) <= 1
    assert "transport cost / exact OT n/a for every row: no ot-exact run among the compared runs" in md


def test_side_by_side_rows_follow_the_evaluations(runs):
    from translab.report.plots import side_by_side
    from translab.report.tables import load_evals

    figs = side_by_side(load_evals([runs["run1"], runs["run2"]]))
    assert len(figs) == 2
    heights = [Image.open(io.BytesIO(f.png)).size[1] for f in figs]
    assert heights[0] > heights[1]  # a2b: inputs + 3 methods; b2a: inputs + 1 method


def test_html_is_self_contained(runs):
    html = (runs["out"] / "report.html").read_text()
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert len(srcs) == 5  # 4 figures + 1 analysis PNG
    for s in srcs:
        assert s.startswith("data:image/png;base64,")
        assert base64.b64decode(s.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http://" not in html and "https://" not in html and "<link" not in html
    assert "antialias=False" in html and "FID (classifier)" in html
    assert "<title>translab comparison</title>" in html and "document.title" not in html


def _chromium_check(html_file: Path, tmp: Path) -> tuple[str, str, str]:
    """(the page's load check, document.title after load, Chromium's stderr) from a headless --dump-dom run."""
    cmd = ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp}",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", html_file.resolve().as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    check = re.search(r'<div id="load-check" hidden="">([^<]*)</div>', p.stdout)
    title = re.search(r"<title>([^<]*)</title>", p.stdout)
    return (check.group(1) if check else ""), (title.group(1) if title else ""), p.stderr


def test_html_loads_in_headless_chromium(runs, tmp_path):
    if not Path("/usr/bin/chromium").is_file():
        pytest.skip("/usr/bin/chromium is missing (Debian package 'chromium')")
    check, title, err = _chromium_check(runs["out"] / "report.html", tmp_path / "profile")
    assert check == "images-ok:5/5 errors:0", (check, err[-2000:])
    assert title == "translab comparison"  # the check leaves the tab's title alone
    assert ":CONSOLE" not in err, err[-2000:]
    # the check can fail: a broken image and a script error are both caught
    bad = tmp_path / "bad.html"
    bad.write_text((runs["out"] / "report.html").read_text().replace(
        "</body>", '<img src="data:image/png;base64,AAAA"><script>notDefined();</script></body>'))
    check, _, err = _chromium_check(bad, tmp_path / "profile2")
    assert check.startswith("images-ok:5/6 errors:") and not check.endswith("errors:0"), check


def test_clear_errors(runs, tmp_path, capsys):
    empty = tmp_path / "empty_run"
    empty.mkdir()
    assert main(["compare", str(empty), "--out", str(tmp_path / "o")]) == 2
    assert "translab evaluate" in capsys.readouterr().err
    assert main(["evaluate", "--run", str(empty), "--no-progress"]) == 2
    assert "not a translab run" in capsys.readouterr().err


def test_cmnist_evaluation_uses_the_shipped_digit_reader(tmp_path):
    """On Colored MNIST the target is the target domain's digit, read by the shipped classifier."""
    from translab.config import resolve_config
    from translab.evaluation import EvalOptions, evaluate_run
    from translab.training import train

    tiny = [o for o in TINY if not o.startswith("data.")] + ["data.dataset=cmnist", "data.image_size=8",
                                                           "data.limit=16", "train.steps=2"]
    train(resolve_config("ddib", None, None, tiny), tmp_path / "cm")
    e, path = evaluate_run(tmp_path / "cm", EvalOptions(limit=4, steps=2, inception=False, progress=False))
    m = e["metrics"]
    assert path.name == "ddib_a2b_2_limit4.json"
    assert m["target_accuracy"]["available"] and m["target_accuracy"]["target"] == "3"
    assert m["target_accuracy"]["classifier"] == "cmnist_classifier.safetensors"
    assert "cmnist_classifier" in m["fid_kid"]["classifier"]["features"]
    assert "hue_error" in m and "attribute_accuracy" not in m
    back, _ = evaluate_run(tmp_path / "cm", EvalOptions(direction="b2a", limit=4, steps=2, inception=False,
                                                        progress=False))
    assert back["metrics"]["target_accuracy"]["target"] == "2"


def _entry(run: str, overrides: dict, accuracy, hue) -> dict:
    metrics = {"hue_error": {"mean_deg": hue}}
    if accuracy is not None:
        metrics["target_accuracy"] = {"value": accuracy}
    return {"method": "ddib", "direction": "a2b", "steps": 10, "overrides": overrides, "metrics": metrics,
            "_run_dir": Path(run)}


def test_accuracy_vs_faithfulness_joins_one_runs_settings_and_needs_an_accuracy():
    from translab.report.plots import accuracy_vs_faithfulness

    evals = [_entry("runs/ddib", {"model.guidance": w}, acc, hue)
             for w, acc, hue in ((1, 0.8, 8.0), (2, 0.95, 11.0), (3, 1.0, 13.0))]
    fig = accuracy_vs_faithfulness(evals + [_entry("runs/other", {}, None, 5.0)])
    assert fig is not None and fig.key == "accuracy_vs_faithfulness"
    assert "Left out" in fig.caption
    with Image.open(io.BytesIO(fig.png)) as im:
        assert im.format == "PNG"
    assert accuracy_vs_faithfulness([_entry("runs/x", {}, None, 5.0)]) is None


def test_result_files_name_runs_without_machine_paths(runs, tmp_path, monkeypatch):
    """Evaluation files and reports made inside a project folder name runs relative to it, and a shipped model
    by its name: a committed report then holds no machine's absolute paths."""
    from translab.shipped import portable_path, shipped_models

    monkeypatch.chdir(runs["run1"].parent)
    assert main(["evaluate", "--run", "cond", "--limit", "2", "--threads", "1", "--no-progress",
                 "--no-inception"]) == 0
    e = json.loads(Path("cond/eval/ddib_a2b_3_limit2.json").read_text())
    assert e["run"] == "cond" and e["checkpoint"]["checkpoint"].startswith("cond/checkpoints/")
    assert main(["compare", "cond", "uncond", "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert str(runs["run1"].parent) not in md and "`cond`" in md
    name, folder = next(iter(shipped_models().items()))
    assert portable_path(folder) == name and portable_path(folder / "model.safetensors") == f"{name}/model.safetensors"
    assert portable_path("/nowhere/run") == "/nowhere/run"  # outside both: as given


# --------------------------------------------------------------------------------------------------
# the tables and figures from hand-made evaluation entries


def test_short_labels_tell_apart_only_what_differs():
    from translab.report.tables import short_labels

    def e(method, run, steps=None, **over):
        return {"method": method, "direction": "a2b", "run_name": run, "steps": steps, "overrides": over,
                "dataset": {"n_inputs": 8}}

    evals = [e("ddib", "r1", 8, **{"model.guidance": 1.0}), e("ddib", "r1", 8, **{"model.guidance": 3.0}),
             e("unit-ddpm", "u1", 100), e("unit-ddpm", "u2", 100), e("cyclegan", "c"), e("cyclegan", "c")]
    assert short_labels(evals) == ["ddib a2b (guidance=1.0)", "ddib a2b (guidance=3.0)", "unit-ddpm a2b (u1)",
                                   "unit-ddpm a2b (u2)", "cyclegan a2b #1", "cyclegan a2b #2"]


def test_constant_columns_leave_the_table_for_one_line_and_cells_keep_the_files_numbers():
    from translab.report.tables import COLUMNS, make_table

    def e(fid, kid, ssim):
        return {"method": "m", "direction": "a2b", "metrics": {"fid_kid": {"inception": {
            "available": False, "reason": "skipped"}, "classifier": {"available": True, "fid": fid, "kid_mean": kid}},
            "ssim": {"mean": ssim}}}

    evals = [e(12.345, -0.00001, 0.5), e(-0.0001, 0.25, 0.5)]
    t = make_table(evals, ["a", "b"], COLUMNS)
    assert t.headers == ["method", "FID (classifier) \u2193", "KID (classifier) \u2193"]
    assert t.rows == [["a", "12.35", "0.0000"], ["b", "0.00", "0.2500"]]  # -0.0000 rounds to 0.0000, no sign
    assert t.constant == ["FID (inception) n/a", "KID (inception) n/a", "SSIM 0.500"]
    single = make_table(evals[:1], ["a"], COLUMNS)  # one row: nothing is "the same in every row"
    assert "SSIM \u2191" in single.headers and single.constant == []


def test_negative_kid_is_explained_once_naming_its_cells():
    from translab.report.tables import negative_kid_note, unavailable_notes

    evals = [{"method": "m", "direction": "a2b", "metrics": {
        "fid_kid": {"classifier": {"available": True, "fid": 1.0, "kid_mean": kid, "kid_std": std}},
        "cycle_error": {"available": False, "reason": "one way only"}}} for kid, std in ((-0.002, 0.001), (0.3, 0.0))]
    note = negative_kid_note(evals, ["x", "y"])
    assert "indistinguishable at this sample size" in note and "x: KID (classifier) -0.0020 \u00b1 0.0010" in note
    assert "y:" not in note and negative_kid_note(evals[1:], ["y"]) is None
    assert unavailable_notes(evals, ["x", "y"]) == ["cycle error n/a for every row: one way only"]


def test_scatter_legend_sits_outside_the_points():
    from translab.report.plots import _plt, _scatter

    points = [((f"method {i} with a long label", f"C{i}", "o"), float(i), float(i * i + 1)) for i in range(6)]
    fig = _scatter(points, "x", "y", "t")
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1  # entirely right of the plotted area
    _plt().close(fig)


def test_reports_name_no_absolute_path(tmp_path):
    from translab.report.notes import run_name, without_machine_paths

    text = "weights: $TRANSLAB_INCEPTION_WEIGHTS (/work/shared/models/w-6726825d.pth), images in [-1, 1]"
    assert without_machine_paths(text) == "weights: $TRANSLAB_INCEPTION_WEIGHTS (w-6726825d.pth), images in [-1, 1]"
    assert run_name(tmp_path / "out" / "runs" / "a", tmp_path / "out") == "runs/a"
    assert run_name("/nowhere/else/run", tmp_path / "out") == "run"
