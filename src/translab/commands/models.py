"""`translab models`: the models shipped inside the package, with how each was trained."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("models", help="list the shipped pretrained models (usable as --run NAME)")
    p.set_defaults(func=run)


def run(args) -> int:
    from translab.rundir import training_stages, training_total
    from translab.shipped import shipped_models

    models = shipped_models()
    if not models:
        print("no models are shipped with this installation")
        return 0
    print(f"{'name':28s} {'steps':>7s} {'train time':>11s} {'size':>8s}  hardware")
    for name, folder in models.items():
        rec_file = folder / "train_record.json"
        rec = json.loads(rec_file.read_text()) if rec_file.is_file() else {}
        size = (folder / "model.safetensors").stat().st_size / 1e6
        steps, wall = training_total(rec, "steps"), training_total(rec, "wall_seconds")
        stages = len(training_stages(rec))
        note = f"  ({stages} stages: model.init_from)" if stages > 1 else ""
        print(f"{name:28s} {steps if steps is not None else '?':>7} {(f'{wall / 60:.0f} min' if wall else '?'):>11s} "
              f"{size:>6.1f}MB  {rec.get('hardware', '?')}{note}")
    return 0
