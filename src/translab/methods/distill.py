"""A one-step translator distilled from a trained translator: by default DDIB's ODE map (``model.teacher``).

What it follows: knowledge distillation of a deterministic sampler into one network evaluation by regression
on the teacher's own input -> output pairs (Luhman & Luhman 2021, "Knowledge Distillation in Iterative
Generative Models for Improved Sampling Speed", arXiv 2101.02388, eq. 4: there the map is DDIM's noise ->
image, here it is DDIB's image -> image translation, encode then decode, which is deterministic too). The
student is a small UNet G(x, d) with a direction label d, read as a residual: y = x + G(x, d).

Training: for the first ``pair_steps`` steps the teacher translates every training batch of both domains
(no gradient, the teacher's own inference settings, ``teacher_steps`` solver steps) and the pairs (input,
teacher output) are kept, quantised to uint8, in the method's checkpointed state; every step the student
regresses a batch of each direction drawn from the kept pairs (L1, as pix2pix for sharper outputs than L2,
Isola et al. CVPR 2017 Sec. 3.1; or L2). No loss sees a real target image: the student learns the teacher's
unpaired translation, not a pairing of the data. A translation costs one network evaluation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from translab.settings import ConfigError, check_choice, check_fields, describe
from translab.methods.base import Method, MethodError, TrainSteps, Translation, check_direction, check_same_domains
from translab.nets.unet import DenoiserUNet, UNetConfig

DIRECTION_LABEL = {"a2b": 0, "b2a": 1}
LOSSES = ("l1", "l2")


def small_unet() -> UNetConfig:
    return UNetConfig(base_channels=16, channel_mult=[1, 2, 2], layers_per_block=1)


@dataclass
class DistillConfig:
    teacher: str | None = describe("trained run whose translations the student learns (a shipped name such as "
                                   "cmnist-2to3/ddib, or a run directory); needed to train, not to translate", None)
    teacher_steps: int | None = describe("solver steps per chain of the teacher's translations (None: its default)",
                                         None)
    teacher_settings: dict | None = describe("inference settings of the teacher that differ from its own defaults, "
                                             "e.g. {lowpass_factor: 0} (None: its defaults)", None)
    unet: UNetConfig = describe("size of the student UNet", factory=small_unet)
    pair_steps: int = describe("training steps during which the teacher translates each batch of both domains; "
                               "the student trains on the pairs kept so far (one epoch of pairs: the domain's "
                               "size / train.batch_size)", 186)
    loss: str = describe("regression loss on the teacher's outputs: l1 | l2", "l1")

    def __post_init__(self):
        check_fields(self, "model", {"pair_steps": (1, None), "teacher_steps": (1, None)})
        check_choice("model.loss", self.loss, LOSSES)
        if self.teacher is not None and not (isinstance(self.teacher, str) and self.teacher):
            raise ConfigError(f"model.teacher: expected a run name or directory, got {self.teacher!r}")
        ts = self.teacher_settings
        if ts is not None and not (isinstance(ts, dict) and all(isinstance(k, str) for k in ts)):
            raise ConfigError(f"model.teacher_settings: expected a mapping of setting names to values, got {ts!r}")

    def check_with(self, cfg) -> None:
        """The UNet's levels against data.image_size."""
        self.unet.check_image_size(cfg.data.image_size)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] floats -> uint8 on the CPU (the kept pairs' storage)."""
    return ((x.detach().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def from_uint8(x: torch.Tensor, device) -> torch.Tensor:
    return x.to(device).float() / 127.5 - 1


class Distill(Method):
    name = "distill"
    config_class = DistillConfig
    ema_nets = ("student",)

    def __init__(self, cfg: DistillConfig, image_size: int, channels: int = 3):
        super().__init__(cfg, image_size, channels)
        self.nets["student"] = DenoiserUNet(cfg.unet, image_size, channels, channels, num_domains=2)
        self.teacher: Method | None = None
        empty = torch.zeros(0, channels, image_size, image_size, dtype=torch.uint8)
        #: the kept pairs, uint8 (N, C, H, W) on the CPU: "a2b_in", "a2b_out", "b2a_in", "b2a_out"
        self.pairs: dict[str, torch.Tensor] = {f"{d}_{k}": empty for d in DIRECTION_LABEL for k in ("in", "out")}

    # ---- teacher --------------------------------------------------------------------------------
    def init_sources(self) -> dict[str, str]:
        """model.teacher: the trained run the training loop loads for this student (fresh or resumed)."""
        if self.cfg.teacher is None:
            raise MethodError("model.teacher is not set: name the trained run to distil, e.g. "
                              "--set model.teacher=cmnist-2to3/ddib")
        return {"teacher": self.cfg.teacher}

    resume_sources = init_sources  # a resumed run still fills its pairs from the teacher

    def init_for_training(self, cfg, sources: dict | None = None) -> None:
        self.resume_training(cfg, sources)

    def resume_training(self, cfg, sources: dict | None = None) -> None:
        """Attach the loaded teacher (Method, Config, info) after checking it translates the same domains."""
        if not sources or "teacher" not in sources:
            raise MethodError("model.teacher was not loaded: pass sources=translab.training.load_init_sources(method)")
        teacher, teacher_cfg, _ = sources["teacher"]
        check_same_domains(f"model.teacher={self.cfg.teacher}", cfg.data, teacher_cfg.data)  # (channels: the loop)
        missing = sorted(set(DIRECTION_LABEL) - set(teacher.directions()))
        if missing:
            raise MethodError(f"model.teacher={self.cfg.teacher} cannot translate {', '.join(missing)}; "
                              "the student learns both directions")
        if self.cfg.teacher_settings:  # ConfigError naming a setting that is not the teacher's inference setting
            teacher = teacher.with_inference(**self.cfg.teacher_settings)
        self.teacher = teacher.eval()

    @torch.no_grad()
    def teacher_translate(self, x: torch.Tensor, direction: str) -> torch.Tensor:
        if self.teacher.device != x.device:
            self.teacher.to(x.device)
        return self.teacher.translate(x, direction, steps=self.cfg.teacher_steps).images

    def keep(self, key: str, images: torch.Tensor) -> None:
        """Append uint8 images to the kept pairs' ``key``."""
        self.pairs[key] = torch.cat([self.pairs[key], images])

    def kept(self, direction: str) -> int:
        return self.pairs[f"{direction}_in"].shape[0]

    # ---- training -------------------------------------------------------------------------------
    def optimizer_specs(self, train_cfg):
        from translab.methods.base import OptimizerSpec

        return {"student": OptimizerSpec(("student",), train_cfg.lr, weight_decay=train_cfg.weight_decay)}

    def train_step(self, ctx: TrainSteps, batch_a: torch.Tensor, batch_b: torch.Tensor) -> dict[str, float]:
        """While ``ctx.step < pair_steps``: keep the teacher's translations of both batches. Then one optimiser
        step of the regression of each direction on a batch of kept pairs."""
        if ctx.step < self.cfg.pair_steps:
            if self.teacher is None:
                raise MethodError("distill: the teacher is not attached (train through translab.training.train)")
            for direction, x in (("a2b", batch_a), ("b2a", batch_b)):
                self.keep(f"{direction}_in", to_uint8(x))
                self.keep(f"{direction}_out", to_uint8(self.teacher_translate(x, direction)))
        net = ctx.model("student")
        losses = {d: self._regression_loss(net, d, batch.shape[0], batch.device, ctx)
                  for d, batch in (("a2b", batch_a), ("b2a", batch_b))}
        loss = (losses["a2b"] + losses["b2a"]) / 2
        ctx.optimize("student", loss)
        return {"loss": float(loss.detach()), "loss_a2b": float(losses["a2b"].detach()),
                "loss_b2a": float(losses["b2a"].detach()), "pairs": float(self.kept("a2b"))}

    def _regression_loss(self, net, direction: str, n: int, device, ctx: TrainSteps) -> torch.Tensor:
        """Mean L1 (or squared) error of the student against the teacher on n pairs drawn from those kept."""
        if not self.kept(direction):
            raise MethodError(f"distill: no kept pairs of {direction} to train on (model.pair_steps steps fill them)")
        inputs, outputs = self.pairs[f"{direction}_in"], self.pairs[f"{direction}_out"]
        idx = torch.randint(0, inputs.shape[0], (n,), generator=ctx.generator)
        x, target = from_uint8(inputs[idx], device), from_uint8(outputs[idx], device)
        err = self.student(net, x, direction) - target
        return err.abs().mean() if self.cfg.loss == "l1" else err.pow(2).mean()

    def student(self, net, x: torch.Tensor, direction: str) -> torch.Tensor:
        """y = x + G(x, d): the residual student of one direction, (N, C, H, W) -> (N, C, H, W)."""
        n = x.shape[0]
        t = torch.zeros(n, dtype=torch.long, device=x.device)
        label = torch.full((n,), DIRECTION_LABEL[direction], dtype=torch.long, device=x.device)
        return x + net(x, t, label)

    def extra_state(self) -> dict:
        """The kept pairs (uint8), so a resumed run trains on the same pairs and fills the rest."""
        return dict(self.pairs)

    def load_extra_state(self, state: dict) -> None:
        self.pairs.update({k: state[k] for k in self.pairs if k in state})

    # ---- inference ------------------------------------------------------------------------------
    @torch.no_grad()
    def translate(self, x, direction, steps=None, generator=None, return_latents=False, progress=None):
        """One evaluation of the student: x (N, C, H, W) in [-1, 1] -> (N, C, H, W) in [-1, 1]."""
        check_direction(direction)
        return Translation(self.student(self.infer_net("student"), x, direction).clamp(-1, 1), 1)

    def nfe(self, direction, steps=None):
        return 1
