"""`translab demo [--dataset cmnist-2to3 | emoji-m2f] [--quick | --full] [--limit N] [--out DIR] [--train]`: every
shipped method of a benchmark (default Colored MNIST 2 -> 3; ``emoji-m2f``: OpenMoji man -> woman) translates the
same test images, is measured with the shared metrics, and lands in one comparison report.

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


#: the rows, in order; the same settings as RESULTS.md's commands except DDIB's solver and steps
DEMO_ROWS: tuple[DemoRow, ...] = (
    # its own config's setting: DPM-Solver++(2M) 2 x 8 from t = 850, w = 12 on the luminance for t in [500, 999],
    # the input's channel means kept (model.lowpass_factor = 32)
    DemoRow("ddib", "cmnist-2to3/ddib"),
    # SDEdit as published: unguided, no low-pass step (the shipped DDIB's config has both)
    DemoRow("sdedit", "cmnist-2to3/ddib", "sdedit", {"model.t0": 0.8, "model.guidance": 1.0,
                                                        "model.lowpass_factor": 0}, 25),
    DemoRow("unit-ddpm", "cmnist-2to3/unit-ddpm"),
    DemoRow("cyclegan", "cmnist-2to3/cyclegan"),
    DemoRow("not", "cmnist-2to3/not"),
    DemoRow("dsbm", "cmnist-2to3/dsbm"),
    DemoRow("distill", "cmnist-2to3/distill"),  # DDIB's one-step student
)
#: OpenMoji man -> woman: each shipped model at the setting of RESULTS.md's emoji table (its best measured one)
EMOJI_ROWS: tuple[DemoRow, ...] = (
    DemoRow("ddib", "emoji-m2f/ddib"),
    DemoRow("sdedit", "emoji-m2f/ddib", "sdedit", {"model.t0": 0.5, "model.guidance": 1.0}, 25),
    DemoRow("unit-ddpm", "emoji-m2f/unit-ddpm"),
    DemoRow("cyclegan", "emoji-m2f/cyclegan"),
    DemoRow("not", "emoji-m2f/not"),
    DemoRow("dsbm", "emoji-m2f/dsbm"),
)


class Benchmark(NamedTuple):
    """A benchmark the demo runs: its rows, its data config (translab.config.DataConfig fields), how its test
    images are called, and the report's title."""

    rows: tuple[DemoRow, ...]
    data: dict
    inputs: str
    references: str
    title: str


BENCHMARKS = {
    "cmnist-2to3": Benchmark(DEMO_ROWS, {}, "test 2s", "test 3s", "translab demo: Colored MNIST 2 -> 3"),
    "emoji-m2f": Benchmark(EMOJI_ROWS, {"dataset": "emoji", "image_size": 32}, "test men", "test women (their true "
                           "counterparts)", "translab demo: OpenMoji man -> woman"),
}
DEMO_LIMIT = 256  # default subset: the first 256 test 2s (and 3s as reference), the same for every row
QUICK_LIMIT = 128
CYCLE_LIMIT = 128  # cycle error on the first 128 inputs, as in RESULTS.md


def register(sub) -> None:
    p = sub.add_parser("demo", help="translate, measure and compare every shipped model of a benchmark (offline)")
    p.add_argument("--dataset", choices=list(BENCHMARKS), default="cmnist-2to3",
                   help="the benchmark: cmnist-2to3 (default) or emoji-m2f (OpenMoji man -> woman, 102 test pairs)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help=f"first {QUICK_LIMIT} test images only, no Inception FID")
    size.add_argument("--full", action="store_true", help="the whole test split (cmnist: all 1,032 test 2s against "
                      "all 1,010 test 3s, RESULTS.md's protocol, about 18 minutes on a 2-core CPU)")
    p.add_argument("--limit", type=int, default=None,
                   help=f"use the first N test images of each domain (default: {DEMO_LIMIT}; --quick: {QUICK_LIMIT})")
    p.add_argument("--out", default="translab-demo", help="output folder (report.html, report.md, runs/)")
    p.add_argument("--train", action="store_true", help="retrain every method with the benchmark's preset first")
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


def train_sources(out: Path, bench: str = "cmnist-2to3") -> dict[str, Path]:
    """`demo --train`: train every method with the benchmark's preset; shipped name -> fresh run directory."""
    from translab.config import preset_names, resolve_config
    from translab.training import train

    sources = {}
    # DDIB and CycleGAN before UNIT-DDPM: a UNIT-DDPM preset whose networks start from them
    # (model.denoiser_init, model.generator_init) takes the ones just trained here, not the shipped ones
    # DDIB before the one-step student, whose teacher (model.teacher) is the DDIB just trained here
    for method in ("ddib", "cyclegan", "unit-ddpm", "not", "dsbm", "distill"):
        if f"{method}/{bench}" not in preset_names(method):
            continue  # no cpu preset of this method for this benchmark (DSBM, the student: Colored MNIST only)
        cfg = resolve_config(method, bench)
        for field, source in (("denoiser_init", "ddib"), ("generator_init", "cyclegan"), ("teacher", "ddib")):
            if getattr(cfg.model, field, None) is not None:
                setattr(cfg.model, field, str(out / "train" / source))
        print(f"== training {method} with preset {bench} into {out / 'train' / method}")
        train(cfg, out / "train" / method)
        sources[f"{bench}/{method}"] = out / "train" / method
    return sources


def shipped_sources(runs_root: Path, bench: str = "cmnist-2to3") -> dict[str, Path]:
    """Shipped name -> writable working copy under ``runs_root``, for the benchmark's rows' shipped models."""
    from translab.shipped import shipped_models, working_copy

    shipped = shipped_models()
    return {row.model: working_copy(row.model, runs_root) for row in BENCHMARKS[bench].rows if row.model in shipped}


@functools.lru_cache(maxsize=4)
def embedded_test_sizes(bench: str = "cmnist-2to3") -> tuple[int, int]:
    """(source, target) test images of a benchmark: the data pair is built once per process."""
    from translab.config import DataConfig
    from translab.data import build_domain_pair

    pair = build_domain_pair(DataConfig(**BENCHMARKS[bench].data))
    return len(pair.get("a", "test")), len(pair.get("b", "test"))


def split_counts(limit: int | None, bench: str = "cmnist-2to3") -> tuple[int, int]:
    """(source test images each row translates, target test images of the reference): ``limit`` capped by each
    split's size."""
    n_a, n_b = embedded_test_sizes(bench)
    return (n_a, n_b) if limit is None else (min(limit, n_a), min(limit, n_b))


def row_options(row: DemoRow, limit: int | None, inception: bool = True, compile: bool = False, progress=False,
                bench: str = "cmnist-2to3"):
    """The EvalOptions of one demo row: a2b on the first ``limit`` test images (None: all), cycle error on the
    first CYCLE_LIMIT of them; ``progress`` as EvalOptions.progress (a callable: told each batch's size)."""
    from translab.commands.common import resolve_device
    from translab.evaluation import EvalOptions

    n, _ = split_counts(limit, bench)
    return EvalOptions(direction="a2b", steps=row.steps, limit=limit, as_method=row.as_method,
                       overrides=dict(row.overrides), device=resolve_device(),
                       inception=inception, cycle_limit=min(n, CYCLE_LIMIT), compile=compile, progress=progress)


def run_rows(rows: list[DemoRow], sources: dict[str, Path], limit: int | None, args) -> list[Path]:
    """Evaluate each row a2b under one progress bar over the images all rows translate (each row's inputs, plus
    up to CYCLE_LIMIT cycle translations); returns the run directories evaluated, in order."""
    from tqdm.auto import tqdm

    from translab.evaluation import evaluate_run

    n, _ = split_counts(limit, args.dataset)
    n_cycle = min(n, CYCLE_LIMIT)
    bar = tqdm(total=len(rows) * (n + n_cycle), desc="demo", unit="img", dynamic_ncols=True, smoothing=0)
    run_dirs: list[Path] = []
    for row in rows:
        row_end = bar.n + n + n_cycle
        bar.set_postfix_str(row.label)
        run_dir = sources[row.model]
        evaluate_run(run_dir, row_options(row, limit, not args.quick, args.compile, bar.update, args.dataset))
        bar.update(row_end - bar.n)  # a row without a cycle (NOT has no b2a) still moves the bar to its end
        if run_dir not in run_dirs:
            run_dirs.append(run_dir)
    bar.close()
    return run_dirs


def show_data_instead(out: Path, bench: str = "cmnist-2to3") -> int:
    """No shipped models: save the benchmark's first test images as OUT/data-<benchmark>.png instead."""
    from translab.config import DataConfig
    from translab.data import build_domain_pair, stack_dataset
    from translab.image_io import save_grid

    print(f"no {bench} models are shipped with this installation (train them with `translab demo --dataset {bench} "
          f"--train`); showing the data instead")
    pair = build_domain_pair(DataConfig(**BENCHMARKS[bench].data))
    path = save_grid([stack_dataset(pair.get(d, "test"), 8) for d in "ab"], out / f"data-{bench}.png")
    print(f"grid: {path} (rows: A test, B test)")
    return 0


def exact_ot_row(out: Path, limit: int | None, inception: bool, bench: str = "cmnist-2to3") -> Path:
    """The ``ot-exact`` reference row (translab.ot_exact) on the same test images; returns its run directory."""
    from translab.config import DataConfig
    from translab.ot_exact import evaluate_ot_exact

    b = BENCHMARKS[bench]
    run_dir = out / "runs" / "ot-exact"
    print(f"== ot-exact: the exact optimal transport between the same {b.inputs} and {b.references} (reference row)")
    evaluate_ot_exact(run_dir, limit=limit, inception=inception, progress=False, data_cfg=DataConfig(**b.data))
    return run_dir


def run(args) -> int:
    from translab.commands.common import set_threads
    from translab.report.compare import write_report

    set_threads(args.threads)
    out = Path(args.out)
    limit = demo_limit(args)
    bench = BENCHMARKS[args.dataset]
    sources = train_sources(out, args.dataset) if args.train else shipped_sources(out / "runs", args.dataset)
    if not sources:
        return show_data_instead(out, args.dataset)
    rows = [row for row in bench.rows if row.model in sources]
    for row in bench.rows:
        if row.model not in sources:
            print(f"-- {row.label}: {row.model} is not available, row skipped")
    n_a, n_b = split_counts(limit, args.dataset)
    first = "all" if limit is None or (n_a, n_b) == embedded_test_sizes(args.dataset) else "the first"
    print(f"== {len(rows)} rows ({', '.join(r.label for r in rows)}) on {first} {n_a} {bench.inputs}; reference: "
          f"{first} {n_b} {bench.references}{', no Inception FID' if args.quick else ''}")
    run_dirs = run_rows(rows, sources, limit, args) + [exact_ot_row(out, limit, not args.quick, args.dataset)]
    info = write_report(run_dirs, out, title=bench.title)
    table = Path(info["markdown"]).read_text().split("\n\n")
    print("\n".join(block for block in table if block.lstrip().startswith("|")))
    print(f"\nreport: {Path(info['html']).resolve()}")
    return 0
