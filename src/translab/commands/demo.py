"""`translab demo [--quick | --full] [--limit N] [--out DIR] [--train]`: every shipped Colored MNIST 2 -> 3 method
translates the same test 2s, is measured with the shared metrics, and lands in one comparison report.

Sizes: by default the first ``DEMO_LIMIT`` test 2s, scored against the first ``DEMO_LIMIT`` test 3s (the
reference of ``translab evaluate --limit N``), with every metric including Inception FID: a first look that
fits in minutes on a small CPU. ``--full``: all 1,032 test 2s against all 1,010 test 3s (RESULTS.md's
protocol). ``--quick``: the first ``QUICK_LIMIT`` test 2s without Inception. Offline: shipped weights and the
embedded MNIST 2s and 3s. ``--train`` retrains every method from scratch with the same presets first (about an
hour per method on a 2-core CPU).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple


class DemoRow(NamedTuple):
    """One row of the demo's table: ``model`` (a shipped model name) evaluated a2b, as ``as_method`` if given,
    with inference ``overrides`` ({"model.key": value}) and ``steps`` sampling steps (None: the model's own)."""

    label: str
    model: str
    as_method: str | None = None
    overrides: dict = {}
    steps: int | None = None


#: DDIB's demo setting = the shipped model's defaults (its config.yaml, since session 9): DPM-Solver++(2M) at 2 x 8
#: steps (chains start at t = 875), decoding guided with w = 3 only at its steps with t in [500, 999] (the
#: first four): 8 + 8 + 4 = 20 network evaluations per image. Full test split (RESULTS.md): 97.4% read as 3s, hue
#: error 6.9 degrees, Inception FID 13.0 (the session-7 default, DDIM 2 x 7 guided with w = 5 at every step, 21
#: evaluations: 98.6%, 7.2, 17.9); the sweeps: docs/results/ddib_interval/ and docs/results/ddib_guidance/
DDIB_SAMPLER, DDIB_STEPS, DDIB_GUIDANCE, DDIB_GUIDANCE_INTERVAL = "dpmpp2m", 8, 3.0, [500, 999]

#: the rows, in order; the same settings as RESULTS.md's commands except DDIB's solver and steps
DEMO_ROWS: tuple[DemoRow, ...] = (
    DemoRow("ddib", "cmnist-2to3/ddib", overrides={"model.sampler": DDIB_SAMPLER, "model.guidance": DDIB_GUIDANCE,
                                                   "model.guidance_interval": DDIB_GUIDANCE_INTERVAL},
            steps=DDIB_STEPS),
    # SDEdit as published: unguided (the shipped DDIB's config guides its decoding with w = 2)
    DemoRow("sdedit", "cmnist-2to3/ddib", "sdedit", {"model.t0": 0.5, "model.guidance": 1.0}, 25),
    DemoRow("unit-ddpm", "cmnist-2to3/unit-ddpm"),
    DemoRow("cyclegan", "cmnist-2to3/cyclegan"),
    DemoRow("not", "cmnist-2to3/not"),
)
DEMO_LIMIT = 256  # default subset: the first 256 test 2s (and 3s as reference), the same for every row
QUICK_LIMIT = 128
CYCLE_LIMIT = 128  # cycle error on the first 128 inputs, as in RESULTS.md


def register(sub) -> None:
    p = sub.add_parser("demo", help="translate, measure and compare every shipped cMNIST 2->3 model (offline)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help=f"first {QUICK_LIMIT} test images only, no Inception FID")
    size.add_argument("--full", action="store_true", help="all 1,032 test 2s against all 1,010 test 3s "
                      "(RESULTS.md's protocol; over an hour on a 2-core CPU)")
    p.add_argument("--limit", type=int, default=None,
                   help=f"use the first N test images of each domain (default: {DEMO_LIMIT}; --quick: {QUICK_LIMIT})")
    p.add_argument("--out", default="translab-demo", help="output folder (report.html, report.md, runs/)")
    p.add_argument("--train", action="store_true", help="retrain every method with its cmnist-2to3 preset first")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks (pays off only with --full)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    p.set_defaults(func=run)


def demo_limit(args) -> int | None:
    """Test images per domain that every row uses (None: the whole split)."""
    from translab.config import ConfigError

    if args.limit is not None:
        if args.full:
            raise ConfigError(f"--full evaluates the whole test split: drop --limit {args.limit}")
        if args.limit < 1:
            raise ConfigError(f"--limit must be at least 1, got {args.limit}")
        return args.limit
    if args.full:
        return None
    return QUICK_LIMIT if args.quick else DEMO_LIMIT


def train_sources(out: Path) -> dict[str, Path]:
    """`demo --train`: train every method with its cmnist-2to3 preset; shipped name -> fresh run directory."""
    from translab.config import resolve_config
    from translab.training import train

    sources = {}
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
    return sources


def shipped_sources(runs_root: Path) -> dict[str, Path]:
    """Shipped name -> writable working copy under ``runs_root``, for the rows' shipped models."""
    from translab.shipped import shipped_models, working_copy

    shipped = shipped_models()
    return {row.model: working_copy(row.model, runs_root) for row in DEMO_ROWS if row.model in shipped}


@functools.lru_cache(maxsize=1)
def embedded_test_sizes() -> tuple[int, int]:
    """(test 2s, test 3s) of the embedded default: the data pair is built once per process."""
    from translab.config import DataConfig
    from translab.data import build_domain_pair

    pair = build_domain_pair(DataConfig())
    return len(pair.get("a", "test")), len(pair.get("b", "test"))


def split_counts(limit: int | None) -> tuple[int, int]:
    """(test 2s each row translates, test 3s of the reference): ``limit`` capped by each split's size."""
    n_a, n_b = embedded_test_sizes()
    return (n_a, n_b) if limit is None else (min(limit, n_a), min(limit, n_b))


def row_options(row: DemoRow, limit: int | None, inception: bool = True, compile: bool = False, progress=False):
    """The EvalOptions of one demo row: a2b on the first ``limit`` test images (None: all), cycle error on the
    first CYCLE_LIMIT of them; ``progress`` as EvalOptions.progress (a callable: told each batch's size)."""
    import torch

    from translab.evaluation import EvalOptions

    n, _ = split_counts(limit)
    return EvalOptions(direction="a2b", steps=row.steps, limit=limit, as_method=row.as_method,
                       overrides=dict(row.overrides), device="cuda" if torch.cuda.is_available() else "cpu",
                       inception=inception, cycle_limit=min(n, CYCLE_LIMIT), compile=compile, progress=progress)


def run_rows(rows: list[DemoRow], sources: dict[str, Path], limit: int | None, args) -> list[Path]:
    """Evaluate each row a2b under one progress bar over the images all rows translate (each row's inputs, plus
    up to CYCLE_LIMIT cycle translations); returns the run directories evaluated, in order."""
    from tqdm.auto import tqdm

    from translab.evaluation import evaluate_run

    n, _ = split_counts(limit)
    n_cycle = min(n, CYCLE_LIMIT)
    bar = tqdm(total=len(rows) * (n + n_cycle), desc="demo", unit="img", dynamic_ncols=True, smoothing=0)
    run_dirs: list[Path] = []
    for row in rows:
        row_end = bar.n + n + n_cycle
        bar.set_postfix_str(row.label)
        run_dir = sources[row.model]
        evaluate_run(run_dir, row_options(row, limit, not args.quick, args.compile, bar.update))
        bar.update(row_end - bar.n)  # a row without a cycle (NOT has no b2a) still moves the bar to its end
        if run_dir not in run_dirs:
            run_dirs.append(run_dir)
    bar.close()
    return run_dirs


def show_data_instead(out: Path) -> int:
    """No shipped models: save the embedded test 2s and 3s as OUT/data-cmnist.png instead."""
    from translab.config import DataConfig
    from translab.data import build_domain_pair, stack_dataset
    from translab.image_io import save_grid

    print("no Colored MNIST models are shipped with this installation (train them with `translab demo --train`);"
          " showing the embedded data instead")
    pair = build_domain_pair(DataConfig())
    path = save_grid([stack_dataset(pair.get(d, "test"), 8) for d in "ab"], out / "data-cmnist.png")
    print(f"grid: {path} (rows: A test, B test)")
    return 0


def exact_ot_row(out: Path, limit: int | None, inception: bool) -> Path:
    """The ``ot-exact`` reference row (translab.ot_exact) on the same test images; returns its run directory."""
    from translab.ot_exact import evaluate_ot_exact

    run_dir = out / "runs" / "ot-exact"
    print("== ot-exact: the exact optimal transport between the same test 2s and 3s (reference row)")
    evaluate_ot_exact(run_dir, limit=limit, inception=inception, progress=False)
    return run_dir


def run(args) -> int:
    import torch

    from translab.report.compare import write_report

    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    limit = demo_limit(args)
    sources = train_sources(out) if args.train else shipped_sources(out / "runs")
    if not sources:
        return show_data_instead(out)
    rows = [row for row in DEMO_ROWS if row.model in sources]
    for row in DEMO_ROWS:
        if row.model not in sources:
            print(f"-- {row.label}: {row.model} is not available, row skipped")
    n_a, n_b = split_counts(limit)
    first = "all" if limit is None else "the first"
    print(f"== {len(rows)} rows ({', '.join(r.label for r in rows)}) on {first} {n_a} test 2s; reference: {first} "
          f"{n_b} test 3s{', no Inception FID' if args.quick else ''}")
    run_dirs = run_rows(rows, sources, limit, args) + [exact_ot_row(out, limit, not args.quick)]
    info = write_report(run_dirs, out, title="translab demo: Colored MNIST 2 -> 3")
    table = Path(info["markdown"]).read_text().split("\n\n")
    print("\n".join(block for block in table if block.lstrip().startswith("|")))
    print(f"\nreport: {Path(info['html']).resolve()}")
    return 0
