"""Checkpoints: plain state dicts, atomic writes, a latest pointer, rotation, safe loading.

A checkpoint is a dict of tensors and plain Python values that ``torch.load(weights_only=True)`` accepts:
{"format": "translab-checkpoint", "version": 1, "step": int, "config": dict, "nets": {...}, "ema": {...},
 "optimizers": {...}, "rng": {...}, "extra": {...}}, and, from a run of several processes, "other_ranks": the
other ranks' {"rng", "extra"} in rank order. Nothing is unpickled beyond that allow-list.
"""
from __future__ import annotations

import json
import os
import pickle
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from translab.errors import TranslabError

FORMAT = "translab-checkpoint"
VERSION = 1
LATEST = "latest.json"
TMP_SUFFIX = ".tmp"
#: keys every translab checkpoint holds, with the type each must have
REQUIRED = {"step": int, "config": dict, "nets": dict}


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


class CheckpointError(TranslabError, RuntimeError):
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


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path in the folder of ``path``, for writers that need a path or open the file themselves.

    The folder is created if missing and the temporary file ``.{name}.XXXXXXXX.tmp`` exists, empty. When the
    block ends without an error the file gets the permissions a plain open() would give (0666 & ~umask), is
    fsynced and renamed onto ``path`` (os.replace), then the folder is fsynced. On any error (an interrupt
    included) the temporary file is removed, the previous file at ``path`` is untouched and the error
    propagates as raised.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=str(path.parent))
    tmp = Path(name)
    try:
        os.close(fd)
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600
        _fsync_file(tmp)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _fsync_file(path: Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through :func:`atomic_path` (``Path.write_text``'s encoding); returns ``path``.

    Errors propagate as raised (an OSError stays an OSError)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def atomic_write_bytes(path: Path, write_fn) -> None:
    """Write via ``write_fn(file_object)`` to a temporary file in the same folder, fsync, then rename.

    On any error (disk full included) the temporary file is removed and the previous file at ``path``
    is untouched; an OSError after the temporary file was created is re-raised as CheckpointError naming the
    file and its folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = False
    try:
        with atomic_path(path) as tmp:
            created = True
            with open(tmp, "wb") as f:
                write_fn(f)
    except OSError as e:
        if not created:
            raise
        raise CheckpointError(f"could not write {path.name} in {path.parent}: {e.strerror or e}") from e


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
    remove_stale_temporaries(ckpt_dir)
    return path


def remove_stale_temporaries(ckpt_dir: Path) -> list[Path]:
    """Delete ``.step_*.pt.*.tmp`` / ``.latest.json.*.tmp`` files left by a writer that was killed mid-write.

    Safe because one process writes a run's checkpoints (rundir.RunLock) and atomic_write_bytes removes its
    own temporary file on every error it survives; what is left belongs to a dead process. Returns them.
    """
    gone = []
    for p in list(Path(ckpt_dir).glob(f".step_*.pt.*{TMP_SUFFIX}")) + list(Path(ckpt_dir).glob(f".{LATEST}.*{TMP_SUFFIX}")):
        try:
            p.unlink()
            gone.append(p)
        except OSError:
            pass
    return gone


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
            f"possibly code; translab checkpoints hold only tensors and plain values ({_unpickler_reason(e)})"
        ) from None
    except Exception as e:  # truncated archives surface as RuntimeError, KeyError, EOFError, BadZipFile, ...
        raise CheckpointError(f"cannot read checkpoint {path}: truncated or not a torch file ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:200] if str(e) else ''})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a translab checkpoint (no format='{FORMAT}' entry)")
    if not isinstance(state.get("version", 0), int) or state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer translab (format version {state['version']!r} > {VERSION})")
    for key, typ in REQUIRED.items():
        if not isinstance(state.get(key), typ) or isinstance(state.get(key), bool):
            raise CheckpointError(f"{path} is a damaged translab checkpoint: '{key}' should be a "
                                  f"{typ.__name__}, found {type(state.get(key)).__name__}")
    parts = {k: state.get(k, {}) for k in ("nets", "ema", "optimizers", "rng", "extra")}
    bad = [k for k, v in parts.items() if not isinstance(v, dict)]
    bad += [f"{k}.{n}" for k in ("nets", "ema", "optimizers") if isinstance(parts[k], dict)
            for n, sd in parts[k].items() if not isinstance(sd, dict)]
    if bad:
        raise CheckpointError(f"{path} is a damaged translab checkpoint: these entries should be mappings: "
                              f"{', '.join(map(str, bad))[:200]}")
    return state


def _unpickler_reason(e: Exception) -> str:
    """The line of torch's weights-only refusal that says what was refused (no ANSI codes, no advice to
    bypass the check)."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    why = next((ln.split("error:", 1)[1].strip() for ln in lines if "WeightsUnpickler error:" in ln), None)
    return (why or (lines[0] if lines else type(e).__name__))[:200]
