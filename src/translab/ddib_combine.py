"""DDIB's privacy setting, end to end: two runs, each trained on one domain only, joined into one translator.

DDIB (Su et al., ICLR 2023) trains the source and the target model separately, so no data of both domains need
be in one place (the paper's privacy argument): the owner of domain A trains an unconditional denoiser on A
(``--set model.conditional=false --set model.train_domains=[a]``), the owner of B does the same on B, and
translation A -> B only chains A's DDIM encoder into B's DDIM decoder.
``combine_ddib`` takes the two runs (run directories, checkpoints or exported folders), checks that they can be
chained (same noise schedule and timesteps, same image size, unconditional, each trained on its own domain) and
writes one inference folder (translab.export's layout) whose ``eps_a`` comes from the A run and ``eps_b`` from
the B run; every command that takes ``--run`` then translates both ways with it.
"""
from __future__ import annotations

import json
from pathlib import Path

from translab.methods.base import MethodError
from translab.shipped import portable_path


def _side(run, domain: str):
    from translab.loading import load_method

    method, cfg, info = load_method(run)
    where = f"--{domain} {run}"
    if cfg.method != "ddib":
        raise MethodError(f"{where}: a {cfg.method} run; combining needs two DDIB runs")
    if cfg.model.conditional:
        raise MethodError(f"{where}: a domain-conditional DDIB (one net for both domains) already translates on its "
                          f"own; combining takes unconditional runs (model.conditional=false)")
    if domain not in cfg.model.train_domains:
        raise MethodError(f"{where}: its denoiser for domain {domain} was never trained (model.train_domains="
                          f"{cfg.model.train_domains}); train it with --set model.train_domains=[{domain}]")
    return method, cfg, info


def combine_ddib(run_a: str | Path, run_b: str | Path, out_dir: str | Path) -> Path:
    """Write OUT/model.safetensors, config.yaml and train_record.json; returns OUT.

    ``run_a`` supplies eps_a (trained on domain A) and the config (data section included, with
    ``model.train_domains`` set to both); ``run_b`` supplies eps_b (trained on domain B). Raises
    MethodError naming the run and the field when the two cannot be chained.
    """
    from translab.export import write_inference_folder

    m_a, cfg_a, info_a = _side(run_a, "a")
    m_b, cfg_b, info_b = _side(run_b, "b")
    da, db = cfg_a.to_dict(), cfg_b.to_dict()
    for section, key in (("model", "diffusion"), ("model", "unet"), ("data", "image_size"), ("data", "channels")):
        if da[section][key] != db[section][key]:
            raise MethodError(f"cannot chain {run_a} and {run_b}: {section}.{key} differs ({da[section][key]} vs "
                              f"{db[section][key]}); both domains' models must share it")
    tensors = {}
    for method, name in ((m_a, "eps_a"), (m_b, "eps_b")):
        for k, v in method.infer_net(name).state_dict().items():
            tensors[f"{name}.{k}"] = v.detach().contiguous()
    config = dict(da)
    config["model"] = dict(da["model"], train_domains=["a", "b"])
    record = {"method": "ddib", "combined_from": {
        "a": {"run": portable_path(run_a), "checkpoint": portable_path(info_a["checkpoint"]), "steps": info_a["step"],
              "wall_seconds": info_a.get("wall_seconds"), "data": da["data"]},
        "b": {"run": portable_path(run_b), "checkpoint": portable_path(info_b["checkpoint"]), "steps": info_b["step"],
              "wall_seconds": info_b.get("wall_seconds"), "data": db["data"]}},
        "steps": min(info_a["step"], info_b["step"]),
        "wall_seconds": sum(i.get("wall_seconds") or 0.0 for i in (info_a, info_b)) or None}
    out = Path(out_dir)
    write_inference_folder(out, tensors, {"step": str(min(info_a["step"], info_b["step"])), "method": "ddib"},
                           config, json.dumps(record, indent=2))
    return out
