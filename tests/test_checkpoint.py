"""translab.checkpoint on its own, with tiny real tensors in tmp_path: the save/load round trip, rotation and the
latest pointer, atomic writes that fail midway, damaged files refused by name, and the atomic-path helpers.

Checkpoints written by real trainings (truncated, foreign, code-carrying, damaged structure, disk full during a
training, Ctrl-C, kill -9) are covered in tests/test_training.py, tests/test_reliability_inputs.py and
tests/test_reliability_faults.py."""
from __future__ import annotations

import errno
import json
import os
import re

import pytest
import torch

from translab.checkpoint import (FORMAT, LATEST, VERSION, CheckpointError, atomic_path, atomic_write_bytes,
                                 atomic_write_text, latest_checkpoint, list_checkpoints, load_checkpoint,
                                 remove_stale_temporaries, save_checkpoint)


def tiny_state() -> dict:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 2, generator=g)
    return {"config": {"method": "toy", "train": {"steps": 3}},
            "nets": {"net": {"weight": w, "bias": torch.zeros(3)}},
            "ema": {"net": {"weight": w.clone(), "bias": torch.zeros(3)}},
            "optimizers": {"opt": {"state": {}, "param_groups": [{"lr": 0.001, "params": [0, 1]}]}},
            "rng": {"torch": torch.get_rng_state()},
            "extra": {"note": "tiny", "counts": [1, 2, 3]}}


def umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --------------------------------------------------------------------------------------------------
# save, load, rotate, point


def test_save_load_round_trip_is_exact_and_loads_with_weights_only(tmp_path):
    state = tiny_state()
    path = save_checkpoint(state, tmp_path / "ckpt", step=3)
    assert path == tmp_path / "ckpt" / "step_00000003.pt"
    raw = torch.load(path, weights_only=True)  # plain torch, no translab code, accepts it
    assert raw["format"] == FORMAT and raw["version"] == VERSION and raw["step"] == 3
    back = load_checkpoint(path)
    assert back["config"] == state["config"] and back["extra"] == state["extra"]
    assert back["optimizers"] == state["optimizers"]
    for part in ("nets", "ema"):
        for k, v in state[part]["net"].items():
            assert torch.equal(back[part]["net"][k], v) and back[part]["net"][k].dtype == v.dtype
    assert torch.equal(back["rng"]["torch"], state["rng"]["torch"])
    assert json.loads((tmp_path / "ckpt" / LATEST).read_text()) == {"step": 3, "file": "step_00000003.pt"}
    assert "format" not in state  # the caller's dict is not changed


def test_rotation_keeps_the_newest_and_latest_follows_the_pointer(tmp_path):
    folder = tmp_path / "ckpt"
    for step in (1, 2, 3):
        save_checkpoint(tiny_state(), folder, step=step, keep=2)
    assert [p.name for p in list_checkpoints(folder)] == ["step_00000002.pt", "step_00000003.pt"]
    assert names(folder) == [LATEST, "step_00000002.pt", "step_00000003.pt"]
    assert latest_checkpoint(folder).name == "step_00000003.pt"
    (folder / LATEST).write_text(json.dumps({"step": 2, "file": "step_00000002.pt"}))
    assert latest_checkpoint(folder).name == "step_00000002.pt"


@pytest.mark.parametrize("pointer", ["{not json", '{"step": 9, "file": "step_00000009.pt"}', '{"file": "../x.pt"}',
                                     '["step_00000002.pt"]'])
def test_a_broken_pointer_falls_back_to_the_newest_checkpoint(tmp_path, pointer):
    folder = tmp_path / "ckpt"
    for step in (1, 2):
        save_checkpoint(tiny_state(), folder, step=step, keep=0)
    (folder / LATEST).write_text(pointer)
    assert latest_checkpoint(folder) == folder / "step_00000002.pt"
    assert latest_checkpoint(tmp_path / "empty") is None


def test_stale_temporaries_of_a_killed_writer_are_removed_and_nothing_else(tmp_path):
    folder = tmp_path / "ckpt"
    save_checkpoint(tiny_state(), folder, step=1)
    stale = [folder / ".step_00000002.pt.k3j9x.tmp", folder / f".{LATEST}.a1b2c3.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    (folder / "notes.tmp").write_text("mine")
    assert sorted(remove_stale_temporaries(folder)) == sorted(stale)
    assert names(folder) == [LATEST, "notes.tmp", "step_00000001.pt"]


# --------------------------------------------------------------------------------------------------
# damaged files are refused, naming the file


@pytest.mark.parametrize("keep", ["empty", "64 bytes", "half", "all but the last 100 bytes"])
def test_a_truncated_checkpoint_is_a_checkpoint_error_naming_the_file(tmp_path, keep):
    data = save_checkpoint(tiny_state(), tmp_path / "ckpt", step=1).read_bytes()
    n = {"empty": 0, "64 bytes": 64, "half": len(data) // 2, "all but the last 100 bytes": len(data) - 100}[keep]
    bad = tmp_path / "cut.pt"
    bad.write_bytes(data[:n])
    with pytest.raises(CheckpointError, match=re.escape(f"cannot read checkpoint {bad}: truncated")):
        load_checkpoint(bad)


def test_a_corrupt_or_missing_checkpoint_is_a_checkpoint_error_naming_the_file(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match=re.escape(str(junk))):
        load_checkpoint(junk)
    missing = tmp_path / "gone.pt"
    with pytest.raises(CheckpointError, match=re.escape(f"checkpoint {missing} does not exist")):
        load_checkpoint(missing)


# --------------------------------------------------------------------------------------------------
# atomic writes


def test_a_write_that_fails_midway_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "weights.bin"
    atomic_write_bytes(path, lambda f: f.write(b"old contents"))

    def disk_full(f):
        f.write(b"\0" * 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(CheckpointError, match=re.escape(f"could not write weights.bin in {tmp_path}: "
                                                        f"{os.strerror(errno.ENOSPC)}")):
        atomic_write_bytes(path, disk_full)
    assert path.read_bytes() == b"old contents"
    assert names(tmp_path) == ["weights.bin"]


@pytest.mark.parametrize("error", [ValueError("not bytes"), KeyboardInterrupt()])
def test_other_errors_and_interrupts_propagate_as_raised_and_leave_no_temporary(tmp_path, error):
    path = tmp_path / "weights.bin"
    atomic_write_bytes(path, lambda f: f.write(b"old"))

    def fail(f):
        f.write(b"new, half")
        raise error

    with pytest.raises(type(error)):
        atomic_write_bytes(path, fail)
    assert path.read_bytes() == b"old" and names(tmp_path) == ["weights.bin"]


def test_atomic_path_renames_on_success_with_ordinary_permissions_and_creates_the_folder(tmp_path):
    path = tmp_path / "new" / "folder" / "tensor.pt"
    with atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp.is_file() and tmp.stat().st_size == 0
        assert tmp.name.startswith(".tensor.pt.") and tmp.name.endswith(".tmp")
        assert not path.exists()
        torch.save({"x": torch.arange(4)}, tmp)  # a writer that wants a path
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.arange(4))
    assert names(path.parent) == ["tensor.pt"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask()


def test_atomic_path_failure_keeps_the_old_file_and_raises_the_error_unchanged(tmp_path):
    path = tmp_path / "cache.bin"
    path.write_bytes(b"old")
    with pytest.raises(OSError, match="no space") as info:
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "no space")
    assert type(info.value) is OSError  # not wrapped in a CheckpointError
    assert path.read_bytes() == b"old" and names(tmp_path) == ["cache.bin"]


def test_atomic_write_text_writes_replaces_and_returns_the_path(tmp_path):
    path = tmp_path / "out" / "result.json"
    assert atomic_write_text(path, '{"a": 1}') == path
    assert atomic_write_text(str(path), "second\n") == path
    assert path.read_text() == "second\n"
    assert names(path.parent) == ["result.json"]
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask()


def test_a_folder_in_the_way_is_an_os_error_for_text_and_a_checkpoint_error_for_bytes(tmp_path):
    blocked = tmp_path / "blocked"
    (blocked / "inside").mkdir(parents=True)
    with pytest.raises(OSError):
        atomic_write_text(blocked, "text")
    with pytest.raises(CheckpointError, match=re.escape(f"could not write blocked in {tmp_path}")):
        atomic_write_bytes(blocked, lambda f: f.write(b"bytes"))
    assert names(tmp_path) == ["blocked"] and names(blocked) == ["inside"]
