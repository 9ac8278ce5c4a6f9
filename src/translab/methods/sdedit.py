"""SDEdit (Meng et al., ICLR 2022, arXiv 2108.01073) as a translation baseline on DDIB's target denoiser.

Perturb the source image to level t0 with the forward process (eq. 4 of Ho et al.), then denoise it with
the target domain's model (Alg. 1 of SDEdit with the VP-SDE; here ancestral DDPM or DDIM steps on a respaced
list from t0 to 0). Trains exactly like DDIB, so a DDIB run can be evaluated as SDEdit (``--as sdedit``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from translab.config import describe
from translab.diffusion.process import q_sample
from translab.diffusion.samplers import sample_ddim, sample_ddpm
from translab.methods.base import Translation, check_direction
from translab.methods.ddib import DDIB, DDIBConfig


@dataclass
class SDEditConfig(DDIBConfig):
    t0: float = describe("start level as a fraction of T (SDEdit's t0; larger = more realism, less faithfulness)", 0.5)
    eta: float = describe("1: ancestral DDPM steps (SDE), 0: DDIM steps (ODE)", 1.0)


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
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
        t0 = torch.full((x.shape[0],), ts[0], dtype=torch.long, device=x.device)
        xt = q_sample(self.schedule, x, t0, noise)
        if self.cfg.eta > 0:
            y = sample_ddpm(self.eps_fn(tgt), self.schedule, xt, ts, generator=generator, progress=progress)
        else:
            y = sample_ddim(self.eps_fn(tgt), self.schedule, xt, ts, progress=progress)
        return Translation(y.clamp(-1, 1), len(ts), {"x_t0": xt} if return_latents else None)

    def nfe(self, direction, steps=None):
        return len(self.timesteps(steps))
