"""CycleGAN: losses, image pool, LR schedule, translate, checkpoint round trip, presets."""
from __future__ import annotations

import torch
from torch import nn

from translab.config import resolve_config
from translab.methods import build_method
from translab.methods.cyclegan import CycleGAN, CycleGANConfig, generator_losses, linear_decay_lambda
from translab.methods.image_pool import ImagePool
from translab.methods.losses import discriminator_loss, identity_loss
from translab.nets.patchgan import PatchGAN, PatchGANConfig, patchgan_output_size, patchgan_receptive_field
from translab.nets.resnet_gen import ResnetGeneratorConfig

torch.set_num_threads(1)

TINY = ["data.dataset=synthetic", "data.image_size=16", "data.limit=16", "train.batch_size=2",
        "train.progress=false", "train.sample_every=0", "train.log_every=1", "train.checkpoint_every=100",
        "model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4",
        "model.discriminator.n_layers=2", "model.pool_size=3"]


def tiny_method(size=16) -> CycleGAN:
    torch.manual_seed(0)
    cfg = CycleGANConfig(generator=ResnetGeneratorConfig(ngf=4, n_down=1, n_blocks=1),
                         discriminator=PatchGANConfig(ndf=4, n_layers=2), pool_size=4)
    return CycleGAN(cfg, size)


def images(n, size=16, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_patchgan_receptive_field_and_output_size():
    assert patchgan_receptive_field(3) == 70  # the paper's 70x70 PatchGAN
    assert patchgan_receptive_field(2) == 34
    for size, layers in ((16, 2), (32, 2), (64, 3)):
        d = PatchGAN(PatchGANConfig(ndf=4, n_layers=layers), size)
        out = d(images(2, size))
        side = patchgan_output_size(size, layers)
        assert out.shape == (2, 1, side, side) and side >= 2


def test_losses_finite_and_translate_shapes_ranges():
    m = tiny_method()
    a, b = images(3, seed=1), images(3, seed=2)
    out = generator_losses(m.nets["g_a2b"], m.nets["g_b2a"], m.nets["d_a"], m.nets["d_b"], a, b, 10.0, 0.5)
    for k in ("loss_G", "gan_A", "gan_B", "cycle_A", "cycle_B", "idt_A", "idt_B"):
        assert torch.isfinite(out[k]) and out[k] >= 0, k
    assert torch.isfinite(discriminator_loss(m.nets["d_b"], b, out["fake_b"]))
    # big inputs push tanh to its limits: outputs must stay inside [-1, 1]
    for d in ("a2b", "b2a"):
        tr = m.translate(a * 50, d)
        assert tr.images.shape == a.shape and tr.nfe == 1
        assert tr.images.min() >= -1 and tr.images.max() <= 1
    assert m.directions() == ("a2b", "b2a")


def test_identity_and_cycle_losses_vanish_for_identity_generators():
    a, b = images(4, seed=3), images(4, seed=4)
    idt_a, idt_b = identity_loss(nn.Identity(), nn.Identity(), a, b)
    assert idt_a == 0 and idt_b == 0
    d = PatchGAN(PatchGANConfig(ndf=4, n_layers=2), 16)
    out = generator_losses(nn.Identity(), nn.Identity(), d, d, a, b, 10.0, 0.5)
    assert out["cycle_A"] == 0 and out["cycle_B"] == 0 and out["idt_A"] == 0
    # analytic oracle for a non-identity map: G(x) = x / 2 -> |G(b) - b|_1 = mean|b| / 2
    half = lambda x: x / 2  # noqa: E731
    idt_a, _ = identity_loss(half, half, a, b)
    torch.testing.assert_close(idt_a, b.abs().mean() / 2)
    # and the total weighs it by lambda_cycle * lambda_identity = 10 * 0.5 (cycle: |x/4 - x| = 3|x|/4)
    out = generator_losses(half, half, d, d, a, b, 10.0, 0.5)
    expected = out["gan_A"] + out["gan_B"] + 10 * 0.75 * (a.abs().mean() + b.abs().mean()) \
        + 10 * 0.5 * 0.5 * (a.abs().mean() + b.abs().mean())
    torch.testing.assert_close(out["loss_G"], expected)


def test_lr_lambda_constant_then_linear_to_zero():
    lam = linear_decay_lambda(100, 0.5)
    assert all(lam(s) == 1.0 for s in range(0, 51))
    assert abs(lam(75) - 0.5) < 1e-12 and abs(lam(99) - 0.02) < 1e-12
    assert lam(100) == 0.0
    diffs = [lam(s) - lam(s + 1) for s in range(50, 99)]
    assert max(diffs) - min(diffs) < 1e-12 and abs(diffs[0] - 0.02) < 1e-12


def test_image_pool_fills_then_swaps_half_the_time():
    pool = ImagePool(50)
    g = torch.Generator().manual_seed(123)
    first = torch.arange(50, dtype=torch.float32).view(50, 1, 1, 1)
    assert torch.equal(pool.query(first, g), first)  # not full yet: returns its input, stores it
    n, stored = 4000, 0
    for i in range(n):
        new = torch.full((1, 1, 1, 1), 1000.0 + i)
        before = {float(x) for x in pool.images}
        out = float(pool.query(new, g))
        after = {float(x) for x in pool.images}
        if out != 1000.0 + i:
            stored += 1
            assert out in before and out not in after and 1000.0 + i in after  # swapped into the slot
        else:
            assert before == after
        assert len(pool) == 50
    # Binomial(4000, 1/2): std of the share is 0.0079; tolerance 0.04 = 5 std
    assert abs(stored / n - 0.5) < 0.04


def test_image_pool_state_round_trip():
    pool = ImagePool(5)
    g = torch.Generator().manual_seed(0)
    pool.query(images(7, 8), g)
    other = ImagePool(5)
    other.load_state_dict(pool.state_dict())
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    x = images(6, 8, seed=5)
    assert torch.equal(pool.query(x, g1), other.query(x, g2))
    empty = ImagePool(5)
    empty.load_state_dict(ImagePool(5).state_dict())
    assert len(empty) == 0


def test_train_save_load_translate_identical(tmp_path):
    from translab.training import load_method, train

    cfg = resolve_config("cyclegan", "cmnist-2to3", overrides=TINY + ["train.steps=2"])
    result = train(cfg, tmp_path / "run")
    assert result.step == 2
    for k in ("loss_G", "loss_D_A", "loss_D_B", "cycle_A", "idt_A"):
        assert k in result.last_scalars and torch.isfinite(torch.tensor(result.last_scalars[k]))
    m1, _, info = load_method(tmp_path / "run")
    m2, _, _ = load_method(tmp_path / "run")
    assert info["step"] == 2 and len(m1.pool_a) == 3 and len(m1.pool_b) == 3  # pools restored (4 fakes seen)
    x = images(2, 16, seed=7)
    for d in ("a2b", "b2a"):
        y1, y2 = m1.translate(x, d).images, m2.translate(x, d).images
        assert torch.equal(y1, y2)
    # the trained weights differ from a fresh initialisation with the same seed
    torch.manual_seed(cfg.train.seed)
    fresh = build_method(cfg)
    assert not torch.equal(fresh.nets["g_a2b"](x), m1.nets["g_a2b"](x))


def test_cli_train_with_preset(tmp_path):
    from translab.cli import main

    args = ["train", "cyclegan", "--preset", "cmnist-2to3", "--run-dir", str(tmp_path / "cli"), "--set", "train.steps=2"]
    for o in TINY:
        args += ["--set", o]
    assert main(args) == 0
    assert (tmp_path / "cli" / "checkpoints").is_dir()


def test_all_presets_resolve_and_build():
    for preset in ("cmnist-2to3", "cmnist-2to3-paper", "celeba-m2f-64"):
        cfg = resolve_config("cyclegan", preset)
        assert cfg.train.grad_clip == 0 and cfg.train.ema_decay == 0
        m = build_method(cfg)
        assert set(m.nets) == {"g_a2b", "g_b2a", "d_a", "d_b"} and not m.ema_nets


def test_resume_is_exact_including_image_pools(tmp_path):
    """4 steps straight == 2 steps, checkpoint, resume to 4 (pools, optimisers, LR schedule, RNG restored)."""
    import shutil

    from translab.training import load_method, train

    cfg = resolve_config("cyclegan", "cmnist-2to3", overrides=TINY + [
        "train.steps=4", "train.checkpoint_every=2", "train.keep_checkpoints=5", "train.batch_size=3"])
    train(cfg, tmp_path / "straight")
    (tmp_path / "resumed" / "checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "straight" / "checkpoints" / "step_00000002.pt", tmp_path / "resumed" / "checkpoints")
    assert train(cfg, tmp_path / "resumed").step == 4
    m1, _, _ = load_method(tmp_path / "straight")
    m2, _, _ = load_method(tmp_path / "resumed")
    for n in m1.nets:
        for (k, v1), v2 in zip(m1.nets[n].state_dict().items(), m2.nets[n].state_dict().values()):
            assert torch.equal(v1, v2), f"{n}.{k}"
    assert torch.equal(m1.pool_a.state_dict()["images"], m2.pool_a.state_dict()["images"])


def test_checkpoints_with_the_authors_net_names_still_load(tmp_path):
    """Runs saved before the nets were named by role (G_A, G_B, D_A, D_B) load into g_a2b, g_b2a, d_b, d_a:
    D_A scored domain B, so it becomes d_b. Translation and the discriminators' scores are unchanged."""
    from translab.loading import restore_nets

    m = tiny_method()
    old_names = {"g_a2b": "G_A", "g_b2a": "G_B", "d_b": "D_A", "d_a": "D_B"}
    state = {"nets": {old_names[n]: net.state_dict() for n, net in m.nets.items()}}
    other = tiny_method()
    with torch.no_grad():
        for p in other.nets.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    x = images(2, 16, seed=9)
    assert not torch.equal(other.nets["g_a2b"](x), m.nets["g_a2b"](x))
    restore_nets(other, state, tmp_path / "old.pt")
    for n in m.nets:
        assert torch.equal(other.nets[n](x), m.nets[n](x)), n
