"""`translab evaluate --run RUN [--direction a2b] [--steps N] [--limit N] [--as sdedit] [--set model.t0=0.5]`:
translate the source domain's test split and write RUN/eval/<method>_<direction>_<steps>.json."""
from __future__ import annotations


def register(sub) -> None:
    from translab.commands.common import PROTOCOL_NAMES, add_run_flags, positive_int

    p = sub.add_parser("evaluate", help="measure a trained run (FID/KID with two extractors, accuracy, hue, cost)")
    p.add_argument("--run", required=True, help="run directory (or a checkpoint file's run directory)")
    p.add_argument("--direction", default="a2b", choices=("a2b", "b2a"))
    p.add_argument("--steps", type=positive_int, default=None, help="sampling steps (default: the method's own)")
    p.add_argument("--limit", type=positive_int, default=None,
                   help="use only the first N test images of each domain (quick checks; FID is then biased)")
    p.add_argument("--as", dest="as_method", default=None, help="evaluate the weights as another method, e.g. sdedit")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="inference override, e.g. --set model.t0=0.5 (repeatable)")
    add_run_flags(p, "batch-size", "device", "threads", "seed",
                  seed_help="seed of the torch.Generator of stochastic methods")
    p.add_argument("--classifier", default=None,
                   help="classifier .safetensors for classifier FID and attribute accuracy "
                        "(cmnist default: the shipped digit reader)")
    p.add_argument("--no-inception", action="store_true", help="skip Inception FID/KID (reported as skipped)")
    add_run_flags(p, "no-progress")
    p.add_argument("--cycle-limit", type=positive_int, default=None,
                   help="measure cycle error on the first N inputs only")
    p.add_argument("--compile", action="store_true", help="torch.compile the networks (faster on long runs)")
    p.add_argument("--protocol", default="translab", choices=PROTOCOL_NAMES,
                   help="translab: the test splits as they are (default); asbm: the published Colored MNIST "
                        "protocol (test sets tiled to 10,000 and recoloured with seed 42, with its FID floor)")
    p.set_defaults(func=run)


def run(args) -> int:
    from translab.commands.common import parse_set_pairs, resolve_device, set_threads
    from translab.evaluation import EvalOptions, evaluate_run

    set_threads(args.threads)
    device = resolve_device(args.device)
    opts = EvalOptions(direction=args.direction, steps=args.steps, limit=args.limit, as_method=args.as_method,
                       overrides=parse_set_pairs(args.overrides), batch_size=args.batch_size, device=device,
                       seed=args.seed, inception=not args.no_inception, classifier_path=args.classifier,
                       progress=not args.no_progress, cycle_limit=args.cycle_limit, compile=args.compile,
                       protocol=args.protocol)
    from translab.shipped import is_shipped, resolve_run, working_copy

    run_dir = working_copy(args.run, "runs") if is_shipped(resolve_run(args.run)) else resolve_run(args.run)
    if str(run_dir) != args.run:
        print(f"evaluating the shipped model {args.run} in the writable copy {run_dir}")
    result, path = evaluate_run(run_dir, opts)
    print(summary_lines(result))
    print(f"wrote {path}")
    return 0


def summary_lines(result: dict) -> str:
    """A few human-readable lines of an evaluation result."""
    m = result["metrics"]
    protocol = (result.get("protocol") or {}).get("name", "translab")
    lines = [f"{result['method']} {result['direction']} steps={result['steps']} on {result['dataset']['name']} "
             f"({result['dataset']['n_inputs']} inputs, {result['dataset']['n_reference']} reference images, "
             f"{protocol} protocol)"]
    for name, e in m["fid_kid"].items():
        if e.get("available"):
            lines.append(f"  FID[{name}] {e['fid']:.3f}   KID[{name}] {e['kid_mean']:.5f} +- {e['kid_std']:.5f}")
        else:
            lines.append(f"  FID/KID[{name}] unavailable: {e['reason']}")
    for key in ("target_accuracy", "attribute_accuracy"):
        if key in m:
            e = m[key]
            lines.append(f"  {key} {e['value']:.4f}" if e.get("available") else f"  {key} unavailable: {e['reason']}")
    if "hue_error" in m:
        h = m["hue_error"]
        mean = "n/a" if h["mean_deg"] is None else f"{h['mean_deg']:.2f}"
        lines.append(f"  hue error {mean} deg (no foreground in {100 * h['no_foreground_share']:.1f}% of outputs)")
    kept = [f"{k.replace('_', ' ')} {m[k]['value']:.4f}" for k in ("tone_kept", "concept_kept") if k in m]
    if kept:
        lines.append("  " + "  ".join(kept))
    if (m.get("counterpart") or {}).get("available"):
        c = m["counterpart"]
        r = c["retrieval"]
        dist = "  ".join(f"{name} {d['output']:.4f} vs input {d['input']:.4f} (ratio {d['ratio']:.3f})"
                         for name, d in c["distance"].items())
        lines.append(f"  true counterpart: retrieved top-1 {r['output']['top1']:.3f} (input {r['input']['top1']:.3f})"
                     f", top-5 {r['output']['top5']:.3f}; distance {dist}")
    floor = ((m.get("protocol_floor") or {}).get("fid_kid") or {}).get("inception") or {}
    if floor.get("available"):
        lines.append(f"  protocol floor: FID[inception] {floor['fid']:.3f} (real targets against a recolouring)")
    lines.append(f"  transport cost {m['transport_cost']['value']:.4f}  SSIM {m['ssim']['mean']:.4f}")
    if m["cycle_error"].get("available"):
        lines.append(f"  cycle error {m['cycle_error']['value']:.4f}")
    c = result["cost"]
    ips = "n/a" if c["images_per_s"] is None else f"{c['images_per_s']:.2f}"
    lines.append(f"  NFE/image {c['nfe_per_image']}  {ips} images/s on {c['device']} x{c['threads']} threads")
    return "\n".join(lines)
