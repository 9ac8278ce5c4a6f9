"""One contract over every registered method (translab.methods.METHODS): a new method is done when it passes.

For each method, on tiny synthetic data: two real training steps give finite scalars; translate keeps the
shape, stays in [-1, 1] and reports the NFE that ``nfe`` promises; a seeded translation repeats exactly; the
saved run loads back to the same translations; a bad setting of the method's own config is a ConfigError.
"""
from __future__ import annotations

import math

import pytest
import torch

from translab.config import ConfigError, resolve_config
from tiny_runs import with_teacher
from translab.methods import METHODS

torch.set_num_threads(1)

COMMON = ["data.dataset=synthetic", "data.image_size=8", "data.limit=16", "train.batch_size=4",
          "train.progress=false", "train.sample_every=0", "train.log_every=1", "train.threads=1"]
UNET = ["model.unet.base_channels=8", "model.unet.channel_mult=[1,2]", "model.unet.norm_groups=4"]
#: per method: the tiny settings, and one bad setting of its own config that must be refused
TINY = {
    "ddib": (UNET + ["model.steps=3", "model.sample_steps=2"], "model.steps=0"),
    "sdedit": (UNET + ["model.steps=3", "model.sample_steps=2"], "model.t0=1.5"),
    "unit-ddpm": (UNET + ["model.diffusion.num_timesteps=50", "model.generator.ngf=4", "model.generator.n_blocks=1",
                          "model.release_t=10", "model.steps=4", "model.sample_steps=2"], "model.release_t=500"),
    "cyclegan": (["model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4", "model.discriminator.n_layers=1",
                  "model.pool_size=2"], "model.generator.n_down=4"),
    "not": (["model.map=resnet", "model.resnet.ngf=4", "model.resnet.n_blocks=1", "model.potential.nf=4",
             "model.potential.nf_max=8", "model.t_iters=2"], "model.direction=sideways"),
    "dsbm": (UNET + ["model.pretrain_steps=1", "model.coupling_steps=2", "model.steps=3", "model.sample_steps=2"],
             "model.epsilon=0.0"),
    # "{teacher}": a tiny DDIB trained on the same data settings (tiny_runs.with_teacher)
    "distill": (UNET + ["model.teacher={teacher}", "model.pair_steps=1"], "model.pair_steps=0"),
}


def test_every_registered_method_has_a_contract_entry():
    assert set(TINY) == set(METHODS)


def test_the_light_name_list_is_the_method_table():
    """`translab --help` lists methods from translab.settings.METHOD_NAMES without importing torch."""
    from translab.settings import METHOD_NAMES

    assert METHOD_NAMES == tuple(METHODS)


def tiny_config(name: str, *extra: str):
    return resolve_config(name, None, overrides=with_teacher(COMMON + TINY[name][0] + list(extra)))


def translate(method, x, direction):
    return method.translate(x, direction, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module", params=sorted(METHODS))
def trained(request, tmp_path_factory):
    from translab.training import train

    name = request.param
    run = tmp_path_factory.mktemp(name.replace("-", "_")) / "run"
    result = train(tiny_config(name, "train.steps=2"), run)
    return name, result


def test_training_steps_give_finite_scalars(trained):
    name, result = trained
    assert result.step == 2 and not result.stopped_early
    assert result.last_scalars and all(math.isfinite(v) for v in result.last_scalars.values()), name


def test_translate_shape_range_nfe_and_seeded_repeat(trained):
    name, result = trained
    method = result.method.eval()
    for direction in method.directions():
        x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
        with torch.no_grad():
            first, again = translate(method, x, direction), translate(method, x, direction)
        assert first.images.shape == x.shape, (name, direction)
        assert first.images.min() >= -1 and first.images.max() <= 1, (name, direction)
        assert first.nfe == method.nfe(direction) >= 1, (name, direction)
        assert torch.equal(first.images, again.images), f"{name} {direction}: a seeded translation changed"


def test_saved_run_loads_to_the_same_translations(trained):
    from translab.loading import load_method

    name, result = trained
    loaded, cfg, info = load_method(result.run_dir)
    assert cfg.method == name and info["step"] == 2
    live = result.method.eval()
    for direction in live.directions():
        x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1
        with torch.no_grad():
            assert torch.equal(translate(live, x, direction).images, translate(loaded, x, direction).images), name


@pytest.mark.parametrize("name", sorted(METHODS))
def test_bad_method_setting_is_a_config_error(name):
    from translab.methods import build_method

    with pytest.raises(ConfigError) as err:
        build_method(tiny_config(name, TINY[name][1]))
    key = TINY[name][1].split("=")[0]
    assert key in str(err.value), f"{name}: the error does not name {key}: {err.value}"
    with pytest.raises(ConfigError, match="unknown config key"):
        tiny_config(name, "model.no_such_setting=1")


def test_inference_views_share_the_nets_and_refuse_training_settings(trained):
    import dataclasses

    name, result = trained
    method = result.method.eval()
    inference = [f.name for f in dataclasses.fields(method.cfg) if f.metadata.get("inference")]
    same = method.with_inference(**{k: getattr(method.cfg, k) for k in inference})
    assert same.nets is method.nets and same.cfg == method.cfg and same.cfg is not method.cfg
    d = method.directions()[0]
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        assert torch.equal(translate(same, x, d).images, translate(method, x, d).images), name
    training_only = next(f.name for f in dataclasses.fields(method.cfg) if not f.metadata.get("inference"))
    with pytest.raises(ConfigError, match=f"model.{training_only} is not an inference setting"):
        method.with_inference(**{training_only: getattr(method.cfg, training_only)})


def test_latent_capabilities_follow_the_methods_own_methods():
    """`translab latent` picks its study by capability, not by name: DDIB bridges latents, UNIT-DDPM releases
    chains, the one-pass translators have neither."""
    from translab.methods import method_class
    from translab.methods.base import LatentBridge, ReleasedChains

    def has(name, protocol):
        return issubclass(method_class(name), protocol)

    assert has("ddib", LatentBridge) and not has("ddib", ReleasedChains)
    assert has("unit-ddpm", ReleasedChains) and not has("unit-ddpm", LatentBridge)
    for name in ("cyclegan", "not"):
        assert not has(name, LatentBridge) and not has(name, ReleasedChains)


def test_train_steps_protocol_is_what_the_loop_gives_and_all_methods_use():
    """The training loop's TrainContext satisfies methods.base.TrainSteps, and every ``ctx.<name>`` a method's
    source reads is a member of that protocol (a method reaching for ctx.accelerator fails here)."""
    import re
    import typing
    from pathlib import Path

    from accelerate import Accelerator

    import translab.methods as methods_pkg
    from translab.methods.base import TrainSteps
    from translab.training import TrainContext

    ctx = TrainContext(Accelerator(cpu=True), {}, {}, {}, 0.0, torch.Generator())
    assert isinstance(ctx, TrainSteps)
    members = set(typing.get_type_hints(TrainSteps)) | {n for n in vars(TrainSteps) if not n.startswith("_")}
    used = {m for f in Path(methods_pkg.__file__).parent.glob("*.py")
            for m in re.findall(r"\bctx\.([A-Za-z_]\w*)", f.read_text())}
    assert used, "no ctx use found: the scan is broken"
    assert used <= members, f"methods use ctx members outside TrainSteps: {sorted(used - members)}"
