"""CycleGAN (Zhu, Park, Isola, Efros, ICCV 2017, arXiv 1703.10593) with the defaults of the authors'
PyTorch code (junyanz/pytorch-CycleGAN-and-pix2pix).

Nets (named by role, as in UNIT-DDPM): g_a2b: A -> B and g_b2a: B -> A are ResNet generators (the authors'
G_A, G_B); d_b scores images of domain B and is g_a2b's adversary, d_a scores images of domain A and is
g_b2a's adversary (the authors' D_A, D_B); both are PatchGANs with instance norm. Checkpoints written with the
authors' names still load (``renamed_nets``). Losses (paper eqs. 1-3 and Sec. 5.2):

    L_G = LSGAN(d_b(g_a2b(a)), 1) + LSGAN(d_a(g_b2a(b)), 1)                    adversarial, eq. 1 with LSGAN
        + lambda_cycle * (|g_b2a(g_a2b(a)) - a|_1 + |g_a2b(g_b2a(b)) - b|_1)  cycle consistency, eq. 2
        + lambda_cycle * lambda_identity * (|g_a2b(b) - b|_1 + |g_b2a(a) - a|_1)   identity, Sec. 5.2
    L_d_b = 0.5 * (LSGAN(d_b(b), 1) + LSGAN(d_b(pool_b(g_a2b(a))), 0)), L_d_a likewise

The logged scalars keep the authors' names, so that logs stay comparable across versions: gan_A, cycle_A and
idt_A are the terms of the A -> B generator, loss_D_A is d_b's loss (and _B the mirror).

LSGAN(p, t) = mean((p - t)^2); |.|_1 is the mean absolute error over all pixels. lambda_cycle = 10 per
direction, lambda_identity = 0.5 (relative to lambda_cycle, as in the authors' code). Adam(2e-4, 0.5, 0.999),
constant LR for the first half of training then linear decay to zero, weights ~ N(0, 0.02), image pools of
50, no gradient clipping and no EMA (set train.grad_clip: 0 and train.ema_decay: 0 in presets).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from translab.settings import ConfigError, check_fields, describe
from translab.methods.base import Method, OptimizerSpec, TrainSteps, Translation, check_direction
from translab.methods.image_pool import ImagePool
from translab.methods.losses import cycle_losses, identity_loss, lsgan_loss, pooled_discriminator_losses
from translab.nets.patchgan import PatchGAN, PatchGANConfig
from translab.nets.resnet_gen import ResnetGenerator, ResnetGeneratorConfig, check_divisible_size, init_normal


@dataclass
class CycleGANConfig:
    generator: ResnetGeneratorConfig = describe("ResNet generators g_a2b and g_b2a", factory=ResnetGeneratorConfig)
    discriminator: PatchGANConfig = describe("PatchGAN discriminators d_a and d_b", factory=PatchGANConfig)
    lambda_cycle: float = describe("weight of each direction's L1 cycle loss", 10.0)
    lambda_identity: float = describe("identity loss weight relative to lambda_cycle (0: off)", 0.5)
    pool_size: int = describe("generated images kept per discriminator (0: no pool)", 50)
    beta1: float = describe("Adam beta1 of both optimisers", 0.5)
    decay_start: float = describe("fraction of train.steps after which the LR decays linearly to 0", 0.5)
    init_std: float = describe("std of the N(0, std) weight initialisation", 0.02)

    def __post_init__(self):
        check_fields(self, "model", {"pool_size": (0, None), "decay_start": (0.0, 1.0)})

    def check_with(self, cfg) -> None:
        """The generators' downsamplings against data.image_size."""
        check_divisible_size(cfg.data.image_size, self.generator.n_down, "model.generator.n_down")


# --------------------------------------------------------------------------------------------------
# losses (pure functions of nets and batches, so tests can use them directly)


def generator_losses(g_a2b, g_b2a, d_a, d_b, real_a, real_b, lambda_cycle: float, lambda_identity: float) -> dict:
    """All generator terms of one step (d_b scores domain B, d_a domain A). Returns tensors: loss_G (the total)
    and its parts, plus fake_a, fake_b."""
    fake_b, fake_a = g_a2b(real_a), g_b2a(real_b)
    gan_a, gan_b = lsgan_loss(d_b(fake_b), True), lsgan_loss(d_a(fake_a), True)
    cyc_a, cyc_b = cycle_losses(real_a, real_b, g_a2b, g_b2a, "l1", fake_b=fake_b, fake_a=fake_a)  # eq. 2
    out = {"gan_A": gan_a, "gan_B": gan_b, "cycle_A": cyc_a, "cycle_B": cyc_b}
    total = gan_a + gan_b + lambda_cycle * (cyc_a + cyc_b)
    if lambda_identity > 0:
        idt_a, idt_b = identity_loss(g_a2b, g_b2a, real_a, real_b)
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
    #: the authors' net names in checkpoints written before translab named nets by role -> today's names
    renamed_nets = {"G_A": "g_a2b", "G_B": "g_b2a", "D_A": "d_b", "D_B": "d_a"}

    def __init__(self, cfg: CycleGANConfig, image_size: int, channels: int = 3):
        super().__init__(cfg, image_size, channels)
        self.nets["g_a2b"] = ResnetGenerator(cfg.generator, channels, channels)
        self.nets["g_b2a"] = ResnetGenerator(cfg.generator, channels, channels)
        self.nets["d_a"] = PatchGAN(cfg.discriminator, image_size, channels)
        self.nets["d_b"] = PatchGAN(cfg.discriminator, image_size, channels)
        for net in self.nets.values():
            init_normal(net, cfg.init_std)
        # pool_b feeds d_b (fakes of domain B), pool_a feeds d_a
        self.pool_a, self.pool_b = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)

    # ---- training -------------------------------------------------------------------------------
    def optimizer_specs(self, train_cfg) -> dict[str, OptimizerSpec]:
        betas = (self.cfg.beta1, 0.999)
        lam = linear_decay_lambda(train_cfg.steps, self.cfg.decay_start)
        # the authors' order (D_A = d_b first), so optimiser states saved under the old names resume exactly
        return {"G": OptimizerSpec(("g_a2b", "g_b2a"), train_cfg.lr, betas, train_cfg.weight_decay, lam),
                "D": OptimizerSpec(("d_b", "d_a"), train_cfg.lr, betas, train_cfg.weight_decay, lam)}

    def train_step(self, ctx: TrainSteps, batch_a: torch.Tensor, batch_b: torch.Tensor) -> dict[str, float]:
        """One generator step (D frozen), then one step on both discriminators with pooled fakes."""
        g_a2b, g_b2a, d_a, d_b = (ctx.model(n) for n in ("g_a2b", "g_b2a", "d_a", "d_b"))
        ctx.set_requires_grad(("d_a", "d_b"), False)
        out = generator_losses(g_a2b, g_b2a, d_a, d_b, batch_a, batch_b, self.cfg.lambda_cycle,
                               self.cfg.lambda_identity)
        ctx.optimize("G", out["loss_G"])
        ctx.set_requires_grad(("d_a", "d_b"), True)
        loss_d_a, loss_d_b = pooled_discriminator_losses(d_a, d_b, batch_a, batch_b, out["fake_a"], out["fake_b"],
                                                         self.pool_a, self.pool_b, ctx.generator)
        ctx.optimize("D", loss_d_b + loss_d_a)
        scalars = {k: float(v.detach()) for k, v in out.items() if not k.startswith("fake")}
        scalars.update(loss_D_A=float(loss_d_b.detach()), loss_D_B=float(loss_d_a.detach()))
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
        """x (N, C, H, W) in [-1, 1] -> g_a2b(x) for 'a2b', g_b2a(x) for 'b2a'; (N, C, H, W) in [-1, 1] (tanh)."""
        net = self.infer_net("g_a2b" if check_direction(direction) == "a2b" else "g_b2a")
        return Translation(net(x), self.nfe(direction))

    def nfe(self, direction, steps=None):
        check_direction(direction)
        return 1
