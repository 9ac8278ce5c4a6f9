"""Exact discrete optimal transport between two test sets: the ``ot-exact`` reference row of the report.

The Kantorovich problem between the empirical measures of the source images x_1..x_n and the target images
y_1..y_m, uniform weights a = 1_n / n, b = 1_m / m (Kantorovich 1942; Peyre & Cuturi, "Computational Optimal
Transport", 2019, eq. 2.11):

    OT = min_P sum_ij P_ij c(x_i, y_j)   over   P >= 0,  P 1_m = a,  P^T 1_n = b,
    c(x, y) = ||x - y||^2 / D,   D = C * H * W,

solved exactly (a linear programme) with POT's network simplex, ``ot.emd`` (Bonneel, van de Panne, Paris and
Heidrich, "Displacement interpolation using Lagrangian mass transport", SIGGRAPH Asia 2011). c is the mean
squared difference per pixel and channel of images in [-1, 1]: the scale of
``translab.metrics.color.transport_cost`` and of neural OT's ``quadratic_cost``.

What the number bounds: no coupling of the n source images with the m real target images pays less, so no
map that sends the 2s onto the real test 3s (each 3 receiving an equal share) does either. A translator whose
outputs are new images, not real 3s, is not bound by it: its cost may be lower than OT (ratio < 1).

The plan is cached on disk (``$TRANSLAB_CACHE/ot-exact/plans``, see ``translab.feature_cache.cache_root``) as
its at most n + m - 1 non-zero entries, keyed by a SHA-256 of both image tensors, so a changed image never
hits a stale plan. ``evaluate_ot_exact`` writes the result as an evaluation file (method ``ot-exact``) into a
pseudo run directory, with the same metrics as ``translab evaluate`` for the assigned target images; a report
shows the ratio to it only when that directory is among the compared runs (no result is kept elsewhere).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from translab import feature_cache
from translab.checkpoint import atomic_path
from translab.data.base import DataError
from translab.methods.base import MethodError

METHOD = "ot-exact"
NUM_ITER_MAX = 100_000_000  # network simplex pivots; 1,032 x 1,010 images converge in far fewer
PLAN_VERSION = "ot-exact plan v1: uniform weights, c = ||x - y||^2 / D in float64, ot.emd"
_DATA_KEYS_IGNORED = ("root", "num_workers")  # never change the images (dataset.source names the data read)


class OTSolverError(MethodError):
    """The network simplex did not reach an optimal plan (iteration limit, infeasible or unbounded)."""


@dataclass
class OTPlan:
    """An optimal plan between n source and m target images.

    plan: (n, m) float64 numpy array, rows sum to 1/n and columns to 1/m; cost: sum(plan * c), in [-1, 1]
    per-pixel MSE units; solve_seconds: the network simplex's time when it was solved (also for a plan read
    from the cache); cached: whether this call read it from the cache; cache_path: its file (None: not cached).
    """
    plan: np.ndarray
    cost: float
    solve_seconds: float
    cached: bool = False
    cache_path: Path | None = None


# --------------------------------------------------------------------------------------------------
# the problem


def check_image_sets(x: torch.Tensor, y: torch.Tensor) -> None:
    """DataError unless x (n, C, H, W) and y (m, C, H, W) are non-empty, finite, with equal image shapes."""
    for name, t in (("source", x), ("target", y)):
        if not isinstance(t, torch.Tensor) or t.ndim != 4:
            shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise DataError(f"exact OT: the {name} set must be a tensor (N, C, H, W), got {shape}")
        if t.shape[0] == 0:
            raise DataError(f"exact OT: the {name} set is empty (shape {tuple(t.shape)}); expected at least 1 image")
        if not torch.isfinite(t).all():
            raise DataError(f"exact OT: the {name} set holds NaN or infinite pixels; expected finite images")
    if x.shape[1:] != y.shape[1:]:
        raise DataError(f"exact OT: source images {tuple(x.shape[1:])} and target images {tuple(y.shape[1:])} "
                        f"differ in shape; expected the same (C, H, W)")


def cost_matrix(x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """c_ij = ||x_i - y_j||^2 / D in float64: x (n, C, H, W), y (m, C, H, W) -> (n, m) numpy array, >= 0."""
    check_image_sets(x, y)
    a, b = x.detach().cpu().double().flatten(1), y.detach().cpu().double().flatten(1)
    sq = a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2.0 * a @ b.T
    return (sq.clamp_min(0.0) / a.shape[1]).numpy()


def solve(cost: np.ndarray, num_iter_max: int = NUM_ITER_MAX) -> np.ndarray:
    """Optimal plan (n, m) float64 for a cost matrix (n, m) and uniform weights, by POT's network simplex.

    OTSolverError when ot.emd reports anything but an optimal solution (e.g. numItermax reached).
    """
    import ot

    n, m = cost.shape
    a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
    with warnings.catch_warnings():  # POT warns on failure; the result code below turns that into an error
        warnings.simplefilter("ignore", UserWarning)
        plan, log = ot.emd(a, b, np.ascontiguousarray(cost, dtype=np.float64), numItermax=int(num_iter_max),
                           log=True)
    if log.get("result_code") != 1:  # 1 = OPTIMAL in POT's network simplex
        raise OTSolverError(f"exact OT: POT's network simplex did not find the optimal plan for {n} x {m} images "
                            f"(result code {log.get('result_code')}: {log.get('warning')}); expected code 1 "
                            f"(optimal) within numItermax={num_iter_max}: raise it")
    return plan


def plan_cost(plan: np.ndarray, cost: np.ndarray) -> float:
    """sum_ij plan_ij c_ij: the mean transport cost of a plan (both (n, m))."""
    return float((plan * cost).sum())


def assignment(plan: np.ndarray) -> np.ndarray:
    """Each source row's target with the largest plan mass: (n, m) -> (n,) int64 indices into the targets.

    With n != m the optimal plan splits mass: each source carries 1/n and each target needs 1/m, so some rows
    send their mass to two (rarely more) targets (a vertex of the transport polytope has at most n + m - 1
    non-zero entries). The hard assignment keeps the largest share; it can use a target twice (n > m) or
    leave targets unused (n < m), and its cost can differ slightly from the plan's.
    """
    return np.asarray(plan.argmax(axis=1), dtype=np.int64)


# --------------------------------------------------------------------------------------------------
# the plan cache


def plan_key(x: torch.Tensor, y: torch.Tensor) -> str:
    """SHA-256 over the plan's definition and both image tensors' dtype, shape and bytes."""
    h = hashlib.sha256(PLAN_VERSION.encode())
    h.update(feature_cache.images_digest(x).encode())
    h.update(feature_cache.images_digest(y).encode())
    return h.hexdigest()


def plan_path(x: torch.Tensor, y: torch.Tensor) -> Path:
    """Cache file of the plan between x and y: $TRANSLAB_CACHE/ot-exact/plans/<key>.safetensors."""
    return feature_cache.cache_root() / "ot-exact" / "plans" / f"{plan_key(x, y)[:32]}.safetensors"


def save_sparse_plan(plan: np.ndarray, path: Path, meta: dict) -> None:
    """Write the non-zero entries (rows, cols int64, mass float64) and the shape, atomically
    (checkpoint.atomic_path: a temporary file in the same folder, then a rename)."""
    from safetensors.torch import save_file

    rows, cols = np.nonzero(plan)
    tensors = {"rows": torch.from_numpy(rows.astype(np.int64)), "cols": torch.from_numpy(cols.astype(np.int64)),
               "mass": torch.from_numpy(plan[rows, cols].astype(np.float64)),
               "shape": torch.tensor(plan.shape, dtype=torch.int64)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={k: str(v) for k, v in meta.items()})


def load_sparse_plan(path: Path) -> tuple[np.ndarray, dict]:
    """(dense plan (n, m) float64, metadata) from a file written by ``save_sparse_plan``."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        t = {k: f.get_tensor(k) for k in ("rows", "cols", "mass", "shape")}
    plan = np.zeros(tuple(int(s) for s in t["shape"]), dtype=np.float64)
    plan[t["rows"].numpy(), t["cols"].numpy()] = t["mass"].numpy()
    return plan, meta


def _cached_plan(path: Path, cost: np.ndarray) -> OTPlan | None:
    """The cached plan when readable and of the right shape, else None (with a warning when damaged)."""
    if not path.is_file():
        return None
    try:
        plan, meta = load_sparse_plan(path)
    except Exception as e:  # a damaged entry is solved again and overwritten, never trusted
        warnings.warn(f"exact OT cache: could not read {path} ({e}); solving again", stacklevel=3)
        return None
    if plan.shape != cost.shape:
        warnings.warn(f"exact OT cache: {path} holds a {plan.shape} plan, expected {cost.shape}; solving again",
                      stacklevel=3)
        return None
    return OTPlan(plan, plan_cost(plan, cost), float(meta.get("solve_seconds", "nan")), True, path)


def exact_plan(x: torch.Tensor, y: torch.Tensor, use_cache: bool = True,
               num_iter_max: int = NUM_ITER_MAX) -> OTPlan:
    """The optimal plan between source images x (n, C, H, W) and targets y (m, C, H, W), both in [-1, 1].

    Read from the cache when an entry for exactly these images exists, else solved (and stored when the
    cache is writable; a cache that cannot be written is reported in a warning and skipped).
    """
    cost = cost_matrix(x, y)
    path = plan_path(x, y) if use_cache else None
    if path is not None and (hit := _cached_plan(path, cost)) is not None:
        return hit
    t0 = time.perf_counter()
    plan = solve(cost, num_iter_max)
    seconds = time.perf_counter() - t0
    if path is not None:
        try:
            save_sparse_plan(plan, path, {"solve_seconds": seconds, "cost": plan_cost(plan, cost),
                                          "version": PLAN_VERSION})
        except OSError as e:
            warnings.warn(f"exact OT cache: could not write {path} ({e}); the plan is not kept "
                          f"(set ${feature_cache.ENV} to a writable folder)", stacklevel=2)
            path = None
    return OTPlan(plan, plan_cost(plan, cost), seconds, False, path)


# --------------------------------------------------------------------------------------------------
# the reference row


def _data_defaults() -> dict:
    """Every DataConfig field with its default value."""
    from translab.config import DataConfig

    return asdict(DataConfig())


def data_identity(e: dict) -> str | None:
    """Which OT problem an evaluation's transport cost belongs to, as a canonical JSON string.

    Built from the evaluation file ``e`` (dataset name, source, image size, direction, split, numbers of
    inputs and reference images) and its data config: ``e["data_config"]`` (ot-exact files) or the run's
    config.yaml (``e["_run_dir"]``), without the fields that do not change which images are used. None when
    the data config cannot be read. Fields missing from a data config (saved before they existed) count with
    their default value.
    """
    import yaml

    data = e.get("data_config")
    if data is None and e.get("_run_dir") is not None:
        try:
            data = (yaml.safe_load((Path(e["_run_dir"]) / "config.yaml").read_text()) or {}).get("data")
        except (OSError, ValueError, AttributeError):
            data = None
    d = e.get("dataset") or {}
    if not isinstance(data, dict) or not d:
        return None
    data = {**_data_defaults(), **data}  # a config saved before a field existed has that field's default
    ident = {"data": {k: v for k, v in sorted(data.items()) if k not in _DATA_KEYS_IGNORED},
             "direction": e.get("direction"),
             **{k: d.get(k) for k in ("type", "name", "source", "image_size", "split", "n_inputs", "n_reference")}}
    return json.dumps(ident, sort_keys=True)


def _say(progress: bool, msg: str) -> None:
    if progress:
        print(f"[ot-exact] {msg}", flush=True)


def evaluate_ot_exact(out_dir: str | Path, limit: int | None = None, inception: bool = True, progress: bool = True,
                      data_cfg=None, device: str = "cpu", batch_size: int = 64, use_cache: bool = True,
                      protocol: str = "translab") -> Path:
    """Solve the exact OT between the source and target test splits; write OUT/eval/ot-exact_a2b_nosteps.json.

    data_cfg: a translab.config.DataConfig (default: Colored MNIST 2 -> 3); limit: the first N images of
    each test split. The assigned target images (``assignment``) are scored with ``translab evaluate``'s
    metric assembly (translab.evaluation.measure_outputs), so FID/KID, accuracy, hue error, SSIM and
    transport cost compare with the other rows; the plan's own cost is ``metrics.ot_exact.cost``.
    ``protocol``: a key of translab.evaluation.PROTOCOLS, the test sets coupled (asbm: the published Colored MNIST
    sets of 10,000 images each, with that protocol's FID floor in ``metrics.protocol_floor``).
    Returns the JSON's path (its stem ends in _limitN with ``limit``, as translab.evaluation.eval_stem names it).
    """
    from translab.config import DataConfig
    from translab.data import build_domain_pair
    from translab.evaluation import (MSE_UNITS, PROTOCOLS, EvalOptions, build_extractors, check_protocol, eval_stem,
                                     measure_outputs, protocol_floor, protocol_test_sets, target_class_name,
                                     write_samples)
    from translab.rundir import RunDir, json_safe

    t_start = time.perf_counter()
    data_cfg = data_cfg or DataConfig()
    pair = build_domain_pair(data_cfg)
    check_protocol(protocol, data_cfg.dataset, data_cfg.image_size, data_cfg.channels)
    opts = EvalOptions(limit=limit, inception=inception, progress=progress, device=device, batch_size=batch_size,
                       protocol=protocol)
    x, real, truth = protocol_test_sets(pair, "a", "b", opts)
    _say(progress, f"exact OT between {x.shape[0]} test images of {pair.domain_names[0]} and {real.shape[0]} of "
                   f"{pair.domain_names[1]} ({pair.name})")
    ot_plan = exact_plan(x, real, use_cache=use_cache)
    _say(progress, f"cost {ot_plan.cost:.5f}; solved in {ot_plan.solve_seconds:.2f} s"
                   + (f" (read from {ot_plan.cache_path})" if ot_plan.cached else ""))
    idx = assignment(ot_plan.plan)
    y = real[torch.from_numpy(idx)]
    metrics = {"cycle_error": {"available": False, "reason": "ot-exact couples two finite sets; it is not a "
                                                             "translator that could map its outputs back"}}
    _say(progress, "measuring the assigned target images" + (" (Inception features)" if inception else ""))
    built = build_extractors(data_cfg.dataset, opts)  # one Inception and one classifier for the targets and the floor
    metrics.update(measure_outputs(x, y, real, data_cfg.dataset, target_class_name(pair, "b", data_cfg.dataset), "b",
                                   opts, built, counterpart=truth))
    metrics["ot_exact"] = _plan_summary(ot_plan, idx, MSE_UNITS)
    if protocol != "translab":
        metrics["protocol_floor"] = protocol_floor(pair, "b", real, opts, built[0])

    run = RunDir(out_dir)
    stem = eval_stem(METHOD, "a2b", None, {}, limit, protocol)
    samples_pt, grid_png, n_show = write_samples(run.eval, stem, x, y, truth)
    result = json_safe(_result_dict(run, pair, data_cfg, x, real, limit, metrics, ot_plan, t_start,
                                    {"tensors": samples_pt.name, "grid": grid_png.name, "count": n_show,
                                     "what": f"first {n_show} test images of domain a (row 1) and the target test "
                                             f"image the exact OT plan sends most of each one's mass to (row 2)"},
                                    batch_size, device))
    result["protocol"].update(name=protocol, test_sets=PROTOCOLS[protocol])
    return run.write_json(f"eval/{stem}.json", result)


def _plan_summary(ot_plan: OTPlan, idx: np.ndarray, units: str) -> dict:
    """metrics.ot_exact: the plan's cost and how far the hard assignment is from it."""
    import ot

    n, m = ot_plan.plan.shape
    nonzero_per_row = (ot_plan.plan > 0).sum(axis=1)
    uses = np.bincount(idx, minlength=m)
    return {"available": True, "cost": ot_plan.cost, "units": units,
            "what": "sum of plan x c(x, y) over the exact optimal plan with uniform weights (the least any "
                    "coupling of these inputs with the real target images pays)",
            "solver": f"POT {ot.__version__} ot.emd (network simplex, Bonneel et al. 2011), float64 costs",
            "num_iter_max": NUM_ITER_MAX, "solve_seconds": ot_plan.solve_seconds, "plan_cached": ot_plan.cached,
            # the file name only: the cache folder is a per-user path ($TRANSLAB_CACHE/ot-exact/plans)
            "plan_file": ot_plan.cache_path.name if ot_plan.cache_path else None,
            "n_sources": n, "n_targets": m, "plan_nonzeros": int((ot_plan.plan > 0).sum()),
            "sources_split": int((nonzero_per_row > 1).sum()),
            "targets_assigned_once": int((uses == 1).sum()), "targets_assigned_more": int((uses > 1).sum()),
            "targets_unassigned": int((uses == 0).sum()),
            "assignment": "each source's target with the largest plan mass"}


def _result_dict(run, pair, data_cfg, x, real, limit, metrics, ot_plan, t_start, samples, batch_size, device):
    """The evaluation file's fields, as ``translab evaluate`` writes them (translab.evaluation.evaluate_run)."""
    from translab.evaluation import INCEPTION_NOTE
    from translab.shipped import portable_path

    return {
        "run": portable_path(run.path), "run_name": run.path.name, "method": METHOD, "trained_as": None, "as_method": None,
        "direction": "a2b", "steps": None, "overrides": {}, "checkpoint": None,
        "reference": {"kind": "exact optimal transport between the test sets",
                      "note": "not a translator: its outputs are real target test images"},
        "data_config": asdict(data_cfg),
        "dataset": {"type": data_cfg.dataset, "name": pair.name, "source": pair.source,
                    "image_size": pair.image_size, "source_domain": pair.domain_names[0],
                    "target_domain": pair.domain_names[1], "split": "test", "n_inputs": int(x.shape[0]),
                    "n_reference": int(real.shape[0]), "limit": limit},
        "metrics": metrics,
        "cost": {"nfe_per_image": None, "images_per_s": None, "translate_seconds": ot_plan.solve_seconds,
                 "wall_seconds": time.perf_counter() - t_start, "device": device,
                 "threads": torch.get_num_threads(), "batch_size": batch_size, "seed": 0,
                 "note": "translate_seconds: POT's network simplex (one CPU thread) when the plan was solved; "
                         "no network is evaluated (NFE n/a)"},
        "training": None,
        "samples": samples,
        "protocol": {"inception": INCEPTION_NOTE,
                     "reference": f"real test images of the target domain ({real.shape[0]})"},
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
    }

