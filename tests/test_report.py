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


def test_markdown_report_has_table_protocol_and_every_figure(runs):
    out = runs["out"]
    md = (out / "report.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| method"))
    for col in ("FID (inception)", "KID (inception)", "FID (classifier)", "KID (classifier)", "hue error (deg)",
                "transport cost", "SSIM", "cycle error", "NFE / image", "images / s", "attribute accuracy"):
        assert col in header, col
    rows = [line for line in md.splitlines() if line.startswith("| ") and "@" in line]
    assert len(rows) == 4
    assert "antialias=False" in md and "not tiled to 10,000" in md
    figures = re.findall(r"!\[[^\]]*\]\((figures/[^)]+)\)", md)
    # two sets of inputs (a2b and b2a) -> two side-by-side figures, plus the two plots
    names = sorted(Path(f).name for f in figures)
    expected = ["quality_vs_nfe.png", "realism_vs_faithfulness.png", "side_by_side_0.png", "side_by_side_1.png"]
    has_accuracy = any("target accuracy" in line for line in md.splitlines() if line.startswith("| method"))
    assert names == sorted(expected + (["accuracy_vs_faithfulness.png"] if has_accuracy else []))
    for f in figures:
        with Image.open(out / f) as im:
            assert im.format == "PNG" and im.size[0] > 100
    assert "latent_stats.json" in md and "latent_hist.png" in md
    assert (out / "analysis" / "uncond" / "latent_hist.png").is_file()


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


def _chromium_check(html_file: Path, tmp: Path) -> tuple[str, str]:
    """(document.title after load, Chromium's stderr) from a headless --dump-dom run."""
    cmd = ["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp}",
           "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", html_file.resolve().as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = re.search(r"<title>([^<]*)</title>", p.stdout)
    return (m.group(1) if m else ""), p.stderr


def test_html_loads_in_headless_chromium(runs, tmp_path):
    if not Path("/usr/bin/chromium").is_file():
        pytest.skip("/usr/bin/chromium is missing (Debian package 'chromium')")
    title, err = _chromium_check(runs["out"] / "report.html", tmp_path / "profile")
    assert title == "images-ok:5/5 errors:0", (title, err[-2000:])
    assert ":CONSOLE" not in err, err[-2000:]
    # the check can fail: a broken image and a script error are both caught
    bad = tmp_path / "bad.html"
    bad.write_text((runs["out"] / "report.html").read_text().replace(
        "</body>", '<img src="data:image/png;base64,AAAA"><script>notDefined();</script></body>'))
    title, err = _chromium_check(bad, tmp_path / "profile2")
    assert title.startswith("images-ok:5/6 errors:") and not title.endswith("errors:0"), title


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
