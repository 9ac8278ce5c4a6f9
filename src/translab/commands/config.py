"""`translab config [METHOD] [--preset NAME] [--set ...]`: print the resolved config, or list presets."""
from __future__ import annotations

from dataclasses import fields, is_dataclass

from translab.commands.common import add_config_args, overrides_with_root


def register(sub) -> None:
    from translab.settings import METHOD_NAMES

    p = sub.add_parser("config", help="print a resolved config (or --list presets, --explain fields)")
    p.add_argument("method", nargs="?", default="ddib", choices=sorted(METHOD_NAMES), help="method (default ddib)")
    add_config_args(p)
    p.add_argument("--list", action="store_true", help="list shipped presets")
    p.add_argument("--explain", action="store_true", help="print each field with its meaning")
    p.set_defaults(func=run)


def _explain(obj, prefix: str = "") -> list[str]:
    lines = []
    for f in fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        if is_dataclass(value):
            lines += _explain(value, key + ".")
        else:
            lines.append(f"{key} = {value!r}  # {f.metadata.get('help', '')}")
    return lines


def run(args) -> int:
    from translab.config import dump_yaml, preset_names, resolve_config

    if args.list:
        print("\n".join(preset_names()))
        return 0
    cfg = resolve_config(args.method, args.preset, args.config_file, overrides_with_root(args))
    print("\n".join(_explain(cfg)) if args.explain else dump_yaml(cfg), end="" if not args.explain else "\n")
    return 0
