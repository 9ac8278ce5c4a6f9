"""DDIB: Dual Diffusion Implicit Bridges (Su, Song, Meng, Ermon, ICLR 2023, arXiv 2203.08382).

Translate A -> B by encoding x_A to a latent with the source model's deterministic ODE (Sec. 3,
"x^(l) = ODESolve(x^(s); v_theta^(s), 0, 1)") and decoding that latent with the target model's ODE
("x^(t) = ODESolve(x^(l); v_theta^(t), 1, 0)"). ODESolve is DDIM (the paper's) or DPM-Solver++(2M)
(``model.sampler``). Two layouts:

- ``conditional: true``: one denoiser with a domain label serves both domains;
- ``conditional: false``: two independent unconditional denoisers eps_a and eps_b, each trainable alone on
  its own domain (``train_domains: [a]`` or ``[b]``; the paper's privacy setting).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from translab.config import ConfigError, describe
from translab.diffusion.process import loss_simple, q_sample, sample_t
from translab.diffusion.samplers import invert_ddim, invert_dpmpp2m, sample_ddim, sample_dpmpp2m
from translab.diffusion.schedule import NoiseSchedule
from translab.methods.base import Method, MethodError, Translation, check_direction
from translab.nets.unet import DenoiserUNet, UNetConfig

DOMAIN_INDEX = {"a": 0, "b": 1}

#: ODE solvers of the probability-flow ODE: name -> (encode: clean -> latent, decode: latent -> clean), each a
#: pure function of (eps_fn, schedule, start tensor, descending timesteps) with one network evaluation per
#: timestep. ddim: first order (Song et al. 2021, eq. 12); dpmpp2m: DPM-Solver++(2M), second-order multistep
#: (Lu et al. 2022, arXiv 2211.01095, Alg. 2).
ODE_SOLVERS = {"ddim": (invert_ddim, sample_ddim), "dpmpp2m": (invert_dpmpp2m, sample_dpmpp2m)}


def ode_solver(name: str) -> tuple:
    """(encode, decode) functions of the solver ``name``; ConfigError naming the valid ones otherwise."""
    if name not in ODE_SOLVERS:
        raise ConfigError(f"model.sampler: unknown ODE solver '{name}', expected one of {', '.join(ODE_SOLVERS)}")
    return ODE_SOLVERS[name]


@dataclass
class DiffusionConfig:
    schedule: str = describe("cosine (improved-diffusion) | linear (DDPM)", "cosine")
    num_timesteps: int = describe("training timesteps T", 1000)


@dataclass
class DDIBConfig:
    diffusion: DiffusionConfig = describe("noise schedule", factory=DiffusionConfig)
    unet: UNetConfig = describe("denoiser size", factory=UNetConfig)
    conditional: bool = describe("one domain-conditional denoiser (true) or two independent ones (false)", True)
    train_domains: list[str] = describe("domains whose denoisers are trained (privacy setting: one each run)",
                                        factory=lambda: ["a", "b"])
    sampler: str = describe("ODE solver of the deterministic chains (DDIB's encoding and decoding, SDEdit "
                            "with eta = 0): ddim (the paper's, default) | dpmpp2m (DPM-Solver++(2M))", "ddim",
                            inference=True)
    steps: int = describe("default solver steps per chain (NFE = 2 x steps)", 50, inference=True)
    t_max: int | None = describe("timestep where the chains start (None: T - T/steps)", None, inference=True)
    clip_decode: bool = describe("clip x0 predictions to [-1, 1] while decoding (never while encoding)", False,
                                 inference=True)
    sample_steps: int = describe("solver steps per chain for the training sample grids", 20, inference=True)

    def __post_init__(self):
        ode_solver(self.sampler)  # an unknown name fails when the config is read (ConfigError naming the valid ones)


class DDIB(Method):
    name = "ddib"
    config_class = DDIBConfig

    def __init__(self, cfg: DDIBConfig, image_size: int):
        super().__init__(cfg, image_size)
        for d in cfg.train_domains:
            if d not in DOMAIN_INDEX:
                raise MethodError(f"model.train_domains: unknown domain '{d}', expected 'a' and/or 'b'")
        self.schedule = NoiseSchedule.make(cfg.diffusion.schedule, cfg.diffusion.num_timesteps)
        if cfg.conditional:
            self.nets["eps"] = DenoiserUNet(cfg.unet, image_size, num_domains=2)
        else:
            for d in ("a", "b"):
                self.nets[f"eps_{d}"] = DenoiserUNet(cfg.unet, image_size)
        self.ema_nets = tuple(self.nets.keys())

    # ---- training -------------------------------------------------------------------------------
    def optimizer_specs(self, train_cfg):
        from translab.methods.base import OptimizerSpec

        if self.cfg.conditional:
            names = ("eps",)
        else:
            names = tuple(f"eps_{d}" for d in self.cfg.train_domains)
        return {"denoiser": OptimizerSpec(names, train_cfg.lr, weight_decay=train_cfg.weight_decay)}

    def train_step(self, ctx, batch_a, batch_b):
        """L_simple (Ho et al. eq. 14) on each trained domain; one optimiser step."""
        batches = {"a": batch_a, "b": batch_b}
        domains = list(self.cfg.train_domains)
        if self.cfg.conditional:
            x0 = torch.cat([batches[d] for d in domains])
            label = torch.cat([torch.full((batches[d].shape[0],), DOMAIN_INDEX[d], dtype=torch.long) for d in domains])
            label = label.to(x0.device)
            t = sample_t(self.schedule, x0.shape[0], ctx.generator, x0.device)
            eps = ctx.randn_like(x0)
            pred = ctx.model("eps")(q_sample(self.schedule, x0, t, eps), t, label)
            loss = loss_simple(pred, eps)
            out = {"loss": loss}
        else:
            losses = {}
            for d in domains:
                x0 = batches[d]
                t = sample_t(self.schedule, x0.shape[0], ctx.generator, x0.device)
                eps = ctx.randn_like(x0)
                losses[f"loss_{d}"] = loss_simple(ctx.model(f"eps_{d}")(q_sample(self.schedule, x0, t, eps), t), eps)
            loss = sum(losses.values())
            out = dict(losses, loss=loss)
        ctx.optimize("denoiser", loss)
        return {k: float(v.detach()) for k, v in out.items()}

    # ---- inference ------------------------------------------------------------------------------
    def domain_net(self, domain: str) -> tuple[torch.nn.Module, int | None]:
        """The inference network that denoises ``domain`` and its class label (None: a per-domain network)."""
        if self.cfg.conditional:
            return self.infer_net("eps"), DOMAIN_INDEX[domain]
        return self.infer_net(f"eps_{domain}"), None

    def eps_fn(self, domain: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """Noise predictor of one domain, eps(x (N,3,H,W), t (N,)) -> (N,3,H,W), from the inference weights."""
        net, label = self.domain_net(domain)
        if label is None:
            return lambda x, t: net(x, t)
        return lambda x, t: net(x, t, torch.full((x.shape[0],), label, dtype=torch.long, device=x.device))

    def default_steps(self) -> int:
        return self.cfg.steps

    def timesteps(self, steps: int | None) -> list[int]:
        return self.schedule.timesteps(steps or self.cfg.steps, self.cfg.t_max)

    @torch.no_grad()
    def encode(self, x0: torch.Tensor, domain: str, steps: int | None = None, progress=None) -> torch.Tensor:
        """Image (N,3,H,W) in [-1,1] -> latent (N,3,H,W) ~ N(0, I): the domain's probability-flow ODE run
        forwards with ``model.sampler`` (no clipping)."""
        invert, _ = ode_solver(self.cfg.sampler)
        return invert(self.eps_fn(domain), self.schedule, x0, self.timesteps(steps), progress=progress)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, domain: str, steps: int | None = None, progress=None) -> torch.Tensor:
        """Latent (N,3,H,W) -> image (N,3,H,W): the domain's probability-flow ODE with ``model.sampler``."""
        _, sample = ode_solver(self.cfg.sampler)
        return sample(self.eps_fn(domain), self.schedule, z, self.timesteps(steps),
                      clip_x0=self.cfg.clip_decode, progress=progress)

    @torch.no_grad()
    def translate(self, x, direction, steps=None, generator=None, return_latents=False, progress=None):
        src, tgt = check_direction(direction).split("2")
        z = self.encode(x, src, steps, progress)
        y = self.decode(z, tgt, steps, progress)
        return Translation(y.clamp(-1, 1), self.nfe(direction, steps), {"z": z} if return_latents else None)

    def nfe(self, direction, steps=None):
        return 2 * len(self.timesteps(steps))
