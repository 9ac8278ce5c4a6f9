"""`translab ot-exact --out DIR [--dataset cmnist|emoji] [--limit N] [--no-inception]`: the exact optimal-transport
reference row.

Solves the discrete OT between the source and target test sets (Colored MNIST 2s and 3s by default, OpenMoji men
and women with ``--dataset emoji``; translab.ot_exact, whose Python function evaluate_ot_exact takes any data
config) and writes DIR/eval/ot-exact_a2b_nosteps[_limitN].json, which
`translab compare DIR RUN...` shows as a reference row and uses for the transport-cost ratio column."""
from __future__ import annotations

#: the benchmarks' data configs (as their cpu presets set them)
DATASETS = {"cmnist": {}, "emoji": {"dataset": "emoji", "image_size": 32}}


def register(sub) -> None:
    from translab.commands.common import PROTOCOL_NAMES, add_run_flags

    p = sub.add_parser("ot-exact", help="exact optimal transport between the test sets: the transport-cost "
                                        "reference row for `translab compare`")
    p.add_argument("--out", required=True, help="pseudo run directory to write eval/ot-exact_*.json into")
    p.add_argument("--dataset", choices=sorted(DATASETS), default="cmnist",
                   help="the benchmark: cmnist (2 -> 3, 32 px) or emoji (man -> woman, 32 px)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N test images of each domain")
    p.add_argument("--no-inception", action="store_true", help="skip Inception FID/KID (reported as skipped)")
    p.add_argument("--no-cache", action="store_true", help="solve again instead of reading a cached plan")
    p.add_argument("--protocol", default="translab", choices=PROTOCOL_NAMES,
                   help="translab: the test splits (default); asbm: the published Colored MNIST test sets (10,000 "
                        "recoloured 2s and 3s; cmnist only)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu", help="device of the metric networks (cpu | cuda | cuda:N)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    add_run_flags(p, "no-progress")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from translab.commands.common import set_threads
    from translab.config import DataConfig
    from translab.ot_exact import evaluate_ot_exact

    set_threads(args.threads)
    path = evaluate_ot_exact(args.out, limit=args.limit, data_cfg=DataConfig(**DATASETS[args.dataset]), inception=not args.no_inception,
                             progress=not args.no_progress, device=args.device,
                             batch_size=args.batch_size, use_cache=not args.no_cache,
                             protocol=args.protocol)
    print(summary(json.loads(path.read_text())))
    print(f"wrote {path}")
    return 0


def summary(result: dict) -> str:
    """A few lines: the exact cost and the assigned targets' metrics."""
    from translab.commands.evaluate import summary_lines

    o = result["metrics"]["ot_exact"]
    head = (f"exact OT cost {o['cost']:.5f} (MSE per pixel, [-1, 1]) between {o['n_sources']} and "
            f"{o['n_targets']} images; network simplex {o['solve_seconds']:.2f} s"
            f"{' (cached plan)' if o['plan_cached'] else ''}; {o['sources_split']} sources split their mass")
    body = summary_lines({**result, "steps": "n/a", "cost": {**result["cost"], "nfe_per_image": "n/a"}})
    return head + "\n" + body
