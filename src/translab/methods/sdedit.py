"""SDEdit (Meng et al., ICLR 2022, arXiv 2108.01073) as a translation baseline on DDIB's target denoiser.

Perturb the source image to level t0 with the forward process (eq. 4 of Ho et al.), then denoise it with
the target domain's model (Alg. 1 of SDEdit with the VP-SDE; here ancestral DDPM steps, or with ``eta = 0`` the
probability-flow ODE solved by ``model.sampler`` (DDIM or DPM-Solver++(2M)), on a respaced list from t0 to 0).
Trains exactly like DDIB, so a DDIB run can be evaluated as SDEdit (``--as sdedit``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from translab.settings import ConfigError, describe
from translab.diffusion.process import q_sample, seeded_noise
from translab.diffusion.samplers import sample_ddim, sample_ddpm
from translab.methods.base import Translation, check_direction
from translab.methods.ddib import DDIB, EVALS_PER_STEP, DDIBConfig


@dataclass
class SDEditConfig(DDIBConfig):
    t0: float = describe("start level as a fraction of T, in (0, 1] (SDEdit's t0; larger = more realism, less "
                         "faithfulness)", 0.5, inference=True)
    eta: float = describe("noise of the sampling steps, in [0, 1]: 1 ancestral DDPM steps (the SDE), 0 the ODE "
                          "solved by model.sampler, between: DDIM's eta (Song et al. 2021, eq. 16)", 1.0, inference=True)

    def __post_init__(self):
        super().__post_init__()
        if not 0.0 < self.t0 <= 1.0:
            raise ConfigError(f"model.t0: expected a fraction of T in (0, 1], got {self.t0}")
        if not 0.0 <= self.eta <= 1.0:
            raise ConfigError(f"model.eta: expected a value in [0, 1] (1: DDPM, 0: the ODE), got {self.eta}")


class SDEdit(DDIB):
    name = "sdedit"
    config_class = SDEditConfig

    def timesteps(self, steps):
        t_start = max(0, min(self.schedule.num_timesteps - 1, round(self.cfg.t0 * self.schedule.num_timesteps) - 1))
        return self.schedule.timesteps(steps or self.cfg.steps, t_start)

    @torch.no_grad()
    def translate(self, x, direction, steps=None, generator=None, return_latents=False, progress=None):
        src, tgt = check_direction(direction).split("2")
        ts = self.timesteps(steps)
        noise = seeded_noise(x, generator)
        t0 = torch.full((x.shape[0],), ts[0], dtype=torch.long, device=x.device)
        xt = q_sample(self.schedule, x, t0, noise)
        eps_fn = self.decoder_eps(tgt, reference=x)
        if self.cfg.eta == 1:
            y = sample_ddpm(eps_fn, self.schedule, xt, ts, generator=generator, progress=progress)
        elif self.cfg.eta > 0:  # between the SDE and the ODE: DDIM's stochastic steps with sigma scaled by eta
            y = sample_ddim(eps_fn, self.schedule, xt, ts, eta=self.cfg.eta, generator=generator,
                            progress=progress)
        else:
            y = self.ode()[1](eps_fn, self.schedule, xt, ts, progress=progress)
        return Translation(y.clamp(-1, 1), self.nfe(direction, steps), {"x_t0": xt} if return_latents else None)

    def nfe(self, direction, steps=None):
        """One evaluation per step (2 with the ODE solved by edict), x 2 at each guided step."""
        per_step = EVALS_PER_STEP[self.cfg.sampler] if self.cfg.eta == 0 else 1
        return per_step * sum(self.guided_evals(t) for t in self.timesteps(steps))
