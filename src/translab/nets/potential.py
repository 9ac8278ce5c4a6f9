"""Potential f of Neural Optimal Transport: a ResNet critic without normalisation, image -> scalar.

Korotin et al. (ICLR 2023, arXiv 2201.12220) take f from the WGAN-QC discriminator (Liu et al. 2019):
a 3x3 conv to ``nf`` channels, then per resolution two residual blocks (3x3 conv, LeakyReLU(0.2), 3x3 conv,
``out = LeakyReLU(shortcut(x) + res_ratio * residual)``, 1x1 learned shortcut when the width changes) and a
3x3/stride-2 average pool, until the side is about 4; a linear layer maps the flattened features to one
scalar. Widths double per level up to ``nf_max``. No normalisation anywhere (the potential must be a plain
function of one image, not of the batch). Convs ~ Kaiming normal (fan_out, leaky_relu), as the NOT code's
weights_init_D.

Input (N, C, H, W) in [-1, 1] (or any real values: T's output is unbounded); output (N,) unbounded.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from translab.settings import ConfigError, describe


@dataclass
class PotentialConfig:
    nf: int = describe("channels of the first level (64 in the NOT code)", 64)
    nf_max: int = describe("widest level (512 in the NOT code)", 512)
    res_ratio: float = describe("scale of the residual branch (0.1 in the NOT code)", 0.1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, res_ratio: float):
        super().__init__()
        hidden = min(cin, cout)
        self.res_ratio = res_ratio
        self.conv0 = nn.Conv2d(cin, hidden, 3, padding=1)
        self.conv1 = nn.Conv2d(hidden, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1, bias=False) if cin != cout else nn.Identity()
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x):
        dx = self.conv1(self.act(self.conv0(x)))
        return self.act(self.shortcut(x) + self.res_ratio * dx)


class ResNetPotential(nn.Module):
    def __init__(self, cfg: PotentialConfig, image_size: int, channels: int = 3):
        super().__init__()
        if cfg.nf < 1 or cfg.nf_max < cfg.nf:
            raise ConfigError(f"model.potential: need 1 <= nf <= nf_max, got nf={cfg.nf}, nf_max={cfg.nf_max}")
        if image_size < 4:
            raise ConfigError(f"the NOT potential needs images of at least 4x4 pixels, got {image_size}")
        levels = max(0, int(math.floor(math.log2(image_size / 4))))
        width = lambda i: min(cfg.nf * 2 ** i, cfg.nf_max)  # noqa: E731
        blocks: list[nn.Module] = [ResBlock(width(0), width(0), cfg.res_ratio), ResBlock(width(0), width(1), cfg.res_ratio)]
        side = image_size
        for i in range(1, levels + 1):
            blocks += [nn.AvgPool2d(3, stride=2, padding=1), ResBlock(width(i), width(i), cfg.res_ratio),
                       ResBlock(width(i), width(i + 1), cfg.res_ratio)]
            side = (side + 1) // 2  # AvgPool2d(3, 2, 1) maps n to ceil(n / 2)
        self.conv_img = nn.Conv2d(channels, width(0), 3, padding=1)
        self.act = nn.LeakyReLU(0.2)
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(width(levels + 1) * side * side, 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.act(self.conv_img(x)))
        return self.fc(h.flatten(1)).squeeze(1)
