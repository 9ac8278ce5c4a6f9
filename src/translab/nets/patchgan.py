"""PatchGAN discriminator of CycleGAN (Zhu et al. 2017, arXiv 1703.10593, Appendix 7.2; Isola et al. 2017).

C64 - C128 - C256 - C512 with 4x4 convs, LeakyReLU(0.2), instance norm on all but the first layer, then a
stride-1 conv to one channel: a map of real/fake scores, one per overlapping patch. With ``n_layers = 3``
(the authors' default) each score sees a 70x70 patch. At 32 px that patch covers the whole image more than
twice over, so the 32 px presets use ``n_layers = 2`` (34x34 patches, a 6x6 score map).

Input (N, C, H, W) in [-1, 1]; output (N, 1, H', W') unbounded scores (LSGAN regresses them to 1 / 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from translab.settings import ConfigError, describe


@dataclass
class PatchGANConfig:
    ndf: int = describe("channels of the first discriminator conv", 64)
    n_layers: int = describe("stride-2 conv layers (3: 70x70 patches, the paper; 2: 34x34, suits 32 px)", 3)


def patchgan_output_size(image_size: int, n_layers: int) -> int:
    """Side of the score map: n_layers 4x4/stride-2/pad-1 convs, then two 4x4/stride-1/pad-1 convs."""
    size = image_size
    for _ in range(n_layers):
        size = (size + 2 - 4) // 2 + 1
    for _ in range(2):
        size = size + 2 - 4 + 1
    return size


def patchgan_receptive_field(n_layers: int) -> int:
    """Receptive field in pixels of one score (70 for n_layers = 3)."""
    rf = 1
    for stride in [1, 1] + [2] * n_layers:  # walk back from the output: two stride-1 convs, then the stride-2 ones
        rf = (rf - 1) * stride + 4
    return rf


class PatchGAN(nn.Module):
    def __init__(self, cfg: PatchGANConfig, image_size: int, in_channels: int = 3):
        super().__init__()
        if cfg.n_layers < 1 or cfg.ndf < 1:
            raise ConfigError(f"PatchGAN: n_layers and ndf must be >= 1, got n_layers={cfg.n_layers}, ndf={cfg.ndf}")
        out = patchgan_output_size(image_size, cfg.n_layers)
        if out < 2:
            raise ConfigError(
                f"PatchGAN with n_layers={cfg.n_layers} leaves a {out}x{out} score map at image size {image_size}; "
                f"lower model.discriminator.n_layers (e.g. 2 at 32 px, 1 at 8 px)")
        ndf = cfg.ndf
        # instance norm has no affine parameters by default in the authors' code; its convs keep a bias
        layers: list[nn.Module] = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, cfg.n_layers):
            prev, mult = mult, min(2 ** n, 8)
            layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2, padding=1), nn.InstanceNorm2d(ndf * mult),
                       nn.LeakyReLU(0.2, True)]
        prev, mult = mult, min(2 ** cfg.n_layers, 8)
        layers += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride=1, padding=1), nn.InstanceNorm2d(ndf * mult),
                   nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
