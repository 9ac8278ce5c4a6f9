"""DSBM: Diffusion Schrodinger Bridge Matching (Shi, De Bortoli, Campbell, Doucet, NeurIPS 2023, arXiv 2303.16852)
in its online, one-network form (alpha-DSBM: De Bortoli, Korshunova, Mnih, Doucet, "Schrodinger Bridge Flow for
Unpaired Data Translation", NeurIPS 2024, arXiv 2409.09347, Algorithm 1).

One network x_hat(x_t, t, d) serves both directions (d = 0: A -> B predicts the B endpoint, d = 1: B -> A the A
endpoint; the drift is (x_hat - x_t) / (1 - t), translab.diffusion.bridge). Training has two phases:

1. ``pretrain_steps`` of bridge matching on the independent coupling (DSBM eq. 8 with pi_0 x pi_1): the first
   Markovian projection of Iterative Markovian Fitting (IMF, DSBM Sec. 3.2);
2. online IMF (alpha-DSBM Algorithm 1): each step simulates the current EMA network from a batch of each domain
   (``coupling_steps`` Euler-Maruyama steps, no gradient) and trains each direction on the coupling the other
   direction made: A -> B on the pairs (x0_hat, x1) with x0_hat simulated from the B batch, B -> A on (x0, x1_hat)
   (DSBM's alternating forward-backward fits, eq. 11, with one network and one gradient step per iteration).

``init_from`` starts the network from a trained DSBM's bridge (its inference weights) instead: with
``pretrain_steps: 0`` the run continues that bridge's online IMF (alpha-DSBM's online fine-tuning of a pretrained
bridge), at this run's own ``epsilon``, which may differ from the source's (a warm start).

``epsilon`` is the reference Brownian motion's variance per unit time (images in [-1, 1]): small keeps the
input (the bridge approaches the OT map, DSBM Sec. 2), large gives a more diverse, less faithful translation.
A translation is one Euler-Maruyama simulation of ``steps`` network evaluations, stochastic (seeded).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from translab.settings import ConfigError, describe
from translab.diffusion.bridge import bridge_point, simulate_bridge
from translab.diffusion.process import seeded_noise
from translab.methods.base import Method, MethodError, TrainSteps, Translation, check_direction, check_source
from translab.nets.mlp import FieldMLP, MLPConfig
from translab.nets.unet import DenoiserUNet, UNetConfig

#: direction label of the one network: which endpoint it predicts
DIRECTION_LABEL = {"a2b": 0, "b2a": 1}
#: the UNet's time embedding expects diffusion timesteps; bridge time t in [0, 1) is scaled to [0, 1000)
TIME_SCALE = 1000.0
NETS = ("unet", "mlp")


@dataclass
class DSBMConfig:
    epsilon: float = describe("variance per unit time of the reference Brownian motion (the entropic "
                              "regularisation; images in [-1, 1])", 1.0)
    net: str = describe("network: unet (images) | mlp (flattened low-dimensional data)", "unet")
    unet: UNetConfig = describe("size of the UNet (net: unet)", factory=UNetConfig)
    mlp: MLPConfig = describe("size of the MLP (net: mlp)", factory=MLPConfig)
    pretrain_steps: int = describe("optimisation steps of bridge matching on the independent coupling before online IMF", 2000)
    coupling_steps: int = describe("Euler-Maruyama steps of each simulated training coupling (online phase)", 10)
    init_from: str | None = describe("a trained DSBM run (directory or shipped name, e.g. cmnist-2to3/dsbm) whose "
                                     "bridge network this run starts from, on a fresh training (same network "
                                     "size and domains); None: a new network", None)
    coupling_from_ema: bool = describe("simulate the training couplings with the EMA weights (true) or the "
                                       "current ones", True)
    steps: int = describe("Euler-Maruyama steps of a translation (network evaluations per image)", 30,
                          inference=True)
    sample_steps: int = describe("sampling steps of the training sample grids", 20, inference=True)

    def __post_init__(self):
        if not (isinstance(self.epsilon, float) and math.isfinite(self.epsilon) and self.epsilon > 0):
            raise ConfigError(f"model.epsilon: expected a finite variance > 0, got {self.epsilon!r}")
        if self.net not in NETS:
            raise ConfigError(f"model.net: expected one of {', '.join(NETS)}, got {self.net!r}")
        for key, low in (("pretrain_steps", 0), ("coupling_steps", 1), ("steps", 1), ("sample_steps", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"model.{key}: expected an integer >= {low}, got {value!r}")

    def check_with(self, cfg) -> None:
        """The UNet's levels against data.image_size (net: unet)."""
        if self.net == "unet":
            self.unet.check_image_size(cfg.data.image_size)


class DSBM(Method):
    name = "dsbm"
    config_class = DSBMConfig
    ema_nets = ("bridge",)

    def __init__(self, cfg: DSBMConfig, image_size: int, channels: int = 3):
        super().__init__(cfg, image_size, channels)
        if cfg.net == "unet":
            self.nets["bridge"] = DenoiserUNet(cfg.unet, image_size, channels, channels, num_domains=2)
        else:
            self.nets["bridge"] = FieldMLP(cfg.mlp, channels * image_size * image_size, num_labels=2)

    def endpoint_fn(self, net, direction: str):
        """x_hat(x_t, t) of one direction: the endpoint the network predicts at bridge time t (N,) in [0, 1)."""
        label = DIRECTION_LABEL[direction]

        def endpoint(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            labels = torch.full((x.shape[0],), label, dtype=torch.long, device=x.device)
            return net(x, t * TIME_SCALE if self.cfg.net == "unet" else t, labels)

        return endpoint

    # ---- training -------------------------------------------------------------------------------
    def init_sources(self) -> dict[str, str]:
        """model.init_from, where set: the trained DSBM this bridge starts from."""
        return {} if self.cfg.init_from is None else {"init_from": self.cfg.init_from}

    def continued_source(self) -> str | None:
        """model.init_from is an earlier stage of this bridge's training: the record embeds its record."""
        return None if self.cfg.init_from is None else "init_from"

    def init_for_training(self, cfg, sources: dict | None = None) -> None:
        """On a fresh training with ``model.init_from``: copy that DSBM's inference bridge (its EMA) into ours,
        after checking its method, network and domains against ours (MethodError naming both values)."""
        if self.cfg.init_from is None:
            return
        if "init_from" not in (sources or {}):
            raise MethodError("model.init_from is set, but its trained model was not loaded: pass "
                              "sources=translab.training.load_init_sources(method)")
        # the network kind, then its own size settings (model.unet or model.mlp)
        source, _ = check_source(f"model.init_from={self.cfg.init_from}", sources["init_from"], "dsbm", cfg,
                                 ("net", self.cfg.net))
        self.nets["bridge"].load_state_dict(source.infer_net("bridge").state_dict())

    def optimizer_specs(self, train_cfg):
        from translab.methods.base import OptimizerSpec

        return {"bridge": OptimizerSpec(("bridge",), train_cfg.lr, weight_decay=train_cfg.weight_decay)}

    def train_step(self, ctx: TrainSteps, batch_a: torch.Tensor, batch_b: torch.Tensor) -> dict[str, float]:
        """Bridge matching in both directions on the pairs of this step's coupling (independent while
        ``ctx.step < pretrain_steps``, then simulated by the other direction), one optimiser step."""
        net = ctx.model("bridge")
        if ctx.step < self.cfg.pretrain_steps:
            pairs_a2b, pairs_b2a = (batch_a, batch_b), (batch_b, batch_a)
        else:
            sim = self.ema["bridge"] if self.cfg.coupling_from_ema and "bridge" in self.ema else net
            with torch.no_grad():
                a_hat = simulate_bridge(self.endpoint_fn(sim, "b2a"), batch_b, self.cfg.coupling_steps,
                                        self.cfg.epsilon, ctx.randn_like)
                b_hat = simulate_bridge(self.endpoint_fn(sim, "a2b"), batch_a, self.cfg.coupling_steps,
                                        self.cfg.epsilon, ctx.randn_like)
            pairs_a2b, pairs_b2a = (a_hat, batch_b), (b_hat, batch_a)
        loss_a2b = self._matching_loss(net, "a2b", *pairs_a2b, ctx)
        loss_b2a = self._matching_loss(net, "b2a", *pairs_b2a, ctx)
        loss = (loss_a2b + loss_b2a) / 2
        ctx.optimize("bridge", loss)
        return {"loss": float(loss.detach()), "loss_a2b": float(loss_a2b.detach()),
                "loss_b2a": float(loss_b2a.detach()), "online": float(ctx.step >= self.cfg.pretrain_steps)}

    def _matching_loss(self, net, direction: str, start: torch.Tensor, end: torch.Tensor, ctx: TrainSteps):
        """E_t ||x_hat(x_t, t) - end||^2 with x_t on the bridge from ``start`` to ``end``, t ~ U[0, 1): the
        endpoint regression whose minimiser E[end | x_t] gives DSBM eq. 8's drift."""
        t = torch.rand(start.shape[0], generator=ctx.generator).to(start.device)
        xt = bridge_point(start, end, t, self.cfg.epsilon, ctx.randn_like(start))
        return (self.endpoint_fn(net, direction)(xt, t) - end).pow(2).mean()

    # ---- inference ------------------------------------------------------------------------------
    def default_steps(self) -> int:
        return self.cfg.steps

    @torch.no_grad()
    def translate(self, x, direction, steps=None, generator=None, return_latents=False, progress=None):
        """One Euler-Maruyama simulation of the learnt bridge from x (N, C, H, W) in [-1, 1]; noise from
        ``generator`` (drawn on the CPU, so a seed repeats on any device)."""
        check_direction(direction)
        n = self.nfe(direction, steps)
        y = simulate_bridge(self.endpoint_fn(self.infer_net("bridge"), direction), x, n, self.cfg.epsilon,
                            lambda like: seeded_noise(like, generator))
        return Translation(y.clamp(-1, 1), n)

    def nfe(self, direction, steps=None):
        """One network evaluation per Euler-Maruyama step."""
        return int(steps or self.cfg.steps)
