"""`translab train METHOD --preset NAME [--run-dir DIR] [--set key=value ...]`

Exit status 0 when the run reached train.steps; 130 when it was interrupted (Ctrl-C: a checkpoint is saved and
the same command resumes), so that `translab train ... && translab evaluate ...` never scores a partial model.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from translab.commands.common import add_config_args, check_folder_path, overrides_with_root

#: exit status of an interrupted run (128 + SIGINT, what shells report for Ctrl-C)
INTERRUPTED = 130


def register(sub) -> None:
    from translab.settings import METHOD_NAMES

    p = sub.add_parser("train", help="train a method (resumes from the run directory's latest checkpoint)")
    p.add_argument("method", choices=sorted(METHOD_NAMES), help="method to train")
    add_config_args(p)
    p.add_argument("--run-dir", help="run directory (default runs/<method>-<preset>)")
    p.set_defaults(func=run)


def resume_command(args, run_dir: Path) -> str:
    """The command line that resumes this run: the same method, run directory, preset, config and overrides."""
    parts = ["translab", "train", args.method, "--run-dir", str(run_dir), "--preset", args.preset or ""]
    if args.config_file:
        parts += ["--config", args.config_file]
    for text in args.overrides:
        parts += ["--set", text]
    if args.data_root:
        parts += ["--data-root", args.data_root]
    return shlex.join(parts)


def run(args) -> int:
    from translab.config import dump_yaml, resolve_config
    from translab.training import train

    cfg = resolve_config(args.method, args.preset, args.config_file, overrides_with_root(args))
    run_dir = check_folder_path(args.run_dir or f"runs/{args.method}-{args.preset or 'custom'}", "--run-dir")
    print(dump_yaml(cfg))
    result = train(cfg, run_dir)
    if result.stopped_early:
        print(f"translab: training interrupted at step {result.step} of {cfg.train.steps}; its checkpoint is in "
              f"{Path(result.run_dir) / 'checkpoints'}; resume with: {resume_command(args, run_dir)}", file=sys.stderr)
        return INTERRUPTED
    print(f"finished at step {result.step} in {result.wall_seconds:.0f} s; run directory: {result.run_dir}")
    return 0
