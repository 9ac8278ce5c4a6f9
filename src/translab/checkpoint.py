"""Checkpoints: plain state dicts, atomic writes, a latest pointer, rotation, safe loading.

A checkpoint is a dict of tensors and plain Python values that ``torch.load(weights_only=True)`` accepts:
{"format": "translab-checkpoint", "version": 1, "step": int, "config": dict, "nets": {...}, "ema": {...},
 "optimizers": {...}, "rng": {...}, "extra": {...}}. Nothing is unpickled beyond that allow-list.
"""
from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "translab-checkpoint"
VERSION = 1
LATEST = "latest.json"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be written or is refused on load; the message names the file."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(str(path), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, write_fn) -> None:
    """Write via ``write_fn(file_object)`` to a temporary file in the same folder, fsync, then rename.

    On any error (disk full included) the temporary file is removed and the previous file at ``path``
    is untouched; the error is re-raised as CheckpointError naming the folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        _pause_hook("TRANSLAB_TEST_PAUSE_BEFORE_RENAME")
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise CheckpointError(f"could not write {path.name} in {path.parent}: {e.strerror or e}") from e
        raise


def _pause_hook(var: str) -> None:
    """Test hook: when $var names a file, create it and sleep so a test can kill the process mid-write."""
    marker = os.environ.get(var)
    if marker:
        import time

        Path(marker).touch()
        time.sleep(float(os.environ.get("TRANSLAB_TEST_PAUSE_SECONDS", "30")))


def save_checkpoint(state: dict, ckpt_dir: Path, step: int, keep: int = 2) -> Path:
    """Atomically write ``step_{step:08d}.pt``, then update latest.json, then delete old ones beyond ``keep``."""
    ckpt_dir = Path(ckpt_dir)
    state = dict(state, format=FORMAT, version=VERSION, step=int(step))
    path = ckpt_dir / f"step_{step:08d}.pt"
    atomic_write_bytes(path, lambda f: torch.save(state, f))
    pointer = json.dumps({"step": int(step), "file": path.name}).encode()
    atomic_write_bytes(ckpt_dir / LATEST, lambda f: f.write(pointer))
    if keep > 0:
        for old in list_checkpoints(ckpt_dir)[:-keep]:
            try:
                old.unlink()
            except OSError:
                pass
    return path


def list_checkpoints(ckpt_dir: Path) -> list[Path]:
    return sorted(Path(ckpt_dir).glob("step_*.pt"))


def latest_checkpoint(ckpt_dir: Path) -> Path | None:
    """The checkpoint named by latest.json; if the pointer is missing or broken, the newest step_*.pt."""
    ckpt_dir = Path(ckpt_dir)
    pointer = ckpt_dir / LATEST
    if pointer.is_file():
        try:
            name = json.loads(pointer.read_text())["file"]
            if (ckpt_dir / name).is_file() and "/" not in name:
                return ckpt_dir / name
        except (ValueError, KeyError, TypeError):
            pass
    found = list_checkpoints(ckpt_dir)
    return found[-1] if found else None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``; refuse truncated, foreign or code-carrying files with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"refused to load {path}: it holds objects outside the safe allow-list (weights_only=True), "
            f"possibly code; translab checkpoints hold only tensors and plain values ({str(e).splitlines()[0][:200]})"
        ) from None
    except Exception as e:  # truncated archives surface as RuntimeError, KeyError, EOFError, BadZipFile, ...
        raise CheckpointError(f"cannot read checkpoint {path}: truncated or not a torch file ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a translab checkpoint (no format='{FORMAT}' entry)")
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer translab (format version {state['version']} > {VERSION})")
    return state
