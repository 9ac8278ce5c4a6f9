"""Faults during training lose nothing: Ctrl-C (once and twice), kill -9 while a checkpoint is being written,
a full disk, a second trainer on the same run directory, and a shape-changing resume from the command line.

Already covered in tests/test_training.py (not repeated here): kill -9 between checkpoints then an exact
resume, the NaN stop, truncated/foreign checkpoints, the in-process shape-changing resume, and DDP.

Real processes are started with `python -m translab train ...` and real signals; the tiny DDIB config of
tests/tiny_runs.py (synthetic 8x8 images, a UNet of a few thousand weights) keeps each one at a few seconds,
most of it import time. The test hook tests/pause_hook.py (loaded only into those processes) holds a chosen
rename between "temporary file written" and "renamed into place" so that a signal lands there.
"""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tiny_runs import TINY_DDIB
import translab.checkpoint as ck
from translab.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from translab.cli import main
from translab.config import resolve_config
from translab.training import train

ROOT = Path(__file__).resolve().parents[1]
PRESET = ["ddib", "--preset", "cmnist-2to3"]


def cfg(*extra: str):
    """The config the CLI builds from PRESET + TINY_DDIB + extra (so in-process resumes match it exactly)."""
    return resolve_config("ddib", "cmnist-2to3", None, TINY_DDIB + list(extra))


def sets(*extra: str) -> list[str]:
    out = []
    for s in TINY_DDIB + list(extra):
        out += ["--set", s]
    return out


def spawn(run: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    full = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]), OMP_NUM_THREADS="1")
    full.update(env or {})
    launch = ["-c", "import pause_hook; pause_hook.run_translab()"]
    return subprocess.Popen([sys.executable, *launch, "train", *PRESET, "--run-dir", str(run), *sets(*extra)],
                            cwd=ROOT, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(predicate, proc: subprocess.Popen, what: str, timeout: float = 180.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"training exited ({proc.returncode}) before {what}: {proc.stdout.read()[-3000:]}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def metric_steps(run: Path) -> list[int]:
    p = run / "metrics.jsonl"
    return [json.loads(x)["step"] for x in p.read_text().splitlines() if x.strip()] if p.is_file() else []


def temporaries(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").glob("*.tmp"))


def pointer(run: Path) -> dict:
    return json.loads((run / "checkpoints" / "latest.json").read_text())


@pytest.fixture(autouse=True)
def _restore_determinism():
    """train.deterministic=true switches torch.use_deterministic_algorithms on for the whole process."""
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


def pause_env(marker: Path, match: str, skip: int, seconds: float) -> dict:
    return {"PAUSE_BEFORE_RENAME": str(marker), "PAUSE_MATCH": match, "PAUSE_SKIP": str(skip),
            "PAUSE_SECONDS": str(seconds)}


# --------------------------------------------------------------------------------------------------
# Ctrl-C


def test_ctrl_c_saves_a_checkpoint_exits_130_and_resume_continues(tmp_path):
    run = tmp_path / "run"
    p = spawn(run, "train.steps=100000", "train.checkpoint_every=100000")  # no periodic checkpoint at all
    wait_for(lambda: len(metric_steps(run)) >= 2, p, "two training steps")
    p.send_signal(signal.SIGINT)
    out = p.communicate(timeout=120)[0]
    assert p.returncode == 130, out[-3000:]  # not 0: `translab train ... && translab evaluate ...` must stop here
    n = metric_steps(run)[-1]
    assert f"interrupted at step {n} " in out and "Traceback" not in out
    assert f"interrupted at step {n}; resume with the same command" in (run / "log.txt").read_text()
    state = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    assert state["step"] == n and pointer(run) == {"step": n, "file": f"step_{n:08d}.pt"}
    assert temporaries(run) == []
    record = json.loads((run / "train_record.json").read_text())  # a run stopped for time still says how far it got
    assert (record["steps"], record["target_steps"], record["completed"]) == (n, 100000, False)
    assert set(record["final"]) >= {"loss"} and record["wall_seconds"] > 0

    res = train(cfg(f"train.steps={n + 2}", "train.checkpoint_every=100000"), run)
    assert res.step == n + 2 and not res.stopped_early
    record = json.loads((run / "train_record.json").read_text())
    assert (record["steps"], record["completed"]) == (n + 2, True)
    assert f"resuming from step_{n:08d}.pt at step {n}" in (run / "log.txt").read_text()
    assert metric_steps(run) == list(range(1, n + 3))  # no step lost, none repeated
    assert load_checkpoint(latest_checkpoint(run / "checkpoints"))["step"] == n + 2


def test_second_ctrl_c_during_a_checkpoint_write_exits_at_once_and_keeps_the_last_checkpoint(tmp_path):
    """Checkpoint 2 is written normally; the write of checkpoint 4 is held before its rename. Ctrl-C once:
    the process keeps going (it will checkpoint); Ctrl-C again: exit 130 at once, checkpoint 2 intact."""
    run, marker = tmp_path / "run", tmp_path / "paused"
    p = spawn(run, "train.steps=100000", "train.checkpoint_every=2",
              env=pause_env(marker, "step_*.pt", skip=1, seconds=120))
    wait_for(marker.exists, p, "the held write of checkpoint 4")
    assert pointer(run)["file"] == "step_00000002.pt"
    p.send_signal(signal.SIGINT)
    time.sleep(1.0)
    assert p.poll() is None, "the first Ctrl-C must not abort a checkpoint write"
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    out = p.communicate(timeout=60)[0]
    quit_s = time.time() - t0
    assert p.returncode == 130, out[-3000:]
    assert quit_s < 20, f"second Ctrl-C took {quit_s:.1f} s (the held write lasts 120 s)"
    assert "translab: interrupted" in out and "Traceback" not in out
    assert pointer(run) == {"step": 2, "file": "step_00000002.pt"}
    assert load_checkpoint(latest_checkpoint(run / "checkpoints"))["step"] == 2
    assert not (run / "checkpoints" / "step_00000004.pt").exists()
    assert temporaries(run) == [], "the interrupted write left its temporary file"
    res = train(cfg("train.steps=4", "train.checkpoint_every=2"), run)
    assert res.step == 4 and "resuming from step_00000002.pt at step 2" in (run / "log.txt").read_text()


# --------------------------------------------------------------------------------------------------
# kill -9 mid-write, and a second trainer on the same run directory


@pytest.mark.parametrize("held", ["step_*.pt", pytest.param("latest.json", marks=pytest.mark.slow)])
def test_sigkill_mid_checkpoint_write_then_resume_is_exact_and_a_second_trainer_is_refused(tmp_path, capsys, held):
    """kill -9 while checkpoint 4 (or its latest.json update) is between temp file and rename: checkpoint 2
    and the pointer still load; resuming to step 6 gives the weights of an uninterrupted 6-step run. While
    the first process holds the run, a second `translab train` on it exits 2 naming the holder's pid."""
    common = ["train.checkpoint_every=2", "train.deterministic=true"]
    run, marker = tmp_path / "run", tmp_path / "paused"
    p = spawn(run, *common, "train.steps=1000", env=pause_env(marker, held, skip=1, seconds=120))
    wait_for(marker.exists, p, f"the held write of {held} at step 4")

    log_before = (run / "log.txt").read_text()
    rc = main(["train", *PRESET, "--run-dir", str(run), *sets(*common, "train.steps=6")])
    err = capsys.readouterr().err
    assert rc == 2 and f"translab: error: run directory {run} is in use by pid {p.pid}" in err, err
    assert (run / "log.txt").read_text() == log_before  # the refused trainer wrote nothing

    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    left = temporaries(run)
    assert len(left) == 1 and left[0].startswith(".step_00000004.pt." if held == "step_*.pt" else ".latest.json."), left
    assert pointer(run) == {"step": 2, "file": "step_00000002.pt"}  # the pointer still names checkpoint 2
    assert latest_checkpoint(run / "checkpoints").name == "step_00000002.pt"
    assert load_checkpoint(run / "checkpoints" / "step_00000002.pt")["step"] == 2
    assert (run / "checkpoints" / "step_00000004.pt").exists() == (held == "latest.json")

    res = train(cfg(*common, "train.steps=6"), run)
    assert res.step == 6
    assert "resuming from step_00000002.pt at step 2" in (run / "log.txt").read_text()
    assert temporaries(run) == []  # the dead writer's temporary file is cleaned up by the next checkpoint
    ref = train(cfg(*common, "train.steps=6"), tmp_path / "ref")
    assert ref.step == 6
    a = load_checkpoint(latest_checkpoint(tmp_path / "ref" / "checkpoints"))
    b = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    assert b["step"] == 6
    for net in a["nets"]:
        for k in a["nets"][net]:
            assert torch.equal(a["nets"][net][k], b["nets"][net][k]), f"{net}.{k} differs after the resume"


# --------------------------------------------------------------------------------------------------
# disk full


def fail_write(monkeypatch, name: str, nth: int) -> None:
    """The nth atomic write of a file called ``name`` writes 100 bytes, then fails with ENOSPC (disk full)."""
    real = ck.atomic_write_bytes
    seen = {"n": 0}

    def write(path, write_fn):
        if Path(path).name == name:
            seen["n"] += 1
            if seen["n"] == nth:
                def full(f):
                    f.write(b"\0" * 100)
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return real(path, full)
        return real(path, write_fn)

    monkeypatch.setattr(ck, "atomic_write_bytes", write)


@pytest.mark.parametrize("target", ["step_00000004.pt", "latest.json"])
def test_disk_full_during_a_checkpoint_write_stops_naming_the_folder_and_keeps_the_last_one(
        tmp_path, monkeypatch, capsys, target):
    run = tmp_path / "run"
    fail_write(monkeypatch, target, nth=1 if target.endswith(".pt") else 2)
    rc = main(["train", *PRESET, "--run-dir", str(run), *sets("train.steps=6", "train.checkpoint_every=2")])
    err = capsys.readouterr().err
    folder = run / "checkpoints"
    assert rc == 2, err
    assert f"translab: error: could not write {target} in {folder}: No space left on device" in err, err
    assert temporaries(run) == []
    assert pointer(run) == {"step": 2, "file": "step_00000002.pt"}
    assert load_checkpoint(latest_checkpoint(folder))["step"] == 2
    monkeypatch.undo()  # space freed: the same command resumes from checkpoint 2 and finishes
    res = train(cfg("train.steps=6", "train.checkpoint_every=2"), run)
    assert res.step == 6 and "resuming from step_00000002.pt at step 2" in (run / "log.txt").read_text()


def test_disk_full_in_process_raises_checkpoint_error_and_leaves_no_temporary(tmp_path, monkeypatch):
    run = tmp_path / "run"
    train(cfg("train.steps=2", "train.checkpoint_every=2"), run)
    before = (run / "checkpoints" / "step_00000002.pt").read_bytes()
    fail_write(monkeypatch, "step_00000004.pt", nth=1)
    with pytest.raises(CheckpointError, match=re.escape(f"could not write step_00000004.pt in {run / 'checkpoints'}")):
        train(cfg("train.steps=4", "train.checkpoint_every=2"), run)
    assert (run / "checkpoints" / "step_00000002.pt").read_bytes() == before
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["latest.json", "step_00000002.pt"]


def test_checkpoints_get_ordinary_file_permissions(tmp_path):
    """mkstemp creates 0600 files; checkpoints are shared like any file the user writes (0666 & ~umask)."""
    run = tmp_path / "run"
    train(cfg("train.steps=1"), run)
    mask = os.umask(0o022)
    os.umask(mask)
    for p in (run / "checkpoints").iterdir():
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask, (p.name, oct(p.stat().st_mode))


# --------------------------------------------------------------------------------------------------
# resume with a changed config, from the command line


def test_cli_refuses_a_shape_changing_resume_naming_the_key_and_records_harmless_changes(tmp_path, capsys):
    run = tmp_path / "run"
    train(cfg("train.steps=2", "train.checkpoint_every=2"), run)
    config_before = (run / "config.yaml").read_text()
    ckpt_before = (run / "checkpoints" / "step_00000002.pt").read_bytes()
    rc = main(["train", *PRESET, "--run-dir", str(run), *sets("train.steps=4", "model.unet.base_channels=16")])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "translab: error: cannot resume from" in err and "model.unet.base_channels" in err
    assert "Traceback" not in err
    assert (run / "config.yaml").read_text() == config_before
    assert (run / "checkpoints" / "step_00000002.pt").read_bytes() == ckpt_before
    assert latest_checkpoint(run / "checkpoints").name == "step_00000002.pt"

    rc = main(["train", *PRESET, "--run-dir", str(run), *sets("train.steps=3", "train.log_every=2")])
    assert rc == 0, capsys.readouterr().err
    line = [x for x in (run / "log.txt").read_text().splitlines() if "resuming from step_00000002.pt" in x][-1]
    assert "changed keys:" in line and "train.log_every" in line and "train.steps" in line
    assert load_checkpoint(latest_checkpoint(run / "checkpoints"))["step"] == 3
