"""Benchmark: DDIB training and translation speed on this machine, against its measured matmul limit.

Prints
- training images/s of the cmnist-2to3 DDIB preset (eager);
- DDIB translation images/s at 2 x {10, 20, 50, 100} network evaluations, eager and torch.compile'd
  (compile time reported separately), each also as a fraction of the machine's limit: FLOPs per image
  (torch.utils.flop_counter on one UNet forward, times the NFE) over the fp32 FLOP/s ceiling measured in the
  same run, the faster of a 1024^3 matmul and a 128-channel 3x3 convolution (oneDNN). On the AMD EPYC of
  this project the matmul (MKL sgemm) reached only about half the convolution's rate, so a matmul-only
  ceiling put the UNet above 100% of it.

    python benchmarks/bench_ddib.py [--run RUN] [--threads N] [--images 64] [--steps 10,20,50,100] [--sampler S]

Without --run the weights are freshly initialised (speed does not depend on them). ``--sampler`` (ddim |
dpmpp2m; default: the model's ``model.sampler``) picks the ODE solver; both take one network evaluation per
step, so their cost per NFE is the same.
"""
from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from translab.config import resolve_config
from translab.methods import build_method


def matmul_flops_per_s(n: int = 1024, repeats: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0)


def conv_flops_per_s(channels: int = 128, size: int = 32, batch: int = 16, repeats: int = 5) -> float:
    """fp32 FLOP/s of a 3x3 convolution (channels -> channels, size x size, padding 1) in eval mode."""
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).eval()
    x = torch.randn(batch, channels, size, size)
    with torch.no_grad():
        conv(x)
        t0 = time.perf_counter()
        for _ in range(repeats):
            conv(x)
        seconds = time.perf_counter() - t0
    return 2 * channels * channels * 9 * size * size * batch * repeats / seconds


def unet_flops_per_image(method, image_size: int) -> float:
    x = torch.randn(4, 3, image_size, image_size)
    eps = method.eps_fn("a")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        eps(x, torch.full((4,), 500, dtype=torch.long))
    return counter.get_total_flops() / 4


def time_translate(method, x, steps) -> float:
    t0 = time.perf_counter()
    method.translate(x, "a2b", steps=steps)
    return x.shape[0] / (time.perf_counter() - t0)


def train_images_per_s(cfg, steps: int = 6) -> float:
    from accelerate import Accelerator

    from translab.training import TrainContext

    method = build_method(cfg)
    specs = method.optimizer_specs(cfg.train)
    opts = {n: torch.optim.AdamW([p for k in s.nets for p in method.nets[k].parameters()], lr=s.lr) for n, s in specs.items()}
    ctx = TrainContext(Accelerator(cpu=True), dict(method.nets.items()), opts, {n: s.nets for n, s in specs.items()},
                       cfg.train.grad_clip, torch.Generator().manual_seed(0))
    bs = cfg.train.batch_size
    a = torch.rand(bs, 3, 32, 32) * 2 - 1
    b = torch.rand(bs, 3, 32, 32) * 2 - 1
    method.train_step(ctx, a, b)  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        method.train_step(ctx, a, b)
    return 2 * bs * steps / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--run", default=None)
    p.add_argument("--images", type=int, default=64)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--steps", default="10,20,50,100")
    p.add_argument("--sampler", default=None, help="ddim | dpmpp2m (default: the model's model.sampler)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = resolve_config("ddib", "cmnist-2to3", None, [f"train.threads={args.threads}"])
    if args.run:
        from translab.shipped import resolve_run
        from translab.training import load_method

        method, cfg, _ = load_method(resolve_run(args.run))
    else:
        torch.manual_seed(0)
        method = build_method(cfg).eval()
    if args.sampler:
        method.cfg.sampler = args.sampler
    matmul, conv = matmul_flops_per_s(), conv_flops_per_s()
    limit = max(matmul, conv)
    flops = unet_flops_per_image(method, cfg.data.image_size)
    print(f"threads {torch.get_num_threads()}; fp32 matmul {matmul / 1e9:.1f} GFLOP/s, 3x3 conv {conv / 1e9:.1f} "
          f"GFLOP/s (ceiling: the faster); UNet forward {flops / 1e6:.1f} MFLOP per image; sampler {method.cfg.sampler}")
    print(f"training (preset cmnist-2to3, eager): {train_images_per_s(cfg):.1f} images/s")
    x = torch.rand(args.images, 3, cfg.data.image_size, cfg.data.image_size) * 2 - 1
    steps_list = [int(s) for s in args.steps.split(",")]
    eager = {s: time_translate(method, x, s) for s in steps_list}
    t0 = time.perf_counter()
    for store in (method.nets, method.ema):
        for name in list(store.keys()):
            store[name] = torch.compile(store[name])
    time_translate(method, x, 2)  # compile
    compile_s = time.perf_counter() - t0
    compiled = {s: time_translate(method, x, s) for s in steps_list}
    print(f"torch.compile warm-up: {compile_s:.0f} s")
    print(f"{'NFE':>8s} {'eager img/s':>12s} {'% limit':>8s} {'compiled img/s':>15s} {'% limit':>8s} {'speed-up':>9s}")
    for s in steps_list:
        nfe = method.nfe("a2b", s)
        per_img = flops * nfe
        e, c = eager[s], compiled[s]
        print(f"{nfe:>8d} {e:>12.2f} {100 * e * per_img / limit:>7.1f}% {c:>15.2f} {100 * c * per_img / limit:>7.1f}% "
              f"{c / e:>8.2f}x")


if __name__ == "__main__":
    main()
