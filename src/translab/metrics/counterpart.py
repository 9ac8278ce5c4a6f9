"""What a translation keeps, and how near it lands to the truth, on a benchmark whose test set holds every input's
true counterpart (OpenMoji man -> woman, translab.data.emoji: test woman k is the counterpart of test man k).

- **kept** (``reader_agreement``): the share of outputs that a reader (a classifier of the attribute: skin tone,
  concept) reads as it reads their own input. The input's reading, not its label, is the reference, so a reader's
  own mistakes on an input do not count against the method (the readers' held-out accuracies are stated in their
  training records).
- **retrieval** (``counterpart_retrieval``): in a stated feature space (the concept reader's), is output k's nearest
  image among the test counterparts its own counterpart k (top-1), or among its 5 nearest (top-5)? The same for the
  input itself is the baseline: a reader trained to see the concept whatever the gender finds most inputs' own
  counterparts already, so a method shows here what it loses, not what it gains.
- **distance** (``distance_pair``): mean squared distance from each output to its counterpart, in pixels and in
  features (Inception pool3 where available), beside the same distance from the input; ratio < 1 means the method
  moved towards the truth.
"""
from __future__ import annotations

import torch

from translab.metrics.classifier import ImageClassifier, classifier_outputs
from translab.metrics.color import MSE_UNITS


def reader_agreement(reader: ImageClassifier, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> dict:
    """Share of outputs y (N, C, H, W) that ``reader`` reads as the class it reads for their inputs x (N, ...)."""
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"reader agreement needs as many inputs as outputs (and some), got {x.shape[0]} and "
                         f"{y.shape[0]}")
    _, px = classifier_outputs(reader, x, batch_size)
    _, py = classifier_outputs(reader, y, batch_size)
    per_class = {}
    for c in px.unique().tolist():
        sel = px == c
        per_class[reader.spec.classes[c]] = {"n": int(sel.sum()), "kept": float((py[sel] == c).float().mean())}
    return {"available": True, "value": float((px == py).float().mean()), "per_input_class": per_class,
            "n_images": int(x.shape[0])}


def translated_and_kept(target_reader: ImageClassifier, target: str, kept: dict[str, ImageClassifier],
                        x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> dict:
    """Share of outputs y that are read as class ``target`` *and* that every reader of ``kept`` ({attribute:
    reader}) reads as it reads their own input x: the outputs that are right on every count at once (the
    marginal shares alone cannot tell whether the same outputs succeed)."""
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"needs as many inputs as outputs (and some), got {x.shape[0]} and {y.shape[0]}")
    ok = classifier_outputs(target_reader, y, batch_size)[1] == target_reader.spec.classes.index(target)
    for reader in kept.values():
        ok &= classifier_outputs(reader, x, batch_size)[1] == classifier_outputs(reader, y, batch_size)[1]
    return {"available": True, "value": float(ok.float().mean()), "n_images": int(x.shape[0]),
            "what": f"read as {target} with {', '.join(kept)} kept"}


def counterpart_retrieval(f_query: torch.Tensor, f_truth: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict:
    """{'top1': share of rows k of f_query (N, D) whose nearest row of f_truth (N, D), Euclidean, is row k, 'top5':
    ... among the 5 nearest}. Ties are broken towards the lower index (a constant query finds row 0 only)."""
    if f_query.shape != f_truth.shape or f_query.ndim != 2:
        raise ValueError(f"retrieval needs query and truth features of one shape (N, D), got "
                         f"{tuple(f_query.shape)} and {tuple(f_truth.shape)}")
    d = torch.cdist(f_query.double(), f_truth.double())  # (N, N)
    own = d.diagonal().unsqueeze(1)
    idx = torch.arange(d.shape[0]).unsqueeze(0)
    # rank of the own counterpart: rows strictly nearer, plus equally near rows with a lower index
    rank = (d < own).sum(1) + ((d == own) & (idx < idx.T)).sum(1)
    return {f"top{k}": float((rank < k).float().mean()) for k in ks}


def _mean_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-row mean squared difference of two (N, ...) tensors -> (N,) float64."""
    return (a.double() - b.double()).flatten(1).pow(2).mean(1)


def distance_pair(x: torch.Tensor, y: torch.Tensor, truth: torch.Tensor, units: str) -> dict:
    """Output's and input's mean squared distance to the truth (rows aligned), their ratio, and the share of rows
    where the output is nearer than its input."""
    d_out, d_in = _mean_sq(y, truth), _mean_sq(x, truth)
    out, inp = float(d_out.mean()), float(d_in.mean())
    return {"output": out, "input": inp, "ratio": out / inp if inp > 0 else None,
            "share_nearer_than_input": float((d_out < d_in).float().mean()), "units": units}


def counterpart_metrics(x: torch.Tensor, y: torch.Tensor, truth: torch.Tensor, space: ImageClassifier | None,
                        features: dict | None = None, batch_size: int = 256) -> dict:
    """Outputs y against their true counterparts ``truth`` (x, y, truth (N, C, H, W) in [-1, 1], rows aligned):
    retrieval (output and input as queries) and distances in pixels and in each feature space of ``features``
    ({name: (description, (f_x, f_y, f_truth))}, e.g. Inception pool3). Retrieval runs in the penultimate features
    of the reader ``space``; without one (a folder pair), in the first space of ``features``, else in pixels."""
    if not (x.shape[0] == y.shape[0] == truth.shape[0]) or x.shape[0] == 0:
        raise ValueError(f"counterpart metrics need aligned inputs, outputs and counterparts, got "
                         f"{x.shape[0]}, {y.shape[0]} and {truth.shape[0]} images")
    distance = {"pixel": distance_pair(x, y, truth, MSE_UNITS)}
    for key, (what, (gx, gy, gt)) in (features or {}).items():
        distance[key] = {**distance_pair(gx, gy, gt, "mean squared difference per feature"), "space": what}
    if space is not None:
        fx, fy, ft = (classifier_outputs(space, im, batch_size)[0] for im in (x, y, truth))
        name = getattr(space, "path", None) or "the retrieval reader"
        where = f"penultimate features ({space.num_features}-d) of {name}"
    elif features:
        where, (fx, fy, ft) = next(iter(features.values()))
    else:
        fx, fy, ft = (im.flatten(1) for im in (x, y, truth))
        where = "pixels"
    return {"available": True, "n_images": int(x.shape[0]),
            "retrieval": {"output": counterpart_retrieval(fy, ft), "input": counterpart_retrieval(fx, ft),
                          "space": where, "among": f"the {truth.shape[0]} true counterparts (test targets)"},
            "distance": distance}
