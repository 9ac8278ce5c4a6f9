"""Denoiser UNet built on diffusers' UNet2DModel, sized by config, optionally domain-conditional.

Input x (N, C_in, H, W) (C_in = C, the image channels, 3 for RGB or 1 for greyscale, or 2C for UNIT-DDPM's
conditioning by concatenation), timestep t (N,) long, optional domain label (N,) long in {0, 1}. Output eps
(N, C_out, H, W), C_out = C.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from translab.settings import ConfigError, _short, check_fields, describe


@dataclass
class UNetConfig:
    base_channels: int = describe("channels of the first UNet level", 32)
    channel_mult: list[int] = describe("channel multiplier per resolution level", factory=lambda: [1, 2, 2])
    layers_per_block: int = describe("ResNet blocks per level", 1)
    attention_levels: list[int] = describe("indices of levels with self-attention (at their resolution)", factory=lambda: [])
    dropout: float = describe("dropout in the ResNet blocks", 0.0)
    norm_groups: int = describe("GroupNorm groups", 8)

    def __post_init__(self):
        check_fields(self, "model.unet", {"base_channels": (1, None), "layers_per_block": (1, None),
                                          "norm_groups": (1, None), "dropout": (0.0, 1.0)})
        mult = self.channel_mult
        if not mult or any(m < 1 for m in mult):
            raise ConfigError(f"model.unet.channel_mult: expected a non-empty list of integers >= 1, got {_short(mult)}")
        for m in mult:
            if (self.base_channels * m) % self.norm_groups:
                raise ConfigError(f"model.unet.norm_groups={self.norm_groups} must divide the channels of every level "
                                  f"(base_channels x channel_mult = {[self.base_channels * k for k in mult]})")

    def check_image_size(self, image_size: int) -> None:
        """ConfigError unless ``image_size`` survives the levels' halvings (divisible by 2^(levels - 1))."""
        halvings = len(self.channel_mult) - 1
        if image_size % (2 ** halvings):
            raise ConfigError(f"data.image_size={image_size}: a UNet with {len(self.channel_mult)} levels "
                              f"(model.unet.channel_mult={self.channel_mult}) needs an image size divisible by "
                              f"{2 ** halvings}")


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


def start_as_unconditional(dst: DenoiserUNet, src: DenoiserUNet, domain: int | None = None) -> None:
    """Load ``src``'s weights into ``dst`` so that ``dst`` computes ``src``'s function, ignoring its extra input.

    ``dst`` takes C_in = C + k channels (UNIT-DDPM: [x_t, condition], k = C; C = 3 for RGB, 1 for greyscale) and
    has no domain embedding; ``src`` takes C and has the same sizes otherwise. conv_in's weights for the k extra channels start at
    zero (a zero-initialised condition branch: the condition can only start to matter as training moves
    them), so dst(cat[x, c], t) == src(x, t[, domain]) for any c (N, k, H, W). A domain-conditional ``src``
    (diffusers adds its class embedding to the time embedding, emb = linear_2(act(linear_1(t_emb))) + E[d])
    is folded for ``domain`` into linear_2's bias, which is exact for that domain.
    """
    if dst.num_domains:
        raise ValueError("start_as_unconditional: the destination must not be domain-conditional")
    if bool(src.num_domains) != (domain is not None):
        raise ValueError(f"start_as_unconditional: the source has {src.num_domains} domains, but domain={domain!r}")
    state = dict(src.state_dict())
    if domain is not None:
        embedding = state.pop("unet.class_embedding.weight")
        if not 0 <= domain < embedding.shape[0]:
            raise ValueError(f"start_as_unconditional: domain {domain} not in [0, {embedding.shape[0] - 1}]")
        key = "unet.time_embedding.linear_2.bias"
        state[key] = state[key] + embedding[domain]
    own = dst.state_dict()
    conv = state["unet.conv_in.weight"]  # (C0, C, 3, 3)
    wide = torch.zeros_like(own["unet.conv_in.weight"])  # (C0, C + k, 3, 3)
    if wide.shape[0] != conv.shape[0] or wide.shape[1] < conv.shape[1] or wide.shape[2:] != conv.shape[2:]:
        raise ValueError(f"start_as_unconditional: conv_in weights {tuple(conv.shape)} do not fit {tuple(wide.shape)}")
    wide[:, :conv.shape[1]] = conv
    state["unet.conv_in.weight"] = wide
    mismatched = [k for k in own if k in state and own[k].shape != state[k].shape]
    if mismatched or set(own) != set(state):
        raise ValueError(f"start_as_unconditional: the networks differ in size ({(mismatched or sorted(set(own) ^ set(state)))[:3]})")
    dst.load_state_dict(state)
