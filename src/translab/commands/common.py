"""Argument helpers shared by subcommands."""
from __future__ import annotations

import argparse
from pathlib import Path

#: the names of translab.evaluation.PROTOCOLS, here so that `--help` needs no torch (a test keeps them equal)
PROTOCOL_NAMES = ("translab", "asbm")


def add_config_args(p: argparse.ArgumentParser, preset_default: str | None = "cmnist-2to3") -> None:
    p.add_argument("--preset", default=preset_default, help="shipped preset (see `translab config --list`)")
    p.add_argument("--config", dest="config_file", help="YAML file merged over the preset")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="typed override, e.g. --set train.steps=200 (repeatable)")
    p.add_argument("--data-root", help="data folder (also $TRANSLAB_DATA); shorthand for --set data.root=DIR")


def overrides_with_root(args) -> list[str]:
    out = list(args.overrides)
    if getattr(args, "data_root", None):
        out.append(f"data.root={args.data_root}")
    return out


def parse_set_pairs(pairs: list[str]) -> dict:
    """['model.t0=0.3'] -> {'model.t0': 0.3} (values parsed as YAML scalars)."""
    from translab.config import parse_override

    out = {}
    for text in pairs:
        path, value = parse_override(text)
        out[".".join(path)] = value
    return out


# --------------------------------------------------------------------------------------------------
# argparse types: a bad value ends in argparse's one-line "argument --flag: ..." error (exit status 2)


def positive_int(text: str) -> int:
    """argparse type of counts that must be at least 1 (--limit, --steps, --batch-size, ...)."""
    return _int_at_least(text, 1, "a whole number >= 1")


def non_negative_int(text: str) -> int:
    """argparse type of counts where 0 means "the default" (--threads)."""
    return _int_at_least(text, 0, "a whole number >= 0")


def seed_int(text: str) -> int:
    """argparse type of --seed: 0 to 2**32 - 1 (what numpy and torch both accept; train.seed's range)."""
    value = _int_at_least(text, 0, "a seed from 0 to 4294967295")
    if value > 2 ** 32 - 1:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to 4294967295, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type of rates that must be above 0 (--lr)."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def device_name(text: str) -> str:
    """argparse type of --device: a torch device (cpu, cuda, cuda:1, mps, ...); CUDA ones must exist here."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected a torch device such as cpu, cuda or cuda:1, got {text!r}") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise argparse.ArgumentTypeError(f"{text!r} asks for CUDA, but no CUDA device is available here; "
                                             f"expected cpu")
        if device.index is not None and device.index >= count:
            raise argparse.ArgumentTypeError(f"{text!r}: this machine has {count} CUDA device(s), "
                                             f"expected cuda:0 to cuda:{count - 1}")
    return text


def _int_at_least(text: str, low: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


# --------------------------------------------------------------------------------------------------
# the run flags of the commands that load a model or measure images


def add_run_flags(p: argparse.ArgumentParser, *flags: str, batch_help: str | None = None,
                  seed_help: str | None = None) -> None:
    """Add the named flags to ``p``, in the order given: "batch-size" (>= 1, default 64), "device" (a torch
    device, default None: see :func:`resolve_device`), "threads" (>= 0, default 0: see :func:`set_threads`),
    "seed" (default 0) and "no-progress". ``batch_help`` and ``seed_help`` are those flags' help texts."""
    adders = {
        "batch-size": lambda: p.add_argument("--batch-size", type=positive_int, default=64, help=batch_help),
        "device": lambda: p.add_argument("--device", type=device_name, default=None,
                                         help="cpu | cuda | cuda:N (default: cuda when available)"),
        "threads": lambda: p.add_argument("--threads", type=non_negative_int, default=0,
                                          help="torch CPU threads (0: torch default)"),
        "seed": lambda: p.add_argument("--seed", type=seed_int, default=0, help=seed_help),
        "no-progress": lambda: p.add_argument("--no-progress", action="store_true"),
    }
    for flag in flags:
        adders[flag]()


def resolve_device(requested: str | None = None) -> str:
    """The device to run on: ``requested`` (a --device value) when given, else cuda when available, else cpu."""
    if requested:
        return requested
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def set_threads(threads: int) -> None:
    """torch.set_num_threads(threads) when ``threads`` (a --threads value) is not 0; 0 keeps torch's default."""
    if threads:
        import torch

        torch.set_num_threads(threads)


# --------------------------------------------------------------------------------------------------
# output paths


def check_folder_path(path: str | Path, flag: str, shown: str | Path | None = None,
                      expected: str = "a folder (existing or new)") -> Path:
    """``path`` as a folder that exists or can be created, else a UsageError naming ``flag`` and ``shown``
    (default ``path``) and ``expected``: ``path`` is a file, or a part of it is (``notes.txt/sub``)."""
    from translab.errors import UsageError

    path = Path(path)
    shown = path if shown is None else shown
    for p in (path, *path.parents):
        if p.exists() or p.is_symlink():
            if not p.is_dir():
                where = "is a file" if p == Path(shown) else f"runs through {p}, which is a file"
                raise UsageError(f"{flag} {shown} {where}; expected {expected}")
            break
    return path


def output_file(path: str | Path, default_name: str, suffix: str, flag: str = "--out") -> Path:
    """Where a command writes one ``suffix`` file given ``--out``: ``path`` itself when it ends in ``suffix``,
    ``path/default_name`` when it is a folder (an existing one, or a new path without a suffix). Any other
    suffix, or a path running through a file, raises a UsageError naming the value."""
    from translab.errors import UsageError

    path = Path(path)
    if path.is_dir():
        return path / default_name
    if path.suffix.lower() == suffix:
        check_folder_path(path.parent, flag, shown=path, expected=f"a folder or a {suffix} file")
        return path
    if path.exists() or path.is_symlink():
        raise UsageError(f"{flag} {path} is a file but not a {suffix} file; expected a folder or a {suffix} file")
    if path.suffix:
        raise UsageError(f"{flag} {path}: expected a folder or a {suffix} file, got a {path.suffix} file name")
    return check_folder_path(path, flag, expected=f"a folder or a {suffix} file") / default_name
