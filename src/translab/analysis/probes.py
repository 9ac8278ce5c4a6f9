"""Linear probes: what a representation (latents, images, noise) carries about hue and domain class.

Two probes, both linear in the (standardised) features, trained on one part of the images and scored on the
held-out rest (Alain & Bengio, "Understanding intermediate layers using linear classifier probes", 2016):

- hue: closed-form ridge regression (Hoerl & Kennard 1970) of (cos h, sin h) on the features, in its dual
  (kernel) form alpha = (K + lambda I)^(-1) Y, W = X^T alpha (the features may outnumber the images); the
  predicted hue is atan2(sin, cos) and the score is the mean circular error in degrees. A prediction that does
  not depend on a uniform hue errs by 90 degrees on average (the chance level).
- class: multinomial logistic regression with an L2 penalty, fitted by L-BFGS in torch; the score is the
  held-out accuracy, beside the majority-class share of the held-out labels (the chance level).

The penalty of each probe is chosen on a seeded validation quarter of the training part from a fixed grid, then
the probe is refitted on the whole training part. No scikit-learn.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: ridge penalties, in units of the feature dimension (standardised features: trace(K)/n = D)
RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
#: L2 penalties of the logistic probe (on the mean cross-entropy, per weight squared)
LOGISTIC_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
TEST_FRACTION = 0.3
VAL_FRACTION = 0.25
MIN_IMAGES = 8


def split_indices(n: int, seed: int, fraction: float = TEST_FRACTION) -> tuple[torch.Tensor, torch.Tensor]:
    """Seeded split of range(n) -> (train indices, held-out indices); each part holds at least 2 items."""
    if n < 4:
        raise ValueError(f"a probe needs at least 4 images to split into training and held-out parts, got {n}")
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(n, generator=g)
    k = min(max(2, round(n * fraction)), n - 2)
    return perm[k:], perm[:k]


class Standardiser:
    """Per-feature z-scores with the training part's mean and std (constant features keep std 1)."""

    def __init__(self, x: torch.Tensor):
        self.mean = x.mean(0)
        std = x.std(0) if x.shape[0] > 1 else torch.ones_like(self.mean)
        self.std = torch.where(std > 1e-12, std, torch.ones_like(std))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _features(x: torch.Tensor) -> torch.Tensor:
    if x.ndim < 2:
        raise ValueError(f"features must be (N, ...) with at least 2 dims, got shape {tuple(x.shape)}")
    return x.detach().double().cpu().flatten(1)


# --------------------------------------------------------------------------------------------------
# ridge regression (dual form)


def _ridge_predictors(x_fit: torch.Tensor, y_fit: torch.Tensor, lambdas: list[float]):
    """For standardised x_fit (n, D) and targets y_fit (n, K): a function (lambda, x) -> predictions (m, K).

    One eigendecomposition of K = X X^T serves every lambda: alpha = U diag(1/(s + lambda)) U^T (Y - mean Y).
    """
    y_mean = y_fit.mean(0)
    gram = x_fit @ x_fit.T
    s, u = torch.linalg.eigh(gram)
    s = s.clamp(min=0)
    uty = u.T @ (y_fit - y_mean)

    def predict(lam: float, x: torch.Tensor) -> torch.Tensor:
        alpha = u @ (uty / (s + lam)[:, None])
        return (x @ x_fit.T) @ alpha + y_mean

    return predict


def _circular_error_deg(pred_cs: torch.Tensor, hue_deg: torch.Tensor) -> torch.Tensor:
    """Predicted (cos, sin) (N, 2) and true hue (N,) in degrees -> circular distance (N,) in [0, 180]."""
    from translab.metrics.color import hue_distance

    pred = torch.rad2deg(torch.atan2(pred_cs[:, 1], pred_cs[:, 0])) % 360.0
    return hue_distance(pred, hue_deg.double())


def _hue_targets(hue_deg: torch.Tensor) -> torch.Tensor:
    rad = torch.deg2rad(hue_deg.double())
    return torch.stack([rad.cos(), rad.sin()], 1)


def hue_probe(features: torch.Tensor, hue_deg: torch.Tensor, train_idx: torch.Tensor, test_idx: torch.Tensor,
              seed: int = 0) -> dict:
    """Ridge probe of hue: features (N, ...) and hue (N,) in degrees -> held-out circular error summary.

    {"mean_error_deg", "median_error_deg", "chance_deg" (90), "constant_predictor_deg" (error of always
    predicting the training part's circular mean hue), "lambda", "n_train", "n_test", "dim"}.
    """
    x = _features(features)
    hue = hue_deg.double().cpu()
    fit_idx, val_idx = (train_idx[i] for i in split_indices(len(train_idx), seed + 1, VAL_FRACTION))
    grid = [r * x.shape[1] for r in RIDGE_GRID]
    std = Standardiser(x[fit_idx])
    predict = _ridge_predictors(std(x[fit_idx]), _hue_targets(hue[fit_idx]), grid)
    val_err = [float(_circular_error_deg(predict(lam, std(x[val_idx])), hue[val_idx]).mean()) for lam in grid]
    lam = grid[min(range(len(grid)), key=lambda i: val_err[i])]
    std = Standardiser(x[train_idx])
    predict = _ridge_predictors(std(x[train_idx]), _hue_targets(hue[train_idx]), [lam])
    err = _circular_error_deg(predict(lam, std(x[test_idx])), hue[test_idx])
    const = _hue_targets(hue[train_idx]).mean(0, keepdim=True).expand(len(test_idx), 2)
    return {"mean_error_deg": float(err.mean()), "median_error_deg": float(err.median()), "chance_deg": 90.0,
            "constant_predictor_deg": float(_circular_error_deg(const, hue[test_idx]).mean()),
            "lambda": lam, "validation_error_deg": dict(zip([f"{g:g}" for g in grid], val_err)),
            "n_train": int(len(train_idx)), "n_test": int(len(test_idx)), "dim": int(x.shape[1])}


# --------------------------------------------------------------------------------------------------
# logistic regression


def fit_logistic(x: torch.Tensor, y: torch.Tensor, num_classes: int, l2: float,
                 max_iter: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression: x (n, D) float64, y (n,) long -> (W (D, K), b (K,)).

    Minimises mean cross-entropy + l2 * ||W||^2 by L-BFGS (strong Wolfe line search), from zero.
    """
    w = torch.zeros(x.shape[1], num_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(num_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                            tolerance_grad=1e-9, tolerance_change=1e-12)

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + l2 * w.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


def _accuracy(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> float:
    return float(((x @ w + b).argmax(1) == y).double().mean())


def class_probe(features: torch.Tensor, labels: torch.Tensor, train_idx: torch.Tensor, test_idx: torch.Tensor,
                seed: int = 0) -> dict:
    """Logistic probe of a class label: features (N, ...) and labels (N,) in 0..K-1 -> held-out accuracy.

    {"accuracy", "chance" (majority share of the held-out labels), "l2", "n_train", "n_test", "dim", "classes"}.
    """
    x = _features(features)
    y = labels.long().cpu()
    k = int(y.max()) + 1
    fit_idx, val_idx = (train_idx[i] for i in split_indices(len(train_idx), seed + 1, VAL_FRACTION))
    std = Standardiser(x[fit_idx])
    val_acc = []
    for l2 in LOGISTIC_GRID:
        w, b = fit_logistic(std(x[fit_idx]), y[fit_idx], k, l2)
        val_acc.append(_accuracy(std(x[val_idx]), y[val_idx], w, b))
    best = max(range(len(LOGISTIC_GRID)), key=lambda i: (val_acc[i], LOGISTIC_GRID[i]))
    l2 = LOGISTIC_GRID[best]
    std = Standardiser(x[train_idx])
    w, b = fit_logistic(std(x[train_idx]), y[train_idx], k, l2)
    counts = torch.bincount(y[test_idx], minlength=k)
    return {"accuracy": _accuracy(std(x[test_idx]), y[test_idx], w, b),
            "chance": float(counts.max()) / max(1, len(test_idx)), "l2": l2,
            "validation_accuracy": dict(zip([f"{g:g}" for g in LOGISTIC_GRID], val_acc)),
            "n_train": int(len(train_idx)), "n_test": int(len(test_idx)), "dim": int(x.shape[1]), "classes": k}


# --------------------------------------------------------------------------------------------------
# the suite


def probe_suite(feature_sets: dict[str, torch.Tensor], labels: torch.Tensor, hue_deg: torch.Tensor | None = None,
                seed: int = 0, class_names: list[str] | None = None,
                attributes: dict[str, torch.Tensor] | None = None) -> dict:
    """Both probes on each feature set (e.g. {"latents", "images", "noise"}), on one shared seeded split.

    feature_sets: name -> (N, ...) tensors of the same N; labels (N,) class of each image; hue_deg (N,) degrees
    or None (no hue probe; images whose hue is NaN are left out of the hue probe); ``attributes``: further class
    labels (N,) in 0..K-1 by name (e.g. the emoji's tone and concept), each probed like the class.
    Returns {"split": {...}, "class_names", "<set name>": {"class": ..., "hue": ... or {"available": False},
    [attribute name: ...]}}.
    """
    n = int(labels.shape[0])
    for name, f in feature_sets.items():
        if f.shape[0] != n:
            raise ValueError(f"feature set '{name}' has {f.shape[0]} rows, labels have {n}")
    if n < MIN_IMAGES:
        reason = f"only {n} images; the probes need at least {MIN_IMAGES}"
        return {name: {"available": False, "reason": reason} for name in feature_sets}
    train_idx, test_idx = split_indices(n, seed)
    out: dict = {"split": {"n_train": int(len(train_idx)), "n_test": int(len(test_idx)), "seed": seed,
                           "held_out_fraction": TEST_FRACTION},
                 "class_names": class_names}
    hue_ok = None
    if hue_deg is not None:
        hue_ok = ~torch.as_tensor(hue_deg).double().isnan()
    for name, f in feature_sets.items():
        entry = {"class": class_probe(f, labels, train_idx, test_idx, seed)}
        if hue_ok is None:
            entry["hue"] = {"available": False, "reason": "the dataset has no per-image hue"}
        else:
            tr, te = train_idx[hue_ok[train_idx]], test_idx[hue_ok[test_idx]]
            if len(tr) < 4 or len(te) < 2:
                entry["hue"] = {"available": False, "reason": f"too few images with a hue ({len(tr)} + {len(te)})"}
            else:
                entry["hue"] = hue_probe(f, hue_deg, tr, te, seed)
        for key, values in (attributes or {}).items():
            entry[key] = class_probe(f, values, train_idx, test_idx, seed)
        out[name] = entry
    return out

