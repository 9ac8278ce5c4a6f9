"""Latent-space studies of the diffusion translators (``translab latent``).

- gaussianity: how close encoded latents are to N(0, I), beside true N(0, I) samples of the same shape;
- probes: what latents carry (hue, domain class), by linear probes beside the same probe on images and noise;
- ddib_latents: DDIB's encode/decode latents: statistics, probes, PCA, Frechet distance between domains,
  reconstruction and cycle error against the number of DDIM steps, slerp interpolation;
- unit_release: UNIT-DDPM's release time t_r against faithfulness and realism, and its two chains;
- figures: the matplotlib (Agg) pictures of the above.

Every analysis writes RUN/analysis/*.json and *.png, which the comparison report embeds.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path


def json_safe(obj):
    """A JSON-safe copy: non-finite floats -> None, tuples -> lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path: str | Path, data: dict) -> Path:
    """Write ``data`` (made JSON-safe) to ``path`` atomically (a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(json_safe(data), indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path
