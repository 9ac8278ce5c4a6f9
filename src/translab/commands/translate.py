"""`translab translate --run RUN --direction a2b (--split test | --input DIR) [--limit N] [--steps N] --out DIR`

Writes DIR/inputs/NAME.png and DIR/outputs/NAME.png (matching names), DIR/grid.png (inputs over outputs,
first 16) and DIR/summary.json (method, checkpoint, steps, network evaluations per image, seconds).
"""
from __future__ import annotations

import json
from pathlib import Path

from translab.commands.common import parse_set_pairs


def register(sub) -> None:
    p = sub.add_parser("translate", help="translate test images or a folder of images with a trained run")
    p.add_argument("--run", required=True, help="run directory, checkpoint file, or shipped model name (translab models)")
    p.add_argument("--direction", default="a2b", choices=["a2b", "b2a"])
    src = p.add_mutually_exclusive_group()
    src.add_argument("--split", choices=["test", "train"], help="translate this split of the run's source domain")
    src.add_argument("--input", help="translate the images in this folder instead")
    p.add_argument("--limit", type=int, help="at most this many images")
    p.add_argument("--steps", type=int, help="sampling steps per chain (diffusion methods)")
    p.add_argument("--as", dest="as_method", help="reinterpret the weights as another method (a DDIB run as sdedit)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="inference setting, e.g. --set model.t0=0.4 or model.release_t=500")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0, help="seed of stochastic samplers")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=run)


def load_inputs(args, cfg, direction: str, image_size: int):
    """(images (N,3,H,W) in [-1,1], names) from --input DIR or the run's --split of the source domain."""
    import torch

    if args.input:
        from translab.data.images import load_image_folder

        images, names = load_image_folder(args.input, image_size)
    else:
        from translab.data import build_domain_pair, stack_dataset

        pair = build_domain_pair(cfg.data)
        ds = pair.get(direction[0], args.split or "test")
        images = stack_dataset(ds, args.limit)
        names = [ds.name(i) if hasattr(ds, "name") else f"{i:05d}" for i in range(images.shape[0])]
    if args.limit:
        images, names = images[: args.limit], names[: args.limit]
    return images.to(torch.float32), names


def run(args) -> int:
    from translab.report.grids import save_grid, save_images
    from translab.shipped import resolve_run
    from translab.training import load_method

    run_path = resolve_run(args.run)
    device = "cuda" if __import__("torch").cuda.is_available() else "cpu"
    method, cfg, info = load_method(run_path, map_location=device, as_method=args.as_method,
                                    overrides=parse_set_pairs(args.overrides))
    if args.direction not in method.directions():
        from translab.methods import MethodError

        raise MethodError(f"this {cfg.method} model was trained for {', '.join(method.directions())} only; "
                          f"train the other direction with `translab train {cfg.method} --set model.direction={args.direction}`")
    images, names = load_inputs(args, cfg, args.direction, cfg.data.image_size)
    import torch

    from translab.evaluation import translate_all

    outputs, nfe, seconds = translate_all(method, images, args.direction, args.steps, args.batch_size, device,
                                          torch.Generator().manual_seed(args.seed), True, f"{cfg.method} {args.direction}")
    out = Path(args.out)
    save_images(images, out / "inputs", names)
    save_images(outputs, out / "outputs", names)
    save_grid([images[:16], outputs[:16]], out / "grid.png")
    summary = {
        "method": cfg.method, "run": str(run_path), "checkpoint": info["checkpoint"], "train_step": info["step"],
        "direction": args.direction, "steps": args.steps or method.default_steps(), "nfe_per_image": nfe,
        "images": int(images.shape[0]), "seconds": round(seconds, 3),
        "images_per_second": round(images.shape[0] / max(seconds, 1e-9), 3),
        "source": args.input or f"{cfg.data.dataset} {args.split or 'test'} split, domain {args.direction[0]}",
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0
