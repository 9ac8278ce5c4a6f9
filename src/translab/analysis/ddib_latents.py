"""DDIB's latent space: what the deterministic encodings look like, carry and preserve.

DDIB (Su et al., ICLR 2023, Sec. 3) encodes x_A with the source model's DDIM ODE to a latent z and decodes z
with the target model's ODE. Studied here, on the test images of both domains, each encoded by its own
domain's model (``bridge.encode(x, domain, steps)``):

- Gaussianity of z beside true N(0, I) samples (translab.analysis.gaussianity);
- linear probes of hue and domain class on z, on the images and on pure noise (translab.analysis.probes);
- a 2-D PCA of z coloured by hue, and the Frechet distance between the latents of A and of B;
- encode -> decode reconstruction error within a domain and the cycle error A -> B -> A against the number of
  DDIM steps (Song et al., DDIM, ICLR 2021, Sec. 5.4 measure the reconstruction error against steps; DDIB,
  Sec. 3.2, argues exact cycle consistency up to the ODE solver's discretisation error);
- spherical interpolation between two source latents, decoded in the target domain (DDIM, Sec. 5.3).

``bridge`` is anything with DDIB's interface: encode(x0 (N,3,H,W), domain, steps) -> z (N,3,H,W) and
decode(z, domain, steps) -> x0. Errors are the mean squared difference per pixel and channel in [-1, 1] units,
without clamping (the ODE itself, as the cycle argument of DDIB is about the ODE).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from translab.analysis import figures, write_json
from translab.analysis.gaussianity import gaussianity_report, reference_normal
from translab.analysis.probes import probe_suite

MSE_UNITS = "mean squared difference per pixel and channel, images in [-1, 1]"
DEFAULT_SWEEP = (10, 20, 50, 100, 250, 1000)
Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int,
            device: str | torch.device = "cpu") -> torch.Tensor:
    """fn applied to x (N, ...) in chunks of ``batch_size`` on ``device``; the result (N, ...) float on the CPU."""
    if x.shape[0] == 0:
        raise ValueError("no images to process")
    outs = [fn(x[i:i + batch_size].to(device)).detach().float().cpu() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(outs)


def per_image_mse(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x, y (N, 3, H, W) -> (N,) mean squared difference per pixel and channel."""
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    return (x.double() - y.double()).pow(2).flatten(1).mean(1)


def _summary(err: torch.Tensor) -> dict:
    return {"mean": float(err.mean()), "max": float(err.max()), "median": float(err.median())}


# --------------------------------------------------------------------------------------------------
# reconstruction and cycle error against steps


def reconstruction_sweep(bridge, x_a: torch.Tensor, x_b: torch.Tensor, steps_list: list[int], batch_size: int = 64,
                         device: str | torch.device = "cpu", log: Log = _quiet) -> dict:
    """Encode -> decode error in each domain and the cycle error A -> B -> A, for each number of DDIM steps.

    x_a, x_b (N, 3, H, W) in [-1, 1]. For each ``steps``:
      recon_a = |decode_a(encode_a(x_a)) - x_a|^2, recon_b likewise,
      cycle_aba = |decode_a(encode_b(decode_b(encode_a(x_a)))) - x_a|^2,
    each summarised by its mean, median and max over images (per image: mean over pixels and channels).
    """
    if not steps_list:
        raise ValueError("the steps sweep is empty")
    rows = []
    for steps in steps_list:
        t0 = time.perf_counter()

        def enc(d, steps=steps):
            return lambda v: bridge.encode(v, d, steps)

        def dec(d, steps=steps):
            return lambda v: bridge.decode(v, d, steps)

        log(f"[reconstruction] steps={steps}: encode/decode A ({x_a.shape[0]} images)")
        z_a = batched(enc("a"), x_a, batch_size, device)
        rec_a = batched(dec("a"), z_a, batch_size, device)
        log(f"[reconstruction] steps={steps}: encode/decode B ({x_b.shape[0]} images)")
        rec_b = batched(dec("b"), batched(enc("b"), x_b, batch_size, device), batch_size, device)
        log(f"[reconstruction] steps={steps}: cycle A -> B -> A")
        y_b = batched(dec("b"), z_a, batch_size, device)
        back = batched(dec("a"), batched(enc("b"), y_b, batch_size, device), batch_size, device)
        rows.append({"steps": int(steps),
                     # network evaluations per chain actually run (a schedule caps steps at its timesteps)
                     "nfe_per_chain": len(bridge.timesteps(steps)) if hasattr(bridge, "timesteps") else int(steps),
                     "recon_a": _summary(per_image_mse(x_a, rec_a)),
                     "recon_b": _summary(per_image_mse(x_b, rec_b)),
                     "cycle_aba": _summary(per_image_mse(x_a, back)),
                     "seconds": round(time.perf_counter() - t0, 3)})
        r = rows[-1]
        log(f"[reconstruction] steps={steps}: recon A {r['recon_a']['mean']:.3g} (max {r['recon_a']['max']:.3g}), "
            f"recon B {r['recon_b']['mean']:.3g}, cycle ABA {r['cycle_aba']['mean']:.3g} ({r['seconds']:.1f} s)")
    return {"rows": rows, "units": MSE_UNITS, "units_short": "MSE per pixel and channel",
            "n_images": {"a": int(x_a.shape[0]), "b": int(x_b.shape[0])},
            "series": {"recon_a": "A: encode, decode", "recon_b": "B: encode, decode",
                       "cycle_aba": "cycle A -> B -> A"},
            "clamped": False}


# --------------------------------------------------------------------------------------------------
# interpolation


def slerp(z0: torch.Tensor, z1: torch.Tensor, alpha: float) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985) per sample, as DDIM (Song et al. 2021, Sec. 5.3) interpolates:

    z(alpha) = sin((1 - alpha) theta) / sin(theta) z0 + sin(alpha theta) / sin(theta) z1,
    theta = arccos(<z0, z1> / (|z0| |z1|)), per sample of z0, z1 (N, ...); linear where theta ~ 0.
    """
    if z0.shape != z1.shape:
        raise ValueError(f"slerp endpoints differ in shape: {tuple(z0.shape)} vs {tuple(z1.shape)}")
    a, b = z0.double().flatten(1), z1.double().flatten(1)
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp(min=1e-300)
    theta = cos.clamp(-1, 1).acos()
    sin = theta.sin()
    small = sin.abs() < 1e-6
    safe = torch.where(small, torch.ones_like(sin), sin)
    w0 = torch.where(small, torch.full_like(sin, 1 - alpha), ((1 - alpha) * theta).sin() / safe)
    w1 = torch.where(small, torch.full_like(sin, alpha), (alpha * theta).sin() / safe)
    return (w0[:, None] * a + w1[:, None] * b).reshape(z0.shape).to(z0.dtype)


def interpolation_rows(bridge, x_src: torch.Tensor, src: str, tgt: str, steps: int | None, pairs: int = 3,
                       n_alpha: int = 7, device: str | torch.device = "cpu") -> tuple[list[torch.Tensor], list[float]]:
    """Rows [x_i, decode_tgt(slerp(z_i, z_j, alpha_k)) for k, x_j] for the image pairs (0,1), (2,3), ...

    x_src (N, 3, H, W) in the source domain; returns (rows of (n_alpha + 2, 3, H, W), alphas).
    """
    pairs = min(pairs, x_src.shape[0] // 2)
    if pairs < 1:
        raise ValueError(f"interpolation needs at least 2 source images, got {x_src.shape[0]}")
    x = x_src[: 2 * pairs].to(device)
    z = bridge.encode(x, src, steps).float()
    alphas = torch.linspace(0, 1, n_alpha).tolist()
    z0, z1 = z[0::2], z[1::2]
    interp = torch.cat([slerp(z0, z1, a) for a in alphas])  # (n_alpha * pairs, ...), alpha-major
    decoded = bridge.decode(interp, tgt, steps).float().cpu().reshape(n_alpha, pairs, *x.shape[1:])
    rows = [torch.cat([x[2 * i:2 * i + 1].cpu(), decoded[:, i], x[2 * i + 1:2 * i + 2].cpu()]) for i in range(pairs)]
    return rows, alphas


# --------------------------------------------------------------------------------------------------
# geometry: PCA and Frechet distance


def pca_2d(x: torch.Tensor) -> tuple[torch.Tensor, list[float]]:
    """x (N, ...) -> (coordinates on the first two principal axes (N, 2), their shares of the total variance)."""
    flat = x.double().flatten(1)
    flat = flat - flat.mean(0)
    _, s, vh = torch.linalg.svd(flat, full_matrices=False)
    k = min(2, vh.shape[0])
    coords = flat @ vh[:k].T
    if k < 2:
        coords = torch.cat([coords, torch.zeros(coords.shape[0], 2 - k, dtype=coords.dtype)], 1)
    var = s.pow(2)
    share = (var[:k] / var.sum().clamp(min=1e-300)).tolist()
    return coords, share


def frechet_report(z_a: torch.Tensor, z_b: torch.Tensor, x_a: torch.Tensor, x_b: torch.Tensor, seed: int = 0) -> dict:
    """Frechet distances (translab.metrics.frechet.frechet_distance, FID's formula on raw vectors):

    latents A vs latents B; two independent N(0, I) samples of the same sizes (the finite-sample floor, large
    when the dimension exceeds the number of images); the images of A vs B (pixel space, for scale).
    """
    from translab.metrics.frechet import frechet_distance

    ref_a = reference_normal(z_a.shape, seed + 101).flatten(1)
    ref_b = reference_normal(z_b.shape, seed + 202).flatten(1)
    return {"latents_a_vs_b": frechet_distance(z_a.flatten(1), z_b.flatten(1)),
            "reference_normal_vs_normal": frechet_distance(ref_a, ref_b),
            "images_a_vs_b": frechet_distance(x_a.flatten(1), x_b.flatten(1)),
            "dim": int(z_a[0].numel()), "n_a": int(z_a.shape[0]), "n_b": int(z_b.shape[0]),
            "what": "Frechet distance d^2 = |m1 - m2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) of flattened vectors"}


# --------------------------------------------------------------------------------------------------
# the whole DDIB analysis


#: class-valued meta keys probed where a dataset has them (translab.data.emoji: skin tone 0-5, concept index)
PROBED_ATTRIBUTES = ("tone", "concept")


def _meta(pair, domain: str, key: str, n: int) -> torch.Tensor | None:
    ds = pair.get(domain, "test")
    meta = getattr(ds, "meta", None) or {}
    return meta[key][:n].double() if key in meta else None


def _check_finite(z: torch.Tensor, what: str) -> None:
    from translab.methods.base import MethodError

    bad = int((~torch.isfinite(z)).sum())
    if bad:
        raise MethodError(f"{what}: {bad} latent values are not finite; the model's weights or steps are unusable")


@dataclass
class _Study:
    """What every section of the DDIB latent analysis reads: test images and latents per domain."""

    method: object
    pair: object
    out: Path
    head: dict
    x: dict
    z: dict
    steps: int
    seed: int
    log: Log


def analyse_ddib(method, pair, out_dir: str | Path, *, limit: int | None = None, sweep_limit: int = 32,
                 steps: int | None = None, sweep_steps: list[int] | None = None, batch_size: int = 64,
                 device: str = "cpu", seed: int = 0, header: dict | None = None, log: Log = print) -> list[Path]:
    """Run every DDIB latent analysis on ``pair``'s test images and write OUT/ddib_*.json and *.png.

    ``limit``: test images per domain for statistics, probes, PCA and Frechet (None: all); ``sweep_limit``:
    images per domain for the (expensive) reconstruction sweep; ``steps``: DDIM steps of the encodings (None:
    the model's default). Returns the written paths.
    """
    from translab.data.base import stack_dataset

    _check_both_domains_trained(method)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps = steps or method.default_steps()
    head = dict(header or {}, steps=steps, nfe_per_encoding=len(method.timesteps(steps)), seed=seed)
    x = {d: stack_dataset(pair.get(d, "test"), limit).float() for d in "ab"}
    z = {}
    for d in "ab":
        log(f"[encode] domain {d.upper()}: {x[d].shape[0]} test images, {steps} DDIM steps")
        z[d] = batched(lambda v, d=d: method.encode(v, d, steps), x[d], batch_size, device)
        _check_finite(z[d], f"latents of domain {d}")
    st = _Study(method, pair, out, head, x, z, steps, seed, log)
    written = _gaussianity_section(st) + _probe_and_geometry_sections(st)
    written += _interpolation_section(st, device)
    written += _reconstruction_section(st, sweep_limit, sweep_steps, batch_size, device)
    return written


def _check_both_domains_trained(method) -> None:
    from translab.methods.base import MethodError

    untrained = [d for d in "ab" if d not in getattr(method.cfg, "train_domains", "ab")]
    if untrained:
        raise MethodError(f"this DDIB model trained only domain(s) {', '.join(method.cfg.train_domains)}; the latent "
                          f"analysis encodes both domains with their own models, and domain "
                          f"{', '.join(untrained)} has untrained weights")


def _gaussianity_section(st: _Study) -> list[Path]:
    st.log("[gaussianity] per-image statistics beside N(0, I) samples")
    gauss = {d: gaussianity_report(st.z[d], st.seed + i) for i, d in enumerate("ab")}
    return [write_json(st.out / "ddib_gaussianity.json", {**st.head, "domains": gauss, "what": (
                "per-image statistics of the latents (each domain encoded by its own model), summarised over "
                "images, beside the same statistics of seeded N(0, I) samples of the same shape and count")}),
            figures.latent_histogram({"latents A": st.z["a"], "latents B": st.z["b"],
                                      "N(0, I) sample": reference_normal(st.z["a"].shape, st.seed)},
                                     st.out / "ddib_latent_histogram.png")]


def _probe_and_geometry_sections(st: _Study) -> list[Path]:
    st.log("[probes] linear probes of hue and domain on latents, images and noise")
    x, z, seed = st.x, st.z, st.seed
    n_a, n_b = x["a"].shape[0], x["b"].shape[0]
    labels = torch.cat([torch.zeros(n_a, dtype=torch.long), torch.ones(n_b, dtype=torch.long)])
    hue_a, hue_b = _meta(st.pair, "a", "hue", n_a), _meta(st.pair, "b", "hue", n_b)
    hue = torch.cat([hue_a, hue_b]) if hue_a is not None and hue_b is not None else None
    z_all, x_all = torch.cat([z["a"], z["b"]]), torch.cat([x["a"], x["b"]])
    attributes = {}
    for key in PROBED_ATTRIBUTES:
        va, vb = _meta(st.pair, "a", key, n_a), _meta(st.pair, "b", key, n_b)
        if va is not None and vb is not None:
            attributes[key] = torch.cat([va, vb]).long()
    probes = probe_suite({"latents": z_all, "images": x_all, "noise": reference_normal(z_all.shape, seed + 7)},
                         labels, hue, seed, class_names=list(st.pair.domain_names), attributes=attributes)
    st.log(probe_lines(probes))
    written = [write_json(st.out / "ddib_probes.json", {**st.head, "probes": probes, "what": (
        "held-out scores of linear probes: hue by ridge regression of (cos, sin) (mean circular error, degrees; "
        "chance 90), domain class (and tone, concept where the data has them) by L2 logistic regression "
        "(accuracy; chance = majority share); 'noise' is a seeded N(0, I) tensor of the latents' shape (a "
        "chance-level control)")})]
    st.log("[geometry] PCA and Frechet distance between the latents of A and B")
    coords, share = pca_2d(z_all)
    written.append(figures.pca_scatter(coords, labels, st.out / "ddib_latent_pca.png", tuple(st.pair.domain_names),
                                       hue, share, title=f"PCA of DDIB latents ({st.steps} steps)"))
    frechet = frechet_report(z["a"], z["b"], x["a"], x["b"], seed) if min(n_a, n_b) >= 2 else {
        "available": False, "reason": "fewer than 2 images in a domain"}
    written.append(write_json(st.out / "ddib_geometry.json", {**st.head, "pca_variance_share": share,
                                                               "frechet": frechet}))
    return written


def _interpolation_section(st: _Study, device: str) -> list[Path]:
    if st.x["a"].shape[0] < 2:
        st.log("[interpolation] skipped: needs at least 2 images of domain A")
        return []
    st.log("[interpolation] slerp between source latents, decoded in the target domain")
    rows, alphas = interpolation_rows(st.method, st.x["a"], "a", "b", st.steps, device=device)
    col_labels = ["input 1"] + [f"{a:.2f}" for a in alphas] + ["input 2"]
    return [figures.image_table(rows, st.out / "ddib_interpolation.png",
                                row_labels=[f"pair {i + 1}" for i in range(len(rows))], col_labels=col_labels,
                                title="slerp between two A latents, decoded by the B model")]


def _reconstruction_section(st: _Study, sweep_limit: int, sweep_steps: list[int] | None, batch_size: int,
                            device: str) -> list[Path]:
    k = min(sweep_limit, st.x["a"].shape[0], st.x["b"].shape[0])
    sweep_list = list(sweep_steps or DEFAULT_SWEEP)
    st.log(f"[reconstruction] sweep over steps {sweep_list} on {k} images per domain")
    sweep = reconstruction_sweep(st.method, st.x["a"][:k], st.x["b"][:k], sweep_list, batch_size, device, st.log)
    return [write_json(st.out / "ddib_reconstruction.json", {**st.head, "sweep": sweep}),
            figures.steps_sweep_plot({**sweep, "n_images": k}, st.out / "ddib_reconstruction.png")]


def probe_lines(probes: dict) -> str:
    """One line per feature set: held-out hue error and domain accuracy (for the command's printout)."""
    lines = []
    for name in ("latents", "images", "noise"):
        e = probes.get(name) or {}
        if e.get("available") is False:
            lines.append(f"  {name}: {e.get('reason')}")
            continue
        h, c = e.get("hue", {}), e.get("class", {})
        hue = f"{h['mean_error_deg']:.1f} deg" if "mean_error_deg" in h else "n/a"
        extra = "".join(f", {k} accuracy {e[k]['accuracy']:.3f} (chance {e[k]['chance']:.3f})"
                        for k in PROBED_ATTRIBUTES if k in e)
        lines.append(f"  {name}: hue error {hue}, domain accuracy {c.get('accuracy', math.nan):.3f} "
                     f"(chance {c.get('chance', math.nan):.3f}){extra}")
    return "\n".join(lines)
