"""`translab latent --run RUN [--limit N] [--steps N] [--sweep-steps 10,20,...] [--release-ts ...] [--out-dir DIR]`:
latent-space analysis of a trained run, written to RUN/analysis/*.json and *.png (docs/latent.md).

DDIB runs: Gaussianity of the encodings, linear probes, PCA and Frechet distance between the domains' latents,
reconstruction and cycle error against the number of DDIM steps, slerp interpolation. UNIT-DDPM runs: a sweep
over the release time t_r (target accuracy, hue error, transport cost, FID) and a picture of both chains.
"""
from __future__ import annotations

from pathlib import Path

#: what `translab latent` studies, by the capability a method has (translab.methods.base)
ANALYSES = "DDIB-style latent bridges (encode/decode) and UNIT-DDPM-style released chains"


def int_list(text: str) -> list[int]:
    """'10,20,50' -> [10, 20, 50]; argparse type with a clear message."""
    import argparse

    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 10,20,50, got '{text}'") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one integer, got '{text}'")
    return values


def register(sub) -> None:
    from translab.commands.common import add_run_flags, positive_int

    p = sub.add_parser("latent", help="latent-space analysis of a DDIB or UNIT-DDPM run (RUN/analysis/*.json, *.png)")
    p.add_argument("--run", required=True, help="run directory, checkpoint file, or shipped model name")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="test images per domain for statistics, probes, PCA, Frechet (DDIB) or inputs per t_r "
                        "(UNIT-DDPM); default: all")
    p.add_argument("--sweep-limit", type=positive_int, default=32,
                   help="DDIB: images per domain for the reconstruction/cycle sweep (default 32; capped by --limit)")
    p.add_argument("--steps", type=positive_int, default=None, help="sampling steps (default: the model's own)")
    p.add_argument("--sweep-steps", type=int_list, default=None,
                   help="DDIB: DDIM step counts of the reconstruction sweep (default 10,20,50,100,250,1000)")
    p.add_argument("--release-ts", type=int_list, default=None,
                   help="UNIT-DDPM: release times t_r to sweep (default: 0, 0.1, 0.25, 0.5, 0.75, 1 of T-1); "
                        "write --release-ts=-1,... when the list starts with -1")
    p.add_argument("--direction", default="a2b", choices=("a2b", "b2a"), help="UNIT-DDPM: translation direction")
    p.add_argument("--out-dir", default=None, help="output folder (default: RUN/analysis)")
    add_run_flags(p, "batch-size", "device", "threads", "seed")
    p.add_argument("--classifier", default=None, help="UNIT-DDPM: classifier .safetensors (cmnist: the shipped one)")
    p.add_argument("--no-inception", action="store_true", help="UNIT-DDPM: skip Inception FID (reported as skipped)")
    p.set_defaults(func=run)


def run_directory(path: Path) -> Path:
    """The run directory of a --run path: a checkpoint file's run, else the folder itself."""
    if path.is_file():
        return path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return path


def check_positive(name: str, values) -> None:
    from translab.config import ConfigError

    for v in values or []:
        if v is not None and v < 1:
            raise ConfigError(f"{name} must be at least 1, got {v}")


def check_arguments(args) -> None:
    check_positive("--limit", [args.limit])
    check_positive("--sweep-limit", [args.sweep_limit])
    check_positive("--steps", [args.steps])
    check_positive("--sweep-steps", args.sweep_steps)


def run(args) -> int:
    from translab.commands.common import resolve_device, set_threads
    from translab.data import build_domain_pair
    from translab.methods.base import LatentBridge, MethodError, ReleasedChains
    from translab.shipped import is_shipped, portable_path, resolve_run, working_copy
    from translab.loading import load_method

    set_threads(args.threads)
    check_arguments(args)
    device = resolve_device(args.device)
    path = resolve_run(args.run)
    if is_shipped(path):  # never write into the installed package
        path = working_copy(args.run, "runs")
        print(f"analysing the shipped model {args.run} in the writable copy {path}")
    method, cfg, info = load_method(path, map_location=device)
    if not isinstance(method, (LatentBridge, ReleasedChains)):
        raise MethodError(f"--run {args.run} is a {method.name} model; `translab latent` analyses {ANALYSES} "
                          f"(ddib and unit-ddpm runs)")
    if getattr(method.cfg, "sampler", None) == "edict":
        raise MethodError(f"--run {args.run} decodes with model.sampler=edict, whose latents are coupled pairs "
                          "(N, 2, 3, H, W); the latent analyses need one latent per image: train or export it "
                          "with model.sampler=ddim or dpmpp2m")
    if getattr(method.cfg, "guidance", 1.0) != 1.0:
        # the latent space is that of the domains' own ODEs: a guided decoder is not the encoder's inverse
        print(f"analysing the unguided ODEs (model.guidance=1; the model's translation default is "
              f"{method.cfg.guidance})")
        method = method.with_inference(guidance=1.0)
    out = Path(args.out_dir) if args.out_dir else run_directory(path) / "analysis"
    pair = build_domain_pair(cfg.data)
    info = {**info, "checkpoint": portable_path(info["checkpoint"])}
    header = {"run": portable_path(path), "run_name": run_directory(path).name, "method": method.name, "checkpoint": info,
              "dataset": {"type": cfg.data.dataset, "name": pair.name, "image_size": pair.image_size,
                          "domains": list(pair.domain_names), "split": "test"}}
    print(f"latent analysis of {method.name} ({info['checkpoint']}, step {info['step']}) on {pair.name}, "
          f"device {device}; writing to {out}", flush=True)

    def log(msg: str) -> None:
        print(msg, flush=True)

    if isinstance(method, LatentBridge):
        from translab.analysis.ddib_latents import analyse_ddib

        written = analyse_ddib(method, pair, out, limit=args.limit, sweep_limit=args.sweep_limit, steps=args.steps,
                               sweep_steps=args.sweep_steps, batch_size=args.batch_size, device=device,
                               seed=args.seed, header=header, log=log)
    else:
        from translab.analysis.unit_release import analyse_release

        written = analyse_release(method, pair, cfg.data.dataset, out, release_ts=args.release_ts,
                                  direction=args.direction, limit=args.limit, steps=args.steps,
                                  batch_size=args.batch_size, device=device, seed=args.seed,
                                  inception=not args.no_inception, classifier_path=args.classifier, header=header,
                                  log=log)
    for p in written:
        print(f"wrote {p}")
    return 0
