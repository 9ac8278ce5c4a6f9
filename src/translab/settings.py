"""Typed settings: the dataclasses every layer declares its settings with, and their checks.

Each setting is checked once, by the dataclass that owns it, when it is built (``__post_init__``): a bad value is
a ConfigError naming the dotted key, the value and what was expected. ``describe`` attaches each field's one-line
meaning (shown by `translab config METHOD --explain`) and marks inference settings. This module sits below
every other translab module but ``errors``; the full config of a run (``translab.config``) sits above the
methods whose settings it holds.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

from translab.errors import TranslabError

#: the registered methods' names, in `translab --help` order (translab.methods.METHODS maps them to classes;
#: tests/test_method_contract.py checks that both agree), kept here so that parsing arguments imports no torch
METHOD_NAMES = ("ddib", "sdedit", "unit-ddpm", "cyclegan", "not", "dsbm", "distill")


class ConfigError(TranslabError, ValueError):
    """A config file, preset or override that does not match the schema."""


def describe(meaning: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING,
             inference: bool = False):
    """A dataclass field with a one-line meaning stored in its metadata (shown by `translab config`).

    ``inference=True`` marks a method setting that only changes how a trained model translates (steps,
    solver, t0, ...): it may change when a run resumes, and per call (``--set`` at translate/evaluate)."""
    metadata = {"help": meaning, "inference": inference}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def inference_fields(settings: Any) -> list[str]:
    """Names of the fields of a settings dataclass declared with ``describe(..., inference=True)``, sorted."""
    return sorted(f.name for f in fields(settings) if f.metadata.get("inference"))


def check_range(key: str, value: Any, low: float | None = None, high: float | None = None,
                strict_low: bool = False) -> None:
    """ConfigError naming ``key`` unless ``value`` (None passes) is a finite number in [low, high] (low excluded
    with ``strict_low``)."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value}")
    if strict_low and value <= low:
        raise ConfigError(f"{key} must be > {low:g}, got {value:g}")
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{key}: must be {span}, got {_short(value)}")


def check_fields(obj: Any, prefix: str, ranges: dict[str, tuple], strict_low: tuple[str, ...] = ()) -> None:
    """check_range for each field name -> (low, high) of ``ranges`` on dataclass ``obj`` (keys ``prefix.name``)."""
    for name, (low, high) in ranges.items():
        check_range(f"{prefix}.{name}", getattr(obj, name), low, high, name in strict_low)


def check_choice(key: str, value: Any, options) -> Any:
    """``value`` if it is one of ``options``; ConfigError naming ``key`` and the options otherwise."""
    if value not in options:
        raise ConfigError(f"{key}: expected one of {', '.join(map(str, options))}, got {_short(repr(value))}")
    return value


@dataclass
class DataConfig:
    dataset: str = describe("cmnist | emoji | celeba | folders | synthetic", "cmnist")
    root: str | None = describe("data root (MNIST, CelebA or the folder pair); None: $TRANSLAB_DATA or ~/.cache/translab", None)
    digit_a: int = describe("cmnist: digit of domain A", 2)
    digit_b: int = describe("cmnist: digit of domain B", 3)
    image_size: int = describe("side of the square images fed to the networks", 32)
    channels: int = describe("image channels of every method's networks: 3 (RGB) | 1 (greyscale: PIL's 'L' after "
                             "compositing transparency on black; folders and celeba only)", 3)
    color_seed: int = describe("cmnist: base seed of the per-image hues", 0)
    reverse: bool = describe("swap domains A and B (e.g. female -> male for CelebA)", False)
    limit: int | None = describe("keep at most this many images per domain and split (quick runs)", None)
    num_workers: int = describe("DataLoader worker processes", 0)

    def __post_init__(self):
        check_channels(self.channels)
        check_fields(self, "data", {"image_size": (1, None), "limit": (1, None), "num_workers": (0, None)})


#: allowed values of data.channels: greyscale or RGB
CHANNELS = (1, 3)


def check_channels(channels: Any, key: str = "data.channels") -> int:
    """``channels`` if it is 1 or 3 (an int, not a bool); one-line ConfigError naming ``key`` and the value otherwise."""
    if isinstance(channels, bool) or channels not in CHANNELS:
        raise ConfigError(f"{key}: expected 1 (greyscale) or 3 (RGB), got {_short(repr(channels))}")
    return channels


@dataclass
class TrainConfig:
    steps: int = describe("optimisation steps", 10000)
    batch_size: int = describe("images per domain per step (per process)", 64)
    lr: float = describe("learning rate of every optimiser unless the method overrides it", 2e-4)
    weight_decay: float = describe("AdamW weight decay", 0.0)
    lr_drop_step: int = describe("from this step on, optimisers without a schedule of their own train at "
                                 "lr_drop_factor x their rate (0: never)", 0)
    lr_drop_factor: float = describe("learning-rate factor from lr_drop_step on", 0.2)
    grad_clip: float = describe("clip the global gradient norm to this value (0: off)", 1.0)
    ema_decay: float = describe("EMA decay of inference weights (0: no EMA)", 0.999)
    ema_start: int = describe("step from which EMA averaging starts (copy before)", 0)
    seed: int = describe("seed of weights, data order and noise", 0)
    hflip: bool = describe("mirror a random half of every training batch left-right (seeded, restored on resume), for "
                           "classes that survive a mirror, as in DDPM's CIFAR-10 training (Ho et al. 2020, App. B)",
                           False)
    log_every: int = describe("steps between metrics.jsonl lines", 50)
    sample_every: int = describe("steps between sample grids (0: only at the end)", 1000)
    checkpoint_every: int = describe("steps between checkpoints", 1000)
    keep_checkpoints: int = describe("checkpoints kept on disk (older ones are deleted)", 2)
    compile: bool = describe("torch.compile the networks", False)
    channels_last: bool = describe("channels_last memory format", False)
    mixed_precision: str = describe("no | bf16 (CUDA only)", "no")
    deterministic: bool = describe("torch.use_deterministic_algorithms (exact resume tests)", False)
    threads: int = describe("CPU threads for torch (0: torch default)", 0)
    progress: bool = describe("show a progress bar", True)

    def __post_init__(self):
        check_fields(self, "train", TRAIN_RANGES, strict_low=("lr",))


#: (lowest, highest) of the numeric training settings whose bad values would otherwise crash or silently corrupt a
#: run later (log_every=0 divides by zero after the first step, ema_decay=2 diverges); lr must be > 0
TRAIN_RANGES = {
    "steps": (1, None), "batch_size": (1, None), "lr": (0.0, None), "weight_decay": (0.0, None),
    "grad_clip": (0.0, None), "ema_decay": (0.0, 1.0), "ema_start": (0, None), "seed": (0, 2 ** 32 - 1),
    "log_every": (1, None), "sample_every": (0, None), "checkpoint_every": (1, None), "keep_checkpoints": (0, None),
    "threads": (0, None), "lr_drop_step": (0, None), "lr_drop_factor": (0.0, None),
}


# --------------------------------------------------------------------------------------------------
# dict <-> dataclass


def to_dict(obj: Any) -> Any:
    """Plain-Python (YAML/JSON-safe) view of a config dataclass tree."""
    if is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _suggest(key: str, options: list[str]) -> str:
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(options))}"


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``typ`` and convert the harmless cases (int -> float)."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if typ is Any:
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: {_short(repr(value))} does not match {typ}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {_short(repr(value))}")
        inner = args[0] if args else Any
        out = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if is_dataclass(typ):
        if isinstance(value, typ):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_short(repr(value))}")
        return from_dict(typ, value, prefix=where)
    if typ is float:
        if isinstance(value, str):  # YAML 1.1 reads '2e-3' (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_short(repr(value))}")
        return float(value)
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_short(repr(value))}")
        return value
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_short(repr(value))}")
        return value
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_short(repr(value))}")
        return value
    return value


class RenamedSetting(UserWarning):
    """A config used a setting's older name (or meaning); it was read as today's, as the warning says."""


def from_dict(cls, data: dict, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping; unknown keys raise ConfigError with a suggestion. A settings class
    whose settings were renamed defines ``upgrade(data) -> (data, notes)``: older configs (presets, run
    directories, checkpoints) are read under today's names, with one RenamedSetting warning per note."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {type(data).__name__}")
    upgrade = getattr(cls, "upgrade", None)
    if upgrade is not None:
        import warnings

        data, notes = upgrade(dict(data))
        for note in notes:
            warnings.warn(f"{prefix}: {note}" if prefix else note, RenamedSetting, stacklevel=2)
    types = _field_types(cls)
    names = [f.name for f in fields(cls)]
    kwargs = {}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            full = [f"{prefix}.{n}" if prefix else n for n in names]
            raise ConfigError(f"unknown config key '{_short(where)}'{_suggest(where, full)}")
        kwargs[key] = _coerce(value, types[key], where)
    return cls(**kwargs)


def _short(value: Any, limit: int = 200) -> str:
    """``str(value)`` cut to ``limit`` characters, for messages about hostile or huge input."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


