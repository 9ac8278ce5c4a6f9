"""Method registry: name -> class. Every method follows translab.methods.base.Method."""
from __future__ import annotations

from translab.methods.base import DIRECTIONS, Method, MethodError, Translation
from translab.registry import METHODS, UnknownMethod, lookup_method_class


def method_class(name: str) -> type[Method]:
    """The Method subclass registered as ``name`` (translab.registry); MethodError naming the valid ones."""
    try:
        return lookup_method_class(name)
    except UnknownMethod as e:
        raise MethodError(str(e)) from None


def method_config_class(name: str) -> type:
    return method_class(name).config_class


def build_method(cfg) -> Method:
    """Instantiate the method of a full translab Config (weights freshly initialised); its nets are sized for
    images (N, cfg.data.channels, cfg.data.image_size, cfg.data.image_size)."""
    return method_class(cfg.method)(cfg.model, cfg.data.image_size, channels=cfg.data.channels)


__all__ = ["DIRECTIONS", "METHODS", "Method", "MethodError", "Translation", "build_method", "method_class",
           "method_config_class"]
