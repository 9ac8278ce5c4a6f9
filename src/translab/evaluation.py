"""Evaluate a trained run: translate the source domain's whole test split and measure the result.

Writes RUN/eval/<method>_<direction>_<steps>[_<overrides>].json with every metric that applies to the
dataset, the cost of translation and the training record, plus the first 16 inputs and outputs
(``..._samples.pt`` as uint8 tensors and ``..._grid.png``) so that reports never need to load a model.

Metrics (FID: Heusel et al. NeurIPS 2017; KID: Binkowski et al. ICLR 2018; SSIM: Wang et al. IEEE TIP 2004):
- all datasets: FID and KID against the target domain's real test images with two labelled feature
  extractors (``inception`` pool3; ``classifier``: penultimate features of translab's classifier), transport
  cost, SSIM, cycle error where the method translates both ways;
- hue-coloured datasets (cmnist, synthetic): hue error (never for greyscale images, data.channels = 1, which have
  no hue: the entry is left out, so reports use transport cost as the faithfulness axis);
- cmnist, emoji: target accuracy (the shipped digit reader; the shipped man/woman reader); other datasets:
  attribute accuracy when a classifier is given (``classifier_path``);
- emoji (OpenMoji man -> woman): skin tone and concept kept (the shipped readers' agreement between input and
  output) and, since its test sets are aligned pair by pair, retrieval of and distance to the true counterpart
  (translab.metrics.counterpart).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from translab import feature_cache
from translab.data.base import stack_dataset
from translab.data.cmnist_asbm import SEED as ASBM_SEED
from translab.data.cmnist_asbm import SIZE as ASBM_SIZE
from translab.methods.base import MethodError, check_direction
from translab.metrics.color import MSE_UNITS, hue_error, mean_squared_distance, target_accuracy, transport_cost
from translab.metrics.frechet import Extractor, labelled_distances
from translab.metrics.structure import ssim
from translab.paths import safe_name
from translab.rundir import json_safe

SAMPLES = 16
HUE_DATASETS = ("cmnist", "synthetic")
#: datasets whose target reader ships with translab (its arg-max is the target accuracy, its features classifier FID)
TARGET_READERS = {"cmnist": "cmnist", "emoji": "emoji-gender"}
#: attributes a translation must keep, read by shipped readers: {dataset: {metric key: shipped classifier}}
KEPT_READERS = {"emoji": {"tone_kept": "emoji-tone", "concept_kept": "emoji-concept"}}
#: the shipped reader whose penultimate features are the space of the counterpart retrieval and feature distance
COUNTERPART_SPACE = {"emoji": "emoji-concept"}
INCEPTION_NOTE = ("Inception FID/KID: torchmetrics with antialias=False (torch-fidelity's resize), on the plain "
                  "test sets (not tiled to 10,000 images)")


@dataclass
class EvalOptions:
    direction: str = "a2b"
    steps: int | None = None
    limit: int | None = None
    as_method: str | None = None
    overrides: dict = field(default_factory=dict)
    batch_size: int = 64
    device: str = "cpu"
    seed: int = 0
    inception: bool = True
    classifier_path: str | None = None
    progress: bool | Callable[[int], None] = True  # a callable: called with each translated batch's image count
    cycle_limit: int | None = None  # cycle error on the first N inputs only (None: all)
    compile: bool = False  # torch.compile the networks for inference
    protocol: str = "translab"  # a key of PROTOCOLS: which test sets the run is measured on


#: evaluation protocols: name -> the test sets it measures on
PROTOCOLS = {
    "translab": "the source domain's test split translated once and compared with the target domain's test split",
    "asbm": ("the published Colored MNIST protocol (ASBM, Gushchin et al. NeurIPS 2024): each test digit set "
             f"tiled to {ASBM_SIZE:,} images and recoloured with seed {ASBM_SEED} (translab.data.cmnist_asbm), "
             "every tiled source image translated once and compared with the tiled, recoloured target test set; "
             f"floor: the FID between the target set and its recolouring with seed {ASBM_SEED + 1}"),
}


def check_protocol(protocol: str, dataset: str, image_size: int, channels: int) -> str:
    """``protocol`` if it is known and fits the run's data; MethodError naming what was expected otherwise."""
    if protocol not in PROTOCOLS:
        raise MethodError(f"unknown evaluation protocol '{protocol}': expected one of {', '.join(PROTOCOLS)}")
    if protocol == "asbm" and (dataset, image_size, channels) != ("cmnist", 32, 3):
        raise MethodError(f"--protocol asbm is the published Colored MNIST protocol: it needs a run trained on "
                          f"cmnist at 32x32 RGB, not {dataset} at {image_size}x{image_size} with {channels} channels")
    return protocol


def eval_stem(method_name: str, direction: str, steps: int | None, overrides: dict, limit: int | None = None,
              protocol: str = "translab") -> str:
    """File stem of an evaluation: method_direction_steps, plus the inference overrides when there are any, plus
    _limitN when only the first N test images were used (so a quick run never overwrites a full one), plus
    _<protocol> for a protocol other than translab's."""
    stem = f"{method_name}_{direction}_{steps if steps else 'nosteps'}"
    if overrides:
        stem += "_" + safe_name("_".join(f"{k.split('.')[-1]}-{v}" for k, v in sorted(overrides.items())))
    if limit:
        stem += f"_limit{limit}"
    if protocol != "translab":
        stem += f"_{protocol}"
    return stem


# --------------------------------------------------------------------------------------------------
# translation


def translate_all(method, x: torch.Tensor, direction: str, steps: int | None, batch_size: int, device: str,
                  generator: torch.Generator, progress: bool | Callable[[int], None],
                  desc: str) -> tuple[torch.Tensor, int, float]:
    """Translate x (N, 3, H, W) in [-1, 1] in batches -> (outputs on CPU, NFE per image, seconds).

    ``progress``: True shows a bar of its own; a callable is told each batch's image count instead."""
    outs, nfes = [], set()
    bar = None
    if progress and not callable(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=x.shape[0], desc=desc, unit="img", dynamic_ncols=True)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(0, x.shape[0], batch_size):
        tr = method.translate(x[i:i + batch_size].to(device), direction, steps=steps, generator=generator)
        outs.append(tr.images.detach().float().cpu())
        nfes.add(int(tr.nfe))
        if bar is not None:
            bar.update(tr.images.shape[0])
        elif callable(progress):
            progress(tr.images.shape[0])
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    if len(nfes) > 1:
        raise MethodError(f"{method.name} reported different NFE per batch: {sorted(nfes)}")
    return torch.cat(outs), (nfes.pop() if nfes else 0), seconds


# --------------------------------------------------------------------------------------------------
# feature extractors


_REAL_CACHE: dict[tuple, torch.Tensor] = {}


def reference_key(domain: str) -> tuple:
    """Cache key of a real reference set (the images' own bytes complete it in ``features_for``)."""
    return ("reference", domain)


def build_extractors(dataset: str, opts: EvalOptions) -> tuple[list[Extractor], object | None]:
    """[inception, classifier] extractors (each possibly unavailable with a reason) and the classifier model."""
    from translab.metrics.classifier import classifier_outputs, load_classifier, shipped_classifier_path
    from translab.metrics.inception import PROTOCOL, InceptionUnavailable, inception_features, load_inception

    extractors = []
    if opts.inception:
        try:
            inc = load_inception(opts.device)
            extractors.append(Extractor("inception", lambda im: inception_features(inc, im, opts.batch_size),
                                        f"{PROTOCOL}; weights: {inc.source}",
                                        cache_id=f"inception {PROTOCOL} {inc.source} {opts.device}"))
        except InceptionUnavailable as e:
            extractors.append(Extractor("inception", reason=str(e)))
    else:
        extractors.append(Extractor("inception", reason="skipped on request (--no-inception)"))
    clf, path = None, opts.classifier_path
    if path is None and dataset in TARGET_READERS:
        path = str(shipped_classifier_path(TARGET_READERS[dataset]))
    if path is None:
        extractors.append(Extractor("classifier", reason=f"no classifier configured for dataset '{dataset}': pass "
                                    f"--classifier PATH (e.g. from `translab classifier train celeba-gender`)"))
    else:
        clf = load_classifier(path, opts.device)
        extractors.append(Extractor("classifier", lambda im: classifier_outputs(clf, im, opts.batch_size)[0],
                                    f"penultimate layer ({clf.num_features}-d) of translab's classifier "
                                    f"{Path(path).name} "
                                    f"(classes {', '.join(clf.spec.classes)})",
                                    cache_id=f"classifier {Path(path).resolve()} {Path(path).stat().st_mtime_ns}"))
        clf.path = path
    return extractors, clf


def features_for(extractors: list[Extractor], images: torch.Tensor, cache_key: tuple | None = None) -> dict:
    """{extractor name: features (N, D)} for the available extractors.

    With ``cache_key`` (given for real reference sets) the features are cached in memory and on disk
    (``translab.feature_cache``), keyed by ``cache_key``, the extractor's exact weights and the images' bytes.
    """
    out = {}
    digest = None if cache_key is None else feature_cache.images_digest(images)
    for ex in extractors:
        if not ex.available:
            continue
        if cache_key is None:
            out[ex.name] = ex.fn(images)
            continue
        key = cache_key + (ex.name, ex.cache_id)
        if key + (digest,) not in _REAL_CACHE:
            feats = feature_cache.load(key, images)
            if feats is None:
                feats = ex.fn(images)
                feature_cache.store(key, images, feats)
            _REAL_CACHE[key + (digest,)] = feats
        out[ex.name] = _REAL_CACHE[key + (digest,)]
    return out


# --------------------------------------------------------------------------------------------------
# the evaluation


def classifier_accuracy(clf, outputs: torch.Tensor, target_name: str, batch_size: int) -> dict:
    """Share of outputs the classifier reads as class ``target_name``, or an unavailable entry."""
    from translab.metrics.classifier import classifier_outputs

    if clf is None:
        return {"available": False, "reason": "no classifier configured (--classifier PATH)"}
    if target_name not in clf.spec.classes:
        return {"available": False, "reason": f"classifier {Path(clf.path).name} has classes {clf.spec.classes}, "
                                              f"not the target '{target_name}'"}
    _, pred = classifier_outputs(clf, outputs, batch_size)
    idx = clf.spec.classes.index(target_name)
    return {"available": True, "value": target_accuracy(pred, idx), "target": target_name,
            "classifier": Path(clf.path).name}


def target_class_name(pair, tgt: str, dataset: str) -> str:
    ds = pair.get(tgt, "test")
    meta = getattr(ds, "meta", {}) or {}
    if dataset == "cmnist" and "digit" in meta and len(meta["digit"]):
        return str(int(meta["digit"][0]))
    return pair.domain_names[0 if tgt == "a" else 1]


def _train_record(run_dir: Path) -> dict | None:
    p = run_dir / "train_record.json"
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except ValueError:
        return {"unreadable": str(p)}


def compile_for_inference(method) -> None:
    """Replace every net (and EMA copy) by its torch.compile'd version (2-2.5x faster CPU inference here)."""
    for store in (method.nets, method.ema):
        for name in list(store.keys()):
            store[name] = torch.compile(store[name])


def shipped_reader(name: str, device: str = "cpu"):
    """A shipped classifier (translab.metrics.classifier.SHIPPED) loaded once per process and device."""
    from translab.metrics.classifier import load_classifier, shipped_classifier_path

    if (name, device) not in _READERS:
        path = shipped_classifier_path(name)
        clf = load_classifier(path, device)
        clf.path = path.name
        _READERS[(name, device)] = clf
    return _READERS[(name, device)]


_READERS: dict = {}


def true_counterparts(pair, src: str, tgt: str, limit: int | None = None) -> torch.Tensor | None:
    """The target test images aligned with the source test images as their true counterparts (N, C, H, W), for a
    pair whose test sets are paired (``notes['paired_test']``, the same ``meta['pair']`` ids in the same order);
    None otherwise."""
    if not (pair.notes or {}).get("paired_test"):
        return None
    ds, dt = pair.get(src, "test"), pair.get(tgt, "test")
    ids_s, ids_t = (getattr(d, "meta", {}).get("pair") for d in (ds, dt))
    if ids_s is None or ids_t is None or not torch.equal(ids_s[:limit], ids_t[:limit]):
        return None
    return stack_dataset(dt, limit).float()


def kept_readers(dataset: str, device: str = "cpu") -> dict:
    """{attribute ('tone', 'concept'): shipped reader} of the attributes a translation of ``dataset`` must keep."""
    return {key.removesuffix("_kept"): shipped_reader(name, device) for key, name in KEPT_READERS.get(dataset, {}).items()}


def kept_and_counterpart(x: torch.Tensor, y: torch.Tensor, dataset: str, opts: EvalOptions,
                         counterpart: torch.Tensor | None, inception: Extractor | None = None,
                         tgt: str = "b") -> dict:
    """The kept attributes of KEPT_READERS[dataset] and, with ``counterpart``, the counterpart metrics (feature
    distance in the ``inception`` extractor's space where it is available)."""
    from translab.metrics.counterpart import counterpart_metrics, reader_agreement

    out = {}
    for key, name in KEPT_READERS.get(dataset, {}).items():
        reader = shipped_reader(name, opts.device)
        out[key] = {**reader_agreement(reader, x, y, opts.batch_size), "reader": reader.path}
    if counterpart is None:
        return out
    features = {}
    if inception is not None and inception.available:
        f = [features_for([inception], im, key)["inception"]
             for im, key in ((x, None), (y, None), (counterpart, reference_key(tgt)))]
        features["inception"] = (inception.describe, tuple(f))
    space = shipped_reader(COUNTERPART_SPACE[dataset], opts.device) if dataset in COUNTERPART_SPACE else None
    out["counterpart"] = counterpart_metrics(x, y, counterpart, space, features, opts.batch_size)
    return out


def measure_outputs(x: torch.Tensor, y: torch.Tensor, real: torch.Tensor, dataset: str, target_name: str,
                    tgt: str, opts: EvalOptions, built: tuple | None = None,
                    counterpart: torch.Tensor | None = None) -> dict:
    """The metrics of outputs y of inputs x against the target domain's real test images (all but cycle error):
    the one metric assembly of `translab evaluate`, the exact-OT row and the latent sweeps.

    x, y (N, C, H, W) and real (M, C, H, W) in [-1, 1], C = 3 or 1 (greyscale: Inception and classifier see the
    grey level repeated to 3 channels; no hue error); ``tgt`` ('a' | 'b') keys the reference feature cache;
    ``built``: (extractors, classifier) from ``build_extractors`` when the caller measures many outputs.
    ``counterpart``: the true counterparts of x (rows aligned), where the test sets are paired (emoji).
    Returns {"fid_kid", "transport_cost", "ssim", ["hue_error",] "target_accuracy" | "attribute_accuracy",
    [the kept attributes, "counterpart"]}.
    """
    extractors, clf = built or build_extractors(dataset, opts)
    real_f = features_for(extractors, real, reference_key(tgt))
    fake_f = features_for(extractors, y)
    metrics = {"fid_kid": labelled_distances(extractors, real_f, fake_f, seed=opts.seed),
               "transport_cost": {"value": transport_cost(x, y), "units": MSE_UNITS},
               "ssim": ssim(x, y)}
    if dataset in HUE_DATASETS and y.shape[1] == 3:  # greyscale images have no hue: not applicable, left out
        metrics["hue_error"] = hue_error(x, y)
    acc = classifier_accuracy(clf, y, target_name, opts.batch_size)
    metrics["target_accuracy" if dataset in TARGET_READERS else "attribute_accuracy"] = acc
    inception = next((e for e in extractors if e.name == "inception"), None)
    metrics.update(kept_and_counterpart(x, y, dataset, opts, counterpart, inception, tgt))
    if acc.get("available") and dataset in KEPT_READERS:
        from translab.metrics.counterpart import translated_and_kept

        metrics["translated_and_kept"] = translated_and_kept(clf, target_name, kept_readers(dataset, opts.device),
                                                             x, y, opts.batch_size)
    return metrics


def write_samples(eval_dir: Path, stem: str, x: torch.Tensor, y: torch.Tensor,
                  counterpart: torch.Tensor | None = None) -> tuple[Path, Path, int]:
    """Save the first SAMPLES inputs x and outputs y ((N, C, H, W) in [-1, 1], C = 3 or 1), and their true
    counterparts where known, as uint8 tensors (N, C, H, W) and an RGB grid PNG (greyscale drawn grey; rows:
    inputs, outputs[, counterparts]).

    Returns (EVAL/<stem>_samples.pt, EVAL/<stem>_grid.png, number of images saved)."""
    from translab.image_io import save_grid, to_uint8

    n_show = min(SAMPLES, x.shape[0])
    samples_pt = eval_dir / f"{stem}_samples.pt"
    eval_dir.mkdir(parents=True, exist_ok=True)
    rows = {"inputs": x, "outputs": y} if counterpart is None else {"inputs": x, "outputs": y,
                                                                     "counterparts": counterpart}
    torch.save({**{k: torch.from_numpy(to_uint8(v[:n_show])).permute(0, 3, 1, 2).contiguous()
                   for k, v in rows.items()}, "indices": torch.arange(n_show)}, samples_pt)
    grid_png = save_grid([v[:n_show] for v in rows.values()], eval_dir / f"{stem}_grid.png")
    return samples_pt, grid_png, n_show


def cycle_error(method, x: torch.Tensor, y: torch.Tensor, back: str, steps: int | None, opts: EvalOptions,
                generator: torch.Generator) -> dict:
    """MSE between the first ``opts.cycle_limit`` inputs x and their outputs y translated back (``back``), or
    an unavailable entry for a method without that direction. x, y (N, 3, H, W) in [-1, 1]."""
    if back not in method.directions():
        return {"available": False, "reason": f"{method.name} has no {back} direction"}
    n_cyc = min(opts.cycle_limit or x.shape[0], x.shape[0])
    x_back, _, _ = translate_all(method, y[:n_cyc], back, steps, opts.batch_size, opts.device, generator,
                                 opts.progress, f"{method.name} {back} (cycle)")
    return {"available": True, "value": mean_squared_distance(x[:n_cyc], x_back), "units": MSE_UNITS,
            "n_images": n_cyc}


MEMORISATION_BANK = 10_000  # training targets searched for each output's nearest (the first N of the split)


def memorisation_bank(pair, tgt: str) -> torch.Tensor:
    """The training targets each output's nearest is searched among: the first MEMORISATION_BANK of the split."""
    return stack_dataset(pair.get(tgt, "train"), MEMORISATION_BANK).float()


def memorisation_of(pair, tgt: str, y: torch.Tensor, real: torch.Tensor, bank: torch.Tensor | None = None) -> dict:
    """translab.metrics.memorisation of outputs y against ``bank`` (default: memorisation_bank(pair, tgt))."""
    from translab.metrics.memorisation import memorisation

    bank = memorisation_bank(pair, tgt) if bank is None else bank
    return {**memorisation(y, bank, real), "bank": f"the first {bank.shape[0]} training images of the target domain"}


def _load_for_eval(run, opts: EvalOptions):
    """(method, config, checkpoint info, direction) for evaluating a run; clear errors for a wrong direction."""
    from translab.loading import load_method
    from translab.shipped import portable_path

    method, cfg, info = load_method(run.path, map_location=opts.device, as_method=opts.as_method,
                                    overrides=opts.overrides)
    info = {**info, "checkpoint": portable_path(info["checkpoint"])}
    if opts.compile:
        compile_for_inference(method)
    direction = check_direction(opts.direction)
    if direction not in method.directions():
        raise MethodError(f"{method.name} in {run.path} translates only {', '.join(method.directions())}, "
                          f"not {direction}")
    return method, cfg, info, direction


def _dataset_block(pair, dataset: str, src: str, tgt: str, x: torch.Tensor, real: torch.Tensor,
                   limit: int | None) -> dict:
    return {"type": dataset, "name": pair.name, "source": pair.source,
            "image_size": pair.image_size, "channels": int(x.shape[1]),
            "source_domain": pair.domain_names[0 if src == "a" else 1],
            "target_domain": pair.domain_names[0 if tgt == "a" else 1], "split": "test",
            "n_inputs": int(x.shape[0]), "n_reference": int(real.shape[0]), "limit": limit}


def domain_digit(pair, domain: str) -> int:
    """The digit of a Colored MNIST pair's domain ('a' | 'b'), from its domain names (swapped with data.reverse)."""
    return int(pair.domain_names[0 if domain == "a" else 1])


def protocol_test_sets(pair, src: str, tgt: str, opts: EvalOptions) -> tuple:
    """(inputs x, reference set real, true counterparts or None) of ``opts.protocol``, images (N, C, H, W)."""
    if opts.protocol == "asbm":
        from translab.data.cmnist_asbm import asbm_test_set

        size = opts.limit or ASBM_SIZE
        return (asbm_test_set(domain_digit(pair, src), size).images, asbm_test_set(domain_digit(pair, tgt), size).images,
                None)
    x = stack_dataset(pair.get(src, "test"), opts.limit).float()
    real = stack_dataset(pair.get(tgt, "test"), opts.limit).float()
    return x, real, true_counterparts(pair, src, tgt, opts.limit)


def protocol_floor(pair, tgt: str, real: torch.Tensor, opts: EvalOptions,
                   extractors: list[Extractor]) -> dict | None:
    """The published protocol's floor: FID/KID in ``extractors`` (build_extractors') between its reference set and
    the same digits recoloured with the next seed (two disjoint recolourings of the real target test set); None
    under translab's protocol."""
    if opts.protocol != "asbm":
        return None
    from translab.data.cmnist_asbm import asbm_test_set

    other = asbm_test_set(domain_digit(pair, tgt), real.shape[0], ASBM_SEED + 1).images
    return {"what": f"the reference set against its recolouring with seed {ASBM_SEED + 1} ({other.shape[0]} images)",
            "fid_kid": labelled_distances(extractors, features_for(extractors, real, reference_key(tgt)),
                                          features_for(extractors, other, reference_key(tgt)), seed=opts.seed)}


def run_metrics(method, pair, dataset: str, x, y, real, truth, direction: str, steps, opts: EvalOptions,
                gen: torch.Generator) -> dict:
    """Every metric of one evaluation: cycle error, measure_outputs, memorisation (translab's protocol) or the
    published protocol's floor (asbm: cycle error only with --cycle-limit)."""
    src, tgt = direction.split("2")
    if opts.protocol == "asbm" and opts.cycle_limit is None:
        metrics = {"cycle_error": {"available": False, "reason": "not part of the published protocol (pass "
                                                                   "--cycle-limit N to measure it)"}}
    else:
        metrics = {"cycle_error": cycle_error(method, x, y, f"{tgt}2{src}", steps, opts, gen)}
    built = build_extractors(dataset, opts)  # one Inception and one classifier for the outputs and the floor
    metrics.update(measure_outputs(x, y, real, dataset, target_class_name(pair, tgt, dataset), tgt, opts, built,
                                   counterpart=truth))
    if opts.protocol == "asbm":
        metrics["protocol_floor"] = protocol_floor(pair, tgt, real, opts, built[0])
    else:
        metrics["memorisation"] = memorisation_of(pair, tgt, y, real)
    return metrics


def evaluate_run(run_dir: str | Path, opts: EvalOptions) -> tuple[dict, Path]:
    """Evaluate one run directory; returns (the result dict, path of the JSON written under RUN/eval/)."""
    from translab.data import build_domain_pair
    from translab.rundir import RunDir
    from translab.shipped import portable_path

    t_start = time.perf_counter()
    run = RunDir(run_dir)
    trained_as = run.read_config().get("method")  # clear error when RUN is not a run directory
    method, cfg, info, direction = _load_for_eval(run, opts)
    check_protocol(opts.protocol, cfg.data.dataset, cfg.data.image_size, cfg.data.channels)
    steps = opts.steps or method.default_steps()
    src, tgt = direction.split("2")
    pair = build_domain_pair(cfg.data)
    dataset = cfg.data.dataset
    x, real, truth = protocol_test_sets(pair, src, tgt, opts)

    gen = torch.Generator().manual_seed(opts.seed)
    y, nfe, seconds = translate_all(method, x, direction, steps, opts.batch_size, opts.device, gen, opts.progress,
                                    f"{method.name} {direction}")
    metrics = run_metrics(method, pair, dataset, x, y, real, truth, direction, steps, opts, gen)
    stem = eval_stem(method.name, direction, steps, opts.overrides, opts.limit, opts.protocol)
    samples_pt, grid_png, n_show = write_samples(run.eval, stem, x, y, truth)
    result = {
        "run": portable_path(run.path), "run_name": run.path.name, "method": method.name, "trained_as": trained_as,
        "as_method": opts.as_method, "direction": direction, "steps": steps, "overrides": opts.overrides,
        # every model setting the translation ran with, overrides applied: the record of a shipped model's defaults
        "model_settings": dataclasses.asdict(method.cfg) if dataclasses.is_dataclass(method.cfg) else None,
        "checkpoint": info, "dataset": _dataset_block(pair, dataset, src, tgt, x, real, opts.limit),
        "metrics": metrics,
        "cost": {"nfe_per_image": nfe, "images_per_s": x.shape[0] / seconds if seconds > 0 else None,
                 "translate_seconds": seconds, "wall_seconds": time.perf_counter() - t_start,
                 "device": opts.device, "threads": torch.get_num_threads(), "batch_size": opts.batch_size,
                 "seed": opts.seed},
        "training": _train_record(run.path),
        "samples": {"tensors": samples_pt.name, "grid": grid_png.name, "count": n_show,
                    "what": f"first {n_show} test images of domain {src} (row 1) and their translations (row 2)"
                            + ("" if truth is None else ", their true counterparts (row 3)")},
        "protocol": {"name": opts.protocol, "test_sets": PROTOCOLS[opts.protocol], "inception": INCEPTION_NOTE,
                     "reference": f"real test images of the target domain ({real.shape[0]})"},
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    result = json_safe(result)
    return result, run.write_json(f"eval/{stem}.json", result)
