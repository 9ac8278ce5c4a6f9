"""Diagnostic for UNIT-DDPM's joint training (issue 19): which part of eq. (14) darkens the generators?

    python scripts/unit_term_ablation.py CHECKPOINT_OR_RUN --steps 300 --variants fake,sds,cyc,cond,cyc+fake,cyc+sds
                                         [--reinit-generators]

From a UNIT-DDPM checkpoint (e.g. the end of a ``model.generator_warmup`` phase: denoisers trained,
generators as initialised) it trains copies of the two generators alone, the denoisers frozen, for ``--steps``
steps (batch 16 per domain from the first 2,048 training images, Adam lr 2e-4, betas (0.5, 0.999), gradient
norm clipped to 1) on a sum of terms named by the variant, joined by '+':

- ``cond``: eq. (12)'s two condition terms (the fakes as the denoisers' conditions);
- ``fake``: eq. (12)'s two fake terms through the denoisers (the paper); ``sds``: the same, Jacobian dropped;
- ``dds``: the domain contrast eps_B - eps_A on the fake (Jacobian dropped; Delta Denoising Score, Hertz et al.
  ICCV 2023), and its mirror for the other generator;
- ``cyc`` / ``cycL``: eq. (13), L1, weighted 10 / L (e.g. ``cyc1``).

``--reinit-generators`` starts the generators from N(0, 0.02) weights (the paper's initialisation) instead of
the checkpoint's, e.g. to ask whether the shipped two-stage model's well-trained denoisers can teach fresh
generators.

Then it prints, for g_a2b on the first 128 test 2s: the share read as 3, the hue error, the mean brightness
in [0, 1] (and the inputs'), and the mean distance to the input.
"""
from __future__ import annotations

import argparse
import copy

import torch

from translab.data import build_domain_pair
from translab.data.base import stack_dataset
from translab.diffusion.process import loss_simple
from translab.methods.losses import cycle_losses, jacobian_free_surrogate
from translab.metrics.classifier import classifier_outputs, load_classifier, shipped_classifier_path
from translab.metrics.color import hue_error, target_accuracy
from translab.nets.resnet_gen import init_normal
from translab.shipped import resolve_run
from translab.training import load_method


class _Draws:
    """The slice of TrainContext that UnitDDPM.draw uses: a generator and seeded noise."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, generator=self.generator)


def contrast_term(m, fake_t, partner_t, t, own: str, other: str) -> torch.Tensor:
    """Surrogate whose gradient w.r.t. fake_t is 2 (eps_own - eps_other) / numel (no Jacobian)."""
    with torch.no_grad():
        x = torch.cat([fake_t, partner_t], 1)
        residual = m.nets[own](x, t) - m.nets[other](x, t)
    return jacobian_free_surrogate(residual, fake_t)


def variant_loss(m, terms: set[str], x_a, x_b, d) -> torch.Tensor:
    """The sum of the named terms for one batch and one draw d ('fake' and 'sds' both go through
    m._fake_term, which differentiates as m.cfg.generator_grad says: train_generators sets it)."""
    fb, fa = m.nets["g_a2b"](x_a), m.nets["g_b2a"](x_b)
    xa_t, xb_t, fb_t, fa_t = m._noisy_pairs(x_a, x_b, fb, fa, d)
    loss = torch.zeros(())
    if "cond" in terms:
        loss = loss + (loss_simple(m.nets["eps_a"](torch.cat([xa_t, fb_t], 1), d.t_a), d.eps_a)
                       + loss_simple(m.nets["eps_b"](torch.cat([xb_t, fa_t], 1), d.t_b), d.eps_b))
    if terms & {"fake", "sds"}:
        loss = loss + (m._fake_term(m.nets["eps_b"], fb_t, xa_t, d.t_a, d.fake_eps_a)
                       + m._fake_term(m.nets["eps_a"], fa_t, xb_t, d.t_b, d.fake_eps_b))
    if "dds" in terms:
        loss = loss + (contrast_term(m, fb_t, xa_t, d.t_a, "eps_b", "eps_a")
                       + contrast_term(m, fa_t, xb_t, d.t_b, "eps_a", "eps_b"))
    weights = [float(x[3:] or 10) for x in terms if x.startswith("cyc")]
    if weights:
        loss = loss + weights[0] * sum(cycle_losses(x_a, x_b, m.nets["g_a2b"], m.nets["g_b2a"], "l1", fb, fa))
    return loss


def train_generators(base, variant: str, train_a, train_b, steps: int, reinit: bool = False):
    """A copy of ``base`` whose generators trained ``steps`` steps on ``variant``; the denoisers frozen."""
    m = copy.deepcopy(base)
    if reinit:
        torch.manual_seed(0)
        for name in ("g_a2b", "g_b2a"):
            init_normal(m.nets[name])
    m.nets.train()
    for name in ("eps_a", "eps_b"):
        m.nets[name].requires_grad_(False)
    terms = set(variant.split("+"))
    m.cfg.generator_grad = "sds" if "sds" in terms else "full"  # how _fake_term differentiates
    params = list(m.nets["g_a2b"].parameters()) + list(m.nets["g_b2a"].parameters())
    opt = torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x_a = train_a[torch.randint(0, train_a.shape[0], (16,), generator=g)]
        x_b = train_b[torch.randint(0, train_b.shape[0], (16,), generator=g)]
        loss = variant_loss(m, terms, x_a, x_b, m.draw(_Draws(g), x_a, x_b))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
    return m


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--variants", default="fake,sds,cyc,cond,cyc+fake,cyc+sds")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reinit-generators", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    base, cfg, _ = load_method(resolve_run(args.checkpoint))
    pair = build_domain_pair(cfg.data)
    train_a, train_b = stack_dataset(pair.get("a", "train"), 2048), stack_dataset(pair.get("b", "train"), 2048)
    test_a = stack_dataset(pair.get("a", "test"), 128)
    clf = load_classifier(shipped_classifier_path("cmnist"))
    for variant in args.variants.split(","):
        m = train_generators(base, variant, train_a, train_b, args.steps, args.reinit_generators)
        with torch.no_grad():
            y = m.nets["g_a2b"].eval()(test_a)
            _, pred = classifier_outputs(clf, y)
        print(f"{variant:16s} {args.steps} steps: read as {cfg.data.digit_b} {target_accuracy(pred, cfg.data.digit_b):.3f}  "
              f"hue error {hue_error(test_a, y)['mean_deg']:6.1f}  brightness {float((y + 1).mean() / 2):.4f} "
              f"(inputs {float((test_a + 1).mean() / 2):.4f})  distance to input {float((y - test_a).abs().mean()):.3f}",
              flush=True)


if __name__ == "__main__":
    main()
