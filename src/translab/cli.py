"""`translab` command line: thin subcommands, no ML logic. Each lives in translab/commands/<name>.py with
``register(subparsers)`` and a ``run(args)`` set as the parser's default."""
from __future__ import annotations

import argparse
import importlib
import sys

#: subcommand modules, in the order `translab --help` lists them
COMMANDS = ("demo", "train", "translate", "evaluate", "ot_exact", "compare", "latent", "combine", "classifier",
            "models", "data", "config")


class OneLineErrorParser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block above it) that points at the command's --help; exit 2.
    Subcommand parsers inherit it (add_subparsers builds them with the parent's class)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _version() -> str:
    """The installed distribution's version (pyproject.toml), or 'unknown' outside an installation."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("translab")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="translab",
        description="Unpaired image-to-image translation with diffusion models: DDIB, UNIT-DDPM, SDEdit, DSBM, "
                    "CycleGAN, Neural OT and a one-step student of DDIB, trained, measured and compared.")
    parser.add_argument("--version", action="version", version=f"translab {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"translab.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"translab.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from translab.errors import USER_ERRORS

    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as e:
        print(f"translab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("translab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `translab models | head`: the reader left; say nothing more
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
        return 141


if __name__ == "__main__":
    sys.exit(main())
