"""UNIT-DDPM (translab.methods.unit_ddpm): training halves, cycle loss, release time, NFE, determinism, I/O.

Tiny real components only: 8x8 synthetic squares -> discs, UNets of a few thousand weights, T = 100.
"""
from __future__ import annotations

import pytest
import torch

from translab.config import resolve_config
from translab.methods import MethodError, build_method
from translab.methods.losses import cycle_losses
from translab.methods.unit_ddpm import DENOISERS, DISCRIMINATORS, GENERATORS, UnitDDPM


def cycle_loss(x_a, x_b, g_a2b, g_b2a, kind):
    """UNIT-DDPM's eq. (13): the sum of both directions' cycle terms."""
    return sum(cycle_losses(x_a, x_b, g_a2b, g_b2a, kind))

T = 100
TINY = [
    "data.dataset=synthetic", "data.image_size=8", "data.limit=32",
    "train.batch_size=8", "train.threads=1", "train.progress=false", "train.sample_every=0",
    "train.checkpoint_every=1000", "train.log_every=10", "train.lr=0.003", "train.ema_decay=0.9",
    "model.diffusion.num_timesteps=100",
    "model.unet.base_channels=8", "model.unet.channel_mult=[1, 2]", "model.unet.norm_groups=4",
    "model.generator.ngf=4", "model.generator.n_down=1", "model.generator.n_blocks=1",
    "model.generator_lr=0.003", "model.release_t=10", "model.steps=10", "model.sample_steps=3",
]


def init_with_sources(method, cfg) -> None:
    """What the training loop does on a fresh run: load the runs the method starts from, then initialise."""
    from translab.training import load_init_sources

    method.init_for_training(cfg, load_init_sources(method))


def tiny_cfg(*extra: str, preset: str | None = None):
    return resolve_config("unit-ddpm", preset, overrides=TINY + list(extra))


def make_ctx(method: UnitDDPM, train_cfg, seed: int = 0):
    """A real TrainContext over the method's nets, built the way translab.training builds it (one CPU process)."""
    from accelerate import Accelerator

    from translab.training import TrainContext

    specs = method.optimizer_specs(train_cfg)
    opts = {name: torch.optim.AdamW([p for n in s.nets for p in method.nets[n].parameters()], lr=s.lr, betas=s.betas,
                                    weight_decay=s.weight_decay) for name, s in specs.items()}
    return TrainContext(Accelerator(cpu=True), dict(method.nets.items()), opts, {k: s.nets for k, s in specs.items()},
                        train_cfg.grad_clip, torch.Generator().manual_seed(seed))


def batch(n: int = 8, size: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g) * 2 - 1, torch.rand(n, 3, size, size, generator=g) * 2 - 1


def seeded_setup(*extra: str):
    """(cfg, method, ctx, x_a, x_b): a tiny config with ``extra``, its method built under seed 0, a real
    TrainContext and one batch of each domain."""
    cfg = tiny_cfg(*extra)
    torch.manual_seed(0)
    method = build_method(cfg)
    return cfg, method, make_ctx(method, cfg.train), *batch()


def snapshot(method, names) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": v.detach().clone() for n in names for k, v in method.nets[n].state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny UNIT-DDPM trained 40 steps by translab.training.train, loaded back with load_method."""
    from translab.training import load_method, train

    run = tmp_path_factory.mktemp("unit_ddpm_run")
    cfg = tiny_cfg("train.steps=40")
    train(cfg, run)
    method, _, info = load_method(run)
    return method, run, info


# ---- training ------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [(), ("model.pair_noise=independent", "model.cycle_loss=l2")])
def test_train_step_losses_finite(extra):
    cfg, method, ctx, x_a, x_b = seeded_setup(*extra)
    out = method.train_step(ctx, x_a, x_b)
    assert {"loss_eps_a", "loss_eps_b", "loss_gen_cond", "loss_gen_fake", "loss_cycle", "loss_generators"} <= set(out)
    assert all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for v in out.values())
    # eq. (14): generator total = eq. (12) terms + lambda_cycle x eq. (13)
    assert out["loss_generators"] == pytest.approx(out["loss_gen_cond"] + out["loss_gen_fake"]
                                                   + cfg.model.lambda_cycle * out["loss_cycle"], rel=1e-5)


@pytest.mark.parametrize("pair_noise", ["shared", "independent"])
def test_shared_pair_noise_gives_the_noise_away_through_the_condition(pair_noise):
    """Why pair_noise defaults to 'independent'. With 'shared', a generator that outputs a constant (here 0)
    makes the conditioning image x~_t = sqrt(1 - alpha_bar) eps, so eq. (11)'s target eps can be read off the
    condition exactly (loss 0 without denoising anything); inference's chains carry independent noise, where
    that reading gives E||e1 - e2||^2 = 2 per element. With 'independent' the shortcut is gone in training too."""
    from translab.diffusion.process import q_sample

    cfg = tiny_cfg(f"model.pair_noise={pair_noise}")
    method = build_method(cfg)
    ctx = make_ctx(method, cfg.train)
    x_a, x_b = batch()
    d = method.draw(ctx, x_a, x_b)
    zero = torch.zeros_like(x_a)
    _, _, fake_b_t, _ = method._noisy_pairs(x_a, x_b, zero, zero, d)
    noise_scale = q_sample(method.schedule, zero, d.t_a, torch.ones_like(x_a))  # sqrt(1 - alpha_bar_t^A)
    read = fake_b_t / noise_scale
    mse = float(((read - d.eps_a) ** 2).mean())
    if pair_noise == "shared":
        assert mse < 1e-10
    else:
        assert 1.7 < mse < 2.3  # two independent N(0, 1) draws over 1,536 elements


def test_each_half_updates_only_its_own_nets():
    cfg, method, ctx, x_a, x_b = seeded_setup()
    d = method.draw(ctx, x_a, x_b)

    den0, gen0 = snapshot(method, DENOISERS), snapshot(method, GENERATORS)
    method.denoiser_step(ctx, x_a, x_b, d)
    den1, gen1 = snapshot(method, DENOISERS), snapshot(method, GENERATORS)
    assert same(gen0, gen1), "the denoiser step (eq. 11, fakes detached) changed a generator"
    assert not same(den0, den1), "the denoiser step left the denoisers unchanged"

    method.generator_step(ctx, x_a, x_b, d)
    den2, gen2 = snapshot(method, DENOISERS), snapshot(method, GENERATORS)
    assert same(den1, den2), "the generator step (eq. 14) changed a frozen denoiser"
    assert not same(gen1, gen2), "the generator step left the generators unchanged"
    # the freeze is undone for the next denoiser step
    assert all(p.requires_grad for n in DENOISERS for p in method.nets[n].parameters())


def test_generator_gradient_reaches_both_generators_through_denoisers():
    """With lambda_cycle = 0 the generators learn only through the frozen denoisers (eq. 12): both must move."""
    cfg, method, ctx, x_a, x_b = seeded_setup("model.lambda_cycle=0.0")
    d = method.draw(ctx, x_a, x_b)
    before = {n: snapshot(method, [n]) for n in GENERATORS}
    method.generator_step(ctx, x_a, x_b, d)
    for n in GENERATORS:
        assert not same(before[n], snapshot(method, [n])), f"{n} got no gradient from eq. (12)"


def _generator_loss(method, x_a, x_b, d) -> float:
    """Eq. (14) on a fixed draw, without optimising."""
    from translab.diffusion.process import loss_simple

    with torch.no_grad():
        g_a2b, g_b2a = method.nets["g_a2b"], method.nets["g_b2a"]
        fb, fa = g_a2b(x_a), g_b2a(x_b)
        xa_t, xb_t, fb_t, fa_t = method._noisy_pairs(x_a, x_b, fb, fa, d)
        e_a, e_b = method.nets["eps_a"], method.nets["eps_b"]
        terms = (loss_simple(e_a(torch.cat([xa_t, fb_t], 1), d.t_a), d.eps_a)
                 + loss_simple(e_b(torch.cat([xb_t, fa_t], 1), d.t_b), d.eps_b)
                 + loss_simple(e_b(torch.cat([fb_t, xa_t], 1), d.t_a), d.fake_eps_a)
                 + loss_simple(e_a(torch.cat([fa_t, xb_t], 1), d.t_b), d.fake_eps_b))
        return float(terms + method.cfg.lambda_cycle * cycle_loss(x_a, x_b, g_a2b, g_b2a, method.cfg.cycle_loss))


def _denoiser_loss(method, x_a, x_b, d) -> float:
    from translab.diffusion.process import loss_simple

    with torch.no_grad():
        fb, fa = method.nets["g_a2b"](x_a), method.nets["g_b2a"](x_b)
        xa_t, xb_t, fb_t, fa_t = method._noisy_pairs(x_a, x_b, fb, fa, d)
        return float(loss_simple(method.nets["eps_a"](torch.cat([xa_t, fb_t], 1), d.t_a), d.eps_a)
                     + loss_simple(method.nets["eps_b"](torch.cat([xb_t, fa_t], 1), d.t_b), d.eps_b))


def test_one_joint_step_moves_each_half_down_its_own_loss():
    """Algorithm 1 on a fixed draw, small learning rates: the denoiser step lowers eq. (11) and the generator
    step then lowers eq. (14), each evaluated before and after its own step on the same images and noise."""
    cfg, method, ctx, x_a, x_b = seeded_setup("train.lr=0.0003", "model.generator_lr=0.0003")
    d = method.draw(ctx, x_a, x_b)
    before = _denoiser_loss(method, x_a, x_b, d)
    method.denoiser_step(ctx, x_a, x_b, d)
    assert _denoiser_loss(method, x_a, x_b, d) < before
    before = _generator_loss(method, x_a, x_b, d)
    method.generator_step(ctx, x_a, x_b, d)
    assert _generator_loss(method, x_a, x_b, d) < before


def test_sds_fake_term_has_the_full_value_and_the_jacobian_free_gradient():
    """generator_grad=sds: same value as eq. (12)'s fake term; gradient w.r.t. the noised fake
    = 2 (eps_hat - eps) / numel (DreamFusion eq. 3), which differs from the full gradient."""
    cfg = tiny_cfg("model.generator_grad=sds")
    torch.manual_seed(0)
    method = build_method(cfg)
    net = method.nets["eps_b"]
    fake_t = torch.randn(4, 3, 8, 8, requires_grad=True)
    partner_t, eps = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    t = torch.full((4,), 50)
    loss = method._fake_term(net, fake_t, partner_t, t, eps)
    (grad,) = torch.autograd.grad(loss, fake_t)
    with torch.no_grad():
        residual = net(torch.cat([fake_t, partner_t], 1), t) - eps
    assert torch.isclose(loss, (residual ** 2).mean())
    assert torch.allclose(grad, 2 * residual / residual.numel(), atol=1e-7)
    method.cfg.generator_grad = "full"
    (full,) = torch.autograd.grad(method._fake_term(net, fake_t, partner_t, t, eps), fake_t)
    assert not torch.allclose(full, grad, atol=1e-6)


def test_generator_warmup_skips_the_generator_step(tmp_path):
    cfg, method, ctx, x_a, x_b = seeded_setup("model.generator_warmup=2")
    gen0 = snapshot(method, GENERATORS)
    for step in range(2):
        ctx.step = step
        out = method.train_step(ctx, x_a, x_b)
        assert "loss_generators" not in out
    assert same(gen0, snapshot(method, GENERATORS))
    ctx.step = 2
    assert "loss_generators" in method.train_step(ctx, x_a, x_b)
    assert not same(gen0, snapshot(method, GENERATORS))


def test_cycle_loss_identity_zero_and_analytic_scale():
    x_a, x_b = batch(4, 8, seed=3)
    ident = torch.nn.Identity()
    assert float(cycle_loss(x_a, x_b, ident, ident, "l1")) == 0.0
    assert float(cycle_loss(x_a, x_b, ident, ident, "l2")) == 0.0
    half = lambda x: 0.5 * x  # noqa: E731  round trip = 0.25 x, error 0.75 |x|
    expect_l1 = 0.75 * (x_a.abs().mean() + x_b.abs().mean())
    expect_l2 = 0.5625 * (x_a.pow(2).mean() + x_b.pow(2).mean())
    assert float(cycle_loss(x_a, x_b, half, half, "l1")) == pytest.approx(float(expect_l1), rel=1e-5)
    assert float(cycle_loss(x_a, x_b, half, half, "l2")) == pytest.approx(float(expect_l2), rel=1e-5)
    from translab.config import ConfigError

    with pytest.raises(ConfigError, match="l1"):
        cycle_loss(x_a, x_b, ident, ident, "l3")


def test_bad_settings_raise_clear_errors():
    from translab.config import ConfigError

    with pytest.raises(ConfigError, match="model.cycle_loss"):
        build_method(tiny_cfg("model.cycle_loss=l3"))
    with pytest.raises(ConfigError, match="model.pair_noise"):
        build_method(tiny_cfg("model.pair_noise=cross"))
    with pytest.raises(ConfigError, match=r"model.release_t.*\[-1, 99\]"):
        build_method(tiny_cfg("model.release_t=100"))
    with pytest.raises(ConfigError, match="n_down"):
        build_method(tiny_cfg("model.generator.n_down=4"))
    with pytest.raises(ConfigError, match="model.generator_grad"):
        build_method(tiny_cfg("model.generator_grad=half"))
    with pytest.raises(ConfigError, match="model.generator_warmup"):
        build_method(tiny_cfg("model.generator_warmup=-1"))
    method = build_method(tiny_cfg())
    with pytest.raises(ConfigError, match="release_t"):
        method.with_inference(release_t=-2)


# ---- generators from a trained CycleGAN ------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_cyclegan(tmp_path_factory):
    """A CycleGAN trained 2 steps on the tiny synthetic data, with generators of TINY's size."""
    from translab.training import train

    run = tmp_path_factory.mktemp("cyclegan_for_unit")
    cfg = resolve_config("cyclegan", None, overrides=[
        "data.dataset=synthetic", "data.image_size=8", "data.limit=32", "train.batch_size=4", "train.steps=2",
        "train.threads=1", "train.progress=false", "train.sample_every=0", "train.checkpoint_every=100",
        "model.generator.ngf=4", "model.generator.n_down=1", "model.generator.n_blocks=1",
        "model.discriminator.ndf=4", "model.discriminator.n_layers=1", "model.pool_size=3"])
    train(cfg, run)
    return run


@pytest.mark.parametrize("train_generators", [False, True])
def test_generator_init_copies_cyclegan_and_frozen_generators_stay(tmp_path, tiny_cyclegan, train_generators):
    from translab.training import load_method, train

    cyclegan, _, _ = load_method(tiny_cyclegan)
    cfg = tiny_cfg("train.steps=3", f"model.generator_init={tiny_cyclegan}",
                   f"model.train_generators={str(train_generators).lower()}")
    train(cfg, tmp_path / "run")
    unit, _, _ = load_method(tmp_path / "run")
    pairs = (("g_a2b", "g_a2b"), ("g_b2a", "g_b2a"))
    for mine, theirs in pairs:
        a, b = unit.nets[mine].state_dict(), cyclegan.nets[theirs].state_dict()
        assert set(a) == set(b)
        assert same(a, b) is not train_generators, (mine, train_generators)
    # before any step the copy is exact, and it replaces the N(0, 0.02) initialisation
    fresh = build_method(cfg)
    assert not same(fresh.nets["g_a2b"].state_dict(), cyclegan.nets["g_a2b"].state_dict())
    init_with_sources(fresh, cfg)
    for mine, theirs in pairs:
        assert same(fresh.nets[mine].state_dict(), cyclegan.nets[theirs].state_dict())


def test_generator_init_refuses_a_mismatch(tmp_path, tiny_cyclegan, trained):
    _, unit_run, _ = trained
    cases = [
        ((f"model.generator_init={tiny_cyclegan}", "model.generator.n_blocks=2"), r"set model.generator to match"),
        ((f"model.generator_init={tiny_cyclegan}", "data.reverse=true"), r"data.reverse=False.*data.reverse=True"),
        ((f"model.generator_init={unit_run}",), r"expected a cyclegan model, got a 'unit-ddpm'"),
    ]
    for overrides, message in cases:
        cfg = tiny_cfg(*overrides)
        with pytest.raises(MethodError, match=message):
            init_with_sources(build_method(cfg), cfg)
    from translab.rundir import RunDirError

    cfg = tiny_cfg(f"model.generator_init={tmp_path / 'missing'}")
    with pytest.raises(RunDirError, match="missing"):
        init_with_sources(build_method(cfg), cfg)


# ---- denoisers from a trained DDIB ----------------------------------------------------------------


def train_tiny_ddib(run, *extra: str):
    """A DDIB (tiny_runs.tiny_ddib) trained 2 steps on T = 100 timesteps, like TINY's UNIT-DDPM, in ``run``."""
    from tiny_runs import tiny_ddib
    from translab.training import train

    train(tiny_ddib(2, "train.checkpoint_every=100", "train.lr=0.01", "model.diffusion.num_timesteps=100", *extra),
          run)
    return run


@pytest.fixture(scope="module", params=[True, False], ids=["conditional", "two-nets"])
def tiny_ddib(tmp_path_factory, request):
    """A DDIB with one domain-conditional denoiser, or with two independent ones."""
    return train_tiny_ddib(tmp_path_factory.mktemp("ddib_for_unit"), f"model.conditional={str(request.param).lower()}")


@pytest.mark.parametrize("conditional", [True, False])
def test_start_as_unconditional_computes_the_source_and_ignores_the_condition(conditional):
    from translab.nets.unet import DenoiserUNet, UNetConfig, start_as_unconditional

    torch.manual_seed(0)
    size = UNetConfig(base_channels=8, channel_mult=[1, 2], norm_groups=4)
    src = DenoiserUNet(size, 8, num_domains=2 if conditional else 0)
    for p in src.parameters():  # diffusers zero-initialises some layers: make every weight matter
        p.data.normal_(0, 0.1)
    dst = DenoiserUNet(size, 8, in_channels=6)
    x, t = torch.randn(4, 3, 8, 8), torch.tensor([0, 5, 50, 99])
    for domain in ((0, 1) if conditional else (None,)):
        start_as_unconditional(dst, src, domain)
        with torch.no_grad():
            want = src(x, t, None if domain is None else torch.full((4,), domain))
            for cond in (torch.zeros_like(x), torch.randn_like(x) * 3):
                torch.testing.assert_close(dst(torch.cat([x, cond], 1), t), want, rtol=1e-5, atol=1e-5)
    if conditional:  # the two domains' embeddings differ, so folding the wrong one would show
        assert not torch.allclose(src(x, t, torch.zeros(4, dtype=torch.long)), src(x, t, torch.ones(4, dtype=torch.long)))
    with pytest.raises(ValueError, match="domain"):
        start_as_unconditional(dst, src, None if conditional else 0)
    with pytest.raises(ValueError, match="differ in size"):
        start_as_unconditional(DenoiserUNet(UNetConfig(base_channels=8, channel_mult=[1, 2, 2], norm_groups=4), 8,
                                            in_channels=6), src, 0 if conditional else None)


def test_denoiser_init_starts_each_denoiser_as_ddibs_and_refuses_a_mismatch(tmp_path, tiny_ddib, tiny_cyclegan):
    from translab.training import load_method, train

    ddib, _, _ = load_method(tiny_ddib)
    cfg = tiny_cfg(f"model.denoiser_init={tiny_ddib}")
    method = build_method(cfg)
    init_with_sources(method, cfg)
    x, t = torch.randn(4, 3, 8, 8), torch.tensor([1, 20, 60, 99])
    with torch.no_grad():
        for d in ("a", "b"):
            got = method.nets[f"eps_{d}"](torch.cat([x, torch.randn_like(x)], 1), t)
            torch.testing.assert_close(got, ddib.eps_fn(d)(x, t), rtol=1e-5, atol=1e-5)
    # training moves the condition weights off zero, so the condition starts to matter
    train(tiny_cfg("train.steps=3", f"model.denoiser_init={tiny_ddib}"), tmp_path / "run")
    unit, _, _ = load_method(tmp_path / "run")
    assert unit.nets["eps_b"].unet.conv_in.weight[:, 3:].abs().max() > 0
    cases = [
        (("model.unet.base_channels=16",), r"set model.unet to match"),
        (("data.reverse=true",), r"data.reverse=False.*data.reverse=True"),
    ]
    for overrides, message in cases:
        bad = tiny_cfg(f"model.denoiser_init={tiny_ddib}", *overrides)
        with pytest.raises(MethodError, match=message):
            init_with_sources(build_method(bad), bad)
    bad = tiny_cfg(f"model.denoiser_init={tiny_cyclegan}")
    with pytest.raises(MethodError, match=r"expected a ddib model, got a 'cyclegan'"):
        init_with_sources(build_method(bad), bad)
    one_domain = train_tiny_ddib(tmp_path / "ddib_b_only", "model.conditional=false", "model.train_domains=[b]")
    bad = tiny_cfg(f"model.denoiser_init={one_domain}")
    with pytest.raises(MethodError, match=r"trained only domain\(s\) \['b'\]"):
        init_with_sources(build_method(bad), bad)


# ---- inference ------------------------------------------------------------------------------------


def _count_calls(method):
    counts = {n: 0 for n in DENOISERS}
    handles = []
    for n in DENOISERS:
        def hook(module, args, out, n=n):
            counts[n] += 1
        handles.append(method.infer_net(n).register_forward_hook(hook))
    return counts, handles


@pytest.mark.parametrize("release_t, expect", [(-1, 10), (30, 12), (99, 19)])
def test_nfe_matches_counted_network_calls(release_t, expect):
    """steps=10 on T=100: ts = 99, 88, ..., 11, 0. Source evaluations: joint steps with t <= t_r except the last."""
    method = build_method(tiny_cfg()).eval()
    assert method.timesteps(10) == [99, 88, 77, 66, 55, 44, 33, 22, 11, 0]
    assert method.with_inference(release_t=release_t).nfe("a2b", 10) == expect
    counts, handles = _count_calls(method)
    out = method.with_inference(release_t=release_t).translate(batch(2)[0], "a2b", steps=10,
                                                               generator=torch.Generator().manual_seed(0))
    for h in handles:
        h.remove()
    assert out.nfe == expect
    assert counts["eps_b"] == 10 and counts["eps_a"] == expect - 10  # a2b: target net eps_b, source net eps_a


def test_full_chain_has_T_steps():
    method = build_method(tiny_cfg())
    assert method.timesteps(T) == list(range(T - 1, -1, -1))
    assert method.with_inference(release_t=T - 1).nfe("b2a", T) == 2 * T - 1


def test_latents_hold_states_of_both_chains():
    method = build_method(tiny_cfg()).eval()
    x = batch(3)[0]
    out = method.with_inference(release_t=30).translate(x, "b2a", steps=10, generator=torch.Generator().manual_seed(0),
                                                        return_latents=True)
    lat = out.latents
    ts = lat["timesteps"].tolist()
    assert ts[0] == 99 and ts[-1] == 0 and 22 in ts  # first step, last step, first joint step (t <= 30)
    assert lat["x_src"].shape == lat["x_tgt"].shape == (len(ts), 3, 3, 8, 8)
    assert int(lat["release_t"]) == 30
    # before release the source state is the input forward-noised to level t: its correlation with x is high
    # at t = 22 (alpha_bar ~ 0.9) while the target chain, started from noise, is unrelated to x
    k = ts.index(22)
    corr_src = torch.corrcoef(torch.stack([lat["x_src"][k].flatten(), x.flatten()]))[0, 1]
    assert corr_src > 0.8
    assert out.images.shape == x.shape and out.images.abs().max() <= 1


def test_seeded_translation_is_deterministic(trained):
    method, _, _ = trained
    x = batch(4, seed=5)[0]
    run = lambda seed: method.translate(x, "a2b", steps=10, generator=torch.Generator().manual_seed(seed)).images  # noqa: E731
    assert torch.equal(run(0), run(0))
    assert not torch.allclose(run(0), run(1))


def test_max_release_forgets_input_and_no_release_does_not(trained):
    """t_r = T-1: the source chain starts at alpha_bar(T-1) ~ 0 and is then denoised freely, so the input barely
    enters; with t_r = -1 (never released) the input enters every step. Two different inputs, one seed."""
    method, _, _ = trained
    x1, x2 = batch(4, seed=1)[0], batch(4, seed=2)[0]

    def diff(release_t):
        view = method.with_inference(release_t=release_t)
        outs = [view.translate(x, "a2b", steps=10, generator=torch.Generator().manual_seed(0)).images
                for x in (x1, x2)]
        return float((outs[0] - outs[1]).abs().max())

    d_max, d_never = diff(T - 1), diff(-1)
    assert d_max < 0.05 and d_max < 0.05 * d_never, (d_max, d_never)


@pytest.fixture(scope="module")
def trained_reading_condition(tmp_path_factory):
    """A tiny UNIT-DDPM whose target net leans on its condition: trained with pair_noise='shared', where the
    condition carries the target noise. The t_r mechanics of inference show only on a net that reads its
    condition; 40 steps with the default independent noise do not make one (spreads 0.633 vs 0.639)."""
    from translab.training import load_method, train

    run = tmp_path_factory.mktemp("unit_ddpm_shared_run")
    train(tiny_cfg("train.steps=40", "model.pair_noise=shared"), run)
    return load_method(run)[0]


def test_small_release_spreads_less_across_seeds(trained_reading_condition):
    """One source, several seeds: the outputs vary less when the source is anchored longer (small t_r)."""
    method = trained_reading_condition
    x = batch(4, seed=7)[0]

    def spread(release_t):
        view = method.with_inference(release_t=release_t)
        outs = torch.stack([view.translate(x, "a2b", steps=10, generator=torch.Generator().manual_seed(s)).images
                            for s in range(4)])
        return float(outs.std(dim=0).mean())

    # steps=10: with t_r = 15 the source is anchored down to t = 22 and released for the step at t = 11
    s_small, s_large = spread(15), spread(T - 1)
    assert s_small < 0.9 * s_large, (s_small, s_large)


def test_save_load_translate_roundtrip(trained):
    from translab.checkpoint import load_checkpoint
    from translab.training import load_method

    method, run, info = trained
    assert info["step"] == 40
    again, cfg, _ = load_method(run)
    state = load_checkpoint(info["checkpoint"])
    assert set(state["ema"]) == set(DENOISERS)  # EMA of the two denoisers only
    for n in DENOISERS:
        for k, v in again.ema[n].state_dict().items():
            assert torch.equal(v, state["ema"][n][k])
    x = batch(4, seed=9)[0]
    y1 = method.translate(x, "b2a", steps=10, generator=torch.Generator().manual_seed(3)).images
    y2 = again.translate(x, "b2a", steps=10, generator=torch.Generator().manual_seed(3)).images
    assert torch.equal(y1, y2)
    torch.manual_seed(cfg.train.seed)
    fresh = build_method(cfg).eval()
    y0 = fresh.translate(x, "b2a", steps=10, generator=torch.Generator().manual_seed(3)).images
    assert not torch.allclose(y0, y1, atol=1e-3), "the loaded model translates like an untrained one"


def test_release_override_at_load_time(trained):
    from translab.training import load_method

    _, run, _ = trained
    method, cfg, _ = load_method(run, overrides={"model.release_t": 50})
    assert cfg.model.release_t == 50 and method.nfe("a2b", 10) == 10 + 4  # t in {44, 33, 22, 11}


def test_cli_train_preset_smoke(tmp_path):
    from translab.checkpoint import latest_checkpoint
    from translab.cli import main

    args = ["train", "unit-ddpm", "--preset", "cmnist-2to3", "--run-dir", str(tmp_path / "run")]
    for item in TINY + ["train.steps=2", "model.release_t=50", "model.t_max=90", "model.generator_init=null",
                        "model.denoiser_init=null", "model.discriminator.n_layers=1"]:
        args += ["--set", item]
    assert main(args) == 0
    assert latest_checkpoint(tmp_path / "run" / "checkpoints") is not None
    assert any((tmp_path / "run" / "samples").glob("*.png"))


def test_presets_build():
    for preset in ("cmnist-2to3", "cmnist-2to3-two-stage", "cmnist-2to3-joint", "cmnist-2to3-joint-adv",
                   "cmnist-2to3-paper", "celeba-m2f-64"):
        cfg = resolve_config("unit-ddpm", preset)
        assert cfg.method == "unit-ddpm" and cfg.model.cycle_loss in ("l1", "l2")
        assert 0 <= cfg.model.release_t < cfg.model.diffusion.num_timesteps
    # the cpu preset trains jointly (Algorithm 1) with its named departures, from N(0, 0.02) generators
    cfg = resolve_config("unit-ddpm", "cmnist-2to3")
    method = build_method(cfg)
    assert cfg.model.train_generators and cfg.model.generator_init is None
    assert set(method.nets) == set(DENOISERS) | set(GENERATORS) | set(DISCRIMINATORS)
    assert set(method.optimizer_specs(cfg.train)) == {"denoisers", "generators", "discriminators"}
    assert (cfg.model.loss_weighting, cfg.model.generator_every, cfg.model.target_start) == ("min_snr", 4, "noise")
    # the previous shipped model: generators from the shipped CycleGAN, kept fixed
    cfg = resolve_config("unit-ddpm", "cmnist-2to3-two-stage")
    method = build_method(cfg)
    assert set(method.nets) == set(DENOISERS) | set(GENERATORS) and method.ema_nets == DENOISERS
    assert cfg.model.generator_init == "cmnist-2to3/cyclegan" and not cfg.model.train_generators
    assert set(method.optimizer_specs(cfg.train)) == {"denoisers"}
    from translab.shipped import shipped_models

    # the package ships the CycleGAN the preset names (a missing one is a packaging defect, not a skip)
    assert "cmnist-2to3/cyclegan" in shipped_models()
    init_with_sources(method, cfg)  # the shapes and data match: no error


# ---- the adversarial departure (model.lambda_adv > 0, issue 19) ------------------------------------------------
ADV = ("model.lambda_adv=1.0", "model.discriminator.ndf=4", "model.discriminator.n_layers=1", "model.pool_size=4")


def test_lambda_adv_zero_builds_no_discriminators_and_keeps_the_papers_step():
    method = build_method(tiny_cfg())
    assert not any(n in method.nets for n in DISCRIMINATORS)
    assert "discriminators" not in method.optimizer_specs(tiny_cfg().train)


def test_adversarial_step_order_each_loss_reaches_only_its_own_nets():
    """Generator step (eq. 14 + lambda_adv LSGAN): generators move, denoisers and discriminators do not;
    discriminator step: only the discriminators move; the adversarial term is logged."""
    cfg, method, ctx, x_a, x_b = seeded_setup(*ADV)
    d = method.draw(ctx, x_a, x_b)
    method.denoiser_step(ctx, x_a, x_b, d)
    den, gen, dis = (snapshot(method, names) for names in (DENOISERS, GENERATORS, DISCRIMINATORS))
    out = method.generator_step(ctx, x_a, x_b, d)
    assert "loss_gen_adv" in out and torch.isfinite(out["loss_gen_adv"])
    assert same(den, snapshot(method, DENOISERS)) and same(dis, snapshot(method, DISCRIMINATORS))
    gen1 = snapshot(method, GENERATORS)
    assert not same(gen, gen1)
    assert all(p.requires_grad for n in DENOISERS + DISCRIMINATORS for p in method.nets[n].parameters())
    method.discriminator_step(ctx, x_a, x_b, out["fake_a"], out["fake_b"])
    assert same(gen1, snapshot(method, GENERATORS)) and same(den, snapshot(method, DENOISERS))
    assert not same(dis, snapshot(method, DISCRIMINATORS))


def test_adversarial_term_is_the_lsgan_loss_of_the_frozen_discriminators():
    """The logged term equals LSGAN(d_b(g_a2b(a)), 1) + LSGAN(d_a(g_b2a(b)), 1) computed directly before the step."""
    cfg, method, ctx, x_a, x_b = seeded_setup(*ADV)
    d = method.draw(ctx, x_a, x_b)
    with torch.no_grad():
        fb, fa = method.nets["g_a2b"](x_a), method.nets["g_b2a"](x_b)
        expect = float(((method.nets["d_b"](fb) - 1) ** 2).mean() + ((method.nets["d_a"](fa) - 1) ** 2).mean())
    out = method.generator_step(ctx, x_a, x_b, d)
    assert float(out["loss_gen_adv"].detach()) == pytest.approx(expect, rel=1e-5)


def test_identity_term_is_the_l1_of_each_generator_on_its_own_target_domain():
    """lambda_identity > 0 logs |g_a2b(x_b) - x_b|_1 + |g_b2a(x_a) - x_a|_1 (CycleGAN Sec. 5.2), computed before
    the step; an identity generator would make it 0, so check the value, and that the paper's default omits it."""
    cfg, method, ctx, x_a, x_b = seeded_setup("model.lambda_identity=0.5")
    d = method.draw(ctx, x_a, x_b)
    with torch.no_grad():
        expect = float((method.nets["g_a2b"](x_b) - x_b).abs().mean() + (method.nets["g_b2a"](x_a) - x_a).abs().mean())
    out = method.generator_step(ctx, x_a, x_b, d)
    assert float(out["loss_identity"].detach()) == pytest.approx(expect, rel=1e-5)
    assert method.cfg.lambda_identity * method.cfg.lambda_cycle == 5.0  # relative, as CycleGAN's
    paper = build_method(tiny_cfg())
    assert "loss_identity" not in paper.generator_step(make_ctx(paper, cfg.train), x_a, x_b, d)


def test_train_step_runs_the_discriminator_step_only_with_the_generators():
    cfg, method, ctx, x_a, x_b = seeded_setup(*ADV, "model.generator_warmup=1")
    dis0 = snapshot(method, DISCRIMINATORS)
    ctx.step = 0
    out = method.train_step(ctx, x_a, x_b)
    assert "loss_d_a" not in out and same(dis0, snapshot(method, DISCRIMINATORS))
    ctx.step = 1
    out = method.train_step(ctx, x_a, x_b)
    assert {"loss_d_a", "loss_d_b", "loss_gen_adv"} <= set(out) and not same(dis0, snapshot(method, DISCRIMINATORS))
    assert len(method.pool_a) == len(method.pool_b) == 4


@pytest.mark.parametrize("extra, match", [
    (("model.lambda_adv=-1.0",), "lambda_adv"),
    (("model.lambda_adv=1.0", "model.train_generators=false"), "train_generators"),
    (("model.pool_size=-2",), "pool_size"),
    (("model.lambda_identity=-0.5",), "lambda_identity"),
])
def test_adversarial_settings_are_checked(extra, match):
    from translab.config import ConfigError

    with pytest.raises(ConfigError, match=match):
        build_method(tiny_cfg(*extra))


def test_adversarial_run_saves_and_resumes_its_discriminators_and_pools(tmp_path):
    from translab.training import load_method, train

    cfg = tiny_cfg(*ADV, "train.steps=3", "train.checkpoint_every=3")
    train(cfg, tmp_path / "run")
    method, _, _ = load_method(tmp_path / "run")
    assert all(n in method.nets for n in DISCRIMINATORS)
    assert len(method.pool_a) == len(method.pool_b) == 4  # 3 steps of 8 fakes filled both pools of 4


# ---- the condition-noise cap (model.condition_t_max, issue 19) --------------------------------------------------


def test_condition_cap_noises_every_condition_to_min_t_c():
    """Zero images with unit noise expose the level: a condition paired with an image at t is noised to
    sqrt(1 - alpha_bar[min(t, c)]); the images being denoised stay at t; no cap gives back the same tensors."""
    c = 20
    method = build_method(tiny_cfg(f"model.condition_t_max={c}"))
    ctx = make_ctx(method, tiny_cfg().train)
    x_a, x_b = batch()
    d = method.draw(ctx, x_a, x_b)
    d.t_a = torch.tensor([5, 19, 20, 21, 50, 99, 0, 70])
    zero = torch.zeros_like(x_a)
    ones = torch.ones_like(x_a)
    d.eps_a, d.fake_eps_a = ones, ones
    noisy = method._noisy_pairs(zero, zero, zero, zero, d)
    xa_c, _, fb_c, _ = method._as_conditions(zero, zero, zero, zero, d, noisy)
    ab = method.schedule.alpha_bar
    expect_c = (1 - ab[d.t_a.clamp(max=c)]).sqrt().view(-1, 1, 1, 1).expand_as(x_a)
    expect_t = (1 - ab[d.t_a]).sqrt().view(-1, 1, 1, 1).expand_as(x_a)
    assert torch.allclose(xa_c, expect_c.to(xa_c.dtype)) and torch.allclose(fb_c, expect_c.to(fb_c.dtype))
    assert torch.allclose(noisy[0], expect_t.to(xa_c.dtype)) and torch.allclose(noisy[2], expect_t.to(xa_c.dtype))
    uncapped = build_method(tiny_cfg())
    assert uncapped._as_conditions(zero, zero, zero, zero, d, noisy) is noisy


def test_condition_cap_at_the_top_is_the_paper_and_lower_caps_change_translation(trained):
    """condition_t_max = T-1 caps nothing: translation equals the paper's bit for bit; a low cap changes it."""
    method, _, _ = trained
    x = batch(4, seed=5)[0]

    def out(m):
        return m.translate(x, "a2b", steps=10, generator=torch.Generator().manual_seed(0)).images

    paper = out(method)
    method.cfg.condition_t_max = T - 1
    try:
        assert torch.equal(out(method), paper)
        method.cfg.condition_t_max = 10
        assert not torch.allclose(out(method), paper)
    finally:
        method.cfg.condition_t_max = None


@pytest.mark.parametrize("extra, match", [
    (("model.condition_t_max=100",), r"condition_t_max.*\[0, 99\]"),
    (("model.condition_t_max=5",), "release_t <= 5"),
    (("model.condition_t_max=50", "model.pair_noise=shared"), "pair_noise"),
])
def test_condition_cap_settings_are_checked(extra, match):
    from translab.config import ConfigError

    with pytest.raises(ConfigError, match=match):
        build_method(tiny_cfg(*extra))


def test_condition_capped_train_step_reaches_each_net():
    cfg, method, ctx, x_a, x_b = seeded_setup("model.condition_t_max=30")
    den, gen = snapshot(method, DENOISERS), snapshot(method, GENERATORS)
    out = method.train_step(ctx, x_a, x_b)
    assert all(torch.isfinite(torch.tensor(v)) for v in out.values())
    assert not same(den, snapshot(method, DENOISERS)) and not same(gen, snapshot(method, GENERATORS))


# ---- loss weighting over t and the generator cadence ---------------------------------------------------------


def test_min_snr_denoiser_loss_is_the_weighted_eq_11():
    """The logged eq. (11) terms under loss_weighting=min_snr equal a direct per-image weighted mean, and with
    uniform weighting the same draws give the plain loss_simple."""
    from translab.diffusion.process import loss_simple, min_snr_weight, q_sample

    for weighting in ("uniform", "min_snr"):
        cfg, method, ctx, x_a, x_b = seeded_setup(f"model.loss_weighting={weighting}", "model.min_snr_gamma=2.0")
        d = method.draw(ctx, x_a, x_b)
        net = method.nets["eps_a"]
        with torch.no_grad():
            fake_b = method.nets["g_a2b"](x_a)
            cond = q_sample(method.schedule, fake_b, d.t_a, d.fake_eps_a)
            pred = net(torch.cat([q_sample(method.schedule, x_a, d.t_a, d.eps_a), cond], 1), d.t_a)
        per_image = ((pred - d.eps_a) ** 2).mean(dim=(1, 2, 3))
        if weighting == "uniform":
            expect = float(loss_simple(pred, d.eps_a))
        else:
            w = min_snr_weight(method.schedule, d.t_a, 2.0)
            assert (w < 1).any() and (w == 1).any()  # the draw covers both sides of SNR = gamma
            expect = float((w * per_image).mean())
        out = method.denoiser_step(ctx, x_a, x_b, d)
        assert float(out["loss_eps_a"].detach()) == pytest.approx(expect, rel=1e-5)


@pytest.mark.parametrize("warmup, every, turns", [(0, 1, [0, 1, 2, 3, 4, 5]), (0, 3, [0, 3]), (2, 2, [2, 4])])
def test_generator_every_sets_which_iterations_train_the_generators(warmup, every, turns):
    method = build_method(tiny_cfg(f"model.generator_warmup={warmup}", f"model.generator_every={every}"))
    assert [s for s in range(6) if method.generator_turn(s)] == turns


def test_off_turn_iterations_train_only_the_denoisers():
    cfg, method, ctx, x_a, x_b = seeded_setup(*ADV, "model.generator_every=2")
    ctx.step = 1
    gen0, dis0, den0 = (snapshot(method, n) for n in (GENERATORS, DISCRIMINATORS, DENOISERS))
    out = method.train_step(ctx, x_a, x_b)
    assert "loss_generators" not in out and "loss_d_a" not in out
    assert same(gen0, snapshot(method, GENERATORS)) and same(dis0, snapshot(method, DISCRIMINATORS))
    assert not same(den0, snapshot(method, DENOISERS))
    ctx.step = 2
    assert {"loss_generators", "loss_d_a"} <= set(method.train_step(ctx, x_a, x_b))
    assert not same(gen0, snapshot(method, GENERATORS))


@pytest.mark.parametrize("extra, match", [
    (("model.generator_every=0",), "generator_every"),
    (("model.loss_weighting=snr",), "loss_weighting.*uniform, min_snr"),
])
def test_cadence_and_weighting_settings_are_checked(extra, match):
    from translab.config import ConfigError

    with pytest.raises(ConfigError, match=match):
        build_method(tiny_cfg(*extra))


def test_source_start_begins_the_target_chain_at_the_noised_input(trained):
    """target_start=source: the target chain's first state is q(x at t_max) with the chain's first noise draw; at
    t_max = T-1 (alpha_bar ~ 0) that is nearly the paper's N(0, I) start, so the outputs nearly agree."""
    from translab.diffusion.process import q_sample, seeded_noise

    method, _, _ = trained
    x = batch(4, seed=5)[0]
    view = method.with_inference(target_start="source", t_max=60)
    out = view.translate(x, "a2b", steps=10, generator=torch.Generator().manual_seed(3), return_latents=True)
    z = seeded_noise(x, torch.Generator().manual_seed(3))
    expect = q_sample(method.schedule, x, torch.full((4,), 60, dtype=torch.long), z)
    assert out.latents["timesteps"][0] == 60
    assert torch.allclose(out.latents["x_tgt"][0], expect, atol=1e-6)
    paper = method.with_inference(t_max=60).translate(x, "a2b", steps=10, generator=torch.Generator().manual_seed(3))
    assert not torch.allclose(out.images, paper.images, atol=1e-3)

    def at_top(start):
        return method.with_inference(target_start=start).translate(
            x, "a2b", steps=10, generator=torch.Generator().manual_seed(3)).images

    top_gap = float((at_top("source") - at_top("noise")).abs().max())
    assert top_gap < 0.05 * float((out.images - paper.images).abs().max()), top_gap


def test_target_start_is_checked():
    from translab.config import ConfigError

    with pytest.raises(ConfigError, match="target_start.*noise, source"):
        build_method(tiny_cfg()).with_inference(target_start="input")


def test_older_names_are_read_as_today_s_with_a_note():
    """lambda_cyc (before 0.3) is lambda_cycle, and the absolute lambda_identity beside it becomes relative."""
    from translab.config import build_config
    from translab.settings import RenamedSetting

    with pytest.warns(RenamedSetting, match="lambda_cyc is read as lambda_cycle"):
        cfg = build_config({"method": "unit-ddpm", "model": {"lambda_cyc": 10.0, "lambda_identity": 5.0}})
    assert (cfg.model.lambda_cycle, cfg.model.lambda_identity) == (10.0, 0.5)
