"""ResNet generator of CycleGAN (Zhu et al. 2017, Appendix 7.2; Johnson et al. 2016).

c7s1-ngf, then ``n_down`` stride-2 convs (d2ngf, d4ngf, ...), ``n_blocks`` residual blocks, the mirror
up-sampling, c7s1-3 and tanh. Reflection padding and instance norm as in the authors' PyTorch code.
Input (N, C_in, H, W) in [-1, 1] with H, W divisible by 2**n_down; output (N, C_out, H, W) in [-1, 1].
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from translab.settings import ConfigError, describe


@dataclass
class ResnetGeneratorConfig:
    ngf: int = describe("channels after the first conv", 64)
    n_down: int = describe("stride-2 down-samplings (2 in the paper; 1 suits 32x32)", 2)
    n_blocks: int = describe("residual blocks (6 up to 128 px, 9 at 256 px)", 6)


def check_divisible_size(image_size: int, n_down: int, key: str) -> None:
    """ConfigError naming ``key`` unless ``image_size`` survives ``n_down`` stride-2 down-samplings."""
    if image_size % (2 ** n_down):
        raise ConfigError(f"{key}={n_down} needs an image size divisible by {2 ** n_down}, got {image_size}")


class ResnetBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(ch, ch, 3), nn.InstanceNorm2d(ch))

    def forward(self, x):
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    def __init__(self, cfg: ResnetGeneratorConfig, in_channels: int = 3, out_channels: int = 3):
        super().__init__()
        ngf = cfg.ngf
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        ch = ngf
        for _ in range(cfg.n_down):
            layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(ch * 2), nn.ReLU(True)]
            ch *= 2
        layers += [ResnetBlock(ch) for _ in range(cfg.n_blocks)]
        for _ in range(cfg.n_down):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_channels, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """CycleGAN's init_weights('normal'): conv weights ~ N(0, 0.02), biases 0, norm weights ~ N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
