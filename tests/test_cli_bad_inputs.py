"""Bad command-line input ends in one line that names the value and what was expected: no traceback, no lost
work, no silently overwritten or half-written output (issue #20).

Commands run in-process through translab.cli.main (the function behind `python -m translab`), so an exception
escaping it fails the test. Translation uses the shipped CycleGAN (one network pass per image); training uses
the tiny synthetic DDIB of tiny_runs.
"""
from __future__ import annotations

import contextlib
import json
import shlex
import signal
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tiny_runs import TINY_DDIB
from translab import training
from translab.cli import main
from translab.commands.common import non_negative_int, output_file, positive_int
from translab.config import ConfigError, resolve_config
from translab.errors import UsageError
from translab.evaluation import eval_stem

MODEL = "cmnist-2to3/cyclegan"


def one_error_line(err: str) -> str:
    """The single non-empty stderr line of a refused command (fails if there are more, or a traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def argparse_error(capsys, argv: list[str]) -> str:
    """argparse's one error line for argv (exit status 2, no usage block, a pointer to --help)."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--help" in line and not line.startswith("usage"), line
    return line


def image(path: Path, seed: int = 0, size: int = 12) -> Path:
    arr = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format="JPEG" if path.suffix.lower() == ".jpg" else "PNG")
    return path


def translate(out: Path, *extra: str) -> int:
    return main(["translate", "--run", MODEL, "--split", "test", "--out", str(out), *extra])


def tiny_sets(*extra: str) -> list[str]:
    return sum((["--set", s] for s in [*TINY_DDIB, *extra]), [])


# --------------------------------------------------------------------------------------------------
# 1. data show --out


@pytest.mark.parametrize("kind", ["new folder", "existing folder", "default"])
def test_data_show_out_folder_gets_a_named_grid(tmp_path, capsys, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "figures"
    if kind == "existing folder":
        folder.mkdir()
    argv = ["data", "show", "synthetic", "-n", "2"] + ([] if kind == "default" else ["--out", str(folder)])
    assert main(argv) == 0, capsys.readouterr().err
    grid = (tmp_path if kind == "default" else folder) / "data-synthetic.png"
    assert grid.is_file() and Image.open(grid).size[0] > 0
    assert f"grid: {grid if kind != 'default' else Path('.') / 'data-synthetic.png'}" in capsys.readouterr().out


def test_data_show_out_png_path_is_used_as_given(tmp_path, capsys):
    grid = tmp_path / "deep" / "mine.PNG"
    assert main(["data", "show", "cmnist", "-n", "2", "--out", str(grid)]) == 0
    assert grid.is_file() and f"grid: {grid}" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["grid.jpg", "grid.jpg2", "v1.5"])
def test_data_show_out_with_another_suffix_is_one_line(tmp_path, capsys, name):
    out = tmp_path / name
    assert main(["data", "show", "synthetic", "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"translab: error: --out {out}: expected a folder or a .png file"), line
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_data_show_out_through_a_file_is_one_line(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    for out in (notes / "grid.png", notes / "sub", notes):
        assert main(["data", "show", "synthetic", "--out", str(out)]) == 2
        line = one_error_line(capsys.readouterr().err)
        assert f"--out {out}" in line and "expected a folder or a .png file" in line, line
    assert notes.read_text() == "keep me"


def test_output_file_rules(tmp_path):
    (tmp_path / "dir.png").mkdir()
    assert output_file(tmp_path, "d.png", ".png") == tmp_path / "d.png"
    assert output_file(tmp_path / "dir.png", "d.png", ".png") == tmp_path / "dir.png" / "d.png"
    assert output_file(tmp_path / "new", "d.png", ".png") == tmp_path / "new" / "d.png"
    assert output_file(tmp_path / "x.png", "d.png", ".png") == tmp_path / "x.png"
    (tmp_path / "plain").write_text("")
    for bad in ("x.jpg", "plain", "plain/x.png"):
        with pytest.raises(UsageError, match=str(tmp_path / bad)):
            output_file(tmp_path / bad, "d.png", ".png")


# --------------------------------------------------------------------------------------------------
# 2. and 3. translate --out: a file, a non-empty folder, --overwrite


@pytest.mark.parametrize("where", ["the file", "under the file"])
def test_translate_out_that_is_a_file_is_one_line(tmp_path, capsys, where):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    out = notes if where == "the file" else notes / "sub"
    assert translate(out, "--limit", "2") == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"translab: error: --out {out} ") and "expected a folder" in line, line
    assert notes.read_text() == "keep me"


def test_translate_refuses_a_non_empty_out_and_overwrite_replaces_only_its_own_outputs(tmp_path, capsys):
    out = tmp_path / "out"
    assert translate(out, "--limit", "3") == 0
    first = {p.name: p.read_bytes() for p in (out / "outputs").iterdir()}
    summary = (out / "summary.json").read_text()
    assert len(first) == 3
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()

    assert translate(out, "--limit", "1") == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"--out {out} is not empty" in line and "--overwrite" in line, line
    assert {p.name: p.read_bytes() for p in (out / "outputs").iterdir()} == first  # nothing touched
    assert (out / "summary.json").read_text() == summary

    assert translate(out, "--limit", "1", "--overwrite") == 0
    assert sorted(p.name for p in (out / "outputs").iterdir()) == sorted(first)[:1]  # no stale outputs left
    assert sorted(p.name for p in (out / "inputs").iterdir()) == sorted(first)[:1]
    assert json.loads((out / "summary.json").read_text())["images"] == 1
    assert (out / "notes.txt").read_text() == "mine"  # not translate's: kept
    removed = f"translab: --overwrite: removed inputs/, outputs/, grid.png, summary.json from {out}"
    assert removed in capsys.readouterr().err


def test_translate_into_an_empty_existing_folder_needs_no_overwrite(tmp_path):
    (tmp_path / "out").mkdir()
    assert translate(tmp_path / "out", "--limit", "1") == 0


# --------------------------------------------------------------------------------------------------
# 4. and 5. skipped inputs and the input -> output record


@contextlib.contextmanager
def no_warnings():
    """Fails if a SkippedImagesWarning escapes: outside pytest, Python prints those with a source line."""
    from translab.data.images import SkippedImagesWarning

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        yield
    escaped = [str(w.message) for w in record if issubclass(w.category, SkippedImagesWarning)]
    assert not escaped, escaped


def png_header_claiming(width: int, height: int) -> bytes:
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [10_000, 100_000])  # PIL warns above its limit, raises above twice it
def test_translate_skips_bombs_like_corrupt_files_one_clean_line_each(tmp_path, capsys, side):
    inputs = tmp_path / "in"
    inputs.mkdir()
    image(inputs / "a_ok.png")
    image(inputs / "e_ok.jpg", seed=1)
    (inputs / "b_bomb.png").write_bytes(png_header_claiming(side, side))
    (inputs / "c_text.png").write_text("not a picture\n" * 20)
    (inputs / "d_empty.png").write_bytes(b"")
    out = tmp_path / "out"
    with no_warnings():
        assert main(["translate", "--run", MODEL, "--input", str(inputs), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    skipped_lines = [line for line in err.splitlines() if line.startswith("translab: skipped ")]
    assert len(skipped_lines) == 3, err
    expected = [("b_bomb.png", "decompression bomb"), ("c_text.png", "not an image"), ("d_empty.png", "empty")]
    for name, word in expected:
        assert sum(line.startswith(f"translab: skipped {inputs / name}: ") and word in line
                   for line in skipped_lines) == 1, (name, err)
    assert "Warning" not in err and "warnings.warn" not in err and "Traceback" not in err, err
    assert sorted(p.name for p in (out / "outputs").iterdir()) == ["a_ok.png", "e_ok.png"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 2
    reasons = {s["file"]: s["reason"] for s in summary["skipped"]}
    assert set(reasons) == {"b_bomb.png", "c_text.png", "d_empty.png"}
    bomb = reasons["b_bomb.png"]
    assert "decompression bomb" in bomb and f"it claims {side * side:,} pixels" in bomb, bomb


def test_translate_split_of_a_folder_pair_reports_its_skipped_files(tmp_path, capsys):
    from layouts import make_folder_pair
    from translab.training import train

    make_folder_pair(tmp_path / "pair", n=3, size=8)
    (tmp_path / "pair" / "testA" / "testA_009.png").write_text("not a picture")
    (tmp_path / "pair" / "trainB" / "trainB_009.png").write_bytes(b"")  # another split: not this command's news
    train(resolve_config("ddib", None, None, TINY_DDIB + ["train.steps=1", "data.dataset=folders",
                                                         f"data.root={tmp_path / 'pair'}"]), tmp_path / "run")
    capsys.readouterr()
    out = tmp_path / "out"
    with no_warnings():
        assert main(["translate", "--run", str(tmp_path / "run"), "--split", "test", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    bad = tmp_path / "pair" / "testA" / "testA_009.png"
    assert [line for line in err.splitlines() if "skipped" in line or "Warning" in line] == [
        f"translab: skipped {bad}: not an image (PIL cannot identify it)"], err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["skipped"] == [{"file": "testA_009.png", "reason": "not an image (PIL cannot identify it)"}]
    assert summary["images"] == 3


def test_translate_records_which_input_became_which_output(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    names = ["ü.png", "日本.png", "a b.png", "café.jpg", "plain.png", "plain.jpg", "x\ny.png"]
    for i, n in enumerate(names):
        image(inputs / n, seed=i)
    out = tmp_path / "out"
    assert main(["translate", "--run", MODEL, "--input", str(inputs), "--out", str(out)]) == 0
    files = json.loads((out / "summary.json").read_text())["files"]
    assert sorted(f["input"] for f in files) == sorted(names)  # every image, under its real name
    mapping = {f["input"]: f["output"] for f in files}
    assert sorted(mapping.values()) == sorted(p.name for p in (out / "outputs").iterdir())
    assert sorted(mapping.values()) == sorted(p.name for p in (out / "inputs").iterdir())
    assert len(set(mapping.values())) == len(names)
    assert mapping["ü.png"] == "u.png" and mapping["café.jpg"] == "cafe.png"  # accents dropped, still readable
    assert mapping["a b.png"] == "a_b.png"


def test_translate_split_records_indices(tmp_path):
    assert translate(tmp_path / "out", "--limit", "2") == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [f["input"] for f in summary["files"]] == ["test[0]", "test[1]"] and summary["skipped"] == []


# --------------------------------------------------------------------------------------------------
# 6. counts: --batch-size, --limit, --steps, ... must be >= 1 (threads >= 0)


BAD_COUNTS = [
    (["translate", "--run", "/nonexistent", "--split", "test", "--out", "/nonexistent/o"], "--batch-size", "0"),
    (["translate", "--run", "/nonexistent", "--split", "test", "--out", "/nonexistent/o"], "--batch-size", "-3"),
    (["translate", "--run", "/nonexistent", "--split", "test", "--out", "/nonexistent/o"], "--limit", "0"),
    (["translate", "--run", "/nonexistent", "--split", "test", "--out", "/nonexistent/o"], "--limit", "-1"),
    (["translate", "--run", "/nonexistent", "--split", "test", "--out", "/nonexistent/o"], "--steps", "0"),
    (["translate", "--run", "/nonexistent", "--split", "test", "--out", "/nonexistent/o"], "--steps", "-2"),
    (["translate", "--run", "/nonexistent", "--split", "test", "--out", "/nonexistent/o"], "--limit", "two"),
    (["translate", "--run", "/nonexistent", "--split", "test", "--out", "/nonexistent/o"], "--seed", "-1"),
    (["translate", "--run", "/nonexistent", "--split", "test", "--out", "/nonexistent/o"], "--seed", str(2 ** 80)),
    (["evaluate", "--run", "/nonexistent"], "--seed", str(2 ** 32)),
    (["evaluate", "--run", "/nonexistent"], "--batch-size", "0"),
    (["evaluate", "--run", "/nonexistent"], "--limit", "0"),
    (["evaluate", "--run", "/nonexistent"], "--limit", "-1"),
    (["evaluate", "--run", "/nonexistent"], "--steps", "-2"),
    (["evaluate", "--run", "/nonexistent"], "--cycle-limit", "0"),
    (["evaluate", "--run", "/nonexistent"], "--threads", "-1"),
    (["latent", "--run", "/nonexistent"], "--limit", "0"),
    (["latent", "--run", "/nonexistent"], "--batch-size", "0"),
    (["data", "show", "nope"], "-n", "0"),
    (["classifier", "train", "celeba-gender", "--data-root", "/nonexistent"], "--epochs", "0"),
    (["classifier", "train", "celeba-gender", "--data-root", "/nonexistent"], "--steps", "0"),
    (["classifier", "train", "celeba-gender", "--data-root", "/nonexistent"], "--batch-size", "-1"),
    (["classifier", "train", "celeba-gender", "--data-root", "/nonexistent"], "--limit", "0"),
    (["classifier", "train", "celeba-gender", "--data-root", "/nonexistent"], "--image-size", "0"),
    (["classifier", "train", "celeba-gender", "--data-root", "/nonexistent"], "--threads", "-1"),
    (["classifier", "train", "celeba-gender", "--data-root", "/nonexistent"], "--lr", "0"),
    (["classifier", "train", "celeba-gender", "--data-root", "/nonexistent"], "--lr", "nan"),
    (["classifier", "train", "celeba-gender", "--data-root", "/nonexistent"], "--seed", "-5"),
    (["latent", "--run", "/nonexistent"], "--seed", str(2 ** 64)),
]


@pytest.mark.parametrize("argv,flag,value", BAD_COUNTS, ids=[f"{a[0]} {f} {v}" for a, f, v in BAD_COUNTS])
def test_bad_counts_are_refused_by_argparse_naming_flag_and_value(capsys, argv, flag, value):
    line = argparse_error(capsys, [*argv, flag, value])
    assert f"error: argument {flag}: expected a " in line and value in line, line


def test_count_types():
    assert positive_int("3") == 3 and non_negative_int("0") == 0
    for bad in ("0", "-1", "1.5", "", "x"):
        with pytest.raises(Exception, match="expected a whole number >= 1"):
            positive_int(bad)
    with pytest.raises(Exception, match="expected a whole number >= 0, got -1"):
        non_negative_int("-1")


def test_evaluate_device_must_exist(capsys):
    line = argparse_error(capsys, ["evaluate", "--run", "/nonexistent", "--device", "nope"])
    assert "argument --device: expected a torch device" in line and "'nope'" in line, line
    import torch

    if not torch.cuda.is_available():
        line = argparse_error(capsys, ["evaluate", "--run", "/nonexistent", "--device", "cuda"])
        assert "no CUDA device is available here" in line, line


# --------------------------------------------------------------------------------------------------
# 7. evaluate --limit gets a file name of its own


def test_eval_stem_names_the_limit():
    assert eval_stem("ddib", "a2b", 50, {}) == "ddib_a2b_50"
    assert eval_stem("ddib", "a2b", 50, {}, None) == "ddib_a2b_50"
    assert eval_stem("ddib", "a2b", 50, {}, 256) == "ddib_a2b_50_limit256"
    assert eval_stem("sdedit", "a2b", 3, {"model.t0": 0.5}, 8) == "sdedit_a2b_3_t0-0.5_limit8"


def test_limited_evaluation_does_not_overwrite_the_full_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the shipped model is evaluated in a writable copy under ./runs
    base = ["evaluate", "--run", MODEL, "--no-inception", "--no-progress", "--cycle-limit", "2"]
    assert main([*base, "--limit", "3"]) == 0
    assert main([*base, "--limit", "2"]) == 0
    out = capsys.readouterr().out
    written = sorted(p.name for p in tmp_path.glob("runs/*/eval/*.json"))
    assert written == ["cyclegan_a2b_nosteps_limit2.json", "cyclegan_a2b_nosteps_limit3.json"], (written, out)
    for n in (2, 3):
        e = json.loads(next(tmp_path.glob(f"runs/*/eval/cyclegan_a2b_nosteps_limit{n}.json")).read_text())
        assert e["dataset"]["limit"] == n and e["dataset"]["n_inputs"] == n


# --------------------------------------------------------------------------------------------------
# 8. train.lr and train.steps


@pytest.mark.parametrize("override,message", [
    ("train.lr=0", "train.lr must be > 0, got 0"), ("train.lr=-0.001", "train.lr must be > 0, got -0.001"),
    ("train.steps=0", "train.steps: must be at least 1, got 0"),
    ("train.steps=-2", "train.steps: must be at least 1, got -2"),
])
def test_training_settings_that_train_nothing_are_refused(capsys, override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("ddib", "cmnist-2to3", None, [override])
    assert main(["config", "ddib", "--set", override]) == 2
    assert one_error_line(capsys.readouterr().err) == f"translab: error: {message}"


def test_shipped_presets_pass_the_validation():
    from translab.config import preset_names

    for name in preset_names():
        method, preset = name.split("/")
        resolve_config(method, preset, None, [])


# --------------------------------------------------------------------------------------------------
# 9. an interrupted training exits 130 and says how to resume


class InterruptAtOnce(training.GracefulInterrupt):
    """The real Ctrl-C handler, with a real SIGINT delivered as soon as the loop starts."""

    def __enter__(self):
        entered = super().__enter__()
        signal.raise_signal(signal.SIGINT)
        return entered


def test_interrupted_train_exits_130_and_the_printed_command_resumes(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run dir"
    argv = ["train", "ddib", "--run-dir", str(run), "--preset", "", *tiny_sets("train.steps=2")]
    with monkeypatch.context() as m:
        m.setattr(training, "GracefulInterrupt", InterruptAtOnce)
        assert main(argv) == 130
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if line.startswith("translab: training interrupted"))
    assert "interrupted at step 1 of 2" in line and str(run / "checkpoints") in line, err
    assert (run / "checkpoints" / "latest.json").is_file()
    resume = shlex.split(line.split("resume with: ", 1)[1])
    assert resume[:2] == ["translab", "train"]
    assert main(resume[1:]) == 0  # the printed command finishes the same run
    assert "finished at step 2" in capsys.readouterr().out
    assert json.loads((run / "train_record.json").read_text())["completed"] is True


def test_finished_train_exits_0(tmp_path, capsys):
    argv = ["train", "ddib", "--run-dir", str(tmp_path / "r"), "--preset", "", *tiny_sets("train.steps=1")]
    assert main(argv) == 0
    assert "finished at step 1" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------
# 10. other bad input a new user meets


def test_config_names_an_unknown_method_before_its_preset(capsys):
    line = argparse_error(capsys, ["config", "nope"])
    assert "argument method: invalid choice: 'nope'" in line and "ddib" in line, line
    assert main(["config", "cyclegan"]) == 0


@pytest.mark.parametrize("override,message", [
    ("data.image_size=0", "data.image_size: must be at least 1, got 0"),
    ("data.limit=0", "data.limit: must be at least 1, got 0"),
    ("data.limit=-1", "data.limit: must be at least 1, got -1"),
])
def test_data_show_range_checks_its_settings(tmp_path, capsys, override, message):
    assert main(["data", "show", "cmnist", "--out", str(tmp_path), "--set", override]) == 2
    assert one_error_line(capsys.readouterr().err) == f"translab: error: {message}"
    assert list(tmp_path.iterdir()) == []


MODEL_SETTINGS = [
    ("model.sample_steps=-1", "model.sample_steps: must be at least 0, got -1"),
    ("model.steps=0", "model.steps: must be at least 1, got 0"),
    ("model.diffusion.num_timesteps=0", "model.diffusion.num_timesteps: must be at least 1, got 0"),
    ("model.unet.base_channels=0", "model.unet.base_channels: must be at least 1, got 0"),
    ("model.unet.layers_per_block=0", "model.unet.layers_per_block: must be at least 1, got 0"),
    ("model.unet.norm_groups=0", "model.unet.norm_groups: must be at least 1, got 0"),
    ("model.unet.norm_groups=3", "model.unet.norm_groups=3 must divide the channels of every level"),
    ("model.unet.dropout=2", "model.unet.dropout: must be between 0.0 and 1.0, got 2.0"),
    ("model.unet.channel_mult=[]", "model.unet.channel_mult: expected a non-empty list of integers >= 1, got []"),
    ("model.unet.channel_mult=[0]", "model.unet.channel_mult: expected a non-empty list of integers >= 1, got [0]"),
    ("data.image_size=7", "data.image_size=7: a UNet with 2 levels (model.unet.channel_mult=[1, 2]) needs an "
                          "image size divisible by 2"),
    ("model.t_max=5000", "model.t_max: expected a timestep in [0, 999] (T = 1000) or null, got 5000"),
    ("model.t_max=-3", "model.t_max: expected a timestep in [0, 999] (T = 1000) or null, got -3"),
    ("model.train_domains=[]", "model.train_domains: expected 'a' and/or 'b', got an empty list"),
]


@pytest.mark.parametrize("override,message", MODEL_SETTINGS, ids=[o for o, _ in MODEL_SETTINGS])
def test_train_refuses_model_settings_that_crash_later(tmp_path, capsys, override, message):
    run = tmp_path / "run"
    assert main(["train", "ddib", "--run-dir", str(run), "--preset", "", *tiny_sets("train.steps=1", override)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"translab: error: {message}"), line
    assert not run.exists()


@pytest.mark.parametrize("where", ["the file", "under the file"])
def test_train_run_dir_that_is_a_file_is_one_line(tmp_path, capsys, where):
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me")
    run = notes if where == "the file" else notes / "run"
    assert main(["train", "ddib", "--run-dir", str(run), "--preset", "", *tiny_sets("train.steps=1")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"translab: error: --run-dir {run} ") and "expected a folder" in line, line
    assert notes.read_text() == "keep me"


def test_translate_refuses_an_inference_setting_out_of_range(tmp_path, capsys):
    argv = ["translate", "--run", "cmnist-2to3/ddib", "--split", "test", "--limit", "1", "--steps", "2",
            "--set", "model.t_max=5000", "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    assert "model.t_max: expected a timestep in [0, 999]" in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("out,expected", [("w.safetensors", "w.safetensors"), ("dir", "dir/cmnist.safetensors"),
                                          ("W.SAFETENSORS", "W.safetensors")])
def test_classifier_out_accepts_a_file_or_a_folder(tmp_path, out, expected):
    from translab.commands.classifier import classifier_out

    assert classifier_out("cmnist", str(tmp_path / out)) == tmp_path / expected


@pytest.mark.parametrize("out", ["weights.pt", "notes.txt", "notes.txt/w.safetensors"])
def test_classifier_bad_out_is_refused_before_training(tmp_path, capsys, monkeypatch, out):
    import translab.metrics.classifier_training as clf

    def never(*args, **kwargs):
        raise AssertionError("trained although --out cannot be written")

    monkeypatch.setattr(clf, "train_digit_classifier", never)
    (tmp_path / "notes.txt").write_text("keep me")
    assert main(["classifier", "train", "cmnist", "--out", str(tmp_path / out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"--out {tmp_path / out}" in line and "expected a folder or a .safetensors file" in line, line
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def test_version_and_a_reader_that_leaves_early(tmp_path):
    """`translab --version` names the installed version; output piped into a reader that stops early (`| head`)
    ends quietly with status 141, no BrokenPipeError traceback."""
    import subprocess
    import sys
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-m", "translab", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"translab {version('translab')}"
    code = ("import sys; from translab import cli; from translab.commands import models; "
            "models.run = lambda args: [print('x' * 100) for _ in range(100000)] and 0; sys.exit(cli.main(['models']))")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141 and "Traceback" not in err, err


def test_classifier_train_never_writes_into_the_package_by_default():
    from pathlib import Path

    from translab.commands.classifier import TASKS, classifier_out

    for task in TASKS:
        assert classifier_out(task, None) == Path(f"runs/classifiers/{task}.safetensors")


def test_translate_one_image_file_and_a_bad_one(tmp_path, capsys):
    """--input FILE translates that one image; a file that is not an image is a one-line error naming it, and
    nothing is written."""
    import json

    from PIL import Image

    from translab.cli import main

    img = tmp_path / "two.png"
    Image.new("RGB", (40, 40), (200, 30, 30)).save(img)
    out = tmp_path / "out"
    assert main(["translate", "--run", "cmnist-2to3/cyclegan", "--input", str(img), "--out", str(out),
                 "--device", "cpu", "--threads", "1"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images"] == 1 and summary["files"] == [{"input": "two.png", "output": "two.png"}]
    assert (out / "outputs" / "two.png").is_file()
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    capsys.readouterr()
    assert main(["translate", "--run", "cmnist-2to3/cyclegan", "--input", str(bad), "--out",
                 str(tmp_path / "out2")]) == 2
    err = capsys.readouterr().err.strip()
    assert "notes.png" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out2").exists()
