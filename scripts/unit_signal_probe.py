"""Diagnostic for UNIT-DDPM's joint training (issue 19): does eq. (12)'s gradient say "look like the other domain"?

    python scripts/unit_signal_probe.py CHECKPOINT_OR_RUN [--limit 64] [--iters 200] [--lr 0.01] [--threads 1]

Takes the trained denoiser eps_B of a UNIT-DDPM checkpoint and the first N test 2s, and descends on the
*pixels* of the images (no generator) with the gradient that eq. (12)'s fake term gives a generator,
||eps - eps_B([q(x, t, eps), q(x_A, t, eps')], t)||^2 with t ~ U{0..T-1}, three ways:

- ``full``: differentiated through the denoiser (the paper);
- ``sds``: the denoiser's Jacobian dropped (DreamFusion eq. 3, ``model.generator_grad=sds``);
- ``delta``: eps_B - eps_A on the same input, Jacobian dropped (toward B and away from A, as in Delta
  Denoising Score, Hertz et al. ICCV 2023; not in translab's training).

Each image is clamped to [-1, 1] after every step. It prints, every ``--report`` iterations, the share that
the shipped classifier reads as 3, the mean brightness in [0, 1] and the hue error against the start. A signal
about the target class moves 2s toward 3s; a likelihood signal moves them toward the emptiest image.
"""
from __future__ import annotations

import argparse

import torch

from translab.data import build_domain_pair
from translab.data.base import stack_dataset
from translab.diffusion.process import q_sample, sample_t
from translab.methods.losses import jacobian_free_surrogate
from translab.metrics.classifier import classifier_outputs, load_classifier, shipped_classifier_path
from translab.metrics.color import hue_error, target_accuracy
from translab.shipped import resolve_run
from translab.training import load_method

MODES = ("full", "sds", "delta")


def pixel_gradient(method, x: torch.Tensor, cond: torch.Tensor, mode: str, g: torch.Generator) -> torch.Tensor:
    """Gradient (N, 3, H, W) of eq. (12)'s fake term w.r.t. the pixels x, one draw of t and the noises."""
    s = method.schedule
    t = sample_t(s, x.shape[0], g)
    eps, eps_c = torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g)
    x = x.detach().requires_grad_(True)
    x_t, c_t = q_sample(s, x, t, eps), q_sample(s, cond, t, eps_c)
    eps_b, eps_a = method.nets["eps_b"], method.nets["eps_a"]
    if mode == "full":
        loss = ((eps_b(torch.cat([x_t, c_t], 1), t) - eps) ** 2).mean()
        return torch.autograd.grad(loss, x)[0]
    with torch.no_grad():
        pred = eps_b(torch.cat([x_t, c_t], 1), t)
        residual = pred - eps if mode == "sds" else pred - eps_a(torch.cat([x_t, c_t], 1), t)
    return torch.autograd.grad(jacobian_free_surrogate(residual, x_t), x)[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--limit", type=int, default=64)
    p.add_argument("--iters", type=int, default=200)
    p.add_argument("--lr", type=float, default=0.01, help="Adam step size on the pixels")
    p.add_argument("--report", type=int, default=50)
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    method, cfg, info = load_method(resolve_run(args.checkpoint))
    method.nets.eval()
    pair = build_domain_pair(cfg.data)
    x0 = stack_dataset(pair.get("a", "test"), args.limit)
    clf = load_classifier(shipped_classifier_path("cmnist"))
    print(f"{args.checkpoint} (step {info['step']}): first {x0.shape[0]} test 2s, pixel descent on eq. (12)'s fake term")
    for mode in args.modes.split(","):
        g = torch.Generator().manual_seed(0)
        x = x0.clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=args.lr)
        for i in range(1, args.iters + 1):
            opt.zero_grad()
            x.grad = pixel_gradient(method, x, x0, mode, g)
            opt.step()
            with torch.no_grad():
                x.clamp_(-1, 1)
            if i % args.report == 0 or i == args.iters:
                with torch.no_grad():
                    _, pred = classifier_outputs(clf, x)
                    print(f"{mode:6s} iter {i:4d}: read as 3 {target_accuracy(pred, cfg.data.digit_b):.3f}  "
                          f"brightness {float((x + 1).mean() / 2):.4f} (start {float((x0 + 1).mean() / 2):.4f})  "
                          f"hue error {hue_error(x0, x)['mean_deg']:6.1f}", flush=True)


if __name__ == "__main__":
    main()
