"""`translab train METHOD --preset NAME [--run-dir DIR] [--set key=value ...]`"""
from __future__ import annotations

from pathlib import Path

from translab.commands.common import add_config_args, overrides_with_root


def register(sub) -> None:
    from translab.methods import METHODS

    p = sub.add_parser("train", help="train a method (resumes from the run directory's latest checkpoint)")
    p.add_argument("method", choices=sorted(METHODS), help="method to train")
    add_config_args(p)
    p.add_argument("--run-dir", help="run directory (default runs/<method>-<preset>)")
    p.set_defaults(func=run)


def run(args) -> int:
    from translab.config import dump_yaml, resolve_config
    from translab.training import train

    cfg = resolve_config(args.method, args.preset, args.config_file, overrides_with_root(args))
    run_dir = Path(args.run_dir or f"runs/{args.method}-{args.preset or 'custom'}")
    print(dump_yaml(cfg))
    result = train(cfg, run_dir)
    state = "interrupted" if result.stopped_early else "finished"
    print(f"{state} at step {result.step} in {result.wall_seconds:.0f} s; run directory: {result.run_dir}")
    return 0
