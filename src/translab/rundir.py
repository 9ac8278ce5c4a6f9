"""The run directory: the contract between commands.

    RUN/config.yaml  log.txt  metrics.jsonl  samples/  checkpoints/  eval/*.json  analysis/*  train_record.json
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path

import yaml

from translab.checkpoint import atomic_write_text
from translab.errors import TranslabError


def json_safe(obj, str_keys: bool = False):
    """A JSON-safe copy of ``obj``: non-finite floats (numpy float64 included) -> None, tuples -> lists,
    recursively through dicts, lists and tuples; with ``str_keys`` dict keys become ``str(key)``.

    Everything else (ints, strings, tensors, numpy scalars other than float64, Paths) is returned as it is."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {(str(k) if str_keys else k): json_safe(v, str_keys) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, str_keys) for v in obj]
    return obj


def training_stages(record: dict) -> list[dict]:
    """A train_record and, for weights trained from another run's (``init_from`` in the record), that run's
    record, and so on: every stage that made the weights, the last first."""
    out = [record]
    while isinstance(out[-1].get("init_from"), dict):
        out.append(out[-1]["init_from"])
    return out


def training_total(record: dict, key: str):
    """``key`` ('steps' or 'wall_seconds') summed over every stage of a train_record; None where a stage lacks it."""
    values = [r.get(key) for r in training_stages(record)]
    return None if any(v is None for v in values) else sum(values)


class RunDirError(TranslabError, RuntimeError):
    """A run directory that is missing, locked by another process, or not a translab run."""


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def eval(self) -> Path:
        return self.path / "eval"

    @property
    def analysis(self) -> Path:
        return self.path / "analysis"

    def ensure(self) -> "RunDir":
        for p in (self.path, self.checkpoints, self.samples):
            p.mkdir(parents=True, exist_ok=True)
        return self

    def log(self, message: str) -> None:
        stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
        with open(self.path / "log.txt", "a") as f:
            f.write(f"[{stamp}] {message}\n")

    def append_metrics(self, record: dict) -> None:
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def read_metrics(self) -> list[dict]:
        p = self.path / "metrics.jsonl"
        if not p.is_file():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    def read_config(self) -> dict:
        if not self.config_file.is_file():
            raise RunDirError(f"{self.path} is not a translab run: no config.yaml")
        return yaml.safe_load(self.config_file.read_text()) or {}

    def write_json(self, rel: str, data: dict) -> Path:
        """Write ``data`` as indented JSON to RUN/``rel`` atomically (checkpoint.atomic_write_text)."""
        return atomic_write_text(self.path / rel, json.dumps(data, indent=2))


class RunLock:
    """An exclusive advisory lock on RUN/.lock so that two trainings never write one run directory."""

    def __init__(self, run: RunDir):
        self.file = run.path / ".lock"
        self.fd = None

    def __enter__(self):
        import fcntl

        self.file.parent.mkdir(parents=True, exist_ok=True)
        self.fd = open(self.file, "a+")
        try:
            fcntl.flock(self.fd.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.fd.seek(0)
            holder = self.fd.read().strip() or "another process"
            self.fd.close()
            raise RunDirError(f"run directory {self.file.parent} is in use by {holder}; "
                              f"wait for it to finish or choose another --run-dir") from None
        self.fd.seek(0)
        self.fd.truncate()
        self.fd.write(f"pid {os.getpid()}")
        self.fd.flush()
        return self

    def __exit__(self, *exc):
        import fcntl

        if self.fd:
            fcntl.flock(self.fd.fileno(), fcntl.LOCK_UN)
            self.fd.close()
        return False
