"""A small time- and label-conditional MLP on flattened inputs, for low-dimensional data (analytic tests).

Input x (N, C, H, W) (any shape, flattened per sample), time t (N,) float, label (N,) long. Output shaped like x.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from translab.settings import ConfigError, describe


@dataclass
class MLPConfig:
    hidden: int = describe("width of each hidden layer", 256)
    layers: int = describe("hidden layers", 3)

    def __post_init__(self):
        for key in ("hidden", "layers"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"model.mlp.{key}: expected an integer >= 1, got {value!r}")


def time_features(t: torch.Tensor, dim: int = 16) -> torch.Tensor:
    """(N,) times -> (N, dim) sinusoidal features of t at frequencies 1 .. 2^(dim/2 - 1) (Vaswani et al. 2017)."""
    freqs = 2.0 ** torch.arange(dim // 2, device=t.device, dtype=t.dtype) * math.pi
    angles = t[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class FieldMLP(nn.Module):
    """f(x, t, label) -> tensor shaped like x: an MLP on [x, time features, label embedding], SiLU activations."""

    def __init__(self, cfg: MLPConfig, dim: int, num_labels: int = 2, time_dim: int = 16):
        super().__init__()
        self.time_dim = time_dim
        self.label = nn.Embedding(num_labels, time_dim)
        width, layers = dim + 2 * time_dim, []
        for _ in range(cfg.layers):
            layers += [nn.Linear(width, cfg.hidden), nn.SiLU()]
            width = cfg.hidden
        self.body = nn.Sequential(*layers, nn.Linear(width, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1)
        h = torch.cat([flat, time_features(t.to(flat.dtype), self.time_dim), self.label(label)], dim=1)
        return self.body(h).view_as(x)
