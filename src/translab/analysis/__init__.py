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
from pathlib import Path

from translab.checkpoint import atomic_write_text
from translab.rundir import json_safe


def write_json(path: str | Path, data: dict) -> Path:
    """Write ``data`` (made JSON-safe, keys as strings) to ``path`` atomically (checkpoint.atomic_write_text)."""
    return atomic_write_text(path, json.dumps(json_safe(data, str_keys=True), indent=2, allow_nan=False) + "\n")
