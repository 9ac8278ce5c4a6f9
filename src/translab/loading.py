"""Loading trained weights: one restore of nets and EMA copies shared by training (resume) and inference.

``restore_nets`` puts a checkpoint's (or an exported folder's) state dicts into a built Method;
``load_method`` builds the Method a run directory, checkpoint file or exported inference folder describes and
restores it for inference. Weights are read with ``torch.load(weights_only=True)`` or safetensors
(translab.checkpoint, translab.export): never a full unpickle.
"""
from __future__ import annotations

import copy
from pathlib import Path

from translab.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from translab.config import Config, apply_override, build_config
from translab.methods import Method, build_method


def restore_nets(method: Method, state: dict, source: str | Path) -> None:
    """Load ``state['nets']``, ``state['ema']`` and ``state['extra']`` into ``method``.

    An EMA copy named in the state but not yet on the method is made from its net first. Net names that the
    method has renamed since (``method.renamed_nets``) are read under their new names. A state that does
    not fit the nets (missing keys, other shapes) raises CheckpointError naming ``source``.
    """
    rename = method.renamed_nets
    try:
        for n, sd in state["nets"].items():
            method.nets[rename.get(n, n)].load_state_dict(sd)
        for n, sd in state.get("ema", {}).items():
            n = rename.get(n, n)
            if n not in method.ema:
                method.ema[n] = copy.deepcopy(method.nets[n]).requires_grad_(False)
            method.ema[n].load_state_dict(sd)
        method.load_extra_state(state.get("extra", {}))
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"{source} does not match the {method.name} model its config describes: "
                              f"{str(e).splitlines()[0][:300]}") from None


def read_weights(path: Path, map_location: str = "cpu") -> tuple[dict, Path]:
    """The state of a run directory (its latest checkpoint), a checkpoint file or an exported folder.

    Returns (state with 'config', 'nets', optional 'ema'/'extra', 'step', and the file it came from)."""
    if path.is_dir() and (path / "model.safetensors").is_file():
        from translab.export import load_inference_folder

        return load_inference_folder(path), path / "model.safetensors"
    ckpt = latest_checkpoint(path / "checkpoints") if path.is_dir() else path
    if ckpt is None:
        raise CheckpointError(f"no checkpoint found in {path / 'checkpoints'}")
    return load_checkpoint(ckpt, map_location), ckpt


def check_inference_override(key: str, method: str) -> None:
    """ConfigError unless ``key`` is ``model.<name>`` of an inference setting of ``method`` (a trained model may
    translate with other steps or guidance, but its training settings and data stay those it was trained with)."""
    from translab.methods import method_class
    from translab.settings import ConfigError, inference_fields

    allowed = [f"model.{n}" for n in inference_fields(method_class(method).config_class)]
    if key not in allowed:
        raise ConfigError(f"--set {key}: not an inference setting of {method}; expected one of "
                          f"{', '.join(allowed) or 'none'}")


def load_method(run_or_ckpt: str | Path, map_location: str = "cpu", as_method: str | None = None,
                overrides: dict | None = None) -> tuple[Method, Config, dict]:
    """Method with trained (and EMA) weights from a run directory, a checkpoint file or an exported folder.

    ``as_method`` reinterprets the weights as a compatible method (a DDIB run as 'sdedit'); ``overrides``
    are plain {'model.key': value} changes of inference settings. Returns (method in eval mode, its Config,
    {'checkpoint', 'step', 'wall_seconds'}).
    """
    state, ckpt = read_weights(Path(run_or_ckpt), map_location)
    data = copy.deepcopy(state["config"])
    if as_method:
        data["method"] = as_method
    for key, value in (overrides or {}).items():
        check_inference_override(key, data.get("method", "ddib"))
        apply_override(data, key.split("."), value)
    cfg = build_config(data)
    method = build_method(cfg)
    restore_nets(method, state, ckpt)
    method.to(map_location).eval()
    return method, cfg, {"checkpoint": str(ckpt), "step": int(state["step"]), "wall_seconds": state.get("wall_seconds")}
