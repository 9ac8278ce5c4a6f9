"""Hostile or broken input: code-carrying checkpoints, a pickle posing as safetensors, damaged checkpoints,
decompression bombs given to `translab translate --input`, and file names that try to leave --out.

Each payload is checked to be live (loading it unsafely does run it), so that "the marker never appears"
means the loader refused it, not that the payload was inert. Commands run in-process through
translab.cli.main, the function behind `python -m translab`: an exception escaping it would fail the test.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tiny_runs import tiny_ddib
from translab.checkpoint import CheckpointError, load_checkpoint
from translab.cli import main
from translab.data import images as images_mod
from translab.paths import safe_name, unique_names
from translab.report.grids import save_images
from translab.training import load_method, train


class Payload:
    """Unpickling this creates ``marker``: stands in for any code an attacker would run."""

    def __init__(self, marker: Path, via: str):
        self.marker, self.via = marker, via

    def __reduce__(self):
        if self.via == "system":
            return os.system, (f"touch '{self.marker}'",)
        return Path.touch, (self.marker,)


def evil_checkpoint(path: Path, marker: Path, via: str) -> Path:
    """A file that looks like a translab checkpoint but whose unpickling runs code."""
    torch.save({"format": "translab-checkpoint", "version": 1, "step": 1, "config": {"method": "ddib"},
                "nets": {"hook": Payload(marker, via)}}, path)
    return path


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("tiny") / "run"
    train(tiny_ddib(1), run)
    return run


def test_payload_is_live(tmp_path):
    """Control: the payloads below really run when unpickled without the allow-list."""
    for via in ("touch", "system"):
        marker = tmp_path / f"ran-{via}"
        path = evil_checkpoint(tmp_path / f"{via}.pt", marker, via)
        torch.load(path, weights_only=False)
        assert marker.exists(), via


@pytest.mark.parametrize("via", ["touch", "system"])
def test_code_carrying_checkpoint_is_refused_without_running_it(tmp_path, capsys, via):
    marker = tmp_path / "pwned"
    evil = evil_checkpoint(tmp_path / "evil.pt", marker, via)
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps(Payload(marker, via)))
    for path in (evil, plain):
        with pytest.raises(CheckpointError, match=re.escape(str(path)) + ".*safe allow-list.*possibly code"):
            load_checkpoint(path)
        with pytest.raises(CheckpointError, match=re.escape(str(path))):
            load_method(path)
    rc = main(["translate", "--run", str(evil), "--input", str(tmp_path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and f"translab: error: refused to load {evil}" in err, err
    assert "\x1b[" not in err  # no terminal escape codes from torch's message
    assert not (tmp_path / "out").exists()
    assert not marker.exists()


def test_code_carrying_checkpoint_planted_in_a_run_directory_is_refused_by_translate_and_train(tmp_path, capsys):
    run, marker = tmp_path / "run", tmp_path / "pwned"
    (run / "checkpoints").mkdir(parents=True)
    evil_checkpoint(run / "checkpoints" / "step_00000001.pt", marker, "system")
    (run / "checkpoints" / "latest.json").write_text('{"step": 1, "file": "step_00000001.pt"}')
    assert main(["translate", "--run", str(run), "--split", "test", "--out", str(tmp_path / "out")]) == 2
    assert "refused to load" in capsys.readouterr().err
    sets = sum((["--set", s] for s in ["data.dataset=synthetic", "data.image_size=8", "train.steps=2"]), [])
    assert main(["train", "ddib", "--run-dir", str(run), *sets]) == 2  # resuming loads it: refused too
    assert "refused to load" in capsys.readouterr().err
    assert not marker.exists()


def test_pickle_posing_as_safetensors_is_refused(tmp_path, tiny_run, capsys):
    from translab.export import export_inference, load_inference_folder

    folder, marker = tmp_path / "export", tmp_path / "pwned"
    export_inference(tiny_run, folder)
    assert load_method(folder)[2]["step"] == 1  # the genuine export loads
    evil_checkpoint(folder / "model.safetensors", marker, "system")
    with pytest.raises(CheckpointError, match=re.escape(str(folder / "model.safetensors"))):
        load_inference_folder(folder)
    with pytest.raises(CheckpointError, match=re.escape(str(folder / "model.safetensors"))):
        load_method(folder)
    assert main(["translate", "--run", str(folder), "--split", "test", "--out", str(tmp_path / "out")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert not marker.exists()


def test_interrupted_export_keeps_the_previous_weights(tmp_path, tiny_run, monkeypatch):
    import safetensors.torch

    from translab.export import export_inference

    folder = tmp_path / "export"
    export_inference(tiny_run, folder)
    before = (folder / "model.safetensors").read_bytes()
    names = sorted(p.name for p in folder.iterdir())

    def dies_half_way(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        export_inference(tiny_run, folder)
    assert (folder / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == names  # no temporary file left behind


def test_hostile_config_in_an_export_folder_is_refused(tmp_path, tiny_run):
    from translab.export import export_inference

    folder, marker = tmp_path / "export", tmp_path / "pwned"
    export_inference(tiny_run, folder)
    (folder / "config.yaml").write_text(f"method: !!python/object/apply:os.system [\"touch '{marker}'\"]\n")
    with pytest.raises(CheckpointError, match=re.escape(str(folder / "config.yaml"))):
        load_method(folder)
    (folder / "config.yaml").write_text("- just\n- a list\n")
    with pytest.raises(CheckpointError, match=re.escape(str(folder / "config.yaml"))):
        load_method(folder)
    assert not marker.exists()


DAMAGE = {
    "no config": lambda s: s.pop("config"),
    "config is None": lambda s: s.update(config=None),
    "no nets": lambda s: s.pop("nets"),
    "nets is a list": lambda s: s.update(nets=[1, 2]),
    "a net is a tensor": lambda s: s["nets"].update(denoiser=torch.zeros(2)),
    "step is text": lambda s: s.update(step="7"),
    "ema is a list": lambda s: s.update(ema=[]),
    "newer format": lambda s: s.update(version=99),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_checkpoint_structure_is_refused_by_name(tmp_path, tiny_run, damage):
    state = load_checkpoint(next((tiny_run / "checkpoints").glob("step_*.pt")))
    DAMAGE[damage](state)
    path = tmp_path / "damaged.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_method(path)


@pytest.mark.parametrize("damage", ["unknown net", "config says another shape"])
def test_checkpoint_whose_weights_disagree_with_its_config_is_refused(tmp_path, tiny_run, damage):
    state = load_checkpoint(next((tiny_run / "checkpoints").glob("step_*.pt")))
    if damage == "unknown net":
        state["nets"]["stranger"] = {"w": torch.zeros(1)}
    else:
        state["config"]["model"]["unet"]["base_channels"] = 16
    path = tmp_path / "mismatch.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=re.escape(str(path))):
        load_method(path)


# --------------------------------------------------------------------------------------------------
# images given to translate


def png_header_claiming(width: int, height: int) -> bytes:
    """A ~60-byte PNG whose IHDR claims width x height RGB pixels (PNG spec: signature, IHDR, IDAT, IEND)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def good_image(path: Path, seed: int = 0, size: int = 12) -> Path:
    arr = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format="JPEG" if path.name.lower().endswith(".jpg") else "PNG")
    return path


@pytest.mark.parametrize("side", [10_000, 100_000])  # PIL warns above its limit, raises above twice it
def test_translate_skips_a_decompression_bomb_naming_the_file(tmp_path, tiny_run, capsys, side):
    inputs = tmp_path / "in"
    inputs.mkdir()
    good_image(inputs / "a_ok.png")
    bomb = inputs / "b_bomb.png"
    bomb.write_bytes(png_header_claiming(side, side))
    rc = main(["translate", "--run", str(tiny_run), "--input", str(inputs), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 0, err
    assert f"translab: skipped {bomb}: too large: it claims {side * side:,} pixels" in err, err
    assert "decompression bomb" in err and "Traceback" not in err, err
    assert "Traceback" not in err
    assert [p.name for p in (tmp_path / "out" / "outputs").iterdir()] == ["a_ok.png"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [s["file"] for s in summary["skipped"]] == ["b_bomb.png"]


def test_translate_skips_an_image_above_the_pixel_limit(tmp_path, tiny_run, capsys, monkeypatch):
    monkeypatch.setattr(images_mod, "MAX_IMAGE_PIXELS", 64 * 64)
    inputs = tmp_path / "in"
    inputs.mkdir()
    good_image(inputs / "small.png")
    big = good_image(inputs / "big.png", size=65)
    assert main(["translate", "--run", str(tiny_run), "--input", str(inputs), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert f"skipped {big}: too large: it claims 65 x 65 = 4,225 pixels, more than the limit of 4,096" in err, err
    assert [p.name for p in (tmp_path / "out" / "outputs").iterdir()] == ["small.png"]


def test_an_input_folder_of_bombs_only_is_one_line(tmp_path, tiny_run, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    bomb = inputs / "bomb.png"
    bomb.write_bytes(png_header_claiming(100_000, 100_000))
    assert main(["translate", "--run", str(tiny_run), "--input", str(inputs), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "translab: error: no readable image" in err and str(bomb) in err, err
    assert not (tmp_path / "out").exists()


def test_float_tiff_with_nan_pixels_loads_finite(tmp_path):
    path = tmp_path / "nan.tif"
    arr = np.full((6, 6), 0.5, np.float32)
    arr[:3] = np.nan
    arr[3, :] = np.inf
    Image.fromarray(arr).save(path)
    x = images_mod.load_image(path, 6)
    assert torch.isfinite(x).all()
    assert torch.allclose(x[:, 4:], torch.zeros(3, 2, 6))  # 0.5 in [0, 1] -> 0 in [-1, 1]: scale kept
    assert torch.allclose(x[:, 0], -torch.ones(3, 6))  # NaN -> black


# --------------------------------------------------------------------------------------------------
# output names


NASTY = ["../../x", "/etc/passwd", "..", ".", "", ".hidden", "a\0b", "nul\0", "x" * 1000, "ü", "日本語", "a/b\\c",
         "-rf", "--help", "CON", "a b", "a_b", " ", "\n", "~", "$(touch pwned)", "..\\..\\evil", "a" * 119 + "/.."]


@pytest.mark.parametrize("name", NASTY)
def test_safe_name_stays_in_the_folder(tmp_path, name):
    s = safe_name(name)
    assert s and len(s) <= 120 and s not in (".", "..")
    assert not s.startswith((".", "-")) and not re.search(r"[/\\\0\s]", s)
    assert safe_name(s) == s
    assert (tmp_path / f"{s}.png").resolve().parent == tmp_path.resolve()


def test_unique_names_are_safe_distinct_and_fixed_points():
    names = unique_names(NASTY + ["A", "a", "a_png", "a_png"] + ["y" * 200, "y" * 200 + "z"])
    assert len(set(n.lower() for n in names)) == len(names)
    assert all(safe_name(n) == n and len(n) <= 120 for n in names)


def test_save_images_writes_only_inside_the_folder(tmp_path):
    out = tmp_path / "deep" / "out"
    paths = save_images(torch.zeros(len(NASTY), 3, 4, 4), out, NASTY)
    every = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert every and all(p.parent == out for p in every)
    assert all(p.parent == out for p in paths)


def test_save_images_never_overwrites_one_output_with_another(tmp_path):
    save_images(torch.zeros(len(NASTY), 3, 4, 4), tmp_path, NASTY)
    assert len(list(tmp_path.iterdir())) == len(NASTY)


def test_translate_input_folder_with_nasty_names_writes_every_image_only_inside_out(tmp_path, tiny_run, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    names = ["-rf.png", "a b.png", "a_b.png", "ü.png", "ö.png", "A.png", "a.jpg", "x\ny.png", "$(touch pwned).png",
             "a\\b.png", "--out.png", "z" * 240 + ".png", "z" * 240 + ".jpg", "same.png", "same.PNG"]
    for i, n in enumerate(names):
        good_image(inputs / n, seed=i)
    good_image(inputs / "..png", seed=99)  # hidden (leading dot): ignored like any dotfile
    out = tmp_path / "out"
    before = {p for p in tmp_path.rglob("*")}
    cwd_before = set(os.listdir(os.getcwd()))
    rc = main(["translate", "--run", str(tiny_run), "--input", str(inputs), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(p == out or out in p.parents for p in created), sorted(map(str, created))
    assert set(os.listdir(os.getcwd())) == cwd_before and not (tmp_path / "pwned").exists()
    ins, outs = sorted(p.name for p in (out / "inputs").iterdir()), sorted(p.name for p in (out / "outputs").iterdir())
    assert ins == outs and len(outs) == len(names), outs  # one output per input: nothing overwritten
    assert all(safe_name(n[:-4]) == n[:-4] for n in outs)
