"""Denoiser UNet built on diffusers' UNet2DModel, sized by config, optionally domain-conditional.

Input x (N, C_in, H, W) (C_in = 3, or 6 for UNIT-DDPM's conditioning by concatenation), timestep t (N,) long,
optional domain label (N,) long in {0, 1}. Output eps (N, 3, H, W).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from translab.config import describe


@dataclass
class UNetConfig:
    base_channels: int = describe("channels of the first UNet level", 32)
    channel_mult: list[int] = describe("channel multiplier per resolution level", factory=lambda: [1, 2, 2])
    layers_per_block: int = describe("ResNet blocks per level", 1)
    attention_levels: list[int] = describe("indices of levels with self-attention (at their resolution)", factory=lambda: [])
    dropout: float = describe("dropout in the ResNet blocks", 0.0)
    norm_groups: int = describe("GroupNorm groups", 8)


class DenoiserUNet(nn.Module):
    """eps_theta(x_t, t[, domain]) on diffusers' UNet2DModel."""

    def __init__(self, cfg: UNetConfig, image_size: int, in_channels: int = 3, out_channels: int = 3,
                 num_domains: int = 0):
        super().__init__()
        from diffusers import UNet2DModel

        chans = tuple(cfg.base_channels * m for m in cfg.channel_mult)
        down = tuple("AttnDownBlock2D" if i in cfg.attention_levels else "DownBlock2D" for i in range(len(chans)))
        up = tuple("AttnUpBlock2D" if (len(chans) - 1 - i) in cfg.attention_levels else "UpBlock2D"
                   for i in range(len(chans)))
        self.num_domains = num_domains
        self.unet = UNet2DModel(
            sample_size=image_size, in_channels=in_channels, out_channels=out_channels,
            block_out_channels=chans, down_block_types=down, up_block_types=up,
            layers_per_block=cfg.layers_per_block, norm_num_groups=cfg.norm_groups, dropout=cfg.dropout,
            num_class_embeds=num_domains if num_domains > 0 else None,
            attention_head_dim=max(8, chans[0] // 4) if cfg.attention_levels else 8,
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, domain: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_domains and domain is None:
            raise ValueError("this denoiser is domain-conditional: pass domain labels (N,) in {0, 1}")
        return self.unet(x, t, class_labels=domain if self.num_domains else None).sample


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
