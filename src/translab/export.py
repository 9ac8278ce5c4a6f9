"""Inference weights as safetensors: export a run's (EMA) nets, and load them back without pickle.

Folder layout: model.safetensors (keys '<net>.<param>', EMA weights where the run has them, fp16 optional),
config.yaml (the run's config), train_record.json (steps, wall time, hardware, final losses).
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from translab.checkpoint import (
    CheckpointError,
    atomic_path,
    atomic_write_text,
    latest_checkpoint,
    load_checkpoint,
)


def export_inference(run_dir: str | Path, out_dir: str | Path, fp16: bool = False) -> Path:
    """Write the inference weights of a run to ``out_dir``; returns the safetensors path."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    ckpt = latest_checkpoint(run_dir / "checkpoints")
    if ckpt is None:
        raise CheckpointError(f"no checkpoint in {run_dir / 'checkpoints'} to export")
    state = load_checkpoint(ckpt)
    tensors = {}
    for net, sd in state["nets"].items():
        source = state.get("ema", {}).get(net, sd)
        for k, v in source.items():
            v = v.detach().contiguous()
            if fp16 and v.is_floating_point():
                v = v.half()
            tensors[f"{net}.{k}"] = v
    record = run_dir / "train_record.json"
    return write_inference_folder(out_dir, tensors, {"step": str(state["step"]), "method": state["config"]["method"]},
                                  state["config"], record.read_text() if record.is_file() else None)


def write_inference_folder(out_dir: str | Path, tensors: dict, metadata: dict, config: dict,
                           record: str | None = None) -> Path:
    """OUT/model.safetensors (``tensors`` with ``metadata``), config.yaml and, given its text, train_record.json;
    returns the safetensors path. Each file goes through a temporary file and a rename, so an interrupted write
    leaves the previous file and no half-written one."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    path = out_dir / "model.safetensors"
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    if record is not None:
        atomic_write_text(out_dir / "train_record.json", record)
    return path


def load_inference_folder(folder: str | Path) -> dict:
    """A checkpoint-like dict {'config', 'step', 'nets'} from an exported folder (weights cast to fp32)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        flat = load_file(str(folder / "model.safetensors"))
    except Exception as e:  # safetensors raises its own error types on malformed files
        raise CheckpointError(f"cannot read {folder / 'model.safetensors'}: {e}") from None
    try:
        config = yaml.safe_load((folder / "config.yaml").read_text())
    except (OSError, yaml.YAMLError, ValueError, RecursionError) as e:
        raise CheckpointError(f"cannot read {folder / 'config.yaml'}: {str(e).splitlines()[0][:200]}") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{folder / 'config.yaml'} does not hold a translab config (expected a mapping)")
    nets: dict[str, dict] = {}
    for key, v in flat.items():
        if "." not in key:
            raise CheckpointError(f"{folder / 'model.safetensors'}: unexpected tensor name '{key[:100]}' "
                                  f"(expected '<net>.<parameter>')")
        net, param = key.split(".", 1)
        nets.setdefault(net, {})[param] = v.float() if v.is_floating_point() else v
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        meta = f.metadata() or {}
    record = folder / "train_record.json"
    wall = json.loads(record.read_text()).get("wall_seconds") if record.is_file() else None
    return {"config": config, "step": int(meta.get("step", 0)), "nets": nets, "ema": {}, "wall_seconds": wall}
