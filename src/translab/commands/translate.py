"""`translab translate --run RUN --direction a2b (--split test | --input DIR_OR_FILE) [--limit N] [--steps N]
[--device D] [--threads N] --out DIR [--overwrite]`

Writes DIR/inputs/NAME.png and DIR/outputs/NAME.png (matching names), DIR/grid.png (inputs over outputs,
first 16) and DIR/summary.json (method, checkpoint, steps, network evaluations per image, seconds, which input
became which output, and the input files that were skipped). DIR must be new or empty unless --overwrite is
given, which first removes what an earlier translate wrote there (and nothing else).
"""
from __future__ import annotations

import json
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from translab.commands.common import (add_run_flags, check_folder_path, parse_set_pairs, positive_int, resolve_device,
                                      set_threads)

#: what translate writes under --out (folders end in /); --overwrite removes exactly these
OWN_OUTPUTS = ("inputs/", "outputs/", "grid.png", "summary.json")


def register(sub) -> None:
    p = sub.add_parser("translate", help="translate test images or a folder of images with a trained run")
    p.add_argument("--run", required=True, help="run directory, checkpoint file, or shipped model name (translab models)")
    p.add_argument("--direction", default="a2b", choices=["a2b", "b2a"], help="a2b (default) or b2a")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--split", choices=["test", "train"], help="translate this split of the run's source domain")
    src.add_argument("--input", help="translate the images in this folder, or this one image file, instead")
    p.add_argument("--limit", type=positive_int, help="at most this many images")
    p.add_argument("--steps", type=positive_int, help="sampling steps per chain (diffusion methods)")
    p.add_argument("--as", dest="as_method", help="reinterpret the weights as another method (a DDIB run as sdedit)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="inference setting, e.g. --set model.t0=0.4 or model.release_t=500")
    add_run_flags(p, "batch-size", "seed", "device", "threads", batch_help="images per network call",
                  seed_help="seed of stochastic samplers")
    p.add_argument("--out", required=True, help="output folder (new or empty, see --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help="reuse a non-empty --out: remove its inputs/, outputs/, grid.png and summary.json first")
    p.set_defaults(func=run)


@dataclass
class Inputs:
    images: object  # (N, C, H, W) float32 in [-1, 1], C = data.channels of the run (3 or 1)
    names: list[str]  # output name of each image
    labels: list[str]  # what each image was: its file name, or split[index]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def load_inputs(args, cfg, direction: str, image_size: int) -> Inputs:
    """The images to translate from --input DIR or the run's --split of the source domain (--limit applied)."""
    import torch

    if args.input and Path(args.input).is_file():
        from translab.data.base import DataError
        from translab.data.images import classify_failure, load_image, output_names

        path = Path(args.input)
        reason = classify_failure(path)
        if reason:
            raise DataError(f"--input {path}: {reason}; expected an image file (PNG, JPEG, ...) or a folder of them")
        return Inputs(load_image(path, image_size, cfg.data.channels)[None].to(torch.float32), output_names([path]),
                      [printable(path.name)])
    if args.input:
        from translab.data.images import read_image_folder

        folder = read_image_folder(args.input, image_size, args.limit, cfg.data.channels)
        labels = [printable(p.name) for p in folder.files]
        return Inputs(folder.images.to(torch.float32), folder.names, labels, folder.skipped)
    from translab.data import build_domain_pair, stack_dataset
    from translab.data.images import SkippedImagesWarning

    split = args.split or "test"
    with warnings.catch_warnings():  # skipped files of this split are reported below, the other splits' are moot
        warnings.simplefilter("ignore", SkippedImagesWarning)
        ds = build_domain_pair(cfg.data).get(direction[0], split)
        images = stack_dataset(ds, args.limit)
    n = images.shape[0]
    names = [ds.name(i) if hasattr(ds, "name") else f"{i:05d}" for i in range(n)]
    skipped = list(getattr(ds, "skipped", []))  # folder datasets (translab.data.images.ImageFiles)
    return Inputs(images.to(torch.float32), names, [f"{split}[{i}]" for i in range(n)], skipped)


def check_out(out: Path, overwrite: bool) -> Path:
    """--out as a folder that is new, empty, or (with --overwrite) reusable; UsageError otherwise."""
    from translab.errors import UsageError

    check_folder_path(out, "--out")
    if out.is_dir() and not overwrite:
        entries = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir())
        if entries:
            shown = ", ".join(entries[:4]) + (f" and {len(entries) - 4} more" if len(entries) > 4 else "")
            raise UsageError(f"--out {out} is not empty (it holds {shown}); pass --overwrite to replace what an "
                             f"earlier translate wrote there ({', '.join(OWN_OUTPUTS)}), or choose a new folder")
    return out


def clear_own_outputs(out: Path) -> list[str]:
    """Remove what an earlier translate wrote in ``out`` (OWN_OUTPUTS only); returns the names removed."""
    removed = []
    for name in OWN_OUTPUTS:
        p = out / name.rstrip("/")
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
        else:
            continue
        removed.append(name)
    return removed


def report_skipped(skipped: list[tuple[Path, str]]) -> list[dict]:
    """One line on stderr per skipped input file; the summary.json entries."""
    for path, reason in skipped:
        print(f"translab: skipped {path}: {reason}", file=sys.stderr)
    return [{"file": printable(Path(path).name), "reason": printable(reason)} for path, reason in skipped]


def printable(name: str) -> str:
    """``name`` as valid UTF-8 text: bytes that are not UTF-8 (kept by Python as lone surrogates) become \\xNN."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def run(args) -> int:
    from translab.report.grids import save_grid, save_images
    from translab.shipped import resolve_run
    from translab.loading import load_method

    out = check_out(Path(args.out), args.overwrite)  # before any model or image is loaded
    import torch

    set_threads(args.threads)
    run_path = resolve_run(args.run)
    device = resolve_device(args.device)
    method, cfg, info = load_method(run_path, map_location=device, as_method=args.as_method,
                                    overrides=parse_set_pairs(args.overrides))
    if args.direction not in method.directions():
        from translab.methods import MethodError

        raise MethodError(f"this {cfg.method} model was trained for {', '.join(method.directions())} only; "
                          f"train the other direction with `translab train {cfg.method} --set model.direction={args.direction}`")
    inputs = load_inputs(args, cfg, args.direction, cfg.data.image_size)
    skipped = report_skipped(inputs.skipped)
    images = inputs.images
    from translab.evaluation import translate_all

    outputs, nfe, seconds = translate_all(method, images, args.direction, args.steps, args.batch_size, device,
                                          torch.Generator().manual_seed(args.seed), True, f"{cfg.method} {args.direction}")
    if args.overwrite and out.is_dir():
        removed = clear_own_outputs(out)
        if removed:
            print(f"translab: --overwrite: removed {', '.join(removed)} from {out}", file=sys.stderr)
    save_images(images, out / "inputs", inputs.names)
    written = save_images(outputs, out / "outputs", inputs.names)
    save_grid([images[:16], outputs[:16]], out / "grid.png")
    source = args.input or f"{cfg.data.dataset} {args.split or 'test'} split, domain {args.direction[0]}"
    summary = {
        "method": cfg.method, "run": printable(str(run_path)), "checkpoint": info["checkpoint"],
        "train_step": info["step"],
        "direction": args.direction, "steps": args.steps or method.default_steps(), "nfe_per_image": nfe,
        "images": int(images.shape[0]), "seconds": round(seconds, 3),
        "images_per_second": round(images.shape[0] / max(seconds, 1e-9), 3),
        "source": printable(source),
        "files": [{"input": label, "output": p.name} for label, p in zip(inputs.labels, written)],
        "skipped": skipped,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in summary.items() if k != "files"}, indent=2, ensure_ascii=False))
    return 0
