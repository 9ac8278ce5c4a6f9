"""Tiny real training configs for tests (synthetic 8x8 data, a 2-level UNet of a few thousand weights)."""
from __future__ import annotations

from translab.config import resolve_config

TINY_DDIB = [
    "data.dataset=synthetic", "data.image_size=8", "data.limit=32",
    "train.batch_size=4", "train.log_every=1", "train.sample_every=0", "train.progress=false",
    "train.threads=1", "model.unet.base_channels=8", "model.unet.channel_mult=[1,2]",
    "model.unet.norm_groups=4", "model.steps=4", "model.sample_steps=2",
]


def tiny_ddib(steps: int = 6, *extra: str):
    return resolve_config("ddib", None, None, TINY_DDIB + [f"train.steps={steps}", *extra])


_TEACHERS: dict[tuple, str] = {}


def with_teacher(overrides: list[str]) -> list[str]:
    """``overrides`` with "{teacher}" replaced by a tiny DDIB run trained (1 step, cached per data settings) on the
    same ``data.*`` settings: the teacher a distillation config needs."""
    if not any("{teacher}" in o for o in overrides):
        return list(overrides)
    import tempfile
    from pathlib import Path

    from translab.training import train

    data = tuple(o for o in overrides if o.startswith("data."))
    if data not in _TEACHERS:
        run = Path(tempfile.mkdtemp(prefix="tiny_teacher_")) / "ddib"
        train(tiny_ddib(1, *data), run)
        _TEACHERS[data] = str(run)
    return [o.replace("{teacher}", _TEACHERS[data]) for o in overrides]
