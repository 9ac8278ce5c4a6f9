"""SDEdit's eta is DDIM's eta (Song et al. 2021, eq. 16): 1 the ancestral SDE, 0 the ODE, between a real mix."""
from __future__ import annotations

import pytest
import torch

from tiny_runs import TINY_DDIB
from translab.config import ConfigError, resolve_config
from translab.diffusion.process import q_sample
from translab.diffusion.samplers import sample_ddim
from translab.methods import build_method

torch.set_num_threads(1)


def sdedit(*extra: str):
    torch.manual_seed(0)
    return build_method(resolve_config("sdedit", None, None, TINY_DDIB + ["model.t0=0.6", *extra])).eval()


def translate(method, x):
    return method.translate(x, "a2b", steps=4, generator=torch.Generator().manual_seed(5)).images


def test_eta_between_zero_and_one_runs_ddims_stochastic_steps():
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    half = sdedit("model.eta=0.5")
    with torch.no_grad():
        got = translate(half, x)
        ode, sde = translate(half.with_inference(eta=0.0), x), translate(half.with_inference(eta=1.0), x)
        # the same draws by hand: the start noise, then DDIM with eta = 0.5 from the same generator
        gen = torch.Generator().manual_seed(5)
        ts = half.timesteps(4)
        xt = q_sample(half.schedule, x, torch.full((3,), ts[0]), torch.randn(x.shape, generator=gen))
        expect = sample_ddim(half.eps_fn("b"), half.schedule, xt, ts, eta=0.5, generator=gen).clamp(-1, 1)
    torch.testing.assert_close(got, expect)
    assert not torch.allclose(got, ode) and not torch.allclose(got, sde)  # before: any eta > 0 ran the SDE


@pytest.mark.parametrize("setting, message", [("model.eta=1.5", "model.eta"), ("model.eta=-0.1", "model.eta"),
                                              ("model.t0=0", "model.t0"), ("model.t0=1.5", "model.t0")])
def test_out_of_range_settings_are_config_errors(setting, message):
    with pytest.raises(ConfigError, match=message):
        sdedit(setting)
