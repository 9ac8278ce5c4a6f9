"""Argument helpers shared by subcommands."""
from __future__ import annotations

import argparse


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
