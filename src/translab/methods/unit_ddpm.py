"""UNIT-DDPM: UNpaired Image Translation with Denoising Diffusion Probabilistic Models
(Sasaki, Willcocks, Breckon, arXiv 2104.05358).

Four networks (names as in ``self.nets``):

- ``eps_a`` = eps_theta^A(x_t^A, x~_t^B, t) and ``eps_b`` = eps_theta^B(x_t^B, x~_t^A, t): one denoiser per
  domain, each conditioned on a noisy image of the *other* domain by channel concatenation
  (input (N, 6, H, W) = [own noisy image, other domain's noisy image], output eps (N, 3, H, W));
- ``g_a2b``: A -> B and ``g_b2a``: B -> A, CycleGAN ResNet generators used in training only (they make the
  "partner" images that the denoisers are conditioned on, since the data are unpaired).

Training (paper Algorithm 1, eqs. 11-14), per iteration with one draw of (t^A, t^B, eps^A, eps^B):

1. denoiser step on eq. (11) with the generators' outputs detached;
2. generator step on eq. (12) (four noise-prediction terms through the frozen denoisers) plus
   lambda_cycle x eq. (13) (cycle consistency), i.e. on eq. (14).

Inference (paper Algorithm 2, eqs. 15-17), for a2b (b2a is the mirror): the target chain x^B starts from
N(0, I) and is denoised by eps_B conditioned on the source chain x^A. For t > t_r the source chain is the
input forward-noised to level t with fresh noise (eq. 4 of Ho et al.); from the release time t_r down to 0
it is denoised jointly by eps_A, conditioned on the target chain. Each step is the ancestral DDPM step of
Ho et al. eq. (11) with coefficient 1/sqrt(alpha_t) (the paper prints 1/sqrt(1 - alpha_t), a typo), done by
``translab.diffusion.samplers.ddpm_step`` on a possibly respaced timestep list.

Optional departures from the paper (every default keeps the paper):

- ``generator_init`` with ``train_generators: false``: the generators start from a trained CycleGAN and stay
  fixed, so only step 1 trains (a two-stage variant);
- ``denoiser_init``: each denoiser starts as a trained DDIB's unconditional denoiser of its domain, with the
  condition channels' input weights at zero;
- ``lambda_adv``, ``lambda_identity``: CycleGAN's LSGAN adversarial term (against PatchGAN discriminators
  ``d_a``, ``d_b``, with image pools) and its identity term are added to eq. (14) (Zhu et al. 2017);
- ``condition_t_max``: caps the noise level of every condition image, in training and in Algorithm 2;
- ``loss_weighting: min_snr``: weights eq. (11) over t by min(SNR, gamma) / SNR (Hang et al. ICCV 2023);
- ``generator_every: k``: the generator (and discriminator) step runs on every k-th iteration only;
- ``generator_warmup``: the first iterations skip the generator step, so the denoisers learn first;
- ``generator_grad: sds``: eq. (12)'s fake terms are differentiated without the denoisers' Jacobian (score
  distillation, Poole et al. 2022, DreamFusion eq. 3);
- ``target_start: source``: Algorithm 2's target chain starts from the input forward-noised to t_max instead
  of N(0, I) (SDEdit's start, Meng et al. ICLR 2022).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from translab.settings import ConfigError, check_choice, check_fields, describe
from translab.diffusion.colour_transfer import colour_consistent
from translab.diffusion.lowpass import LOWPASS_ON, lowpass_consistent
from translab.diffusion.process import (check_loss_weighting, loss_simple, q_sample, sample_t, seeded_noise,
                                        timestep_batch, weighted_loss_simple)
from translab.diffusion.samplers import ddpm_step
from translab.diffusion.schedule import NoiseSchedule
from translab.methods.base import Method, MethodError, OptimizerSpec, TrainSteps, Translation, check_direction, check_source
from translab.methods.ddib import DiffusionConfig, check_colour_match, check_interval, check_lowpass
from translab.methods.image_pool import ImagePool
from translab.methods.losses import (CYCLE_DISTANCES, cycle_losses, identity_loss, jacobian_free_surrogate,
                                     lsgan_loss, pooled_discriminator_losses)
from translab.nets.patchgan import PatchGAN, PatchGANConfig
from translab.nets.resnet_gen import ResnetGenerator, ResnetGeneratorConfig, check_divisible_size, init_normal
from translab.nets.unet import DenoiserUNet, UNetConfig

DENOISERS = ("eps_a", "eps_b")
GENERATORS = ("g_a2b", "g_b2a")
DISCRIMINATORS = ("d_a", "d_b")  # d_a scores images of domain A (g_b2a's adversary), d_b those of domain B
PAIR_NOISES = ("shared", "independent")
TARGET_STARTS = ("noise", "source")
GENERATOR_GRADS = ("full", "sds")


@dataclass
class UnitDDPMConfig:
    diffusion: DiffusionConfig = describe("noise schedule", factory=DiffusionConfig)
    unet: UNetConfig = describe("size of each of the two 6-channel-input denoisers", factory=UNetConfig)
    generator: ResnetGeneratorConfig = describe("size of each of the two ResNet translation generators (training only)",
                                                factory=ResnetGeneratorConfig)
    lambda_cycle: float = describe("weight of the cycle loss eq. (13) in the generator objective eq. (14) (10: "
                                   "CycleGAN's value)", 10.0)
    cycle_loss: str = describe("l1: eq. (13) as printed (L1 norm, default) | l2: the squared norm printed in Algorithm 1",
                               "l1")
    pair_noise: str = describe("forward noise of a fake image in eqs. (11)-(12): independent (a fresh draw, as the two "
                               "chains of Algorithm 2 carry; default) | shared (the real partner's eps at the "
                               "partner's t)", "independent")
    condition_t_max: int | None = describe("cap c on the noise level of every condition image: min(t, c) in eqs. "
                                           "(11)-(12) and in Algorithm 2 (None: t, the paper; set: a departure from "
                                           "the paper). Must be >= release_t", None)
    generator_init: str | None = describe("trained CycleGAN (run dir, checkpoint or shipped name) whose g_a2b, g_b2a "
                                          "start ours on a fresh training; same generator size and data (None: N(0, 0.02), the "
                                          "paper; set: a departure)", None)
    denoiser_init: str | None = describe("trained DDIB (run dir, checkpoint or shipped name) whose denoisers start "
                                         "eps_a, eps_b, condition channels' weights at zero; same unet and data (None: "
                                         "the paper; set: a departure)", None)
    train_generators: bool = describe("take Algorithm 1's generator step on eq. (14) (true: the paper) | false: only "
                                      "eq. (11) trains the denoisers (with generator_init: two-stage, a departure "
                                      "from the paper)", True)
    generator_grad: str = describe("gradient of eq. (12)'s fake terms: full (through the frozen denoisers, the paper) "
                                   "| sds (denoisers' Jacobian dropped, Poole et al. 2022 eq. 3; a departure from "
                                   "the paper)", "full")
    generator_every: int = describe("take the generator (and discriminator) step on every k-th iteration after "
                                    "generator_warmup; the denoiser step runs on every one (1: the paper; > 1: a departure "
                                    "from the paper)", 1)
    loss_weighting: str = describe("weight over t of the denoisers' eq. (11): uniform (the paper) | min_snr "
                                   "(min(SNR, gamma) / SNR, Hang et al. ICCV 2023; a departure from the paper). Eq. "
                                   "(12) stays uniform", "uniform")
    min_snr_gamma: float = describe("gamma of loss_weighting=min_snr", 5.0)
    generator_warmup: int = describe("optimisation steps at the start that skip the generator step, so the denoisers "
                                     "learn first (0: none, the paper; > 0: a departure from the paper)", 0)
    lambda_adv: float = describe("weight of CycleGAN's LSGAN generator loss (Zhu et al. 2017 eq. 1, least squares) "
                                 "added to eq. (14), against PatchGANs d_a, d_b (0: none, the paper; > 0: a "
                                 "departure from the paper)", 0.0)
    lambda_identity: float = describe("weight of CycleGAN's identity term (Zhu et al. 2017 Sec. 5.2) added to eq. "
                                      "(14), relative to lambda_cycle (0: none, the paper; 0.5: CycleGAN's; > 0: a "
                                      "departure from the paper)", 0.0)
    discriminator: PatchGANConfig = describe("PatchGAN discriminators d_a, d_b (only when lambda_adv > 0)",
                                             factory=lambda: PatchGANConfig(ndf=16, n_layers=2))
    pool_size: int = describe("generated images kept per discriminator (CycleGAN's history pool; 0: none)", 50)
    generator_lr: float | None = describe("generator (and discriminator) learning rate (None: train.lr)", None)
    generator_betas: list[float] = describe("Adam betas of the generators (CycleGAN's (0.5, 0.999))",
                                            factory=lambda: [0.5, 0.999])
    release_t: int = describe("release time t_r of Algorithm 2, a timestep in [-1, T-1]: the source chain is "
                              "re-noised from the input while t > t_r, denoised jointly below (-1: never; T-1: at "
                              "once)", 100, inference=True)
    steps: int = describe("default sampling steps of each chain of translate (T: Algorithm 2's full chain; fewer: "
                          "respaced)", 100, inference=True)
    t_max: int | None = describe("timestep where the chains start (None: T-1, pure noise)", None, inference=True)
    target_start: str = describe("state of the target chain at t_max: noise (N(0, I), Algorithm 2) | source (the "
                                 "input noised to t_max, SDEdit's start, Meng et al. 2022; a departure from the "
                                 "paper; use t_max < T-1)", "noise", inference=True)
    clip_x0: bool = describe("clip x0 predictions to [-1, 1] in each ancestral sampling step (Ho et al.'s sampler)",
                             True, inference=True)
    colour_match: float = describe("strength s in [0, 1] of colour-distribution consistency of the target chain: "
                                   "each step's clean-image estimate moves by s towards the input's colour "
                                   "distribution (sliced colour transfer, Pitie et al. ICCV 2005; a departure from "
                                   "the paper); 0: off", 0.0, inference=True)
    lowpass_factor: int = describe("ILVR-style low-pass consistency of the target chain (Choi et al. ICCV 2021, "
                                   "eq. 4, on the clean-image estimate): each step's estimate takes its lowest (H/N) "
                                   "x (W/N) DCT frequencies from the input; N divides the image size, or N >= it "
                                   "keeps each channel's mean only; 0: off (the paper)", 0, inference=True)
    lowpass_on: str = describe("what the low-pass step replaces: all (every channel's low frequencies) | chroma "
                               "(those of each pixel's difference from its grey level only)", "all", inference=True)
    lowpass_interval: list[int] | None = describe("[t_lo, t_hi]: apply lowpass_factor only at steps with t in this "
                                                  "closed interval (None: every step)", None, inference=True)
    sample_steps: int = describe("ancestral sampling steps of each chain for the training sample grids", 20,
                                 inference=True)

    def __post_init__(self):
        check_unit_training(self)
        check_unit_inference(self)

    @staticmethod
    def upgrade(data: dict) -> tuple[dict, list[str]]:
        """Configs written before lambda_cycle was named as CycleGAN's: lambda_cyc is lambda_cycle, and their
        lambda_identity was an absolute weight, today's relative one times lambda_cycle."""
        if "lambda_cyc" not in data:
            return data, []
        data["lambda_cycle"] = cycle = data.pop("lambda_cyc")
        notes = ["lambda_cyc is read as lambda_cycle (its name since translab 0.3)"]
        if data.get("lambda_identity"):
            absolute = data["lambda_identity"]
            data["lambda_identity"] = absolute / cycle if cycle else absolute
            notes.append(f"lambda_identity {absolute} (absolute, beside lambda_cyc) is read as "
                         f"{data['lambda_identity']} x lambda_cycle")
        return data, notes

    def check_with(self, cfg) -> None:
        """The checks against data.image_size (the generators' downsamplings, the UNet's levels, the low-pass
        factor) and data.channels (colour_match, lowpass_on)."""
        check_divisible_size(cfg.data.image_size, self.generator.n_down, "model.generator.n_down")
        self.unet.check_image_size(cfg.data.image_size)
        check_colour_match(self.colour_match, cfg.data.channels)
        check_lowpass(self.lowpass_factor, self.lowpass_on, cfg.data.image_size, cfg.data.channels)


def check_release_t(release_t: int, num_timesteps: int) -> int:
    """``release_t`` if it is an integer timestep in [-1, T-1]; ConfigError naming model.release_t otherwise."""
    if isinstance(release_t, bool) or not isinstance(release_t, int) or not -1 <= release_t <= num_timesteps - 1:
        raise ConfigError(f"model.release_t: expected an integer timestep in [-1, {num_timesteps - 1}] "
                          f"(T = {num_timesteps}), got {release_t!r}")
    return release_t


def check_unit_training(cfg: "UnitDDPMConfig") -> None:
    """The training settings of UNIT-DDPM: choices, weights, counts and the combinations that cannot work."""
    check_choice("model.cycle_loss", cfg.cycle_loss, CYCLE_DISTANCES)
    check_choice("model.generator_grad", cfg.generator_grad, GENERATOR_GRADS)
    check_choice("model.pair_noise", cfg.pair_noise, PAIR_NOISES)
    check_loss_weighting(cfg.loss_weighting)
    if isinstance(cfg.generator_every, bool) or not isinstance(cfg.generator_every, int) or cfg.generator_every < 1:
        raise ConfigError(f"model.generator_every: expected an integer >= 1, got {cfg.generator_every!r}")
    check_fields(cfg, "model", {"generator_warmup": (0, None), "lambda_adv": (0.0, None),
                                "lambda_identity": (0.0, None), "pool_size": (0, None), "steps": (1, None),
                                "sample_steps": (0, None)})
    c = cfg.condition_t_max
    if c is not None and (isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= cfg.diffusion.num_timesteps - 1):
        raise ConfigError(f"model.condition_t_max: expected None or an integer timestep in "
                          f"[0, {cfg.diffusion.num_timesteps - 1}], got {c!r}")
    if c is not None and cfg.pair_noise == "shared":
        raise ConfigError("model.condition_t_max with model.pair_noise=shared would still hand the partner's noise "
                          "to the condition: use pair_noise=independent")
    if cfg.lambda_adv > 0 and not cfg.train_generators:
        raise ConfigError("model.lambda_adv > 0 trains discriminators against the generators, but "
                          "model.train_generators is false: set one of them")
    if len(cfg.generator_betas) != 2:
        raise ConfigError(f"model.generator_betas: expected two numbers, got {cfg.generator_betas}")


def check_unit_inference(cfg: "UnitDDPMConfig") -> None:
    """The inference settings of UNIT-DDPM (checked again by every ``with_inference`` view)."""
    check_choice("model.target_start", cfg.target_start, TARGET_STARTS)
    check_fields(cfg, "model", {"colour_match": (0.0, 1.0), "lowpass_factor": (0, None)})
    check_interval("model.lowpass_interval", cfg.lowpass_interval)
    check_choice("model.lowpass_on", cfg.lowpass_on, LOWPASS_ON)
    T = cfg.diffusion.num_timesteps
    t_r, c = check_release_t(cfg.release_t, T), cfg.condition_t_max
    if c is not None and t_r > c:
        raise ConfigError(f"model.release_t={t_r}: this model's conditions are noised to at most "
                          f"condition_t_max={c}, so the joint chain must start at or below it (release_t <= {c})")
    cfg.diffusion.check_t_max(cfg.t_max)


@dataclass
class Draws:
    """One iteration's random draws (Algorithm 1, lines 3-4): timesteps (N,) long, noises (N, 3, H, W).

    ``fake_eps_a``/``fake_eps_b`` noise the fakes paired with the real A/B images: the same tensors as
    ``eps_a``/``eps_b`` when ``pair_noise='shared'``, fresh draws when ``'independent'``.
    """

    t_a: torch.Tensor
    t_b: torch.Tensor
    eps_a: torch.Tensor
    eps_b: torch.Tensor
    fake_eps_a: torch.Tensor
    fake_eps_b: torch.Tensor


class UnitDDPM(Method):
    name = "unit-ddpm"
    config_class = UnitDDPMConfig
    ema_nets = DENOISERS  # the generators serve training only: no EMA copies

    def __init__(self, cfg: UnitDDPMConfig, image_size: int, channels: int = 3):
        super().__init__(cfg, image_size, channels)
        self.schedule = NoiseSchedule.make(cfg.diffusion.schedule, cfg.diffusion.num_timesteps)
        for name in DENOISERS:
            self.nets[name] = DenoiserUNet(cfg.unet, image_size, in_channels=2 * channels, out_channels=channels)
        for name in GENERATORS:
            gen = ResnetGenerator(cfg.generator, channels, channels)
            init_normal(gen)
            self.nets[name] = gen
        if self.adversarial:
            for name in DISCRIMINATORS:
                disc = PatchGAN(cfg.discriminator, image_size, channels)
                init_normal(disc)
                self.nets[name] = disc
        self.pool_a, self.pool_b = ImagePool(cfg.pool_size), ImagePool(cfg.pool_size)

    @property
    def adversarial(self) -> bool:
        """True when the generators also train against discriminators (model.lambda_adv > 0)."""
        return self.cfg.lambda_adv > 0

    # ---- training -------------------------------------------------------------------------------
    def init_sources(self) -> dict[str, str]:
        """model.generator_init / model.denoiser_init, where set: the trained runs this model starts from."""
        return {f: getattr(self.cfg, f) for f in ("generator_init", "denoiser_init") if getattr(self.cfg, f) is not None}

    def init_for_training(self, cfg, sources: dict | None = None) -> None:
        """Start networks from trained models, on a fresh training only (two-stage variants, not the paper's).

        ``sources`` maps each field of ``init_sources()`` to the (Method, Config, info) the training loop loaded
        for it (translab.training.load_init_sources).
        ``generator_init``: a CycleGAN's g_a2b (A -> B) and g_b2a (B -> A) are copied into ours.
        ``denoiser_init``: a DDIB's denoiser of domain d starts eps_d, by
        ``translab.nets.unet.start_as_unconditional`` (condition weights at zero).
        Each source must have been trained on the same domains (dataset, image size, direction, and for cMNIST
        the digits and hues) with the same network size; anything else is refused with the values.
        """
        sources = sources or {}
        missing = [f for f in self.init_sources() if f not in sources]
        if missing:
            raise MethodError(f"model.{missing[0]} is set, but its trained model was not loaded: pass "
                              f"sources=translab.training.load_init_sources(method)")
        if self.cfg.generator_init is not None:
            source, _ = self._check_source(cfg, "generator_init", "cyclegan", "generator", sources["generator_init"])
            for name in GENERATORS:
                self.nets[name].load_state_dict(source.nets[name].state_dict())
        if self.cfg.denoiser_init is not None:
            from translab.nets.unet import start_as_unconditional

            source, source_cfg = self._check_source(cfg, "denoiser_init", "ddib", "unet", sources["denoiser_init"])
            if sorted(source_cfg.model.train_domains) != ["a", "b"]:
                raise MethodError(f"model.denoiser_init={self.cfg.denoiser_init}: it trained only domain(s) "
                                  f"{source_cfg.model.train_domains}; both denoisers are needed")
            for d in ("a", "b"):
                # the source's inference weights (its EMA, where it keeps one) and, if conditional, d's label
                start_as_unconditional(self.nets[f"eps_{d}"], *source.domain_net(d))

    def _check_source(self, cfg, field: str, method: str, size_field: str, loaded: tuple):
        """Check the model loaded for ``model.<field>``: its method, ``model.<size_field>`` and data against ours
        (translab.methods.base.check_source). Returns (the source Method, with its training weights and EMA
        where kept, and its config)."""
        return check_source(f"model.{field}={getattr(self.cfg, field)}", loaded, method, cfg, (size_field,))

    def optimizer_specs(self, train_cfg):
        specs = {"denoisers": OptimizerSpec(DENOISERS, train_cfg.lr, weight_decay=train_cfg.weight_decay)}
        if self.cfg.train_generators:
            lr_g = self.cfg.generator_lr if self.cfg.generator_lr is not None else train_cfg.lr
            specs["generators"] = OptimizerSpec(GENERATORS, lr_g, betas=tuple(self.cfg.generator_betas),
                                                weight_decay=train_cfg.weight_decay)
            if self.adversarial:
                specs["discriminators"] = OptimizerSpec(DISCRIMINATORS, lr_g, betas=tuple(self.cfg.generator_betas),
                                                        weight_decay=train_cfg.weight_decay)
        return specs

    def draw(self, ctx: TrainSteps, x_a: torch.Tensor, x_b: torch.Tensor) -> Draws:
        """Algorithm 1, lines 3-4: t^A, t^B ~ U{0..T-1} and eps^A, eps^B ~ N(0, I), independently."""
        t_a = sample_t(self.schedule, x_a.shape[0], ctx.generator, x_a.device)
        t_b = sample_t(self.schedule, x_b.shape[0], ctx.generator, x_b.device)
        eps_a, eps_b = ctx.randn_like(x_a), ctx.randn_like(x_b)
        if self.cfg.pair_noise == "shared":
            return Draws(t_a, t_b, eps_a, eps_b, eps_a, eps_b)
        return Draws(t_a, t_b, eps_a, eps_b, ctx.randn_like(x_a), ctx.randn_like(x_b))

    def _noisy_pairs(self, x_a, x_b, fake_b, fake_a, d: Draws):
        """The forward-noised reals and fakes of eqs. (11)-(12). Pairing implemented here:

        x_t^A  = q(x^A at t^A with eps^A)            x_t^B  = q(x^B at t^B with eps^B)
        x~_t^B = q(g_a2b(x^A) at t^A with eps^A)     x~_t^A = q(g_b2a(x^B) at t^B with eps^B)

        i.e. each fake is noised at the timestep of the real image it was made from (its partner), with the
        partner's noise draw (pair_noise='shared', one reading of eq. 11), or with a fresh
        draw (pair_noise='independent', the default). Each pair (x_t^A, x~_t^B) and (x_t^B, x~_t^A) shares one timestep.
        """
        s = self.schedule
        return (q_sample(s, x_a, d.t_a, d.eps_a), q_sample(s, x_b, d.t_b, d.eps_b),
                q_sample(s, fake_b, d.t_a, d.fake_eps_a), q_sample(s, fake_a, d.t_b, d.fake_eps_b))

    def condition_t(self, t: torch.Tensor) -> torch.Tensor:
        """Noise level of a condition image paired with an image at level t (N,) long: min(t, condition_t_max)."""
        c = self.cfg.condition_t_max
        return t if c is None else t.clamp(max=c)

    def _as_conditions(self, x_a, x_b, fake_b, fake_a, d: Draws, noisy: tuple) -> tuple:
        """The same four images as ``noisy`` (x_t^A, x_t^B, x~_t^B, x~_t^A) noised as conditions, i.e. to
        ``condition_t`` of their pair's timestep with the same noise draws; ``noisy`` itself when there is no cap."""
        if self.cfg.condition_t_max is None:
            return noisy
        s, c_a, c_b = self.schedule, self.condition_t(d.t_a), self.condition_t(d.t_b)
        return (q_sample(s, x_a, c_a, d.eps_a), q_sample(s, x_b, c_b, d.eps_b),
                q_sample(s, fake_b, c_a, d.fake_eps_a), q_sample(s, fake_a, c_b, d.fake_eps_b))

    def denoiser_step(self, ctx: TrainSteps, x_a: torch.Tensor, x_b: torch.Tensor, d: Draws) -> dict[str, torch.Tensor]:
        """Eq. (11): ||eps^A - eps_A(x_t^A, x~_t^B, t^A)||^2 + ||eps^B - eps_B(x_t^B, x~_t^A, t^B)||^2, fakes detached
        (each condition x~ noised to condition_t(t) where model.condition_t_max is set; each image's term weighted
        by min_snr_weight(t) where model.loss_weighting is min_snr)."""
        with torch.no_grad():
            fake_b, fake_a = ctx.model("g_a2b")(x_a), ctx.model("g_b2a")(x_b)
        noisy = self._noisy_pairs(x_a, x_b, fake_b, fake_a, d)
        xa_t, xb_t, _, _ = noisy
        _, _, fb_c, fa_c = self._as_conditions(x_a, x_b, fake_b, fake_a, d, noisy)
        weighting, gamma = self.cfg.loss_weighting, self.cfg.min_snr_gamma
        loss_a = weighted_loss_simple(self.schedule, ctx.model("eps_a")(torch.cat([xa_t, fb_c], 1), d.t_a), d.eps_a,
                                      d.t_a, weighting, gamma)
        loss_b = weighted_loss_simple(self.schedule, ctx.model("eps_b")(torch.cat([xb_t, fa_c], 1), d.t_b), d.eps_b,
                                      d.t_b, weighting, gamma)
        loss = loss_a + loss_b
        ctx.optimize("denoisers", loss)
        return {"loss_eps_a": loss_a, "loss_eps_b": loss_b, "loss_denoisers": loss}

    def generator_step(self, ctx: TrainSteps, x_a: torch.Tensor, x_b: torch.Tensor, d: Draws) -> dict[str, torch.Tensor]:
        """Eq. (14) = eq. (12) + lambda_cycle * eq. (13), through the frozen denoisers.

        Eq. (12)'s four terms: the two of eq. (11) (the fakes as conditions), and the two where a fake is the
        image being denoised by its target domain's network, conditioned on its real partner:
        ||eps~^A - eps_B(x~_t^B, x_t^A, t^A)||^2 and ||eps~^B - eps_A(x~_t^A, x_t^B, t^B)||^2, where eps~ is
        the noise of the fake (= eps of the partner when pair_noise='shared').
        With ``lambda_adv`` > 0, + lambda_adv * (LSGAN(d_b(fake_b), 1) + LSGAN(d_a(fake_a), 1)), the
        discriminators frozen; with ``lambda_identity`` > 0, + lambda_identity * lambda_cycle * (|g_a2b(x_b) - x_b|_1 +
        |g_b2a(x_a) - x_a|_1). Returns the loss tensors and, under ``fake_a``/``fake_b``, the fakes.
        """
        frozen = DENOISERS + (DISCRIMINATORS if self.adversarial else ())
        ctx.set_requires_grad(frozen, False)
        try:
            g_a2b, g_b2a = ctx.model("g_a2b"), ctx.model("g_b2a")
            eps_a_net, eps_b_net = ctx.model("eps_a"), ctx.model("eps_b")
            fake_b, fake_a = g_a2b(x_a), g_b2a(x_b)
            noisy = self._noisy_pairs(x_a, x_b, fake_b, fake_a, d)
            xa_t, xb_t, fb_t, fa_t = noisy
            xa_c, xb_c, fb_c, fa_c = self._as_conditions(x_a, x_b, fake_b, fake_a, d, noisy)
            cond = (loss_simple(eps_a_net(torch.cat([xa_t, fb_c], 1), d.t_a), d.eps_a)
                    + loss_simple(eps_b_net(torch.cat([xb_t, fa_c], 1), d.t_b), d.eps_b))
            fake = (self._fake_term(eps_b_net, fb_t, xa_c, d.t_a, d.fake_eps_a)
                    + self._fake_term(eps_a_net, fa_t, xb_c, d.t_b, d.fake_eps_b))
            cyc = sum(cycle_losses(x_a, x_b, g_a2b, g_b2a, self.cfg.cycle_loss, fake_b, fake_a))
            loss = cond + fake + self.cfg.lambda_cycle * cyc
            out = {"loss_gen_cond": cond, "loss_gen_fake": fake, "loss_cycle": cyc}
            if self.adversarial:
                adv = lsgan_loss(ctx.model("d_b")(fake_b), True) + lsgan_loss(ctx.model("d_a")(fake_a), True)
                loss = loss + self.cfg.lambda_adv * adv
                out["loss_gen_adv"] = adv
            if self.cfg.lambda_identity > 0:  # relative to lambda_cycle, as CycleGAN's
                idt = sum(identity_loss(g_a2b, g_b2a, x_a, x_b))
                loss = loss + (self.cfg.lambda_identity * self.cfg.lambda_cycle) * idt
                out["loss_identity"] = idt
            ctx.optimize("generators", loss)
        finally:
            ctx.set_requires_grad(frozen, True)
        return {**out, "loss_generators": loss, "fake_a": fake_a.detach(), "fake_b": fake_b.detach()}

    def discriminator_step(self, ctx: TrainSteps, x_a: torch.Tensor, x_b: torch.Tensor, fake_a: torch.Tensor,
                           fake_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """CycleGAN's discriminator step (Zhu et al. 2017, LSGAN): d_b tells real B from pooled g_a2b fakes,
        d_a real A from pooled g_b2a fakes; 0.5 (LSGAN(d(real), 1) + LSGAN(d(fake), 0)) each."""
        loss_a, loss_b = pooled_discriminator_losses(ctx.model("d_a"), ctx.model("d_b"), x_a, x_b, fake_a, fake_b,
                                                     self.pool_a, self.pool_b, ctx.generator)
        ctx.optimize("discriminators", loss_a + loss_b)
        return {"loss_d_a": loss_a, "loss_d_b": loss_b}

    def _fake_term(self, net, fake_t: torch.Tensor, partner_t: torch.Tensor, t: torch.Tensor,
                   fake_eps: torch.Tensor) -> torch.Tensor:
        """One 'fake' term of eq. (12), ||fake_eps - net([fake_t, partner_t], t)||^2, whose gradient reaches the
        generator through fake_t (N, 3, H, W). With ``generator_grad='sds'`` the loss is a surrogate of the same
        value scale whose gradient w.r.t. fake_t is 2 (eps_hat - fake_eps) / numel, the full gradient without
        the denoiser's Jacobian (DreamFusion eq. 3); its value is reported detached from that surrogate."""
        if self.cfg.generator_grad == "full":
            return loss_simple(net(torch.cat([fake_t, partner_t], 1), t), fake_eps)
        with torch.no_grad():
            residual = net(torch.cat([fake_t, partner_t], 1), t) - fake_eps
        surrogate = jacobian_free_surrogate(residual, fake_t)
        return surrogate - surrogate.detach() + (residual ** 2).mean()

    def train_step(self, ctx: TrainSteps, batch_a: torch.Tensor, batch_b: torch.Tensor) -> dict[str, float]:
        """One iteration of Algorithm 1: one draw, a denoiser step, then a generator step (unless
        ``train_generators`` is false, during the first ``generator_warmup`` steps, or on a step that is not a
        multiple of ``generator_every`` after them) and, with ``lambda_adv`` > 0, a discriminator step on the
        generator step's fakes."""
        d = self.draw(ctx, batch_a, batch_b)
        out = self.denoiser_step(ctx, batch_a, batch_b, d)
        if self.generator_turn(ctx.step):
            gen = self.generator_step(ctx, batch_a, batch_b, d)
            fake_a, fake_b = gen.pop("fake_a"), gen.pop("fake_b")
            out.update(gen)
            if self.adversarial:
                out.update(self.discriminator_step(ctx, batch_a, batch_b, fake_a, fake_b))
        return {k: float(v.detach()) for k, v in out.items()}

    def generator_turn(self, step: int) -> bool:
        """Whether iteration ``step`` (0-based) takes the generator step: generators trained, warm-up over, and
        (step - generator_warmup) a multiple of generator_every."""
        since = step - self.cfg.generator_warmup
        return self.cfg.train_generators and since >= 0 and since % self.cfg.generator_every == 0

    def extra_state(self) -> dict:
        return {"pool_a": self.pool_a.state_dict(), "pool_b": self.pool_b.state_dict()} if self.adversarial else {}

    def load_extra_state(self, state: dict) -> None:
        for key, pool in (("pool_a", self.pool_a), ("pool_b", self.pool_b)):
            if key in state:
                pool.load_state_dict(state[key])

    # ---- inference ------------------------------------------------------------------------------
    def check_release(self, release_t: int) -> int:
        """``release_t`` if it is a timestep of this model's chain in [-1, T-1]; ConfigError otherwise."""
        return check_release_t(release_t, self.schedule.num_timesteps)

    def eps_fn(self, domain: str) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
        """eps_domain(x (N,3,H,W), x_other (N,3,H,W), t (N,)) -> (N,3,H,W), from the inference (EMA) weights."""
        net = self.infer_net(f"eps_{domain}")
        return lambda x, other, t: net(torch.cat([x, other], 1), t)

    def default_steps(self) -> int:
        return self.cfg.steps

    def timesteps(self, steps: int | None = None) -> list[int]:
        """Descending timesteps of the chain: ``steps`` evenly spaced from t_max (default T-1) to 0."""
        T = self.schedule.num_timesteps
        t_max = self.cfg.t_max if self.cfg.t_max is not None else T - 1
        return self.schedule.timesteps(steps or self.cfg.steps, t_max)

    @staticmethod
    def _source_evals(ts: list[int], release_t: int) -> int:
        # the source net runs at each joint step except the last (its output x^src_0 feeds nothing)
        return sum(1 for t in ts[:-1] if t <= release_t)

    def nfe(self, direction, steps=None):
        """Target-net evaluations (one per step) + source-net evaluations (joint steps with t <= t_r, but the last)."""
        check_direction(direction)
        t_r = self.check_release(self.cfg.release_t)
        ts = self.timesteps(steps)
        return len(ts) + self._source_evals(ts, t_r)

    @torch.no_grad()
    def translate(self, x, direction, steps=None, generator=None, return_latents=False, progress=None):
        """Algorithm 2. x (N, 3, H, W) in [-1, 1] of the source domain -> Translation of the target domain.
        With ``model.target_start: source`` the target chain starts from x noised to t_max instead of N(0, I).

        t_r is ``model.release_t`` (another one: ``method.with_inference(release_t=...)``). With
        ``return_latents``, ``latents`` holds
        ``timesteps`` (K,) and the states ``x_src``, ``x_tgt`` (K, N, 3, H, W) at the start of K steps (the
        first, the last, a few between, and the first joint step), plus ``release_t`` (a 0-d tensor).
        """
        src, tgt = check_direction(direction).split("2")
        t_r = self.check_release(self.cfg.release_t)
        ts = self.timesteps(steps)
        eps_src, eps_tgt = self.eps_fn(src), self.eps_fn(tgt)
        if self.cfg.lowpass_factor:  # the target chain keeps the input's low frequencies (a departure)
            eps_tgt = lowpass_consistent(eps_tgt, self.schedule, x, self.cfg.lowpass_factor, self.cfg.lowpass_interval,
                                         self.cfg.lowpass_on)
        if self.cfg.colour_match:  # the target chain keeps the input's colours (a departure)
            eps_tgt = colour_consistent(eps_tgt, self.schedule, x, self.cfg.colour_match)
        clip = self.cfg.clip_x0
        record = set(torch.linspace(0, len(ts) - 1, min(5, len(ts))).round().long().tolist())
        first_joint = next((i for i, t in enumerate(ts) if t <= t_r), None)
        if first_joint is not None:
            record.add(first_joint)
        kept_t, kept_src, kept_tgt = [], [], []

        x_tgt = seeded_noise(x, generator)  # Algorithm 2: the target chain starts from N(0, I)
        if self.cfg.target_start == "source":
            # SDEdit's start (Meng et al. 2022): the input forward-noised to the chain's first level, same draw
            x_tgt = q_sample(self.schedule, x, timestep_batch(ts[0], x), x_tgt)
        x_src, joint = None, False
        steps_iter = range(len(ts)) if progress is None else progress(range(len(ts)))
        for i in steps_iter:
            t = ts[i]
            t_next = ts[i + 1] if i + 1 < len(ts) else -1
            tv = timestep_batch(t, x)
            if t > t_r or not joint:
                # Algorithm 2 / eqs. (15)-(17): before release (and to start the joint chain at the first
                # t <= t_r) the source state is the input forward-noised to level t with fresh noise
                # (to min(t, condition_t_max) where the model caps its conditions' noise; at t <= t_r <= the cap
                # that is t, so the joint chain starts at its own level)
                x_src = q_sample(self.schedule, x, self.condition_t(tv), seeded_noise(x, generator))
                joint = t <= t_r
            if return_latents and i in record:
                kept_t.append(t)
                kept_src.append(x_src)
                kept_tgt.append(x_tgt)
            # target step by the target net conditioned on the source state at the same level
            new_tgt = ddpm_step(self.schedule, x_tgt, eps_tgt(x_tgt, x_src, tv), t, t_next, generator, clip)
            if joint and t_next >= 0:
                # joint denoising of the source by the source net, conditioned on the target state
                x_src = ddpm_step(self.schedule, x_src, eps_src(x_src, x_tgt, tv), t, t_next, generator, clip)
            x_tgt = new_tgt
        latents = None
        if return_latents:
            latents = {"timesteps": torch.tensor(kept_t, dtype=torch.long), "x_src": torch.stack(kept_src),
                       "x_tgt": torch.stack(kept_tgt), "release_t": torch.tensor(t_r)}
        return Translation(x_tgt.clamp(-1, 1), len(ts) + self._source_evals(ts, t_r), latents)
