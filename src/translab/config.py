"""Typed configuration: dataclasses, YAML presets, `--set key.sub=value` overrides.

A config is data. It is parsed with ``yaml.safe_load``, validated against the dataclasses below, printed,
saved in the run directory and inside every checkpoint. Nothing in it is ever executed.

Layout of a full config::

    method: ddib            # a key of translab.methods.METHODS
    data:   {...}           # DataConfig
    train:  {...}           # TrainConfig
    model:  {...}           # the method's own dataclass (e.g. DDIBConfig)
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file, preset or override that does not match the schema."""


def describe(meaning: str, default: Any = dataclasses.MISSING, factory: Any = dataclasses.MISSING,
             inference: bool = False):
    """A dataclass field with a one-line meaning stored in its metadata (shown by `translab config`).

    ``inference=True`` marks a method setting that only changes how a trained model translates (steps,
    solver, t0, ...): it may change when a run resumes, and per call (``--set`` at translate/evaluate)."""
    metadata = {"help": meaning, "inference": inference}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def inference_fields(settings: Any) -> list[str]:
    """Names of the fields of a settings dataclass declared with ``describe(..., inference=True)``, sorted."""
    return sorted(f.name for f in fields(settings) if f.metadata.get("inference"))


@dataclass
class DataConfig:
    dataset: str = describe("cmnist | emoji | celeba | folders | synthetic", "cmnist")
    root: str | None = describe("data root (MNIST, CelebA or the folder pair); None: $TRANSLAB_DATA or ~/.cache/translab", None)
    digit_a: int = describe("cmnist: digit of domain A", 2)
    digit_b: int = describe("cmnist: digit of domain B", 3)
    image_size: int = describe("side of the square images fed to the networks", 32)
    channels: int = describe("image channels: 3 (RGB) or 1 (greyscale: each file converted to PIL's 'L' after "
                             "transparency is composited on black; folders and celeba only, the hue-coloured "
                             "cmnist and synthetic refuse it); every method's networks take this many channels",
                             3)
    color_seed: int = describe("cmnist: base seed of the per-image hues", 0)
    reverse: bool = describe("swap domains A and B (e.g. female -> male for CelebA)", False)
    limit: int | None = describe("keep at most this many images per domain and split (quick runs)", None)
    num_workers: int = describe("DataLoader worker processes", 0)

    def __post_init__(self):
        check_channels(self.channels)


#: allowed values of data.channels: greyscale or RGB
CHANNELS = (1, 3)


def check_channels(channels: Any, key: str = "data.channels") -> int:
    """``channels`` if it is 1 or 3 (an int, not a bool); one-line ConfigError naming ``key`` and the value otherwise."""
    if isinstance(channels, bool) or channels not in CHANNELS:
        raise ConfigError(f"{key}: expected 1 (greyscale) or 3 (RGB), got {_short(repr(channels))}")
    return channels


@dataclass
class TrainConfig:
    steps: int = describe("optimisation steps", 10000)
    batch_size: int = describe("images per domain per step (per process)", 64)
    lr: float = describe("learning rate of every optimiser unless the method overrides it", 2e-4)
    weight_decay: float = describe("AdamW weight decay", 0.0)
    lr_drop_step: int = describe("from this step on, optimisers without a schedule of their own train at "
                                 "lr_drop_factor x their rate (0: never)", 0)
    lr_drop_factor: float = describe("learning-rate factor from lr_drop_step on", 0.2)
    grad_clip: float = describe("clip the global gradient norm to this value (0: off)", 1.0)
    ema_decay: float = describe("EMA decay of inference weights (0: no EMA)", 0.999)
    ema_start: int = describe("step from which EMA averaging starts (copy before)", 0)
    seed: int = describe("seed of weights, data order and noise", 0)
    hflip: bool = describe("mirror a random half of every training batch left-right (drawn from the run's seeded "
                           "generator, restored on resume): twice the images for data whose classes survive a mirror, "
                           "as in DDPM's CIFAR-10 training (Ho et al. 2020, Appendix B)", False)
    log_every: int = describe("steps between metrics.jsonl lines", 50)
    sample_every: int = describe("steps between sample grids (0: only at the end)", 1000)
    checkpoint_every: int = describe("steps between checkpoints", 1000)
    keep_checkpoints: int = describe("checkpoints kept on disk (older ones are deleted)", 2)
    compile: bool = describe("torch.compile the networks", False)
    channels_last: bool = describe("channels_last memory format", False)
    mixed_precision: str = describe("no | bf16 (CUDA only)", "no")
    deterministic: bool = describe("torch.use_deterministic_algorithms (exact resume tests)", False)
    threads: int = describe("CPU threads for torch (0: torch default)", 0)
    progress: bool = describe("show a progress bar", True)


@dataclass
class Config:
    method: str = describe("method name (translab.methods.METHODS)", "ddib")
    data: DataConfig = describe("data domains", factory=DataConfig)
    train: TrainConfig = describe("training loop", factory=TrainConfig)
    model: Any = describe("the method's own settings", None)

    def to_dict(self) -> dict:
        return to_dict(self)


# --------------------------------------------------------------------------------------------------
# dict <-> dataclass


def to_dict(obj: Any) -> Any:
    """Plain-Python (YAML/JSON-safe) view of a config dataclass tree."""
    if is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    return obj


def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _suggest(key: str, options: list[str]) -> str:
    close = difflib.get_close_matches(key, options, n=1, cutoff=0.5)
    return f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(options))}"


def _coerce(value: Any, typ: Any, where: str) -> Any:
    """Check ``value`` against the annotation ``typ`` and convert the harmless cases (int -> float)."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if typ is Any:
        return value
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{where}: {_short(repr(value))} does not match {typ}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {_short(repr(value))}")
        inner = args[0] if args else Any
        out = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if is_dataclass(typ):
        if isinstance(value, typ):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_short(repr(value))}")
        return from_dict(typ, value, prefix=where)
    if typ is float:
        if isinstance(value, str):  # YAML 1.1 reads '2e-3' (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_short(repr(value))}")
        return float(value)
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_short(repr(value))}")
        return value
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_short(repr(value))}")
        return value
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_short(repr(value))}")
        return value
    return value


def from_dict(cls, data: dict, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping; unknown keys raise ConfigError with a suggestion."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {type(data).__name__}")
    types = _field_types(cls)
    names = [f.name for f in fields(cls)]
    kwargs = {}
    for key, value in data.items():
        where = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            full = [f"{prefix}.{n}" if prefix else n for n in names]
            raise ConfigError(f"unknown config key '{_short(where)}'{_suggest(where, full)}")
        kwargs[key] = _coerce(value, types[key], where)
    return cls(**kwargs)


def build_config(data: dict) -> Config:
    """Full config from a plain mapping: the method name decides the dataclass of ``model``."""
    from translab.registry import UnknownMethod, lookup_method_class

    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping, got {type(data).__name__}")
    data = dict(data or {})
    method = data.get("method", "ddib")
    if not isinstance(method, str):
        raise ConfigError(f"method: expected a method name (a string), got {_short(repr(method))}")
    try:
        model_cls = lookup_method_class(method).config_class
    except UnknownMethod as e:
        raise ConfigError(f"method: {_short(str(e), 400)}") from None
    model = data.pop("model", None) or {}
    cfg = from_dict(Config, data)
    cfg.model = from_dict(model_cls, model, prefix="model")
    check_ranges(cfg)
    return cfg


#: (lowest allowed, highest allowed) of numeric settings whose bad values would otherwise crash or silently
#: corrupt a run later (e.g. log_every=0 divides by zero after the first step, ema_decay=2 diverges). Keys under
#: ``model.`` apply to the methods whose settings have them (e.g. model.unet.* to DDIB, SDEdit and UNIT-DDPM).
RANGES: dict[str, tuple[float | None, float | None]] = {
    "data.image_size": (1, None), "data.limit": (1, None), "data.num_workers": (0, None),
    "train.steps": (1, None), "train.batch_size": (1, None), "train.lr": (0.0, None),
    "train.weight_decay": (0.0, None), "train.grad_clip": (0.0, None), "train.ema_decay": (0.0, 1.0),
    "train.ema_start": (0, None), "train.seed": (0, 2 ** 32 - 1), "train.log_every": (1, None),
    "train.sample_every": (0, None), "train.checkpoint_every": (1, None), "train.keep_checkpoints": (0, None),
    "train.threads": (0, None), "train.lr_drop_step": (0, None), "train.lr_drop_factor": (0.0, None),
    "model.steps": (1, None), "model.sample_steps": (0, None), "model.diffusion.num_timesteps": (1, None),
    "model.unet.base_channels": (1, None), "model.unet.layers_per_block": (1, None),
    "model.unet.norm_groups": (1, None), "model.unet.dropout": (0.0, 1.0),
}

#: settings that must be strictly above their RANGES lower bound (a learning rate of 0 trains nothing)
STRICT_LOW = ("train.lr",)


def check_ranges(cfg: Config) -> None:
    """Raise ConfigError naming the key if a RANGES setting is out of range or a float is NaN/infinite, or if
    the denoiser's UNet settings cannot build a network for ``data.image_size`` (see check_unet)."""
    for key, (low, high) in RANGES.items():
        found, value = _lookup(cfg, key)
        if found:
            _check_range(key, value, low, high)
    check_unet(cfg)


def check_data_ranges(data: DataConfig) -> None:
    """check_ranges for a DataConfig on its own (``translab data show``)."""
    for key, (low, high) in RANGES.items():
        if key.startswith("data."):
            _check_range(key, getattr(data, key.split(".", 1)[1]), low, high)


def _lookup(cfg: Config, key: str) -> tuple[bool, Any]:
    """(True, value) of a dotted key in cfg, or (False, None) when this config has no such setting."""
    node: Any = cfg
    for part in key.split("."):
        if not is_dataclass(node) or not hasattr(node, part):
            return False, None
        node = getattr(node, part)
    return True, node


def _check_range(key: str, value: Any, low: float | None, high: float | None) -> None:
    import math

    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{key}: expected a finite number, got {value}")
    if key in STRICT_LOW and value <= low:
        raise ConfigError(f"{key} must be > {low:g}, got {value:g}")
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{key}: must be {span}, got {_short(value)}")


def check_unet(cfg: Config) -> None:
    """The settings of a method with a diffusion UNet (``model.unet``) that only fail once the network is built
    or sampled: levels, GroupNorm groups, the image size the levels halve, t_max, trained domains."""
    found, unet = _lookup(cfg, "model.unet")
    if not found:
        return
    mult = unet.channel_mult
    if not mult or any(m < 1 for m in mult):
        raise ConfigError(f"model.unet.channel_mult: expected a non-empty list of integers >= 1, got {_short(mult)}")
    for m in mult:
        if (unet.base_channels * m) % unet.norm_groups:
            raise ConfigError(f"model.unet.norm_groups={unet.norm_groups} must divide the channels of every level "
                              f"(base_channels x channel_mult = {[unet.base_channels * k for k in mult]})")
    halvings = len(mult) - 1
    if cfg.data.image_size % (2 ** halvings):
        raise ConfigError(f"data.image_size={cfg.data.image_size}: a UNet with {len(mult)} levels "
                          f"(model.unet.channel_mult={mult}) needs an image size divisible by {2 ** halvings}")
    t_max = getattr(cfg.model, "t_max", None)
    steps_t = cfg.model.diffusion.num_timesteps if hasattr(cfg.model, "diffusion") else None
    if t_max is not None and steps_t is not None and not 0 <= t_max <= steps_t - 1:
        raise ConfigError(f"model.t_max: expected a timestep in [0, {steps_t - 1}] (T = {steps_t}) or null, "
                          f"got {t_max}")
    if getattr(cfg.model, "train_domains", None) == []:
        raise ConfigError("model.train_domains: expected 'a' and/or 'b', got an empty list")


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


def _short(value: Any, limit: int = 200) -> str:
    """``str(value)`` cut to ``limit`` characters, for messages about hostile or huge input."""
    text = str(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


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
