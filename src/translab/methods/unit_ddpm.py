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
   lambda_cyc x eq. (13) (cycle consistency), i.e. on eq. (14).

Two-stage variant (not the paper's; preset cmnist-2to3-two-stage, shipped before the joint recipe):
``generator_init`` starts the generators from a trained CycleGAN and ``train_generators: false`` keeps them fixed,
so only step 1 runs. On Colored MNIST the joint training of Algorithm 1 collapsed the generators to near-black
images within 50 steps, which left the denoisers nothing to learn from their condition; realistic, fixed partners
avoid that (RESULTS.md). Why (scripts/unit_generator_probe.py): eq. (12)'s fake
term is a likelihood term under the target denoiser, and its gradient at a real 2 does not point toward 3s even for
well-trained denoisers (pixel descent on it left 0% of 64 test 2s read as 3, with the two-stage model's denoisers and
with DDIB's), while the L1 cycle term alone darkens the fakes in the first 60 steps. ``generator_grad: sds`` (the
Jacobian-free gradient) and ``generator_warmup`` (denoisers first) are the two departures measured; neither stopped
the collapse. Optionally, ``denoiser_init`` starts each denoiser as a trained DDIB's unconditional denoiser of its
domain, with the condition channels' input weights at zero; on Colored MNIST those weights stayed near zero over
1,174 steps and the model ignored its input (RESULTS.md), so the preset does not use it.

Joint training that translates (preset cmnist-2to3-joint-adv): ``lambda_adv`` and
``lambda_identity`` add CycleGAN's LSGAN adversarial term (against discriminators ``d_a``, ``d_b``, with image
pools) and its identity term to eq. (14). The generators then make CycleGAN-quality partners within 500 steps
(RESULTS.md). ``condition_t_max`` caps the noise level of every condition image, in training and in Algorithm 2.
All three are departures from the paper; their defaults (0, 0, None) keep the paper.
The shipped recipe (the cpu preset cmnist-2to3 and the shipped model): ``loss_weighting: min_snr`` weights eq. (11) over t
as DDIB's cpu preset does (Hang et al. 2023), which is what made the denoisers learn on cMNIST, and
``generator_every: k`` takes the generator (and discriminator) step on every k-th iteration only, so that most of
the CPU goes to the denoisers; defaults (uniform, 1) keep the paper. ``target_start: source`` (inference) starts
Algorithm 2's target chain from the input noised to t_max instead of N(0, I) (SDEdit's start; default noise).

Inference (paper Algorithm 2, eqs. 15-17), for a2b (b2a is the mirror): the target chain x^B starts from
N(0, I) and is denoised by eps_B conditioned on the source chain x^A. For t > t_r the source chain is the
input forward-noised to level t with fresh noise (eq. 4 of Ho et al.); from the release time t_r down to 0
it is denoised jointly by eps_A, conditioned on the target chain. Each step is the ancestral DDPM step of
Ho et al. eq. (11) with coefficient 1/sqrt(alpha_t) (the paper prints 1/sqrt(1 - alpha_t), a typo), done by
``translab.diffusion.samplers.ddpm_step`` on a possibly respaced timestep list.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from translab.config import ConfigError, describe
from translab.diffusion.process import (check_loss_weighting, loss_simple, q_sample, sample_t, seeded_noise,
                                        timestep_batch, weighted_loss_simple)
from translab.diffusion.samplers import ddpm_step
from translab.diffusion.schedule import NoiseSchedule
from translab.methods.base import Method, MethodError, OptimizerSpec, TrainSteps, Translation, check_direction
from translab.methods.ddib import DiffusionConfig
from translab.methods.image_pool import ImagePool
from translab.methods.losses import (CYCLE_DISTANCES, cycle_losses, identity_loss, jacobian_free_surrogate,
                                     lsgan_loss, pooled_discriminator_losses)
from translab.nets.patchgan import PatchGAN, PatchGANConfig
from translab.nets.resnet_gen import ResnetGenerator, ResnetGeneratorConfig, init_normal
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
    lambda_cyc: float = describe("weight of the cycle loss eq. (13) in the generator objective eq. (14) (10: CycleGAN's "
                                  "value; the paper's own could not be confirmed here)", 10.0)
    cycle_loss: str = describe("l1: eq. (13) as printed (L1 norm, default) | l2: the squared norm printed in Algorithm 1",
                               "l1")
    pair_noise: str = describe("noise of a fake image's forward process: independent (a fresh draw, default: the two "
                               "chains of inference carry independent noise) | shared (the real partner's eps at "
                               "the partner's t; lets the denoiser read its target noise off the condition, and "
                               "failed on cMNIST: see RESULTS.md)", "independent")
    condition_t_max: int | None = describe("cap on the noise level of every condition image: the partner that a "
                                           "denoiser is conditioned on is noised to min(t, condition_t_max) in "
                                           "training (eqs. 11-12) and the re-noised input of Algorithm 2 likewise, "
                                           "so the condition stays legible at large t (None: min(t, T-1) = t, the "
                                           "paper; a departure, see RESULTS.md). Must be >= release_t", None)
    generator_init: str | None = describe("a trained CycleGAN (run directory, checkpoint or shipped name such as "
                                          "cmnist-2to3/cyclegan) whose g_a2b, g_b2a start ours on a fresh "
                                          "training; its generator size and data must match (None: N(0, 0.02) "
                                          "initialisation, as in the paper)", None)
    denoiser_init: str | None = describe("a trained DDIB (run directory, checkpoint or shipped name such as "
                                         "cmnist-2to3/ddib) whose domain denoisers start eps_a, eps_b on a fresh "
                                         "training, with the condition channels' input weights at zero (so each "
                                         "starts as DDIB's unconditional denoiser of its domain); its unet size "
                                         "and data must match (None: diffusers' initialisation, as in the paper). "
                                         "On cMNIST the condition weights stayed near zero: see RESULTS.md",
                                         None)
    train_generators: bool = describe("take Algorithm 1's generator step on eq. (14) (true, the paper); false: "
                                      "the generators stay as initialised and only eq. (11) trains the denoisers "
                                      "(with generator_init, a two-stage variant that is not the paper's)", True)
    generator_grad: str = describe("gradient of eq. (12)'s two 'fake' terms w.r.t. the fakes: full (the paper: "
                                   "differentiated through the frozen denoisers) | sds (the denoisers' Jacobian "
                                   "dropped, as in score distillation, Poole et al. 2022, DreamFusion eq. 3: "
                                   "grad = (eps_hat - eps) dx_t/dfake; a departure, see RESULTS.md)", "full")
    generator_every: int = describe("take the generator (and discriminator) step on every k-th iteration only, "
                                    "after the warm-up; the denoiser step runs on every one (1: every iteration, "
                                    "the paper; a departure that spends the CPU on the denoisers once the "
                                    "generators have converged, see RESULTS.md)", 1)
    loss_weighting: str = describe("weight over t of the denoisers' objective eq. (11): uniform (the paper) | "
                                   "min_snr (min(SNR, gamma) / SNR per image, Hang et al. ICCV 2023, as DDIB's "
                                   "cpu preset; a departure). Eq. (12)'s generator terms stay uniform", "uniform")
    min_snr_gamma: float = describe("gamma of loss_weighting=min_snr", 5.0)
    generator_warmup: int = describe("steps of Algorithm 1 at the start that skip the generator step, so the "
                                     "denoisers learn their domains before they teach the generators (0: none, "
                                     "the paper)", 0)
    lambda_adv: float = describe("weight of an adversarial term added to eq. (14): CycleGAN's LSGAN generator loss "
                                 "(Zhu et al. 2017 eq. 1 with Mao et al.'s least squares, the paper's ref. for its "
                                 "generators), with two PatchGAN discriminators trained beside the generators "
                                 "(0: none, the paper; a departure, see RESULTS.md)", 0.0)
    lambda_identity: float = describe("weight of CycleGAN's identity term (Zhu et al. 2017 Sec. 5.2, after Taigman et "
                                      "al.), |g_a2b(x^B) - x^B|_1 + |g_b2a(x^A) - x^A|_1, added to eq. (14): it keeps "
                                      "the fakes' colour, which the adversarial and cycle terms leave free (0: none, "
                                      "the paper; CycleGAN's value is 5 = 0.5 x its lambda_cycle)", 0.0)
    discriminator: PatchGANConfig = describe("PatchGAN discriminators d_a, d_b (only when lambda_adv > 0)",
                                             factory=lambda: PatchGANConfig(ndf=16, n_layers=2))
    pool_size: int = describe("generated images kept per discriminator (CycleGAN's history pool; 0: none)", 50)
    generator_lr: float | None = describe("generator (and discriminator) learning rate (None: train.lr)", None)
    generator_betas: list[float] = describe("Adam betas of the generators (CycleGAN's (0.5, 0.999))",
                                            factory=lambda: [0.5, 0.999])
    release_t: int = describe("release time t_r, an integer timestep of the training schedule in [-1, T-1]: the source "
                              "chain is re-noised from the input while t > t_r and denoised jointly from t_r down "
                              "(-1: never released, T-1: released at once, so the input is nearly forgotten)", 100,
                              inference=True)
    steps: int = describe("default ancestral steps of translate (T = the full chain of Algorithm 2; fewer: respaced)",
                          100, inference=True)
    t_max: int | None = describe("timestep where the chains start (None: T-1, pure noise)", None, inference=True)
    target_start: str = describe("state the target chain starts from at t_max: noise (N(0, I), Algorithm 2) | source "
                                 "(the input forward-noised to t_max with the chain's first noise draw, SDEdit's "
                                 "start, Meng et al. ICLR 2022; a departure that carries the input's colour into "
                                 "the chain: see RESULTS.md; use with t_max < T-1)", "noise", inference=True)
    clip_x0: bool = describe("clip x0 predictions to [-1, 1] in each ancestral step (Ho et al.'s sampler)", True,
                             inference=True)
    sample_steps: int = describe("ancestral steps for the training sample grids", 20, inference=True)


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
        if cfg.cycle_loss not in CYCLE_DISTANCES:
            raise ConfigError(f"model.cycle_loss: expected one of {', '.join(CYCLE_DISTANCES)}, got '{cfg.cycle_loss}'")
        if cfg.generator_grad not in GENERATOR_GRADS:
            raise ConfigError(f"model.generator_grad: expected one of {', '.join(GENERATOR_GRADS)}, "
                              f"got '{cfg.generator_grad}'")
        check_loss_weighting(cfg.loss_weighting)
        if isinstance(cfg.generator_every, bool) or not isinstance(cfg.generator_every, int) or cfg.generator_every < 1:
            raise ConfigError(f"model.generator_every: expected an integer >= 1, got {cfg.generator_every!r}")
        if cfg.generator_warmup < 0:
            raise ConfigError(f"model.generator_warmup: expected a step count >= 0, got {cfg.generator_warmup}")
        c = cfg.condition_t_max
        if c is not None and (isinstance(c, bool) or not isinstance(c, int) or not 0 <= c <= cfg.diffusion.num_timesteps - 1):
            raise ConfigError(f"model.condition_t_max: expected None or an integer timestep in "
                              f"[0, {cfg.diffusion.num_timesteps - 1}], got {c!r}")
        if c is not None and cfg.pair_noise == "shared":
            raise ConfigError("model.condition_t_max with model.pair_noise=shared would still hand the partner's noise "
                              "to the condition: use pair_noise=independent")
        if cfg.pair_noise not in PAIR_NOISES:
            raise ConfigError(f"model.pair_noise: expected one of {', '.join(PAIR_NOISES)}, got '{cfg.pair_noise}'")
        if cfg.lambda_adv < 0:
            raise ConfigError(f"model.lambda_adv: expected a weight >= 0, got {cfg.lambda_adv}")
        if cfg.lambda_adv > 0 and not cfg.train_generators:
            raise ConfigError("model.lambda_adv > 0 trains discriminators against the generators, but "
                              "model.train_generators is false: set one of them")
        if cfg.lambda_identity < 0:
            raise ConfigError(f"model.lambda_identity: expected a weight >= 0, got {cfg.lambda_identity}")
        if cfg.pool_size < 0:
            raise ConfigError(f"model.pool_size: expected a size >= 0, got {cfg.pool_size}")
        if len(cfg.generator_betas) != 2:
            raise ConfigError(f"model.generator_betas: expected two numbers, got {cfg.generator_betas}")
        if image_size % (2 ** cfg.generator.n_down):
            raise ConfigError(f"model.generator.n_down={cfg.generator.n_down}: image size {image_size} must be divisible "
                              f"by 2**n_down = {2 ** cfg.generator.n_down}")
        self.schedule = NoiseSchedule.make(cfg.diffusion.schedule, cfg.diffusion.num_timesteps)
        self.check_inference_settings()
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
        """Check the model loaded for ``model.<field>``: its method, ``model.<size_field>`` and data against ours.

        ``loaded`` = (Method, Config, info) as translab.loading.load_method returns it.
        Returns (the source Method, with its training weights and EMA where kept, and its config)."""
        from translab.config import to_dict

        name = getattr(self.cfg, field)
        where = f"model.{field}={name}"
        source, source_cfg, info = loaded
        if source_cfg.method != method:
            raise MethodError(f"{where}: expected a {method} model, got a '{source_cfg.method}' one "
                              f"({info['checkpoint']})")
        mine, theirs = to_dict(getattr(self.cfg, size_field)), to_dict(getattr(source_cfg.model, size_field))
        if mine != theirs:
            raise MethodError(f"{where}: its model.{size_field} is {theirs}, but ours is {mine}; "
                              f"set model.{size_field} to match")
        keys = ["dataset", "image_size", "reverse"]
        if cfg.data.dataset == "cmnist":
            keys += ["digit_a", "digit_b", "color_seed"]
        for key in keys:
            if getattr(cfg.data, key) != getattr(source_cfg.data, key):
                raise MethodError(f"{where}: it was trained with data.{key}={getattr(source_cfg.data, key)!r}, "
                                  f"this run has data.{key}={getattr(cfg.data, key)!r}")
        return source, source_cfg

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
        """Eq. (14) = eq. (12) + lambda_cyc * eq. (13), through the frozen denoisers.

        Eq. (12)'s four terms: the two of eq. (11) (the fakes as conditions), and the two where a fake is the
        image being denoised by its target domain's network, conditioned on its real partner:
        ||eps~^A - eps_B(x~_t^B, x_t^A, t^A)||^2 and ||eps~^B - eps_A(x~_t^A, x_t^B, t^B)||^2, where eps~ is
        the noise of the fake (= eps of the partner when pair_noise='shared').
        With ``lambda_adv`` > 0, + lambda_adv * (LSGAN(d_b(fake_b), 1) + LSGAN(d_a(fake_a), 1)), the
        discriminators frozen; with ``lambda_identity`` > 0, + lambda_identity * (|g_a2b(x_b) - x_b|_1 +
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
            loss = cond + fake + self.cfg.lambda_cyc * cyc
            out = {"loss_gen_cond": cond, "loss_gen_fake": fake, "loss_cycle": cyc}
            if self.adversarial:
                adv = lsgan_loss(ctx.model("d_b")(fake_b), True) + lsgan_loss(ctx.model("d_a")(fake_a), True)
                loss = loss + self.cfg.lambda_adv * adv
                out["loss_gen_adv"] = adv
            if self.cfg.lambda_identity > 0:
                idt = sum(identity_loss(g_a2b, g_b2a, x_a, x_b))
                loss = loss + self.cfg.lambda_identity * idt
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
        T = self.schedule.num_timesteps
        if isinstance(release_t, bool) or not isinstance(release_t, int) or not -1 <= release_t <= T - 1:
            raise ConfigError(f"model.release_t: expected an integer timestep in [-1, {T - 1}] (T = {T}), "
                              f"got {release_t!r}")
        return release_t

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

    def check_inference_settings(self) -> None:
        if self.cfg.target_start not in TARGET_STARTS:
            raise ConfigError(f"model.target_start: expected one of {', '.join(TARGET_STARTS)}, "
                              f"got {self.cfg.target_start!r}")
        t_r, c = self.check_release(self.cfg.release_t), self.cfg.condition_t_max
        if c is not None and t_r > c:
            raise ConfigError(f"model.release_t={t_r}: this model's conditions are noised to at most "
                              f"condition_t_max={c}, so the joint chain must start at or below it (release_t <= {c})")

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
