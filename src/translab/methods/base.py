"""The method protocol: every method owns its optimisation step behind one small interface.

train_step(ctx, batch_a, batch_b) -> dict of float scalars; translate(x, direction, ...) -> images; nets,
EMA copies and optional extra state live on the method. The training loop (translab.training) has no
method-specific code. Images are (N, C, H, W) in [-1, 1] with C = ``method.channels`` (data.channels: 3 for RGB,
1 for greyscale); directions are 'a2b' and 'b2a'.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import torch
from torch import nn

from translab.errors import TranslabError
from translab.settings import ConfigError, inference_fields

DIRECTIONS = ("a2b", "b2a")


@runtime_checkable
class TrainSteps(Protocol):
    """What a method's ``train_step`` receives as ``ctx``, and all it may use (translab.training.TrainContext
    implements it; tests/test_method_contract.py checks that the methods use nothing else):

    - ``model(name)``: the (possibly wrapped) net ``name`` of ``method.nets``;
    - ``optimize(name, loss)``: zero_grad, backward, clip and step of the optimiser ``name`` of
      ``optimizer_specs``;
    - ``set_requires_grad(names, flag)``: freeze or unfreeze nets (e.g. the discriminators in a generator step);
    - ``randn_like(x)`` / ``generator``: noise and draws from the checkpointed torch.Generator, so a resumed
      run continues exactly;
    - ``step``: the 0-based index of this training step.
    """

    generator: torch.Generator
    step: int

    def model(self, name: str) -> nn.Module: ...

    def optimize(self, name: str, loss: torch.Tensor) -> None: ...

    def set_requires_grad(self, names, flag: bool) -> None: ...

    def randn_like(self, x: torch.Tensor) -> torch.Tensor: ...


class MethodError(TranslabError, ValueError):
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
    """Output of Method.translate: images (N, C, H, W) in [-1, 1], NFE per image, optional latents."""

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
    #: net names of older checkpoints -> today's (translab.loading.restore_nets reads old runs through it)
    renamed_nets: dict[str, str] = {}

    def __init__(self, cfg: Any, image_size: int, channels: int = 3):
        """``cfg``: the method's own settings; nets take and give (N, channels, image_size, image_size) images."""
        self.cfg = cfg  # the method's own dataclass
        self.image_size = image_size
        self.channels = channels  # image channels of both domains (data.channels): 3 RGB, 1 greyscale
        self.nets = nn.ModuleDict()
        self.ema = nn.ModuleDict()

    # ---- training -------------------------------------------------------------------------------
    def optimizer_specs(self, train_cfg) -> dict[str, OptimizerSpec]:
        """Name -> OptimizerSpec. Default: one AdamW over all nets at train.lr."""
        return {"main": OptimizerSpec(tuple(self.nets.keys()), train_cfg.lr, weight_decay=train_cfg.weight_decay)}

    def train_step(self, ctx: TrainSteps, batch_a: torch.Tensor, batch_b: torch.Tensor) -> dict[str, float]:
        """One training step on a batch (N, C, H, W) in [-1, 1] of each domain -> scalars to log."""
        raise NotImplementedError

    def batch_factors(self) -> dict[str, int]:
        """Batches of ``train.batch_size`` images that each train_step receives per domain, concatenated along
        dim 0 (default one each). NOT asks for a fresh source batch per inner map step."""
        return {"a": 1, "b": 1}

    def init_sources(self) -> dict[str, str]:
        """Trained runs (config field -> run name or path) that ``init_for_training`` starts from; the training
        loop loads them (a method never loads runs itself). Default: none."""
        return {}

    def init_for_training(self, cfg, sources: dict | None = None) -> None:
        """Called once before a fresh (not resumed) training, after the nets are built; ``cfg`` is the whole
        Config, ``sources`` the loaded (Method, Config, info) of each ``init_sources()`` field. Default:
        nothing (the nets keep their initialisation)."""

    def continued_source(self) -> str | None:
        """The ``init_sources()`` field whose training this run continues (its weights start as that run's), or
        None: the training record then embeds that run's record as the earlier stage (``init_from``). A
        teacher or a frozen component is not a stage. Default: none."""
        return None

    def resume_sources(self) -> dict[str, str]:
        """Trained runs (config field -> run name or path) that a resumed training needs again; the training loop
        loads them and hands them to ``resume_training``. Default: none."""
        return {}

    def resume_training(self, cfg, sources: dict | None = None) -> None:
        """Called once before a resumed training, with the loaded (Method, Config, info) of each
        ``resume_sources()`` field. Default: nothing."""

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

    def with_inference(self, **settings) -> "Method":
        """A view of this trained method with other inference settings (its config fields declared with
        ``describe(..., inference=True)``, e.g. ``release_t``); it shares the nets, so it costs nothing.
        ConfigError for a name that is not an inference setting of this method."""
        allowed = inference_fields(self.cfg)
        bad = sorted(set(settings) - set(allowed))
        if bad:
            raise ConfigError(f"model.{bad[0]} is not an inference setting of {self.name}; "
                              f"expected one of {', '.join(allowed) or 'none'}")
        view = copy.copy(self)
        view.cfg = dataclasses.replace(self.cfg, **settings)  # the settings' __post_init__ checks the new values
        return view

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


def check_same_domains(where: str, data, source_data) -> None:
    """MethodError naming ``where`` (e.g. 'model.teacher=RUN') unless a run that another starts from or learns was
    trained on the same domains: dataset, image size, direction and, for cMNIST, the digits and hues (``data``,
    ``source_data``: the two runs' DataConfig)."""
    keys = ["dataset", "image_size", "reverse"]
    if data.dataset == "cmnist":
        keys += ["digit_a", "digit_b", "color_seed"]
    for key in keys:
        if getattr(data, key) != getattr(source_data, key):
            raise MethodError(f"{where}: it was trained with data.{key}={getattr(source_data, key)!r}, "
                              f"this run has data.{key}={getattr(data, key)!r}")


def check_source(where: str, loaded: tuple, method: str, cfg, fields: tuple[str, ...]) -> tuple:
    """Check a trained run that another starts from (``loaded`` = (Method, Config, info) as
    translab.loading.load_method returns it, named ``where``, e.g. 'model.init_from=RUN') against this run's
    Config ``cfg``: its method must be ``method``, each ``model.<field>`` of ``fields`` equal to ours, and its
    domains ours (check_same_domains). MethodError naming both values otherwise.
    Returns (the source Method, its Config)."""
    from translab.settings import to_dict

    source, source_cfg, info = loaded
    if source_cfg.method != method:
        raise MethodError(f"{where}: expected a {method} model, got a '{source_cfg.method}' one "
                          f"({info['checkpoint']})")
    for field in fields:
        mine, theirs = to_dict(getattr(cfg.model, field)), to_dict(getattr(source_cfg.model, field))
        if mine != theirs:
            raise MethodError(f"{where}: its model.{field} is {theirs}, but ours is {mine}; "
                              f"set model.{field} to match")
    check_same_domains(where, cfg.data, source_cfg.data)
    return source, source_cfg


# --------------------------------------------------------------------------------------------------
# optional capabilities, checked with isinstance (e.g. by `translab latent`)


@runtime_checkable
class LatentBridge(Protocol):
    """A method with a deterministic latent space per domain (DDIB): encode (N, 3, H, W) images in [-1, 1] of
    ``domain`` to latents of the same shape, and decode latents back."""

    def encode(self, x0: torch.Tensor, domain: str, steps: int | None = None, progress=None) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor, domain: str, steps: int | None = None, progress=None) -> torch.Tensor: ...


@runtime_checkable
class ReleasedChains(Protocol):
    """A method whose source chain follows the input until a release time t_r (UNIT-DDPM, Algorithm 2);
    other t_r through ``with_inference(release_t=...)``."""

    def check_release(self, release_t: int) -> int: ...
