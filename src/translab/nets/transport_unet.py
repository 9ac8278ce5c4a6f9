"""Transport map T of Neural Optimal Transport: a plain image-to-image UNet (no time or noise input).

Korotin et al. (ICLR 2023, arXiv 2201.12220), Sec. 5 / App. B use a UNet (Ronneberger et al. 2015) for T
with the deterministic map of their Algorithm 1 (no z input). Layout here, at depth d:
``in`` double conv -> d x (max-pool 2, double conv, channels x2) -> d x (bilinear up 2, concat skip,
double conv) -> 1x1 conv. A double conv is (3x3 conv, norm, ReLU) x 2. The authors' net is depth 4 with
48 base channels, batch norm and an unbounded linear output; those are the defaults here.

Input (N, C, H, W) in [-1, 1], H and W divisible by 2**depth. Output (N, C, H, W): unbounded when
``output = linear`` (the authors' choice: the map is not forced into the image box during training;
Method.translate clamps to [-1, 1]), in (-1, 1) when ``output = tanh``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from translab.settings import ConfigError, describe

NORMS = ("batch", "group", "none")
OUTPUTS = ("linear", "tanh")


@dataclass
class TransportUNetConfig:
    base_channels: int = describe("channels of the first level (48 in the NOT code)", 48)
    depth: int = describe("down-samplings (4 in the NOT code; image size must divide by 2**depth)", 4)
    norm: str = describe("batch (the NOT code) | group (8 groups) | none", "batch")
    output: str = describe("linear (unbounded, the NOT code) | tanh", "linear")


def _norm(kind: str, ch: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(ch)
    if kind == "group":
        return nn.GroupNorm(min(8, ch), ch)
    return nn.Identity()


class DoubleConv(nn.Module):
    def __init__(self, cin: int, cout: int, norm: str):
        super().__init__()
        bias = norm == "none"
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=bias), _norm(norm, cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=bias), _norm(norm, cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.body(x)


class TransportUNet(nn.Module):
    def __init__(self, cfg: TransportUNetConfig, image_size: int, channels: int = 3):
        super().__init__()
        if cfg.norm not in NORMS:
            raise ConfigError(f"model.transport.norm: '{cfg.norm}' is not one of {', '.join(NORMS)}")
        if cfg.output not in OUTPUTS:
            raise ConfigError(f"model.transport.output: '{cfg.output}' is not one of {', '.join(OUTPUTS)}")
        if cfg.depth < 0 or cfg.base_channels < 1:
            raise ConfigError(f"model.transport: depth must be >= 0 and base_channels >= 1, got {cfg.depth}, {cfg.base_channels}")
        if image_size % (2 ** cfg.depth):
            raise ConfigError(f"model.transport.depth={cfg.depth} needs an image size divisible by {2 ** cfg.depth}, "
                              f"got {image_size}")
        self.output = cfg.output
        chs = [cfg.base_channels * 2 ** i for i in range(cfg.depth + 1)]
        self.inc = DoubleConv(channels, chs[0], cfg.norm)
        self.downs = nn.ModuleList(DoubleConv(chs[i], chs[i + 1], cfg.norm) for i in range(cfg.depth))
        # up level i: upsampled chs[i+1] concatenated with the skip chs[i] -> chs[i]
        self.ups = nn.ModuleList(DoubleConv(chs[i + 1] + chs[i], chs[i], cfg.norm) for i in reversed(range(cfg.depth)))
        self.out = nn.Conv2d(chs[0], channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inc(x)
        skips = [h]
        for down in self.downs:
            h = down(F.max_pool2d(h, 2))
            skips.append(h)
        skips.pop()
        for up in self.ups:
            h = F.interpolate(h, scale_factor=2, mode="bilinear", align_corners=False)
            h = up(torch.cat([skips.pop(), h], dim=1))
        y = self.out(h)
        return torch.tanh(y) if self.output == "tanh" else y
