"""Where DDIB's hue error comes from: the signed hue shift of each translation (output hue minus input hue, in
(-180, 180] degrees), by the input's hue, for several step counts and guidance scales.

A hue error that is a spread around zero (noise in each image's colour) and one that is a rotation depending on
the input's hue (the target domain's decoder reading the source's latent as another colour) have the same mean
absolute value; the mean *signed* shift of the inputs of one hue separates them. Every other setting is the
run's (its start model.t_max, solver, guidance interval and guidance_on). Scored on the first N test images of
domain A with translab's foreground hue (translab.metrics.color), the outputs clamped to [-1, 1] as
`translab translate` writes them.

    python scripts/ddib_hue_shift.py cmnist-2to3/ddib --steps 8,50 --guidance 8,1 --limit 256 \
        --out docs/results/ddib_steps/hue_shift.json --threads 1
"""
from __future__ import annotations

import time

import torch
from ddib_encode_decode import load_cmnist_ddib, lowpass_flag, run_arguments, write_record  # this folder's script: the same run and record

from translab.metrics.color import foreground_hue, hue_error
from translab.shipped import portable_path

BIN_DEG = 30  # input hues in 12 bins of 30 degrees


def parse_list(text: str, kind, what: str, least: float) -> list:
    """'8,50' -> [8, 50]; SystemExit naming --WHAT for anything else or a value below ``least``."""
    try:
        values = [kind(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < least:
        raise SystemExit(f"--{what}: expected comma-separated numbers of at least {least:g} such as 8,50, "
                         f"got {text!r}")
    return values


def signed_shift(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(input hue (N,), output hue minus input hue in (-180, 180] (N,)); NaN where either has no foreground."""
    h_in, h_out = foreground_hue(x), foreground_hue(y)
    return h_in, torch.remainder(h_out - h_in + 180.0, 360.0) - 180.0


def by_input_hue(h_in: torch.Tensor, shift: torch.Tensor) -> list[dict]:
    """Per 30-degree bin of input hue: its images, the mean signed shift and the mean absolute shift."""
    ok = ~shift.isnan()
    rows = []
    for lo in range(0, 360, BIN_DEG):
        sel = ok & (h_in >= lo) & (h_in < lo + BIN_DEG)
        n = int(sel.sum())
        rows.append({"input_hue": [lo, lo + BIN_DEG], "images": n,
                     "mean_signed_deg": round(float(shift[sel].mean()), 2) if n else None,
                     "mean_abs_deg": round(float(shift[sel].abs().mean()), 2) if n else None})
    return rows


def score(method, x: torch.Tensor, steps: int, guidance: float) -> dict:
    t0 = time.perf_counter()
    view = method.with_inference(guidance=guidance)
    with torch.no_grad():
        y = view.translate(x, "a2b", steps).images
    h_in, shift = signed_shift(x, y)
    ok = ~shift.isnan()
    bins = by_input_hue(h_in, shift)
    signed = [b["mean_signed_deg"] for b in bins if b["images"]]
    return {"steps": steps, "guidance": guidance, "hue_error_deg": round(hue_error(x, y)["mean_deg"], 2),
            "mean_signed_deg": round(float(shift[ok].mean()), 2),
            "bin_signed_range_deg": [min(signed), max(signed)], "by_input_hue": bins,
            "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    ap = run_arguments(__doc__.splitlines()[0])
    ap.add_argument("--steps", default="8,50", help="solver steps per chain, comma-separated")
    ap.add_argument("--guidance", default="8,1", help="guidance scales w, comma-separated (1: unguided)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    steps, scales = parse_list(args.steps, int, "steps", 1), parse_list(args.guidance, float, "guidance", 0)
    run, method, _, x = load_cmnist_ddib(args.run, args.limit, args.lowpass_factor)
    rows = []
    for w in scales:
        for n in steps:
            r = score(method, x, n, w)
            rows.append(r)
            print(f"steps {n:3d}  w {w:g}  hue error {r['hue_error_deg']:.2f}  mean signed shift "
                  f"{r['mean_signed_deg']:+.2f}  bins {r['bin_signed_range_deg']}  ({r['seconds']} s)", flush=True)
    write_record(args.out, run, method, x, args.threads, rows,
                 f"python scripts/ddib_hue_shift.py {args.run} --steps {args.steps} --guidance {args.guidance} "
                 f"--limit {args.limit} --out {portable_path(args.out)} --threads {args.threads}{lowpass_flag(args)}")


if __name__ == "__main__":
    main()
