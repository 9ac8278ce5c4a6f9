"""Neural Optimal Transport (Korotin, Selikhanovych, Burnaev, ICLR 2023, arXiv 2201.12220): the deterministic
one-to-one map with the quadratic cost (their Algorithm 1 without the noise input z, i.e. the "strong" OT
of their eq. 9 / Sec. 4.1).

A transport map T (source -> target) and a potential f solve the max-min problem (eq. 9 with eq. 14's cost)

    sup_f inf_T  E_x[ c(x, T(x)) - f(T(x)) ] + E_y[ f(y) ],

and at the saddle point T is the OT map. Cost: c(x, y) = ||x - y||^2 / D, the mean squared pixel distance
over the D = C*H*W entries of one image, exactly what the authors' code computes (F.mse_loss(X, T(X)),
averaged over batch and pixels; no factor 1/2). The OT map of a quadratic cost does not depend on its scale
(Brenier), only the scale of f does.

Training step of the loop (= one step on f, Algorithm 1): ``t_iters`` Adam steps on T with
L_T = mean_n[c(x_n, T(x_n)) - f(T(x_n))] (f frozen), then one Adam step on f with
L_f = mean_n f(T(x_n)) - mean_n f(y_n) (T frozen, T in eval mode as in the authors' code).
As in Algorithm 1 and the authors' code, every T-step and the f-step draw a fresh source batch: the method
asks the shared loop for ``t_iters + 1`` source batches per step (``batch_factors``) and splits them.

The map T is the authors' UNet (``map: unet``) or, for small CPU budgets, CycleGAN's ResNet generator
(``map: resnet``, Zhu et al. 2017; a departure from the paper).

One map per trained model: ``direction: a2b`` trains T: A -> B, ``b2a`` trains T: B -> A.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from translab.settings import check_choice, check_fields, describe
from translab.methods.base import DIRECTIONS, Method, MethodError, OptimizerSpec, TrainSteps, Translation, check_direction
from translab.nets.potential import PotentialConfig, ResNetPotential
from translab.nets.resnet_gen import ResnetGenerator, ResnetGeneratorConfig, check_divisible_size
from translab.nets.transport_unet import TransportUNet, TransportUNetConfig

MAPS = ("unet", "resnet")


@dataclass
class NeuralOTConfig:
    direction: str = describe("the one map this run learns: a2b (T: A -> B) or b2a (T: B -> A)", "a2b")
    map: str = describe("architecture of T: unet (the NOT code) | resnet (CycleGAN's generator)", "unet")
    transport: TransportUNetConfig = describe("transport map T when map=unet", factory=TransportUNetConfig)
    resnet: ResnetGeneratorConfig = describe("transport map T when map=resnet", factory=ResnetGeneratorConfig)
    potential: PotentialConfig = describe("potential f (a ResNet critic)", factory=PotentialConfig)
    t_iters: int = describe("optimisation steps on T per step on f (T_ITERS, 10 in the paper)", 10)

    def __post_init__(self):
        check_choice("model.direction", self.direction, DIRECTIONS)
        check_choice("model.map", self.map, MAPS)
        check_fields(self, "model", {"t_iters": (1, None)})

    def check_with(self, cfg) -> None:
        """The ResNet map's downsamplings against data.image_size (map: resnet)."""
        if self.map == "resnet":
            check_divisible_size(cfg.data.image_size, self.resnet.n_down, "model.resnet.n_down")


# --------------------------------------------------------------------------------------------------
# losses (shared by the image method and the low-dimensional tests)


def quadratic_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """c(x, y) = ||x - y||^2 / D per sample: x, y (N, ...) -> (N,), D = numel of one sample."""
    return (x - y).pow(2).flatten(1).mean(1)


def transport_loss(T: nn.Module, f: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """L_T = mean_n[c(x_n, T(x_n)) - f(T(x_n))] (inner inf of eq. 9). f: (N, ...) -> (N,) or (N, 1).

    Returns the loss and detached diagnostics {'cost': mean c(x, T(x))}."""
    tx = T(x)
    cost = quadratic_cost(x, tx)
    loss = (cost - f(tx).reshape(-1)).mean()
    return loss, {"cost": cost.detach().mean()}


def potential_loss(f: nn.Module, tx: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """L_f = mean f(T(x)) - mean f(y): minimising it is the outer sup over f of eq. 9 (tx is detached)."""
    return f(tx.detach()).reshape(-1).mean() - f(y).reshape(-1).mean()


def not_step(ctx: TrainSteps, t_name: str, f_name: str, xs: list[torch.Tensor], y: torch.Tensor) -> dict[str, float]:
    """One step of Algorithm 1 through a TrainContext: one optimiser step 'T' on each of ``xs[:-1]`` (a fresh
    source batch per T-step, T_ITERS = len(xs) - 1), then one step 'f' on the source batch ``xs[-1]`` and
    the target batch ``y``. Needs len(xs) >= 2."""
    if len(xs) < 2:
        raise ValueError(f"not_step needs at least 2 source batches (T-steps + one f-step), got {len(xs)}")
    T, f = ctx.model(t_name), ctx.model(f_name)
    ctx.set_requires_grad([f_name], False)
    for x in xs[:-1]:
        loss_t, diag = transport_loss(T, f, x)
        ctx.optimize("T", loss_t)
    ctx.set_requires_grad([f_name], True)
    was_training = T.training
    T.eval()
    with torch.no_grad():
        tx = T(xs[-1])
    T.train(was_training)
    loss_f = potential_loss(f, tx, y)
    ctx.optimize("f", loss_f)
    return {"loss_T": float(loss_t.detach()), "loss_f": float(loss_f.detach()), "cost": float(diag["cost"])}


# --------------------------------------------------------------------------------------------------


class NeuralOT(Method):
    name = "not"
    config_class = NeuralOTConfig
    ema_nets = ()  # the authors average no weights

    def __init__(self, cfg: NeuralOTConfig, image_size: int, channels: int = 3):
        super().__init__(cfg, image_size, channels)
        if cfg.map == "unet":
            self.nets["T"] = TransportUNet(cfg.transport, image_size, channels)
        else:
            self.nets["T"] = ResnetGenerator(cfg.resnet, channels, channels)
        self.nets["f"] = ResNetPotential(cfg.potential, image_size, channels)

    # ---- training -------------------------------------------------------------------------------
    def optimizer_specs(self, train_cfg) -> dict[str, OptimizerSpec]:
        # the NOT code: Adam(lr=1e-4) for both, default betas
        return {"T": OptimizerSpec(("T",), train_cfg.lr, weight_decay=train_cfg.weight_decay),
                "f": OptimizerSpec(("f",), train_cfg.lr, weight_decay=train_cfg.weight_decay)}

    def batch_factors(self) -> dict[str, int]:
        # t_iters fresh source batches for the T-steps and one for the f-step; one target batch
        source = self.cfg.direction[0]
        return {source: self.cfg.t_iters + 1, "ab".replace(source, ""): 1}

    def train_step(self, ctx: TrainSteps, batch_a: torch.Tensor, batch_b: torch.Tensor) -> dict[str, float]:
        x, y = (batch_a, batch_b) if self.cfg.direction == "a2b" else (batch_b, batch_a)
        k = self.cfg.t_iters + 1
        if x.shape[0] < k:
            raise MethodError(f"NOT needs at least t_iters + 1 = {k} source images per step, got {x.shape[0]}")
        return not_step(ctx, "T", "f", list(x.tensor_split(k)), y)

    # ---- inference ------------------------------------------------------------------------------
    def directions(self) -> tuple[str, ...]:
        return (self.cfg.direction,)

    def _check_trained(self, direction: str) -> None:
        if check_direction(direction) != self.cfg.direction:
            raise MethodError(
                f"this NOT model learnt only the map {self.cfg.direction} (NOT trains one direction per run); "
                f"to translate {direction}, train a second model with "
                f"`translab train not --set model.direction={direction}`")

    @torch.no_grad()
    def translate(self, x, direction, steps=None, generator=None, return_latents=False, progress=None):
        """x (N, C, H, W) in [-1, 1] -> T(x) clamped to [-1, 1] (T's raw output may leave the box)."""
        self._check_trained(direction)
        net = self.infer_net("T")
        was_training = net.training
        net.eval()
        y = net(x)
        net.train(was_training)
        return Translation(y.clamp(-1, 1), self.nfe(direction))

    def nfe(self, direction, steps=None):
        self._check_trained(direction)
        return 1
