"""Digests of what every shipped model outputs: a refactoring that keeps behaviour keeps every line the same.

    python scripts/shipped_digest.py [--images 8] [--threads 1]

For each shipped model (`translab models`) it translates the first N test images of its benchmark a2b with the
model's own settings and seed 0, and prints the SHA-256 of the output tensor's bytes (float32, CPU). Run it on
two commits (e.g. from a `git worktree` of the older one with PYTHONPATH pointing at its src/) and diff the output.
"""
from __future__ import annotations

import argparse
import hashlib

import torch

from translab.config import DataConfig
from translab.data import build_domain_pair
from translab.data.base import stack_dataset
from translab.shipped import shipped_models
from translab.training import load_method


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    inputs = {}
    for name, folder in shipped_models().items():
        method, cfg, _ = load_method(folder)
        key = (cfg.data.dataset, cfg.data.image_size)
        if key not in inputs:
            data = DataConfig(dataset=cfg.data.dataset, image_size=cfg.data.image_size)
            inputs[key] = stack_dataset(build_domain_pair(data).get("a", "test"), args.images).float()
        y = method.translate(inputs[key], "a2b", generator=torch.Generator().manual_seed(0)).images
        print(f"{name:28s} {hashlib.sha256(y.contiguous().numpy().tobytes()).hexdigest()}")


if __name__ == "__main__":
    main()
