"""How long each row of `translab demo` takes at the demo's size, one row at a time, in one process.

For each row of ``translab.commands.demo.DEMO_ROWS`` it runs the same evaluation as the demo (same options,
via ``demo.row_options``) on a working copy of the shipped model and reports wall seconds and CPU seconds of
this process. On a machine shared with other jobs the wall time is inflated; the CPU time is what one
uncontended thread would need (``--threads 1``). The first row also pays for loading Inception and the
reference features (computed here in a fresh feature cache, as on a first run; set ``--keep-cache`` to use the
user's cache instead).

    python benchmarks/demo_rates.py --threads 1 [--limit 256] [--out docs/results/ddib_nfe/demo_rates.json]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch


def time_row(row, run_dir: Path, limit: int | None, inception: bool) -> dict:
    """Evaluate one demo row; wall and CPU seconds and the evaluation's own translation figures."""
    from translab.commands.demo import row_options
    from translab.evaluation import evaluate_run

    wall0, cpu0 = time.perf_counter(), time.process_time()
    result, _ = evaluate_run(run_dir, row_options(row, limit, inception))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    m = result["metrics"]
    fid = m["fid_kid"]["inception"]
    return {"row": row.label, "wall_s": wall, "cpu_s": cpu, "translate_wall_s": result["cost"]["translate_seconds"],
            "nfe": result["cost"]["nfe_per_image"], "n_inputs": result["dataset"]["n_inputs"],
            "n_cycle": m["cycle_error"].get("n_images", 0), "target_accuracy": m["target_accuracy"].get("value"),
            "fid_inception": fid.get("fid") if fid.get("available") else None}


def main(argv=None) -> None:
    from translab.commands.demo import DEMO_LIMIT, DEMO_ROWS
    from translab.shipped import shipped_models, working_copy

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--limit", type=int, default=DEMO_LIMIT, help="0: the whole split (demo --full)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-inception", action="store_true")
    p.add_argument("--keep-cache", action="store_true", help="reuse the on-disk feature cache")
    p.add_argument("--work", default=None, help="folder for the working copies (default: a temporary one)")
    p.add_argument("--out", default="docs/results/ddib_nfe/demo_rates.json")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="translab-demo-rates-"))
    if not args.keep_cache:
        os.environ["TRANSLAB_CACHE"] = str(work / "cache")
    shipped = shipped_models()
    rows = []
    for row in DEMO_ROWS:
        if row.model not in shipped:
            print(f"-- {row.label}: {row.model} is not shipped here, skipped")
            continue
        rows.append(time_row(row, working_copy(row.model, work / "runs"), args.limit or None, not args.no_inception))
        print(json.dumps(rows[-1]), flush=True)
    total_wall, total_cpu = sum(r["wall_s"] for r in rows), sum(r["cpu_s"] for r in rows)
    print(f"\n{'row':>10s} {'wall s':>8s} {'cpu s':>8s} {'NFE':>5s} {'inputs':>6s} {'cycle':>6s}")
    for r in rows:
        print(f"{r['row']:>10s} {r['wall_s']:>8.1f} {r['cpu_s']:>8.1f} {r['nfe']:>5d} {r['n_inputs']:>6d} "
              f"{r['n_cycle']:>6d}")
    print(f"{'total':>10s} {total_wall:>8.1f} {total_cpu:>8.1f}   ({total_cpu / 60:.1f} min of CPU time, "
          f"{torch.get_num_threads()} thread(s))")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"limit": args.limit, "threads": torch.get_num_threads(), "rows": rows,
                               "total_wall_s": total_wall, "total_cpu_s": total_cpu}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
