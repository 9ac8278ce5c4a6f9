"""Method registry: name -> class. Every method follows translab.methods.base.Method."""
from __future__ import annotations

import difflib
import importlib

from translab.methods.base import DIRECTIONS, Method, MethodError, Translation

#: name -> "module:Class", imported on first use so that `translab --help` stays fast
METHODS = {
    "ddib": "translab.methods.ddib:DDIB",
    "sdedit": "translab.methods.sdedit:SDEdit",
    "unit-ddpm": "translab.methods.unit_ddpm:UnitDDPM",
    "cyclegan": "translab.methods.cyclegan:CycleGAN",
    "not": "translab.methods.neural_ot:NeuralOT",
}


def method_class(name: str) -> type[Method]:
    if name not in METHODS:
        close = difflib.get_close_matches(str(name), list(METHODS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise MethodError(f"unknown method '{name}': expected one of {', '.join(METHODS)}{hint}")
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def method_config_class(name: str) -> type:
    return method_class(name).config_class


def build_method(cfg) -> Method:
    """Instantiate the method of a full translab Config (weights freshly initialised)."""
    return method_class(cfg.method)(cfg.model, cfg.data.image_size)


__all__ = ["DIRECTIONS", "METHODS", "Method", "MethodError", "Translation", "build_method", "method_class",
           "method_config_class"]
