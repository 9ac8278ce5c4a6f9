"""The full config of a run: presets, config files and `--set` overrides, resolved into typed settings.

A config is data. It is parsed with ``yaml.safe_load``, validated against the dataclasses of
``translab.settings`` and of each method (translab.methods.METHODS), printed, saved in the run directory and inside
every checkpoint. Nothing in it is ever executed. This module sits above the methods whose settings it holds.

Layout of a full config::

    method: ddib            # a key of translab.methods.METHODS
    data:   {...}           # DataConfig
    train:  {...}           # TrainConfig
    model:  {...}           # the method's own dataclass (e.g. DDIBConfig)
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from translab.settings import (  # noqa: F401  (re-exported: the config layer's public names)
    CHANNELS, METHOD_NAMES, ConfigError, DataConfig, TrainConfig, _short, _suggest, check_channels, describe,
    from_dict, inference_fields, to_dict,
)


@dataclass
class Config:
    method: str = describe(f"method name: {' | '.join(METHOD_NAMES)}", "ddib")
    data: DataConfig = describe("data domains", factory=DataConfig)
    train: TrainConfig = describe("training loop", factory=TrainConfig)
    model: Any = describe("the method's own settings", None)

    def to_dict(self) -> dict:
        return to_dict(self)

    def __post_init__(self):
        """The checks that join sections (e.g. a UNet's levels against data.image_size): the method settings'
        ``check_with(cfg)`` where they define one. Each section checked its own fields when it was built."""
        check = getattr(self.model, "check_with", None)
        if check is not None:
            check(self)


def build_config(data: dict) -> Config:
    """Full config from a plain mapping: the method name decides the dataclass of ``model``."""
    from translab.methods import METHODS

    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping, got {type(data).__name__}")
    data = dict(data or {})
    method = data.get("method", "ddib")
    if not isinstance(method, str):
        raise ConfigError(f"method: expected a method name (a string), got {_short(repr(method))}")
    if method not in METHODS:
        close = difflib.get_close_matches(method, list(METHODS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"method: unknown method '{_short(method)}': expected one of {', '.join(METHODS)}{hint}")
    model = data.pop("model", None) or {}
    sections = from_dict(_Sections, data)
    model = from_dict(METHODS[method].config_class, model, prefix="model")
    return Config(sections.method, sections.data, sections.train, model)


@dataclass
class _Sections:
    """The sections of a config file other than ``model``, built (and each checked) before the model's."""

    method: str = "ddib"
    data: DataConfig = describe("data domains", factory=DataConfig)
    train: TrainConfig = describe("training loop", factory=TrainConfig)


# --------------------------------------------------------------------------------------------------
# presets, files, overrides


def preset_names(method: str | None = None) -> list[str]:
    """Names of shipped presets, ``method/preset``."""
    root = resources.files("translab") / "presets"
    names = []
    for mdir in sorted(root.iterdir(), key=lambda p: p.name):
        if not mdir.is_dir() or (method and mdir.name != method):
            continue
        for f in sorted(mdir.iterdir(), key=lambda p: p.name):
            if f.name.endswith(".yaml"):
                names.append(f"{mdir.name}/{f.name[:-5]}")
    return names


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    except (ValueError, RecursionError) as e:  # integers beyond Python's digit limit; nesting beyond the stack
        raise ConfigError(f"config file {path} cannot be read: {_short(e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def load_preset(method: str, preset: str) -> dict:
    f = resources.files("translab") / "presets" / method / f"{preset}.yaml"
    if not f.is_file():
        options = [n.split("/", 1)[1] for n in preset_names(method)]
        hint = _suggest(preset, options) if options else f"; no presets exist for method '{method}'"
        raise ConfigError(f"unknown preset '{preset}' for method '{method}'{hint}")
    data = yaml.safe_load(f.read_text()) or {}
    data.setdefault("method", method)
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``train.steps=100`` -> (['train', 'steps'], 100). The value is parsed as a YAML scalar/list."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    except (ValueError, RecursionError) as e:  # integers beyond Python's digit limit; nesting beyond the stack
        raise ConfigError(f"override '{_short(key)}': the value cannot be parsed ({_short(e)})") from None
    return key.split("."), value


def apply_override(data: dict, path: list[str], value: Any) -> None:
    """Set ``data[path[0]][path[1]]... = value`` in a plain mapping (validated later by build_config)."""
    node = data
    for part in path[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"cannot set '{'.'.join(path)}': '{part}' is not a section")
        node = nxt
    node[path[-1]] = value


def resolve_config(method: str | None = None, preset: str | None = None, config_file: str | None = None,
                   overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Preset, then config file, then ``--set`` overrides, in that order; validated."""
    data: dict = {}
    if preset:
        if not method:
            raise ConfigError("a preset needs a method")
        data = load_preset(method, preset)
    if config_file:
        data = deep_merge(data, load_yaml(config_file))
    if method:
        if data.get("method", method) != method:
            raise ConfigError(f"config says method '{data['method']}' but the command asks for '{method}'")
        data["method"] = method
    for text in overrides:
        path, value = parse_override(text)
        apply_override(data, path, value)
    return build_config(data)


def deep_merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def diff_configs(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two plain config mappings."""
    keys = sorted(set(old) | set(new))
    out = []
    for k in keys:
        where = f"{prefix}.{k}" if prefix else k
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += diff_configs(a, b, where)
        elif a != b:
            out.append(where)
    return out
