"""`translab demo [--quick] [--out DIR] [--train]`: every shipped Colored MNIST 2 -> 3 method translates the
same test 2s, is measured with the shared metrics, and lands in one comparison report.

Offline: shipped weights and the embedded MNIST 2s and 3s. ``--train`` retrains every method from scratch
with the same presets first (about an hour per method on a 2-core CPU).
"""
from __future__ import annotations

from pathlib import Path

#: (row label, shipped model, evaluate as, inference overrides, sampling steps (None: the model's own));
#: the same settings as RESULTS.md's commands
DEMO_ROWS = (
    ("ddib", "cmnist-2to3/ddib", None, {}, 50),
    ("sdedit", "cmnist-2to3/ddib", "sdedit", {"model.t0": 0.5}, 25),
    ("unit-ddpm", "cmnist-2to3/unit-ddpm", None, {}, None),
    ("cyclegan", "cmnist-2to3/cyclegan", None, {}, None),
    ("not", "cmnist-2to3/not", None, {}, None),
)
QUICK_LIMIT = 128


def register(sub) -> None:
    p = sub.add_parser("demo", help="translate, measure and compare every shipped cMNIST 2->3 model (offline)")
    p.add_argument("--quick", action="store_true", help=f"first {QUICK_LIMIT} test images only, no Inception FID")
    p.add_argument("--out", default="translab-demo", help="output folder (report.html, report.md, runs/)")
    p.add_argument("--train", action="store_true", help="retrain every method with its cmnist-2to3 preset first")
    p.add_argument("--limit", type=int, default=None, help="use the first N test images (default: all 1,032)")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks (pays off on long runs)")
    p.set_defaults(func=run)



def run(args) -> int:
    import torch

    from translab.evaluation import EvalOptions, evaluate_run
    from translab.report.compare import write_report
    from translab.shipped import shipped_models, working_copy

    out = Path(args.out)
    runs_root = out / "runs"
    limit = args.limit or (QUICK_LIMIT if args.quick else None)
    sources: dict[str, Path] = {}
    if args.train:
        from translab.config import resolve_config
        from translab.training import train

        # DDIB and CycleGAN before UNIT-DDPM: a UNIT-DDPM preset whose networks start from them
        # (model.denoiser_init, model.generator_init) takes the ones just trained here, not the shipped ones
        for method in ("ddib", "cyclegan", "unit-ddpm", "not"):
            cfg = resolve_config(method, "cmnist-2to3")
            if method == "unit-ddpm":
                for field, source in (("denoiser_init", "ddib"), ("generator_init", "cyclegan")):
                    if getattr(cfg.model, field) is not None:
                        setattr(cfg.model, field, str(out / "train" / source))
            print(f"== training {method} with preset cmnist-2to3 into {out / 'train' / method}")
            train(cfg, out / "train" / method)
            sources[f"cmnist-2to3/{method}"] = out / "train" / method
    else:
        shipped = shipped_models()
        for _, model, _, _, _ in DEMO_ROWS:
            if model in shipped:
                sources[model] = working_copy(model, runs_root)
    if not sources:
        import argparse

        from translab.commands.data import run_show

        print("no Colored MNIST models are shipped with this installation (train them with `translab demo --train`);"
              " showing the embedded data instead")
        out.mkdir(parents=True, exist_ok=True)
        return run_show(argparse.Namespace(dataset="cmnist", data_root=None, overrides=[], n=8,
                                           out=str(out / "data-cmnist.png")))
    run_dirs: list[Path] = []
    for label, model, as_method, overrides, steps in DEMO_ROWS:
        if model not in sources:
            print(f"-- {label}: {model} is not available, row skipped")
            continue
        run_dir = sources[model]
        print(f"== {label}: evaluating {model} on {limit or 'all'} test 2s")
        opts = EvalOptions(direction="a2b", steps=steps, limit=limit, as_method=as_method, overrides=overrides,
                           device="cuda" if torch.cuda.is_available() else "cpu", inception=not args.quick,
                           cycle_limit=min(limit or 128, 128), compile=args.compile)
        evaluate_run(run_dir, opts)
        if run_dir not in run_dirs:
            run_dirs.append(run_dir)
    info = write_report(run_dirs, out, title="translab demo: Colored MNIST 2 -> 3")
    table = Path(info["markdown"]).read_text().split("\n\n")
    print("\n".join(block for block in table if block.lstrip().startswith("|")))
    print(f"\nreport: {Path(info['html']).resolve()}")
    return 0
