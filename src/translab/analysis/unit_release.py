"""UNIT-DDPM's release time t_r: faithfulness against realism, and what the two chains look like.

In UNIT-DDPM's inference (Sasaki et al., arXiv 2104.05358, Algorithm 2, eqs. 15-17) the source chain is the
input forward-noised to level t while t > t_r, and is denoised jointly with the target chain from t_r down to 0.
A small t_r keeps the target chain conditioned on (noised copies of) the input for longer; a large t_r releases
it early, so that the input is forgotten sooner. This module sweeps t_r and measures, for each value, on the
source domain's test images, with the metrics of ``translab evaluate`` (translab.evaluation and
translab.metrics): target accuracy (cmnist: the shipped digit reader), hue error (hue-coloured data), transport
cost and FID/KID with the labelled extractors (classifier features; Inception where its weights are available).
"""
from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path
from typing import Callable

import torch

from translab.analysis import figures, write_json

Log = Callable[[str], None]
#: default release times as fractions of T (0 -> t_r = 0, 1 -> t_r = T - 1)
DEFAULT_FRACTIONS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
CHAIN_INPUTS = 3
OUTPUTS_SHOWN = 12


def default_release_ts(num_timesteps: int) -> list[int]:
    """round(f (T - 1)) for f in DEFAULT_FRACTIONS, without repeats."""
    return list(dict.fromkeys(round(f * (num_timesteps - 1)) for f in DEFAULT_FRACTIONS))


def _value(entry: dict | None, key: str = "value"):
    if not entry or entry.get("available") is False:
        return None
    v = entry.get(key)
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v


def flat_row(t_r: int, nfe: int, metrics: dict) -> dict:
    """The plotted/tabulated numbers of one sweep value (None where a metric is unavailable)."""
    fid = metrics["fid_kid"]
    hue = metrics.get("hue_error") or {}
    acc = metrics.get("target_accuracy") or metrics.get("attribute_accuracy")
    counterpart = metrics.get("counterpart") or {}
    return {"release_t": t_r, "nfe": nfe, "accuracy": _value(acc), "hue_error_deg": hue.get("mean_deg"),
            "tone_kept": _value(metrics.get("tone_kept")), "concept_kept": _value(metrics.get("concept_kept")),
            "pixel_ratio": (counterpart.get("distance") or {}).get("pixel", {}).get("ratio"),
            "transport_cost": metrics["transport_cost"]["value"],
            "fid_classifier": _value(fid.get("classifier"), "fid"),
            "fid_inception": _value(fid.get("inception"), "fid")}


COLUMNS = (("release_t", "t_r"), ("nfe", "NFE"), ("accuracy", "target accuracy"), ("hue_error_deg", "hue error (deg)"),
           ("tone_kept", "tone kept"), ("concept_kept", "concept kept"),
           ("pixel_ratio", "pixel distance to counterpart / input's"),
           ("transport_cost", "transport cost"), ("fid_classifier", "FID [classifier]"),
           ("fid_inception", "FID [inception]"))


def markdown_table(rows: list[dict]) -> str:
    """The sweep as a Markdown table; unavailable values read 'n/a'."""
    def fmt(v):
        if v is None:
            return "n/a"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    cols = [(k, label) for i, (k, label) in enumerate(COLUMNS) if i < 2 or any(r.get(k) is not None for r in rows)]
    lines = ["| " + " | ".join(label for _, label in cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(k)) for k, _ in cols) + " |" for r in rows]
    return "\n".join(lines)


def chains_picture(method, x: torch.Tensor, direction: str, steps: int | None, release_t: int, path: Path,
                   device: str, seed: int) -> Path:
    """Both chains (source state above target state) at the recorded timesteps for the first few inputs."""
    gen = torch.Generator().manual_seed(seed)
    x = x[:CHAIN_INPUTS].to(device)
    tr = method.with_inference(release_t=release_t).translate(x, direction, steps=steps, generator=gen,
                                                              return_latents=True)
    lat = tr.latents
    ts = lat["timesteps"].tolist()
    src, tgt = direction.split("2")
    rows, labels = [], []
    for i in range(x.shape[0]):
        rows.append(torch.cat([x[i:i + 1].cpu(), lat["x_src"][:, i].cpu()]))
        rows.append(torch.cat([tr.images[i:i + 1].cpu(), lat["x_tgt"][:, i].cpu()]))
        labels += [f"input {i + 1}: source chain ({src.upper()})", f"input {i + 1}: target chain ({tgt.upper()})"]
    cols = ["input / output"] + [f"t={t}" for t in ts]
    return figures.image_table(rows, path, row_labels=labels, col_labels=cols,
                               title=f"UNIT-DDPM {direction} chains, t_r = {release_t} (states clamped to [-1, 1] "
                                     f"for display; first column: the input above its translation)")


def generators_picture(method, pair, path: Path, n: int = OUTPUTS_SHOWN, device: str = "cpu") -> Path:
    """The training-only translation generators on test images: x^A, g_a2b(x^A), x^B, g_b2a(x^B).

    They make the partner images that the denoisers are conditioned on in training (eqs. 11-12), so this
    shows what the conditioning channel looked like in training, against the real source images it sees
    at inference.
    """
    from translab.data.base import stack_dataset

    x_a = stack_dataset(pair.get("a", "test"), n).float().to(device)
    x_b = stack_dataset(pair.get("b", "test"), n).float().to(device)
    with torch.no_grad():
        fake_b, fake_a = method.nets["g_a2b"](x_a).cpu(), method.nets["g_b2a"](x_b).cpu()
    return figures.image_table(
        [x_a.cpu(), fake_b, x_b.cpu(), fake_a], path,
        row_labels=["x^A", "g_a2b(x^A)", "x^B", "g_b2a(x^B)"],
        title="UNIT-DDPM training generators on test images (what the denoisers were conditioned on in training)")


def analyse_release(method, pair, dataset: str, out_dir: str | Path, *, release_ts: list[int] | None = None,
                    direction: str = "a2b", limit: int | None = None, steps: int | None = None, batch_size: int = 64,
                    device: str = "cpu", seed: int = 0, inception: bool = True, classifier_path: str | None = None,
                    header: dict | None = None, log: Log = print) -> list[Path]:
    """Sweep t_r over ``release_ts`` and write OUT/unit_release_sweep.{json,md}, unit_release_tradeoff.png,
    unit_release_outputs.png (the first inputs' translations at each t_r), unit_generators.png and
    unit_chains.png. Each value translates the same inputs with the same seed. Returns the written paths."""
    from translab.data.base import stack_dataset
    from translab.evaluation import EvalOptions, build_extractors, measure_outputs, target_class_name, true_counterparts
    from translab.methods.base import MethodError, check_direction

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    check_direction(direction)
    if direction not in method.directions():
        raise MethodError(f"{method.name} translates only {', '.join(method.directions())}, not {direction}")
    T = method.schedule.num_timesteps
    release_ts = list(release_ts) if release_ts else default_release_ts(T)
    for t_r in release_ts:
        method.check_release(t_r)
    steps = steps or method.default_steps()
    src, tgt = direction.split("2")
    x = stack_dataset(pair.get(src, "test"), limit).float()
    real = stack_dataset(pair.get(tgt, "test"), limit).float()
    opts = EvalOptions(direction=direction, batch_size=batch_size, device=device, seed=seed, inception=inception,
                       classifier_path=classifier_path, progress=False)
    measure = partial(measure_outputs, real=real, dataset=dataset, target_name=target_class_name(pair, tgt, dataset),
                      tgt=tgt, opts=opts, built=build_extractors(dataset, opts),
                      counterpart=true_counterparts(pair, src, tgt, limit))
    entries, rows, shown = _sweep(method, x, measure, release_ts, direction, steps, batch_size, device, seed, log)
    head = dict(header or {}, direction=direction, steps=steps, seed=seed, num_timesteps=T,
                n_inputs=int(x.shape[0]), n_reference=int(real.shape[0]), limit=limit)
    written = _write_tables(out, head, rows, entries, direction, steps, x.shape[0])
    written += _write_pictures(method, pair, out, x, shown, rows, release_ts, direction, steps, device, seed, log)
    return written


def _sweep(method, x, measure, release_ts, direction, steps, batch_size, device, seed, log) -> tuple[list, list, list]:
    """Translate x at each t_r with the same seed and measure it (``measure(x, y)``) -> (entries, flat rows,
    first outputs)."""
    from translab.evaluation import translate_all

    entries, rows, shown = [], [], []
    for t_r in release_ts:
        log(f"[release] t_r={t_r}: translating {x.shape[0]} images {direction} with {steps} steps")
        t0 = time.perf_counter()
        gen = torch.Generator().manual_seed(seed)
        y, nfe, seconds = translate_all(method.with_inference(release_t=t_r), x, direction, steps, batch_size, device, gen,
                                        False, f"t_r={t_r}")
        metrics = measure(x, y)
        row = flat_row(t_r, nfe, metrics)
        rows.append(row)
        shown.append(y[:OUTPUTS_SHOWN])
        entries.append({"release_t": t_r, "nfe_per_image": nfe, "translate_seconds": round(seconds, 3),
                        "metrics": metrics})
        log(f"[release] t_r={t_r}: " + ", ".join(f"{label} {row[k]:.4g}" for k, label in COLUMNS[2:]
                                                 if row[k] is not None) +
            f" ({time.perf_counter() - t0:.1f} s)")
    return entries, rows, shown


def _write_tables(out: Path, head: dict, rows: list, entries: list, direction: str, steps: int,
                  n_inputs: int) -> list[Path]:
    written = [write_json(out / "unit_release_sweep.json", {**head, "table": rows, "entries": entries, "what": (
        "for each release time t_r, the source test images translated with the same seed and measured as "
        "`translab evaluate` measures (FID/KID against the target domain's real test images)")})]
    md = out / "unit_release_sweep.md"
    md.write_text(f"# UNIT-DDPM release-time sweep ({direction}, {steps} steps, {n_inputs} inputs)\n\n"
                  + markdown_table(rows) + "\n")
    written.append(md)
    return written


def _write_pictures(method, pair, out: Path, x, shown: list, rows: list, release_ts: list, direction: str,
                    steps: int, device: str, seed: int, log) -> list[Path]:
    """The trade-off plot, the outputs at each t_r, the generators and the two chains."""
    src = direction.split("2")[0]
    panels = [(k, label) for k, label in COLUMNS[2:] if any(r[k] is not None for r in rows)]
    faith = "hue_error_deg" if any(r["hue_error_deg"] is not None for r in rows) else "transport_cost"
    real_key = next((k for k in ("fid_classifier", "fid_inception", "accuracy") if any(r[k] is not None for r in rows)),
                    None)
    written = [figures.release_tradeoff_plot(rows, panels, (faith, real_key) if real_key else None,
                                             out / "unit_release_tradeoff.png",
                                             f"UNIT-DDPM {direction}: release time sweep ({x.shape[0]} inputs)")]
    n_show = min(OUTPUTS_SHOWN, x.shape[0])
    written.append(figures.image_table(
        [x[:n_show]] + shown, out / "unit_release_outputs.png",
        row_labels=[f"input ({src.upper()})"] + [f"t_r = {t_r}" for t_r in release_ts],
        title=f"UNIT-DDPM {direction}: the same {n_show} inputs and seed at each release time t_r ({steps} steps)"))
    written.append(generators_picture(method, pair, out / "unit_generators.png", device=device))
    chain_t = method.cfg.release_t
    log(f"[chains] both chains of {min(CHAIN_INPUTS, x.shape[0])} inputs at t_r={chain_t}")
    written.append(chains_picture(method, x, direction, steps, chain_t, out / "unit_chains.png", device, seed))
    return written
