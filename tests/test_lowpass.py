"""ILVR-style low-pass consistency (translab.diffusion.lowpass; model.lowpass_factor of DDIB and SDEdit)."""
from __future__ import annotations

import pytest
import torch

from translab.config import ConfigError
from translab.diffusion.lowpass import lowpass, lowpass_consistent
from translab.diffusion.process import x0_from_eps
from translab.diffusion.schedule import NoiseSchedule
from translab.methods import build_method
from tiny_runs import tiny_ddib


def images(n: int = 3, seed: int = 0, size: int = 8) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_lowpass_is_an_orthogonal_projection_onto_the_low_frequencies():
    x, other = images(), images(seed=9)
    low = lowpass(x, 4)
    assert torch.allclose(lowpass(low, 4), low, atol=1e-5)  # idempotent
    assert abs(((x - low) * lowpass(other, 4)).sum()) < 1e-4  # the rest is orthogonal to every low image
    i = torch.arange(8, dtype=torch.float32)
    slow = torch.cos(torch.pi * (2 * i + 1) / 16)[None, None, :, None].expand(1, 3, 8, 8)  # DCT frequency 1
    fast = torch.cos(torch.pi * (2 * i + 1) * 5 / 16)[None, None, :, None].expand(1, 3, 8, 8)  # frequency 5
    assert torch.allclose(lowpass(slow + fast, 4), slow, atol=1e-5)  # 8/4 = 2 frequencies kept: 0 and 1
    assert torch.allclose(lowpass(x - low, 4), torch.zeros_like(x), atol=1e-6)  # the rest has no low part
    assert torch.allclose(lowpass(x, 8), x.mean(dim=(2, 3), keepdim=True).expand_as(x))  # whole image: channel means
    assert torch.equal(lowpass(x, 1), x)
    assert torch.allclose(lowpass(x, 32), lowpass(x, 8), atol=1e-6)  # beyond the image size: still the means
    with pytest.raises(ValueError, match="divisor"):
        lowpass(x, 3)


def test_consistent_estimate_takes_the_reference_low_and_keeps_its_own_high():
    sched = NoiseSchedule.make("cosine", 1000)
    ref, x = images(seed=1), images(seed=2)
    raw = lambda v, t: 0.3 * v + 0.1 * torch.sin(3 * v)  # any eps predictor  # noqa: E731
    fn = lowpass_consistent(raw, sched, ref, 2, interval=[100, 900])
    t = torch.full((3,), 500, dtype=torch.long)
    x0_raw = x0_from_eps(sched, x, 500, raw(x, t))
    x0 = x0_from_eps(sched, x, 500, fn(x, t))
    assert torch.allclose(lowpass(x0, 2), lowpass(ref, 2), atol=1e-4)
    assert torch.allclose(x0 - lowpass(x0, 2), x0_raw - lowpass(x0_raw, 2), atol=1e-4)
    outside = torch.full((3,), 950, dtype=torch.long)
    assert torch.equal(fn(x, outside), raw(x, outside))  # outside the interval: the raw prediction


def test_ddib_decoding_ends_on_the_input_low_frequencies_at_the_same_cost():
    torch.manual_seed(0)
    plain = build_method(tiny_ddib(1)).eval()
    torch.manual_seed(0)
    model = build_method(tiny_ddib(1, "model.lowpass_factor=4")).eval()
    x = images(seed=3) * 0.5
    z = model.encode(x, "a")
    y = model.decode(z, "b", reference=x)
    assert torch.allclose(lowpass(y, 4), lowpass(x, 4), atol=1e-3)  # the last step's estimate is the output
    y_plain = plain.decode(plain.encode(x, "a"), "b")
    assert not torch.allclose(lowpass(y_plain, 4), lowpass(x, 4), atol=1e-2)  # the oracle can fail
    assert model.nfe("a2b") == plain.nfe("a2b")
    torch.testing.assert_close(model.decode(z, "b"), y_plain)  # no reference: the domain's own ODE


def test_chroma_only_consistency_keeps_the_estimate_s_grey_level():
    """on="chroma": the estimate's chroma takes the reference's low frequencies, its grey level (each pixel's
    channel mean) is the raw estimate's; a uniformly inked reference on black keeps its hue in the mean."""
    from translab.diffusion.lowpass import chroma

    sched = NoiseSchedule.make("cosine", 1000)
    ref, x = images(seed=1), images(seed=2)
    raw = lambda v, t: 0.3 * v + 0.1 * torch.sin(3 * v)  # any eps predictor  # noqa: E731
    t = torch.full((3,), 400, dtype=torch.long)
    x0_raw = x0_from_eps(sched, x, 400, raw(x, t))
    x0 = x0_from_eps(sched, x, 400, lowpass_consistent(raw, sched, ref, 2, on="chroma")(x, t))
    assert torch.allclose(lowpass(chroma(x0), 2), lowpass(chroma(ref), 2), atol=1e-4)
    assert torch.allclose(x0.mean(1), x0_raw.mean(1), atol=1e-4)  # the grey level is untouched
    assert not torch.allclose(lowpass(x0, 2), lowpass(ref, 2), atol=1e-2)  # unlike on="all"
    ink = torch.tensor([0.8, -0.2, 0.1])
    digit = torch.full((1, 3, 8, 8), -1.0)  # black has no chroma
    digit[:, :, 2:6, 3:5] = ink.view(1, 3, 1, 1)  # 8 of 64 pixels inked
    assert torch.allclose(chroma(digit).mean((2, 3)).flatten(), (8 / 64) * (ink - ink.mean()), atol=1e-6)
    with pytest.raises(ValueError, match="on expected one of"):
        lowpass_consistent(raw, sched, ref, 2, on="luma")


def test_ddib_decoding_with_chroma_only_keeps_the_input_s_low_chroma():
    from translab.diffusion.lowpass import chroma

    torch.manual_seed(0)
    model = build_method(tiny_ddib(1, "model.lowpass_factor=4", "model.lowpass_on=chroma")).eval()
    x = images(seed=3) * 0.5
    y = model.decode(model.encode(x, "a"), "b", reference=x)
    assert torch.allclose(lowpass(chroma(y), 4), lowpass(chroma(x), 4), atol=1e-3)
    assert not torch.allclose(lowpass(y, 4), lowpass(x, 4), atol=1e-2)  # its grey level is the model's own


@pytest.mark.parametrize("eta", [0, 1])
def test_sdedit_with_lowpass_keeps_the_input_channel_means(eta):
    from tiny_runs import TINY_DDIB
    from translab.config import resolve_config

    cfg = resolve_config("sdedit", None, None, TINY_DDIB + ["train.steps=1", "model.lowpass_factor=8",
                                                            f"model.eta={eta}"])
    model = build_method(cfg).eval()
    # a predictor whose clean estimate is always the black image 0: SDEdit alone ends on 0, with the low-pass
    # consistency on the estimate's whole-image mean replaced by the input's
    to_zero = lambda v, t: v / (1 - model.schedule.alpha_bar_at(t, like=v)).sqrt()  # noqa: E731
    model.eps_fn = lambda domain, guidance=1.0: to_zero
    x = images(seed=4) * 0.5
    y = model.translate(x, "a2b", generator=torch.Generator().manual_seed(0)).images
    assert torch.allclose(y, lowpass(x, 8), atol=1e-4)
    model.cfg.lowpass_factor = 0
    y = model.translate(x, "a2b", generator=torch.Generator().manual_seed(0)).images
    assert torch.allclose(y, torch.zeros_like(y), atol=1e-4)


@pytest.mark.parametrize("setting,match", [("model.lowpass_factor=3", "lowpass_factor"),
                                           ("model.lowpass_factor=-2", "lowpass_factor"),
                                           ("model.lowpass_interval=[900,100]", "lowpass_interval"),
                                           ("model.lowpass_on=luma", "lowpass_on")])
def test_bad_lowpass_settings_are_config_errors(setting, match):
    with pytest.raises(ConfigError, match=match):
        tiny_ddib(1, setting)


def test_unit_ddpm_target_chain_ends_on_the_input_low_frequencies():
    """UNIT-DDPM's target chain with a predictor whose clean estimate is always the black image 0: Algorithm 2
    alone ends on 0; with the low-pass step every estimate, the last one included, is the input's lowest 2 x 2
    frequencies."""
    from translab.config import build_config

    model = {"unet": {"base_channels": 8, "channel_mult": [1], "norm_groups": 4}, "lowpass_factor": 4,
             "release_t": 100, "t_max": 500, "generator": {"ngf": 4, "n_blocks": 1, "n_down": 1}}
    m = build_method(build_config({"method": "unit-ddpm", "data": {"dataset": "synthetic", "image_size": 8},
                                   "model": model}))
    seen = []

    def to_zero(v, other, t):
        seen.append(other.shape)  # the partner chain reaches the network through the low-pass step
        return v / (1 - m.schedule.alpha_bar_at(t, like=v)).sqrt()

    m.eps_fn = lambda domain: to_zero
    x = images(5, seed=6) * 0.5
    y = m.translate(x, "a2b", steps=4, generator=torch.Generator().manual_seed(0)).images
    assert torch.allclose(y, lowpass(x, 4), atol=1e-4)
    assert seen and all(shape == x.shape for shape in seen)
    plain = m.with_inference(lowpass_factor=0)
    plain.eps_fn = lambda domain: to_zero
    y_plain = plain.translate(x, "a2b", steps=4, generator=torch.Generator().manual_seed(0)).images
    assert torch.allclose(y_plain, torch.zeros_like(y), atol=1e-4)


@pytest.mark.parametrize("setting,match", [({"lowpass_factor": 3}, "lowpass_factor"),
                                           ({"lowpass_factor": -1}, "lowpass_factor"),
                                           ({"lowpass_interval": [900, 100]}, "lowpass_interval"),
                                           ({"lowpass_on": "luma"}, "lowpass_on")])
def test_unit_ddpm_refuses_bad_lowpass_settings(setting, match):
    from translab.config import build_config

    with pytest.raises(ConfigError, match=match):
        build_config({"method": "unit-ddpm", "data": {"dataset": "synthetic", "image_size": 8}, "model": setting})


@pytest.mark.parametrize("method", ["ddib", "unit-ddpm"])
def test_chroma_only_low_pass_refuses_grey_images(method):
    from translab.config import build_config

    with pytest.raises(ConfigError, match="model.lowpass_on=chroma: chroma needs RGB images, data.channels is 1"):
        build_config({"method": method, "data": {"dataset": "folders", "channels": 1},
                      "model": {"lowpass_factor": 32, "lowpass_on": "chroma"}})
