"""The method protocol: every method owns its optimisation step behind one small interface.

train_step(ctx, batch_a, batch_b) -> dict of float scalars; translate(x, direction, ...) -> images; nets,
EMA copies and optional extra state live on the method. The training loop (translab.training) has no
method-specific code. Images are (N, 3, H, W) in [-1, 1]; directions are 'a2b' and 'b2a'.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

DIRECTIONS = ("a2b", "b2a")


class MethodError(ValueError):
    """A request the method cannot serve (e.g. an untrained direction); says what to do instead."""


@dataclass
class OptimizerSpec:
    """One optimiser over the parameters of some nets, with an optional per-step LR multiplier."""

    nets: tuple[str, ...]
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    lr_lambda: Callable[[int], float] | None = None


@dataclass
class Translation:
    """Output of Method.translate: images (N, 3, H, W) in [-1, 1], NFE per image, optional latents."""

    images: torch.Tensor
    nfe: int
    latents: dict[str, torch.Tensor] | None = None


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise MethodError(f"unknown direction '{direction}': expected one of {', '.join(DIRECTIONS)}")
    return direction


class Method:
    """Base class. Subclasses set ``name`` and ``config_class``, build ``self.nets`` and implement the steps."""

    name: str = "base"
    config_class: type = object
    #: nets whose EMA copies serve inference
    ema_nets: tuple[str, ...] = ()

    def __init__(self, cfg: Any, image_size: int):
        self.cfg = cfg  # the method's own dataclass
        self.image_size = image_size
        self.nets = nn.ModuleDict()
        self.ema = nn.ModuleDict()

    # ---- training -------------------------------------------------------------------------------
    def optimizer_specs(self, train_cfg) -> dict[str, OptimizerSpec]:
        """Name -> OptimizerSpec. Default: one AdamW over all nets at train.lr."""
        return {"main": OptimizerSpec(tuple(self.nets.keys()), train_cfg.lr, weight_decay=train_cfg.weight_decay)}

    def train_step(self, ctx, batch_a: torch.Tensor, batch_b: torch.Tensor) -> dict[str, float]:
        raise NotImplementedError

    def init_for_training(self, cfg) -> None:
        """Called once before a fresh (not resumed) training, after the nets are built; ``cfg`` is the whole
        Config. Default: nothing (the nets keep their initialisation)."""

    def extra_state(self) -> dict:
        """Method state beyond nets and optimisers (e.g. CycleGAN's image pools), checkpointed."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        pass

    # ---- inference ------------------------------------------------------------------------------
    def infer_net(self, name: str) -> nn.Module:
        """The EMA copy of a net if one exists, else the net itself."""
        return self.ema[name] if name in self.ema else self.nets[name]

    def directions(self) -> tuple[str, ...]:
        """Directions this trained model can translate."""
        return DIRECTIONS

    def default_steps(self) -> int | None:
        """Sampling steps used when the caller gives none (None: the method has no steps)."""
        return None

    def translate(self, x: torch.Tensor, direction: str, steps: int | None = None,
                  generator: torch.Generator | None = None, return_latents: bool = False,
                  progress: Callable | None = None) -> Translation:
        raise NotImplementedError

    def nfe(self, direction: str, steps: int | None = None) -> int:
        """Network evaluations per translated image."""
        raise NotImplementedError

    def to(self, device) -> "Method":
        self.nets.to(device)
        self.ema.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.nets.parameters()).device

    def eval(self) -> "Method":
        self.nets.eval()
        self.ema.eval()
        return self
