"""On-disk cache of real-set features for FID/KID, so that each reference set is embedded once per machine.

Embedding a reference set with Inception costs about 0.5 s per image per CPU core here, and every
``translab evaluate`` of a cmnist run uses the same 1,010 test 3s. Entries live in
``$TRANSLAB_CACHE/features`` (default ``$XDG_CACHE_HOME/translab`` or ``~/.cache/translab``) as safetensors
files named by a SHA-256 over the caller's key (data config, extractor and its exact weights) and the bytes
of the images themselves, so a changed image, network or weights file never hits a stale entry.

A cache that cannot be read or written is reported in one warning and bypassed: the features are then
computed as if there were no cache, never guessed.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from translab.checkpoint import atomic_path

ENV = "TRANSLAB_CACHE"
_warned: set[str] = set()


def cache_root() -> Path:
    """The cache folder: $TRANSLAB_CACHE, else $XDG_CACHE_HOME/translab, else ~/.cache/translab."""
    if os.environ.get(ENV):
        return Path(os.environ[ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "translab"


def images_digest(images: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes (images (N, C, H, W), any range)."""
    t = images.detach().cpu().contiguous()
    h = hashlib.sha256(f"{t.dtype} {tuple(t.shape)}".encode())
    h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def entry_path(key: tuple, images: torch.Tensor) -> Path:
    """Cache file of features of ``images`` under ``key`` (a tuple of strings/numbers naming data and network)."""
    h = hashlib.sha256(repr(key).encode())
    h.update(images_digest(images).encode())
    return cache_root() / "features" / f"{h.hexdigest()[:32]}.safetensors"


def _warn_once(what: str, path: Path, err: Exception) -> None:
    if what not in _warned:
        _warned.add(what)
        warnings.warn(f"feature cache: could not {what} {path} ({err}); computing the features without the cache "
                      f"(set ${ENV} to a writable folder to keep them)", stacklevel=3)


def load(key: tuple, images: torch.Tensor) -> torch.Tensor | None:
    """Cached features (N, D) for ``images`` under ``key``, or None when absent or unreadable."""
    path = entry_path(key, images)
    if not path.is_file():
        return None
    try:
        feats = load_file(str(path))["features"]
    except Exception as e:  # a damaged entry: recompute (and overwrite it) rather than fail the evaluation
        _warn_once("read", path, e)
        return None
    if feats.ndim != 2 or feats.shape[0] != images.shape[0]:
        _warn_once("use", path, ValueError(f"features of shape {tuple(feats.shape)} for {images.shape[0]} images"))
        return None
    return feats


def store(key: tuple, images: torch.Tensor, features: torch.Tensor) -> Path | None:
    """Write features (N, D) atomically (checkpoint.atomic_path: a temporary file, then a rename); returns the
    path, or None if it could not."""
    path = entry_path(key, images)
    try:
        with atomic_path(path) as tmp:
            save_file({"features": features.detach().cpu().contiguous()}, str(tmp),
                      metadata={"key": repr(key)[:2000]})
        return path
    except OSError as e:
        _warn_once("write", path, e)
        return None
