"""DDIB beyond the paper (issue 18): label dropout, classifier-free guidance, min-SNR weighting, EDICT."""
from __future__ import annotations

import math

import pytest
import torch

from gaussian_oracle import gaussian_eps_fn
from translab.config import ConfigError
from translab.diffusion.edict import invert_edict, sample_edict
from translab.diffusion.process import drop_labels, min_snr_weight
from translab.diffusion.samplers import invert_ddim, sample_ddim
from translab.diffusion.schedule import NoiseSchedule
from translab.methods import build_method
from translab.methods.ddib import NULL_LABEL
from tiny_runs import tiny_ddib


def tiny_model(*settings: str):
    cfg = tiny_ddib(1, *settings)
    torch.manual_seed(0)
    return build_method(cfg).eval()


def images(n: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ---- training ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.1, 0.3])
def test_label_dropout_reaches_the_null_label_at_the_configured_rate(p):
    labels = torch.randint(0, 2, (40_000,), generator=torch.Generator().manual_seed(0))
    out = drop_labels(labels, p, torch.Generator().manual_seed(1))
    dropped = out == NULL_LABEL
    assert abs(dropped.float().mean().item() - p) < 0.01  # binomial sd at n = 40,000 is <= 0.0025
    assert torch.equal(out[~dropped], labels[~dropped])  # the others keep their label


def test_no_dropout_leaves_labels_and_the_two_class_network_unchanged():
    labels = torch.tensor([0, 1, 1, 0])
    assert torch.equal(drop_labels(labels, 0.0), labels)
    plain, dropped = tiny_model(), tiny_model("model.label_dropout=0.2")
    assert plain.nets["eps"].unet.class_embedding.num_embeddings == 2  # shipped weights keep loading
    assert dropped.nets["eps"].unet.class_embedding.num_embeddings == 3


def test_min_snr_weight_is_min_snr_over_snr():
    sched = NoiseSchedule.make("cosine", 1000)
    t = torch.tensor([0, 100, 300, 999])
    ab = sched.alpha_bar_at(t).double()
    snr = ab / (1 - ab)
    expected = torch.minimum(snr, torch.full_like(snr, 5.0)) / snr
    assert torch.allclose(min_snr_weight(sched, t, 5.0).double(), expected, rtol=1e-6)
    assert min_snr_weight(sched, t, 5.0)[-1] == 1.0  # pure noise: no 0/0


def test_min_snr_training_step_runs_and_differs_from_uniform(tmp_path):
    from translab.training import train

    losses = {}
    for weighting in ("uniform", "min_snr"):
        cfg = tiny_ddib(2, f"model.loss_weighting={weighting}", "model.label_dropout=0.5")
        train(cfg, tmp_path / weighting)
        losses[weighting] = (tmp_path / weighting / "metrics.jsonl").read_text().splitlines()[0]
    assert losses["uniform"] != losses["min_snr"]


@pytest.mark.parametrize("setting, match", [
    ("model.label_dropout=1.0", "label_dropout"), ("model.loss_weighting=snr", "loss_weighting"),
    ("model.guidance=2", "label_dropout > 0"), ("model.edict_mix=0", "edict_mix"),
])
def test_bad_settings_are_config_errors(setting, match):
    with pytest.raises(ConfigError, match=match):
        tiny_model(setting)


def test_label_dropout_needs_the_conditional_model():
    with pytest.raises(ConfigError, match="conditional"):
        tiny_model("model.conditional=false", "model.label_dropout=0.1")


# ---- guidance ------------------------------------------------------------------------------------------------

def test_guidance_one_is_unguided_decoding_bit_for_bit():
    model = tiny_model("model.label_dropout=0.1")
    x = images()
    out = model.translate(x, "a2b").images
    net = model.infer_net("eps")

    def labelled(d):
        return lambda v, t: net(v, t, torch.full((v.shape[0],), d, dtype=torch.long))

    ts = model.timesteps(None)
    plain = sample_ddim(labelled(1), model.schedule, invert_ddim(labelled(0), model.schedule, x, ts), ts).clamp(-1, 1)
    assert torch.equal(out, plain)
    assert model.nfe("a2b") == 2 * len(ts)


def test_guided_decoding_costs_two_evaluations_and_changes_the_output():
    model = tiny_model("model.label_dropout=0.1")
    guided = model.with_inference(guidance=3.0)
    x = images()
    steps = len(model.timesteps(None))
    assert guided.nfe("a2b") == 3 * steps  # encode: 1 per step; guided decode: 2 per step
    assert not torch.allclose(guided.translate(x, "a2b").images, model.translate(x, "a2b").images)


def test_luminance_guidance_extrapolates_only_the_channel_mean():
    """guidance_on=luminance: guided eps = cond + (w - 1) mean_c(cond - null), so guided - cond is the same in every
    channel of a pixel, and its value is (w - 1) times the channel mean of the full guidance difference."""
    model = tiny_model("model.label_dropout=0.1")
    x, t = images(), torch.full((4,), 500)
    net, label = model.domain_net("b")
    cond = net(x, t, torch.full((4,), label))
    null = net(x, t, torch.full((4,), NULL_LABEL))
    w = 4.0
    full = model.with_inference(guidance=w).eps_fn("b", w)(x, t)
    luma = model.with_inference(guidance=w, guidance_on="luminance").eps_fn("b", w)(x, t)
    assert torch.allclose(full, null + w * (cond - null), atol=1e-6)
    shift = luma - cond
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6)  # no colour in the extrapolation
    assert torch.allclose(shift[:, 0], (w - 1) * (cond - null).mean(dim=1), atol=1e-6)
    assert not torch.allclose(luma, full, atol=1e-4)
    with pytest.raises(ConfigError, match="model.guidance_on"):
        model.with_inference(guidance_on="chroma")


def counted_calls(model) -> list[int]:
    """Wrap the model's inference network so each call appends its batch size; returns the list."""
    net, calls = model.infer_net("eps"), []
    net.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
    return calls


def test_guidance_interval_guides_only_its_steps_and_counts_them():
    """Inside [t_lo, t_hi] a decoding call is one batch of 2N (target and null), outside one batch of N; the NFE
    per image is the counted images over N. An interval over every step is plain guidance bit for bit, one
    over none of them is unguided decoding bit for bit."""
    model = tiny_model("model.label_dropout=0.1")
    x = images()
    ts = model.timesteps(None)
    lo, hi = ts[len(ts) // 2], ts[1]  # guides steps 1 .. len/2 of the decoding chain
    part = model.with_inference(guidance=3.0, guidance_interval=[lo, hi])
    calls = counted_calls(part)
    out = part.translate(x, "a2b").images
    guided_steps = sum(lo <= t <= hi for t in ts)
    assert 0 < guided_steps < len(ts)
    assert sum(calls) / x.shape[0] == part.nfe("a2b") == 2 * len(ts) + guided_steps
    everywhere = model.with_inference(guidance=3.0, guidance_interval=[0, 10_000])
    assert torch.equal(everywhere.translate(x, "a2b").images, model.with_inference(guidance=3.0).translate(x, "a2b").images)
    nowhere = model.with_inference(guidance=3.0, guidance_interval=[5_000, 10_000])
    assert torch.equal(nowhere.translate(x, "a2b").images, model.translate(x, "a2b").images)
    assert nowhere.nfe("a2b") == 2 * len(ts)
    assert not torch.equal(out, everywhere.translate(x, "a2b").images)


@pytest.mark.parametrize("interval", [[300, 200], [5], [1.5, 900]])
def test_bad_guidance_interval_is_a_config_error(interval):
    model = tiny_model("model.label_dropout=0.1")
    with pytest.raises(ConfigError, match="guidance_interval"):
        model.with_inference(guidance_interval=interval)


def test_guided_decoding_on_two_gaussians_moves_mass_toward_the_target_as_w_grows():
    """1-D oracle: A = N(-0.5, 1), B = N(0.5, 1), the null model their equal mixture. Encode samples of A with
    A's exact eps, decode with eps_null + w (eps_B - eps_null): the share of outputs that B explains better
    than A (y > 0) and their mean rise with w."""
    sched = NoiseSchedule.make("cosine", 1000)
    eps_a, eps_b = gaussian_eps_fn(sched, -0.5, 1.0), gaussian_eps_fn(sched, 0.5, 1.0)

    def eps_null(x, t):  # exact eps of the mixture: posterior-weighted component predictions
        ab = sched.alpha_bar_at(t, like=x)
        var = ab + 1 - ab
        log_a = -(x + ab.sqrt() * 0.5) ** 2 / (2 * var)
        log_b = -(x - ab.sqrt() * 0.5) ** 2 / (2 * var)
        w_b = torch.sigmoid(log_b - log_a)
        return (1 - w_b) * eps_a(x, t) + w_b * eps_b(x, t)

    x = torch.randn(20_000, 1, 1, 1, generator=torch.Generator().manual_seed(0)) - 0.5
    ts = sched.timesteps(50, None)
    z = invert_ddim(eps_a, sched, x, ts)
    shares, means = [], []
    for w in (1.0, 2.0, 4.0):
        y = sample_ddim(lambda v, t, w=w: eps_null(v, t) + w * (eps_b(v, t) - eps_null(v, t)), sched, z, ts)
        shares.append((y > 0).float().mean().item())
        means.append(y.mean().item())
    assert abs(means[0] - 0.5) < 0.05  # w = 1: plain DDIB lands on B
    assert shares[0] < shares[1] < shares[2] and means[0] < means[1] < means[2]


# ---- EDICT ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("steps", [4, 50])
def test_edict_inverts_to_float_precision_on_a_tiny_real_unet(steps):
    model = tiny_model("model.sampler=edict")
    x = images(6)
    z = model.encode(x, "a", steps)
    assert z.shape == (6, 2, 3, 8, 8)
    assert ((model.decode(z, "a", steps) - x) ** 2).mean().item() < 1e-9  # MSE, float32
    ddim = tiny_model()
    assert ((ddim.decode(ddim.encode(x, "a", steps), "a", steps) - x) ** 2).mean().item() > 1e-6


def test_edict_costs_two_evaluations_per_step_each_way():
    model = tiny_model("model.sampler=edict")
    calls = []
    sched = model.schedule
    eps = model.eps_fn("a")

    def counted(v, t):
        calls.append(v.shape[0])
        return eps(v, t)

    ts = model.timesteps(None)
    z = invert_edict(counted, sched, images(), ts)
    sample_edict(counted, sched, z, ts)
    assert len(calls) == 4 * len(ts) and model.nfe("a2b") == 4 * len(ts)


def test_edict_decodes_noise_to_the_target_gaussian():
    """1-D oracle N(0.3, 0.7^2): EDICT (p = 0.93) from N(0, 1) latents lands on it, as DDIM does (measured: mean
    0.273, sd 0.698 at 100 steps; DDIM 0.289, 0.694). With p = 1 the coupling is unstable (mean 6.1): p < 1
    is what the paper's mixing is for."""
    sched = NoiseSchedule.make("cosine", 1000)
    eps = gaussian_eps_fn(sched, 0.3, 0.7)
    z = torch.randn(20_000, 1, 1, 1, generator=torch.Generator().manual_seed(0))
    ts = sched.timesteps(100, None)
    y = sample_edict(eps, sched, z, ts)
    assert abs(y.mean().item() - 0.3) < 0.05 and abs(y.std().item() - 0.7) < 0.02
    assert abs(sample_edict(eps, sched, z, ts, mix=1.0).mean().item() - 0.3) > 1.0


def test_edict_refuses_clipping_and_a_bad_mix():
    with pytest.raises(ConfigError, match="clip_decode"):
        tiny_model("model.sampler=edict", "model.clip_decode=true")
    with pytest.raises(ValueError, match="mixing weight"):
        sample_edict(lambda v, t: v, NoiseSchedule.make("cosine", 100), images(), [50, 10], mix=1.5)
    assert math.isclose(tiny_model("model.sampler=edict").cfg.edict_mix, 0.93)


def test_guidance_rescale_matches_the_conditional_spread_and_zero_changes_nothing():
    """Lin et al. eqs. 15-16: phi = 1 gives the guided prediction the conditional one's per-image std; phi = 0 is
    plain guidance; in between, the blend of the two."""
    import torch

    from translab.methods.ddib import rescale_guided

    g = torch.Generator().manual_seed(0)
    cond = torch.randn(3, 3, 4, 4, generator=g)
    guided = 4.0 * torch.randn(3, 3, 4, 4, generator=g)
    full = rescale_guided(guided, cond, 1.0)
    assert torch.allclose(full.std(dim=(1, 2, 3)), cond.std(dim=(1, 2, 3)), atol=1e-5)
    assert torch.equal(rescale_guided(guided, cond, 0.0), guided)
    assert torch.allclose(rescale_guided(guided, cond, 0.25), 0.25 * full + 0.75 * guided, atol=1e-6)


def test_guidance_rescale_outside_zero_one_is_refused():
    import pytest

    from translab.config import ConfigError
    from translab.methods.ddib import DDIBConfig

    with pytest.raises(ConfigError, match="guidance_rescale"):
        DDIBConfig(guidance_rescale=1.5)
