"""DDIB: Dual Diffusion Implicit Bridges (Su, Song, Meng, Ermon, ICLR 2023, arXiv 2203.08382).

Translate A -> B by encoding x_A to a latent with the source model's deterministic ODE (Sec. 3,
"x^(l) = ODESolve(x^(s); v_theta^(s), 0, 1)") and decoding that latent with the target model's ODE
("x^(t) = ODESolve(x^(l); v_theta^(t), 1, 0)"). ODESolve is DDIM (the paper's) or DPM-Solver++(2M)
(``model.sampler``). Two layouts:

- ``conditional: true``: one denoiser with a domain label serves both domains;
- ``conditional: false``: two independent unconditional denoisers eps_a and eps_b, each trainable alone on
  its own domain (``train_domains: [a]`` or ``[b]``; the paper's privacy setting).

Optional departures from the paper (every default keeps the paper): a conditional model trained with
``label_dropout`` > 0 also learns a null class, so decoding can be guided toward the target domain with a scale
``guidance`` w (classifier-free guidance, Ho & Salimans 2022; encoding stays the source domain's own ODE, so
w = 1 is the paper's DDIB), optionally only inside ``guidance_interval`` (Kynkaanniemi et al. 2024), with
``guidance_rescale`` (Lin et al. 2024), or on the channel mean of the guidance difference only
(``guidance_on: luminance``, so the colour is the target domain's own conditional prediction);
``loss_weighting: min_snr`` weights the loss over t (Hang et al. 2023); ``sampler: dpmpp2m`` solves both ODEs
with DPM-Solver++(2M) (Lu et al. 2022); ``sampler: edict`` integrates them with EDICT's coupled, algebraically
invertible steps (Wallace et al. 2023), so decode(encode(x)) = x up to rounding. ``t_max`` fixes where the chains
start whatever the step count (the default, T - T/steps, moves with it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from translab.settings import ConfigError, check_choice, check_fields, check_range, describe
from translab.diffusion.process import check_loss_weighting, drop_labels, q_sample, sample_t, weighted_loss_simple
from translab.diffusion.colour_transfer import colour_consistent
from translab.diffusion.lowpass import LOWPASS_ON, lowpass_consistent, lowpass_factor_fits
from translab.diffusion.edict import DEFAULT_MIX, invert_edict, sample_edict
from translab.diffusion.samplers import invert_ddim, invert_dpmpp2m, sample_ddim, sample_dpmpp2m
from translab.diffusion.schedule import NoiseSchedule
from translab.methods.base import Method, MethodError, TrainSteps, Translation, check_direction, check_source
from translab.nets.unet import DenoiserUNet, UNetConfig

DOMAIN_INDEX = {"a": 0, "b": 1}
NULL_LABEL = 2  # the "no domain" class of a model trained with label dropout
GUIDANCE_ON = ("all", "luminance")

#: ODE solvers of the probability-flow ODE: name -> (encode: clean -> latent, decode: latent -> clean), each a
#: pure function of (eps_fn, schedule, start tensor, descending timesteps) with one network evaluation per
#: timestep. ddim: first order (Song et al. 2021, eq. 12); dpmpp2m: DPM-Solver++(2M), second-order multistep
#: (Lu et al. 2022, arXiv 2211.01095, Alg. 2); edict: DDIM on two coupled copies, exactly invertible, two network
#: evaluations per timestep and a (N, 2, C, H, W) latent (Wallace et al. CVPR 2023; translab.diffusion.edict).
ODE_SOLVERS = {"ddim": (invert_ddim, sample_ddim), "dpmpp2m": (invert_dpmpp2m, sample_dpmpp2m),
               "edict": (invert_edict, sample_edict)}
EVALS_PER_STEP = {"ddim": 1, "dpmpp2m": 1, "edict": 2}


def ode_solver(name: str) -> tuple:
    """(encode, decode) functions of the solver ``name``; ConfigError naming the valid ones otherwise."""
    if name not in ODE_SOLVERS:
        raise ConfigError(f"model.sampler: unknown ODE solver '{name}', expected one of {', '.join(ODE_SOLVERS)}")
    return ODE_SOLVERS[name]


@dataclass
class DiffusionConfig:
    schedule: str = describe("cosine (improved-diffusion) | linear (DDPM)", "cosine")
    num_timesteps: int = describe("training timesteps T", 1000)

    def __post_init__(self):
        check_range("model.diffusion.num_timesteps", self.num_timesteps, 1)

    def check_t_max(self, t_max: int | None) -> None:
        """ConfigError unless ``t_max`` (a chain's start) is None or a timestep of this schedule, in [0, T-1]."""
        T = self.num_timesteps
        if t_max is not None and not 0 <= t_max <= T - 1:
            raise ConfigError(f"model.t_max: expected a timestep in [0, {T - 1}] (T = {T}) or null, got {t_max}")


@dataclass
class DDIBConfig:
    diffusion: DiffusionConfig = describe("noise schedule", factory=DiffusionConfig)
    unet: UNetConfig = describe("denoiser size", factory=UNetConfig)
    conditional: bool = describe("one domain-conditional denoiser (true) or two independent ones (false)", True)
    train_domains: list[str] = describe("domains whose denoisers are trained (privacy setting: one each run)",
                                        factory=lambda: ["a", "b"])
    label_dropout: float = describe("conditional only: probability of replacing a training image's domain label by "
                                    "a null label (Ho & Salimans 2022); > 0 adds a null class and allows model.guidance "
                                    "(a departure from the paper)", 0.0)
    loss_weighting: str = describe("weight of each timestep's L_simple term: uniform (Ho et al.) | min_snr "
                                   "(min(SNR, gamma) / SNR, Hang et al. ICCV 2023, written for eps prediction; a "
                                   "departure from the paper)", "uniform")
    min_snr_gamma: float = describe("gamma of loss_weighting=min_snr", 5.0)
    init_from: str | None = describe("a trained DDIB run (directory or shipped name, e.g. cmnist-2to3/ddib) whose "
                                     "inference (EMA) denoisers this run starts from on a fresh training: a "
                                     "fine-tuning, e.g. at a lower train.lr (same schedule, network and domains); "
                                     "None: new networks", None)
    sampler: str = describe("ODE solver of DDIB's encoding and decoding (and SDEdit's at eta = 0): ddim (the paper's) "
                            "| dpmpp2m (DPM-Solver++(2M), Lu et al. 2022) | edict (exactly invertible, 2 evaluations "
                            "per solver step)", "ddim", inference=True)
    edict_mix: float = describe("mixing weight p of sampler=edict, in (0, 1] (Wallace et al.'s 0.93)", DEFAULT_MIX,
                                inference=True)
    steps: int = describe("default solver steps per chain (NFE = 2 x steps with DDIM unguided; x 2 per edict "
                          "step, and x 2 per decoding step when guided)", 50, inference=True)
    t_max: int | None = describe("timestep where the chains start (None: T - T/steps)", None, inference=True)
    clip_decode: bool = describe("clip x0 predictions to [-1, 1] while decoding (never while encoding)", False,
                                 inference=True)
    guidance: float = describe("classifier-free guidance scale w of decoding, eps_null + w (eps_target - eps_null) (Ho "
                               "& Salimans 2022, w = 1 + their w); 1: plain DDIB; != 1 needs label_dropout > 0 (a "
                               "departure from the paper)", 1.0, inference=True)
    guidance_interval: list[int] | None = describe("[t_lo, t_hi]: guide only the decoding solver steps with t in this "
                                                   "closed interval (Kynkaanniemi et al. NeurIPS 2024; None: every "
                                                   "decoding step)", None, inference=True)
    guidance_rescale: float = describe("phi in [0, 1]: blend guided eps with itself rescaled to the conditional eps's "
                                       "per-image std (Lin et al. WACV 2024, eqs. 15-16, on eps as diffusers does); 0: "
                                       "plain guidance", 0.0, inference=True)
    guidance_on: str = describe("what guidance extrapolates: all (every channel, Ho & Salimans) | luminance (only "
                                "the channel mean of eps_target - eps_null, so the colour follows the target "
                                "domain's own prediction; a departure, for colour that must be kept)", "all",
                                inference=True)
    lowpass_factor: int = describe("ILVR-style low-pass consistency while decoding (Choi et al. ICCV 2021, eq. 4, on "
                                   "the clean-image estimate): each decoding step's estimate takes its lowest (H/N) x "
                                   "(W/N) DCT frequencies from the input image; N divides the image size, or N >= "
                                   "it keeps each channel's mean only; 0: off (the paper)",
                                   0, inference=True)
    lowpass_on: str = describe("what the low-pass step replaces: all (every channel's low frequencies, ILVR) | "
                               "chroma (those of each pixel's difference from its grey level only, so the "
                               "estimate's brightness, the ink amount, stays its own and the mean hue is the "
                               "input's; a departure)", "all", inference=True)
    lowpass_interval: list[int] | None = describe("[t_lo, t_hi]: apply lowpass_factor only at decoding steps with t "
                                                  "in this closed interval (None: every decoding step)", None,
                                                  inference=True)
    colour_match: float = describe("strength s in [0, 1] of colour-distribution consistency while decoding: each "
                                   "decoding step's clean-image estimate moves by s towards the input's colour "
                                   "distribution (sliced colour transfer, Pitie et al. ICCV 2005); its palette, not "
                                   "its layout; 0: off (the paper)", 0.0, inference=True)
    sample_steps: int = describe("solver steps per chain for the training sample grids", 20, inference=True)

    def __post_init__(self):
        check_choice("model.guidance_on", self.guidance_on, GUIDANCE_ON)
        check_choice("model.lowpass_on", self.lowpass_on, LOWPASS_ON)
        check_fields(self, "model", {"colour_match": (0.0, 1.0)})
        if not 0.0 <= self.guidance_rescale <= 1.0:
            raise ConfigError(f"model.guidance_rescale: expected a blend phi in [0, 1], got {self.guidance_rescale}")
        check_interval("model.guidance_interval", self.guidance_interval)
        check_interval("model.lowpass_interval", self.lowpass_interval)
        ode_solver(self.sampler)  # an unknown name fails when the config is read (ConfigError naming the valid ones)
        check_loss_weighting(self.loss_weighting)
        if not 0.0 <= self.label_dropout < 1.0:
            raise ConfigError(f"model.label_dropout: expected a probability in [0, 1), got {self.label_dropout}")
        if self.sampler == "edict" and self.clip_decode:
            raise ConfigError("model.clip_decode: clipping breaks sampler=edict's exact inversion; set it false")
        if not 0.0 < self.edict_mix <= 1.0:
            raise ConfigError(f"model.edict_mix: expected a weight in (0, 1], got {self.edict_mix}")
        if self.label_dropout > 0 and not self.conditional:
            raise ConfigError("model.label_dropout needs model.conditional: true (one network with domain labels)")
        self._check_chain()

    def _check_chain(self) -> None:
        """Steps, the chains' start, the trained domains and guidance against the network's labels."""
        check_fields(self, "model", {"steps": (1, None), "sample_steps": (0, None)})
        self.diffusion.check_t_max(self.t_max)
        if not self.train_domains:
            raise ConfigError("model.train_domains: expected 'a' and/or 'b', got an empty list")
        for d in self.train_domains:
            if d not in DOMAIN_INDEX:
                raise ConfigError(f"model.train_domains: unknown domain '{d}', expected 'a' and/or 'b'")
        if self.guidance != 1.0 and not self.has_null_label:
            raise ConfigError(f"model.guidance={self.guidance}: classifier-free guidance needs a domain-"
                              "conditional model trained with model.label_dropout > 0 (this one has no null "
                              "label); use guidance 1")

    def check_with(self, cfg) -> None:
        """The UNet's levels and the low-pass factor against data.image_size; colour_match and lowpass_on against
        its channels."""
        self.unet.check_image_size(cfg.data.image_size)
        check_colour_match(self.colour_match, cfg.data.channels)
        check_lowpass(self.lowpass_factor, self.lowpass_on, cfg.data.image_size, cfg.data.channels)

    @property
    def has_null_label(self) -> bool:
        """Whether the network has the null class (index 2) that classifier-free guidance needs."""
        return self.conditional and self.label_dropout > 0


def check_lowpass(factor: int, on: str, size: int, channels: int) -> None:
    """ConfigError when model.lowpass_factor is on and neither divides data.image_size nor reaches it, or when
    model.lowpass_on is chroma for images that are not RGB (a grey image has no chroma)."""
    if factor != 0 and not lowpass_factor_fits(factor, size):
        raise ConfigError(f"model.lowpass_factor: expected 0 (off), a divisor of data.image_size {size} or at "
                          f"least it (the channel means only), got {factor}")
    if factor != 0 and on == "chroma" and channels != 3:
        raise ConfigError(f"model.lowpass_on=chroma: chroma needs RGB images, data.channels is {channels}")


def check_colour_match(strength: float, channels: int) -> None:
    """ConfigError when model.colour_match is on for images that are not RGB."""
    if strength and channels != 3:
        raise ConfigError(f"model.colour_match={strength}: colour transfer needs RGB images, data.channels is "
                          f"{channels}; set it 0")


def check_interval(name: str, interval) -> None:
    """ConfigError unless ``interval`` is None or two integer timesteps [t_lo, t_hi] with t_lo <= t_hi."""
    if interval is not None and (len(interval) != 2 or any(isinstance(v, bool) or not isinstance(v, int)
                                                           for v in interval) or interval[0] > interval[1]):
        raise ConfigError(f"{name}: expected None or two integer timesteps [t_lo, t_hi] with t_lo <= t_hi, "
                          f"got {interval!r}")


def rescale_guided(guided: torch.Tensor, cond: torch.Tensor, phi: float) -> torch.Tensor:
    """Lin et al. (WACV 2024) eqs. 15-16: x_rescaled = x_cfg std(x_pos) / std(x_cfg) per image, then
    phi x_rescaled + (1 - phi) x_cfg; phi = 0 returns ``guided`` unchanged."""
    if phi == 0.0:
        return guided
    dims = tuple(range(1, guided.ndim))
    ratio = cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True).clamp_min(1e-12)
    return phi * guided * ratio + (1.0 - phi) * guided


class DDIB(Method):
    name = "ddib"
    config_class = DDIBConfig

    def __init__(self, cfg: DDIBConfig, image_size: int, channels: int = 3):
        super().__init__(cfg, image_size, channels)
        self.schedule = NoiseSchedule.make(cfg.diffusion.schedule, cfg.diffusion.num_timesteps)
        if cfg.conditional:
            self.nets["eps"] = DenoiserUNet(cfg.unet, image_size, channels, channels,
                                            num_domains=3 if cfg.has_null_label else 2)
        else:
            for d in ("a", "b"):
                self.nets[f"eps_{d}"] = DenoiserUNet(cfg.unet, image_size, channels, channels)
        self.ema_nets = tuple(self.nets.keys())

    # ---- training -------------------------------------------------------------------------------
    def init_sources(self) -> dict[str, str]:
        """model.init_from, where set: the trained DDIB this run fine-tunes."""
        return {} if self.cfg.init_from is None else {"init_from": self.cfg.init_from}

    def continued_source(self) -> str | None:
        """model.init_from is an earlier stage of this model's training: the record embeds its record."""
        return None if self.cfg.init_from is None else "init_from"

    def init_for_training(self, cfg, sources: dict | None = None) -> None:
        """On a fresh training with ``model.init_from``: copy that DDIB's inference denoisers (its EMA) into ours,
        after checking its method, schedule, network layout and domains against ours (MethodError naming both)."""
        if self.cfg.init_from is None:
            return
        if "init_from" not in (sources or {}):
            raise MethodError("model.init_from is set, but its trained model was not loaded: pass "
                              "sources=translab.training.load_init_sources(method)")
        where = f"model.init_from={self.cfg.init_from}"
        source, source_cfg = check_source(where, sources["init_from"], "ddib", cfg,
                                          ("diffusion", "unet", "conditional"))
        if source_cfg.model.has_null_label != self.cfg.has_null_label:
            raise MethodError(f"{where}: its network {'has' if source_cfg.model.has_null_label else 'lacks'} the "
                              "null class of model.label_dropout > 0 and ours does not match; set "
                              f"model.label_dropout {'> 0' if source_cfg.model.has_null_label else 'to 0'}")
        for name in self.nets:
            self.nets[name].load_state_dict(source.infer_net(name).state_dict())

    def optimizer_specs(self, train_cfg):
        from translab.methods.base import OptimizerSpec

        if self.cfg.conditional:
            names = ("eps",)
        else:
            names = tuple(f"eps_{d}" for d in self.cfg.train_domains)
        return {"denoiser": OptimizerSpec(names, train_cfg.lr, weight_decay=train_cfg.weight_decay)}

    def train_step(self, ctx: TrainSteps, batch_a: torch.Tensor, batch_b: torch.Tensor) -> dict[str, float]:
        """L_simple (Ho et al. eq. 14) on each trained domain, weighted over t by ``model.loss_weighting``;
        one optimiser step. A conditional model with ``label_dropout`` > 0 sees the null label in place of an
        image's domain label with that probability (Ho & Salimans 2022, Algorithm 1)."""
        batches = {"a": batch_a, "b": batch_b}
        domains = list(self.cfg.train_domains)
        if self.cfg.conditional:
            x0 = torch.cat([batches[d] for d in domains])
            label = torch.cat([torch.full((batches[d].shape[0],), DOMAIN_INDEX[d], dtype=torch.long) for d in domains])
            label = drop_labels(label, self.cfg.label_dropout, ctx.generator).to(x0.device)
            loss = self._denoising_loss(ctx.model("eps"), x0, ctx, label)
            out = {"loss": loss}
        else:
            losses = {f"loss_{d}": self._denoising_loss(ctx.model(f"eps_{d}"), batches[d], ctx) for d in domains}
            loss = sum(losses.values())
            out = dict(losses, loss=loss)
        ctx.optimize("denoiser", loss)
        return {k: float(v.detach()) for k, v in out.items()}

    def _denoising_loss(self, net, x0: torch.Tensor, ctx: TrainSteps, label: torch.Tensor | None = None) -> torch.Tensor:
        """E_t,eps w(t) ||eps - net(x_t, t[, label])||^2 over a batch x0 (N, 3, H, W), t uniform on [0, T-1]."""
        t = sample_t(self.schedule, x0.shape[0], ctx.generator, x0.device)
        eps = ctx.randn_like(x0)
        xt = q_sample(self.schedule, x0, t, eps)
        pred = net(xt, t) if label is None else net(xt, t, label)
        return weighted_loss_simple(self.schedule, pred, eps, t, self.cfg.loss_weighting, self.cfg.min_snr_gamma)

    # ---- inference ------------------------------------------------------------------------------
    def domain_net(self, domain: str) -> tuple[torch.nn.Module, int | None]:
        """The inference network that denoises ``domain`` and its class label (None: a per-domain network)."""
        if self.cfg.conditional:
            return self.infer_net("eps"), DOMAIN_INDEX[domain]
        return self.infer_net(f"eps_{domain}"), None

    def eps_fn(self, domain: str, guidance: float = 1.0) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """Noise predictor of one domain, eps(x (N,3,H,W), t (N,)) -> (N,3,H,W), from the inference weights.

        ``guidance`` w != 1: eps(x, null) + w (eps(x, domain) - eps(x, null)) (Ho & Salimans 2022; their
        w + 1), both terms from one batched call of 2N images; needs the null label (``cfg.has_null_label``).
        Only at timesteps inside ``model.guidance_interval`` where one is set (t is one level for the batch)."""
        net, label = self.domain_net(domain)
        if label is None:
            return lambda x, t: net(x, t)

        def plain(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return net(x, t, torch.full((x.shape[0],), label, dtype=torch.long, device=x.device))

        if guidance == 1.0:
            return plain

        def guided(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            if not self.guided_at(int(t[0])):
                return plain(x, t)
            n = x.shape[0]
            labels = torch.tensor([label, NULL_LABEL], device=x.device).repeat_interleave(n)
            cond, null = net(torch.cat([x, x]), torch.cat([t, t]), labels).chunk(2)
            if self.cfg.guidance_on == "luminance":  # cond + (w - 1) (cond - null), the difference's channel mean
                guided = cond + (guidance - 1.0) * (cond - null).mean(dim=1, keepdim=True)
            else:
                guided = null + guidance * (cond - null)
            return rescale_guided(guided, cond, self.cfg.guidance_rescale)

        return guided

    def ode(self) -> tuple[Callable, Callable]:
        """(encode, decode) of ``model.sampler`` with this model's solver settings bound: encode(eps_fn, schedule,
        x0, timesteps, progress=None) -> latent; decode(eps_fn, schedule, latent, timesteps, progress=None)."""
        invert, sample = ode_solver(self.cfg.sampler)
        if self.cfg.sampler == "edict":
            mix = self.cfg.edict_mix
            return (lambda *a, **k: invert(*a, mix=mix, **k)), (lambda *a, **k: sample(*a, mix=mix, **k))
        return invert, (lambda *a, **k: sample(*a, clip_x0=self.cfg.clip_decode, **k))

    def default_steps(self) -> int:
        return self.cfg.steps

    def timesteps(self, steps: int | None) -> list[int]:
        return self.schedule.timesteps(steps or self.cfg.steps, self.cfg.t_max)

    @torch.no_grad()
    def encode(self, x0: torch.Tensor, domain: str, steps: int | None = None, progress=None) -> torch.Tensor:
        """Image (N,3,H,W) in [-1,1] -> latent ~ N(0, I): the domain's probability-flow ODE run forwards with
        ``model.sampler`` (no clipping, no guidance). (N,3,H,W); (N,2,3,H,W) with sampler=edict."""
        return self.ode()[0](self.eps_fn(domain), self.schedule, x0, self.timesteps(steps), progress=progress)

    def decoder_eps(self, domain: str, reference: torch.Tensor | None = None) -> Callable:
        """The noise predictor that decodes into ``domain``: guided by ``model.guidance`` and, with
        ``model.lowpass_factor`` > 0 and a ``reference`` (N,3,H,W), the image translated, kept low-pass consistent
        with it, and with ``model.colour_match`` > 0 moved towards its colours. Without a reference (a latent
        decoded on its own: the latent studies) the ODE is the domain's."""
        eps = self.eps_fn(domain, self.cfg.guidance)
        if reference is None:
            return eps
        if self.cfg.lowpass_factor:
            eps = lowpass_consistent(eps, self.schedule, reference, self.cfg.lowpass_factor, self.cfg.lowpass_interval,
                                     self.cfg.lowpass_on)
        if self.cfg.colour_match:
            eps = colour_consistent(eps, self.schedule, reference, self.cfg.colour_match)
        return eps

    @torch.no_grad()
    def decode(self, z: torch.Tensor, domain: str, steps: int | None = None, progress=None,
               reference: torch.Tensor | None = None) -> torch.Tensor:
        """Latent -> image (N,3,H,W): the domain's probability-flow ODE with ``model.sampler``, guided by
        ``model.guidance`` (and, given ``reference``, the image being translated, with its low-pass and colour
        steps where ``model.lowpass_factor`` or ``model.colour_match`` is set: see ``decoder_eps``)."""
        return self.ode()[1](self.decoder_eps(domain, reference), self.schedule, z, self.timesteps(steps),
                             progress=progress)

    @torch.no_grad()
    def translate(self, x, direction, steps=None, generator=None, return_latents=False, progress=None):
        src, tgt = check_direction(direction).split("2")
        z = self.encode(x, src, steps, progress)
        y = self.decode(z, tgt, steps, progress, reference=x)
        return Translation(y.clamp(-1, 1), self.nfe(direction, steps), {"z": z} if return_latents else None)

    def guided_at(self, t: int) -> bool:
        """Whether a decoding evaluation at timestep t is guided: guidance != 1 and t inside guidance_interval."""
        gi = self.cfg.guidance_interval
        return self.cfg.guidance != 1.0 and (gi is None or gi[0] <= t <= gi[1])

    def guided_evals(self, t: int) -> int:
        """Network evaluations of one denoising call of the target domain at timestep t: 2 where it is guided
        (target and null), else 1."""
        return 2 if self.guided_at(t) else 1

    def nfe(self, direction, steps=None):
        """Encode + decode evaluations per image: steps x (1, or 2 with edict) each, each decoding step x 2 where
        it is guided. Every solver here evaluates its decoding chain once (edict: twice) at each timestep."""
        per_step = EVALS_PER_STEP[self.cfg.sampler]
        ts = self.timesteps(steps)
        return per_step * (len(ts) + sum(self.guided_evals(t) for t in ts))
