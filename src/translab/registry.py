"""The explicit method registry: name -> "module:Class", imported by name on first use.

It sits below every other translab module (it imports none of them statically), so that the config layer
can find a method's settings class and the methods layer its classes without an import circle between
translab.config and translab.methods. Adding a method is one line here (docs/architecture.md).
"""
from __future__ import annotations

import difflib
import importlib

#: name -> "module:Class", imported on first use so that `translab --help` stays fast
METHODS = {
    "ddib": "translab.methods.ddib:DDIB",
    "sdedit": "translab.methods.sdedit:SDEdit",
    "unit-ddpm": "translab.methods.unit_ddpm:UnitDDPM",
    "cyclegan": "translab.methods.cyclegan:CycleGAN",
    "not": "translab.methods.neural_ot:NeuralOT",
    "dsbm": "translab.methods.dsbm:DSBM",
}


class UnknownMethod(LookupError):
    """A method name that is not in METHODS; the message lists the valid names and the nearest one."""


def lookup_method_class(name: str) -> type:
    """The class registered as ``name`` (imported now); UnknownMethod when there is none."""
    if name not in METHODS:
        close = difflib.get_close_matches(str(name), list(METHODS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise UnknownMethod(f"unknown method '{name}': expected one of {', '.join(METHODS)}{hint}")
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(module), cls)
