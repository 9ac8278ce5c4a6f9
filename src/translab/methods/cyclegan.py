"""CycleGAN (Zhu, Park, Isola, Efros, ICCV 2017, arXiv 1703.10593) with the defaults of the authors'
PyTorch code (junyanz/pytorch-CycleGAN-and-pix2pix).

Nets (the authors' naming): G_A: A -> B and G_B: B -> A are ResNet generators; D_A is G_A's adversary and
scores images of domain B, D_B is G_B's adversary and scores images of domain A; both are PatchGANs with
instance norm. Losses (paper eqs. 1-3 and Sec. 5.2):

    L_G = LSGAN(D_A(G_A(a)), 1) + LSGAN(D_B(G_B(b)), 1)                        adversarial, eq. 1 with LSGAN
        + lambda_cycle * (|G_B(G_A(a)) - a|_1 + |G_A(G_B(b)) - b|_1)          cycle consistency, eq. 2
        + lambda_cycle * lambda_identity * (|G_A(b) - b|_1 + |G_B(a) - a|_1)   identity, Sec. 5.2
    L_D_A = 0.5 * (LSGAN(D_A(b), 1) + LSGAN(D_A(pool_B(G_A(a))), 0)), L_D_B likewise

LSGAN(p, t) = mean((p - t)^2); |.|_1 is the mean absolute error over all pixels. lambda_cycle = 10 per
direction, lambda_identity = 0.5 (relative to lambda_cycle, as in the authors' code). Adam(2e-4, 0.5, 0.999),
constant LR for the first half of training then linear decay to zero, weights ~ N(0, 0.02), image pools of
50, no gradient clipping and no EMA (set train.grad_clip: 0 and train.ema_decay: 0 in presets).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from translab.config import ConfigError, describe
from translab.methods.base import Method, OptimizerSpec, TrainSteps, Translation, check_direction
from translab.methods.image_pool import ImagePool
from translab.methods.losses import cycle_losses, discriminator_loss, identity_loss, lsgan_loss
from translab.nets.patchgan import PatchGAN, PatchGANConfig
from translab.nets.resnet_gen import ResnetGenerator, ResnetGeneratorConfig, init_normal


@dataclass
class CycleGANConfig:
    generator: ResnetGeneratorConfig = describe("ResNet generators G_A and G_B", factory=ResnetGeneratorConfig)
    discriminator: PatchGANConfig = describe("PatchGAN discriminators D_A and D_B", factory=PatchGANConfig)
    lambda_cycle: float = describe("weight of each direction's L1 cycle loss", 10.0)
    lambda_identity: float = describe("identity loss weight relative to lambda_cycle (0: off)", 0.5)
    pool_size: int = describe("generated images kept per discriminator (0: no pool)", 50)
    beta1: float = describe("Adam beta1 of both optimisers", 0.5)
    decay_start: float = describe("fraction of train.steps after which the LR decays linearly to 0", 0.5)
    init_std: float = describe("std of the N(0, std) weight initialisation", 0.02)


# --------------------------------------------------------------------------------------------------
# losses (pure functions of nets and batches, so tests can use them directly)


def generator_losses(g_a, g_b, d_a, d_b, real_a, real_b, lambda_cycle: float, lambda_identity: float) -> dict:
    """All generator terms of one step. Returns tensors: loss_G (the total) and its parts, plus fake_a, fake_b."""
    fake_b, fake_a = g_a(real_a), g_b(real_b)
    gan_a, gan_b = lsgan_loss(d_a(fake_b), True), lsgan_loss(d_b(fake_a), True)
    cyc_a, cyc_b = cycle_losses(real_a, real_b, g_a, g_b, "l1", fake_b=fake_b, fake_a=fake_a)  # eq. 2
    out = {"gan_A": gan_a, "gan_B": gan_b, "cycle_A": cyc_a, "cycle_B": cyc_b}
    total = gan_a + gan_b + lambda_cycle * (cyc_a + cyc_b)
    if lambda_identity > 0:
        idt_a, idt_b = identity_loss(g_a, g_b, real_a, real_b)
        out.update(idt_A=idt_a, idt_B=idt_b)
        total = total + lambda_cycle * lambda_identity * (idt_a + idt_b)
    out.update(loss_G=total, fake_a=fake_a, fake_b=fake_b)
    return out


def linear_decay_lambda(total_steps: int, decay_start: float = 0.5) -> Callable[[int], float]:
    """LR multiplier of step s (0-based): 1 while s < start = round(decay_start * total), then
    1 - (s - start) / (total - start), reaching 0 at s = total (the authors' 'linear' policy, per step)."""
    if not 0.0 <= decay_start <= 1.0:
        raise ConfigError(f"model.decay_start must lie in [0, 1], got {decay_start}")
    start = int(round(decay_start * total_steps))
    span = max(total_steps - start, 1)

    def lr_lambda(step: int) -> float:
        return 1.0 - max(0, step - start) / span if step < total_steps else 0.0

    return lr_lambda


# --------------------------------------------------------------------------------------------------


class CycleGAN(Method):
    name = "cyclegan"
    config_class = CycleGANConfig
    ema_nets = ()  # the authors average no weights

    def __init__(self, cfg: CycleGANConfig, image_size: int, channels: int = 3):
        super().__init__(cfg, image_size, channels)
        if image_size % (2 ** cfg.generator.n_down):
            raise ConfigError(f"model.generator.n_down={cfg.generator.n_down} needs an image size divisible by "
                              f"{2 ** cfg.generator.n_down}, got {image_size}")
        if cfg.pool_size < 0:
            raise ConfigError(f"model.pool_size must be >= 0, got {cfg.pool_size}")
        self.nets["G_A"] = ResnetGenerator(cfg.generator, channels, channels)
        self.nets["G_B"] = ResnetGenerator(cfg.generator, channels, channels)
        self.nets["D_A"] = PatchGAN(cfg.discriminator, image_size, channels)
        self.nets["D_B"] = PatchGAN(cfg.discriminator, image_size, channels)
        for net in self.nets.values():
            init_normal(net, cfg.init_std)
        # pool_B feeds D_A (fakes of domain B), pool_A feeds D_B
        self.pool_a, self.pool_b = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)

    # ---- training -------------------------------------------------------------------------------
    def optimizer_specs(self, train_cfg) -> dict[str, OptimizerSpec]:
        betas = (self.cfg.beta1, 0.999)
        lam = linear_decay_lambda(train_cfg.steps, self.cfg.decay_start)
        return {"G": OptimizerSpec(("G_A", "G_B"), train_cfg.lr, betas, train_cfg.weight_decay, lam),
                "D": OptimizerSpec(("D_A", "D_B"), train_cfg.lr, betas, train_cfg.weight_decay, lam)}

    def train_step(self, ctx: TrainSteps, batch_a: torch.Tensor, batch_b: torch.Tensor) -> dict[str, float]:
        """One generator step (D frozen), then one step on both discriminators with pooled fakes."""
        g_a, g_b, d_a, d_b = (ctx.model(n) for n in ("G_A", "G_B", "D_A", "D_B"))
        ctx.set_requires_grad(("D_A", "D_B"), False)
        out = generator_losses(g_a, g_b, d_a, d_b, batch_a, batch_b, self.cfg.lambda_cycle, self.cfg.lambda_identity)
        ctx.optimize("G", out["loss_G"])
        ctx.set_requires_grad(("D_A", "D_B"), True)
        pooled_b = self.pool_b.query(out["fake_b"], ctx.generator)
        pooled_a = self.pool_a.query(out["fake_a"], ctx.generator)
        loss_d_a = discriminator_loss(d_a, batch_b, pooled_b)
        loss_d_b = discriminator_loss(d_b, batch_a, pooled_a)
        ctx.optimize("D", loss_d_a + loss_d_b)
        scalars = {k: float(v.detach()) for k, v in out.items() if not k.startswith("fake")}
        scalars.update(loss_D_A=float(loss_d_a.detach()), loss_D_B=float(loss_d_b.detach()))
        return scalars

    def extra_state(self) -> dict:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        if "pool_a" in state:
            self.pool_a.load_state_dict(state["pool_a"])
        if "pool_b" in state:
            self.pool_b.load_state_dict(state["pool_b"])

    # ---- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, x, direction, steps=None, generator=None, return_latents=False, progress=None):
        """x (N, C, H, W) in [-1, 1] -> G_A(x) for 'a2b', G_B(x) for 'b2a'; (N, C, H, W) in [-1, 1] (tanh)."""
        net = self.infer_net("G_A" if check_direction(direction) == "a2b" else "G_B")
        return Translation(net(x), self.nfe(direction))

    def nfe(self, direction, steps=None):
        check_direction(direction)
        return 1
