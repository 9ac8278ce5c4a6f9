"""The method table: name -> Method subclass. Every method follows translab.methods.base.Method.

Adding a method is one line here and its name in translab.settings.METHOD_NAMES (docs/architecture.md); the
config layer, above this one, reads each method's settings class from this table.
"""
from __future__ import annotations

import difflib

from translab.methods.base import DIRECTIONS, Method, MethodError, Translation
from translab.methods.cyclegan import CycleGAN
from translab.methods.ddib import DDIB
from translab.methods.distill import Distill
from translab.methods.dsbm import DSBM
from translab.methods.neural_ot import NeuralOT
from translab.methods.sdedit import SDEdit
from translab.methods.unit_ddpm import UnitDDPM

#: name -> class, in translab.settings.METHOD_NAMES order
METHODS: dict[str, type[Method]] = {
    "ddib": DDIB, "sdedit": SDEdit, "unit-ddpm": UnitDDPM, "cyclegan": CycleGAN, "not": NeuralOT, "dsbm": DSBM,
    "distill": Distill,
}


def method_class(name: str) -> type[Method]:
    """The Method subclass registered as ``name``; MethodError naming the valid ones (and the nearest)."""
    if name not in METHODS:
        close = difflib.get_close_matches(str(name), list(METHODS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise MethodError(f"unknown method '{name}': expected one of {', '.join(METHODS)}{hint}")
    return METHODS[name]


def build_method(cfg) -> Method:
    """Instantiate the method of a full translab Config (weights freshly initialised); its nets are sized for
    images (N, cfg.data.channels, cfg.data.image_size, cfg.data.image_size)."""
    return method_class(cfg.method)(cfg.model, cfg.data.image_size, channels=cfg.data.channels)


__all__ = ["DIRECTIONS", "METHODS", "Method", "MethodError", "Translation", "build_method", "method_class"]
