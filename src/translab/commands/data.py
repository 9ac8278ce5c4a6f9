"""`translab data list` and `translab data show DATASET [--data-root DIR] [--set data.key=value ...]
[--out DIR | FILE.png] [-n 8]`: what data translab can load, and what a dataset looks like once loaded."""
from __future__ import annotations

from translab.commands.common import output_file, positive_int

#: image side used by `data show` when --set data.image_size is not given (DataConfig's default is 32)
SHOW_IMAGE_SIZE = {"celeba": 64, "folders": 64}


def register(sub) -> None:
    p = sub.add_parser("data", help="list datasets, or show counts and a sample grid of one")
    dsub = p.add_subparsers(dest="data_command", metavar="{list,show}")
    pl = dsub.add_parser("list", help="the datasets translab can load, with descriptions")
    pl.set_defaults(func=run_list)
    ps = dsub.add_parser("show", help="print counts per domain and split, write a PNG grid of samples")
    ps.add_argument("dataset", help="dataset name (see `translab data list`)")
    ps.add_argument("--data-root", help="data folder; shorthand for --set data.root=DIR")
    ps.add_argument("--set", dest="overrides", action="append", default=[], metavar="data.KEY=VALUE",
                    help="data setting, e.g. --set data.image_size=64 or data.digit_b=7 (repeatable)")
    ps.add_argument("--out", help="folder for data-<dataset>.png, or a .png path (default: the current folder)")
    ps.add_argument("-n", type=positive_int, default=8, help="images per grid row (default 8)")
    ps.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: p.print_help() or 0)


def run_list(args) -> int:
    from translab.data import DATASETS

    width = max(len(k) for k in DATASETS)
    for name, text in DATASETS.items():
        print(f"{name:<{width}}  {text}")
    return 0


def data_config(dataset: str, data_root: str | None, overrides: list[str]):
    """DataConfig from a dataset name, an optional root and ``data.key=value`` overrides (typed, validated)."""
    from translab.config import ConfigError, DataConfig, from_dict, parse_override

    values: dict = {"dataset": dataset}
    if data_root:
        values["root"] = data_root
    for text in overrides:
        path, value = parse_override(text)
        if len(path) != 2 or path[0] != "data":
            raise ConfigError(f"`translab data show` takes only data settings (data.KEY=VALUE), got '{text}'")
        values[path[1]] = value
    values.setdefault("image_size", SHOW_IMAGE_SIZE.get(dataset, DataConfig.image_size))
    return from_dict(DataConfig, values, prefix="data")  # DataConfig checks its own ranges


def run_show(args) -> int:
    import torch

    from translab.data import build_domain_pair
    from translab.data.base import DOMAINS, SPLITS
    from translab.report.grids import save_grid

    if args.n < 1:
        from translab.config import ConfigError

        raise ConfigError(f"-n must be at least 1, got {args.n}")
    cfg = data_config(args.dataset, args.data_root, args.overrides)
    grid_path = output_file(args.out or ".", f"data-{cfg.dataset}.png", ".png")  # before the data is loaded
    pair = build_domain_pair(cfg)
    print(f"dataset: {pair.name} ({cfg.dataset}{', reversed' if cfg.reverse else ''})")
    print(f"source: {pair.source}")
    print(f"image size: {pair.image_size} x {pair.image_size}, values in [-1, 1]")
    if pair.channels != 3:
        print(f"channels: {pair.channels} (greyscale)")
    print(f"domains: A = {pair.domain_names[0]}, B = {pair.domain_names[1]}")
    for d in DOMAINS:
        print("  " + "  ".join(f"{d.upper()} {s}: {len(pair.get(d, s)):>6}" for s in SPLITS))
    for key, value in pair.notes.items():
        print(f"{key}: {value}")
    rows, labels = [], []
    for s in SPLITS:
        for d in DOMAINS:
            ds = pair.get(d, s)
            rows.append(torch.stack([ds[i] for i in range(min(args.n, len(ds)))]))
            labels.append(f"{d.upper()} {s}")
    out = save_grid(rows, grid_path)
    print(f"grid: {out} (rows: {', '.join(labels)})")
    return 0
