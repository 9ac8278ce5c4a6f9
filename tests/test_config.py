"""translab.settings and translab.config: each setting checked once by the dataclass that owns it, presets and
overrides resolved in order, older names read as today's, and load-time overrides limited to inference settings."""
from __future__ import annotations

import dataclasses

import pytest

from translab.config import build_config, preset_names, resolve_config
from translab.settings import METHOD_NAMES, ConfigError, DataConfig, TrainConfig, inference_fields


@pytest.mark.parametrize("build, key", [
    (lambda: TrainConfig(lr=0.0), "train.lr"),
    (lambda: TrainConfig(ema_decay=1.5), "train.ema_decay"),
    (lambda: TrainConfig(log_every=0), "train.log_every"),
    (lambda: TrainConfig(grad_clip=float("nan")), "train.grad_clip"),
    (lambda: DataConfig(image_size=0), "data.image_size"),
    (lambda: DataConfig(channels=2), "data.channels"),
])
def test_each_section_checks_its_own_fields_when_built(build, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        build()


@pytest.mark.parametrize("method, override, key", [
    ("ddib", "model.unet.norm_groups=5", "model.unet.norm_groups"),
    ("ddib", "model.t_max=1000", "model.t_max"),
    ("ddib", "model.guidance=3", "model.guidance"),  # needs label dropout: checked by DDIB's settings
    ("sdedit", "model.t0=0", "model.t0"),
    ("unit-ddpm", "model.release_t=2000", "model.release_t"),
    ("cyclegan", "model.decay_start=1.5", "model.decay_start"),  # before: only when training started
    ("not", "model.map=mlp", "model.map"),
    ("dsbm", "model.coupling_steps=0", "model.coupling_steps"),
])
def test_each_method_setting_is_refused_when_the_config_is_read(method, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        resolve_config(method, None, overrides=[override])


def test_checks_across_sections_run_when_the_config_is_assembled():
    """A UNet's levels against the image size, the generators' down-samplings likewise (``check_with``)."""
    with pytest.raises(ConfigError, match=r"data\.image_size=18: a UNet with 3 levels"):
        resolve_config("ddib", None, overrides=["data.image_size=18"])
    with pytest.raises(ConfigError, match=r"model\.generator\.n_down=3 needs an image size divisible by 8"):
        resolve_config("cyclegan", None, overrides=["model.generator.n_down=3", "data.image_size=20"])


def test_an_inference_view_passes_the_same_checks():
    cfg = resolve_config("sdedit", None)
    assert dataclasses.replace(cfg.model, t0=0.5).t0 == 0.5
    with pytest.raises(ConfigError, match=r"model\.t0"):
        dataclasses.replace(cfg.model, t0=2.0)


def test_presets_then_file_then_overrides(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train: {steps: 7, lr: 0.001}\n")
    cfg = resolve_config("ddib", "cmnist-2to3", str(f), ["train.steps=9"])
    assert (cfg.train.steps, cfg.train.lr, cfg.model.sampler) == (9, 0.001, "dpmpp2m")


def test_every_preset_builds():
    names = preset_names()
    assert {n.split("/")[0] for n in names} == set(METHOD_NAMES)
    for name in names:
        method, preset = name.split("/")
        assert resolve_config(method, preset).method == method


def test_unknown_method_and_key_name_the_nearest():
    with pytest.raises(ConfigError, match="did you mean 'dsbm'"):
        build_config({"method": "dsbn"})
    with pytest.raises(ConfigError, match="did you mean 'train.steps'"):
        build_config({"method": "ddib", "train": {"stesp": 3}})


def test_load_time_overrides_are_inference_settings_only(tmp_path):
    from tiny_runs import tiny_ddib
    from translab.loading import load_method
    from translab.training import train

    run = tmp_path / "run"
    train(tiny_ddib(1), run)
    method, _, _ = load_method(run, overrides={"model.steps": 2})
    assert method.cfg.steps == 2 and "steps" in inference_fields(method.cfg)
    for key in ("train.lr", "model.unet.base_channels", "data.image_size"):
        with pytest.raises(ConfigError, match=rf"--set {key}: not an inference setting of ddib; expected one of "):
            load_method(run, overrides={key: 5})
