"""The one training loop for every method, on HF Accelerate.

It owns: devices and processes (one CPU process by default; `accelerate launch` / torchrun for several),
optimisers (AdamW) with optional per-step LR multipliers, gradient clipping, EMA, the progress bar,
metrics.jsonl, sample grids, atomic checkpoints with a latest pointer and rotation, exact resume (step,
optimisers, EMA, RNG and data position), a NaN/inf stop that keeps the last good checkpoint, and a clean
Ctrl-C (first: checkpoint and exit; second: exit at once). Methods own their optimisation step.
"""
from __future__ import annotations

import copy
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from translab.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from translab.config import Config, build_config, diff_configs, dump_yaml
from translab.data import build_domain_pair
from translab.methods import Method, build_method
from translab.report.grids import save_grid
from translab.rundir import RunDir, RunLock

#: model/data keys that may change between a run and its resumption (every train.* key may; all are logged)
RESUME_SAFE_PREFIXES = ("train.steps", "train.log_every", "train.sample_every", "train.checkpoint_every",
                        "train.keep_checkpoints", "train.progress", "train.threads", "train.compile",
                        "train.channels_last", "data.num_workers", "data.root", "model.steps", "model.sample_steps",
                        "model.t_max", "model.clip_decode", "model.t0", "model.eta", "model.release_t",
                        "model.sample_chain")


class TrainingError(RuntimeError):
    """Training stopped for a reason the user must see (diverged, incompatible resume)."""


# --------------------------------------------------------------------------------------------------
# data order


class StepBatchSampler:
    """Yields index lists; the batch of step s depends only on (seed, s), so resuming at step s is exact.

    Each epoch is a fresh permutation of the dataset; a global batch of ``batch_size * world`` indices is
    split so that each rank gets its own shard. Datasets smaller than a global batch are sampled with
    replacement.
    """

    def __init__(self, n: int, batch_size: int, seed: int, start_step: int = 0, rank: int = 0, world: int = 1,
                 stream: int = 0):
        if n <= 0:
            raise TrainingError("cannot train on an empty dataset")
        self.n, self.bs, self.seed, self.start, self.rank, self.world, self.stream = n, batch_size, seed, start_step, rank, world, stream

    def indices(self, step: int) -> list[int]:
        g_bs = self.bs * self.world
        per_epoch = self.n // g_bs
        if per_epoch == 0:
            g = torch.Generator().manual_seed(hash((self.seed, self.stream, step)) % (2 ** 62))
            glob = torch.randint(0, self.n, (g_bs,), generator=g)
        else:
            epoch, pos = divmod(step, per_epoch)
            g = torch.Generator().manual_seed(hash((self.seed, self.stream, epoch)) % (2 ** 62))
            glob = torch.randperm(self.n, generator=g)[pos * g_bs:(pos + 1) * g_bs]
        return glob[self.rank * self.bs:(self.rank + 1) * self.bs].tolist()

    def __iter__(self):
        step = self.start
        while True:
            yield self.indices(step)
            step += 1

    def __len__(self):  # pragma: no cover - infinite
        return 2 ** 62


def make_loader(ds: Dataset, cfg: Config, start_step: int, rank: int, world: int, stream: int) -> DataLoader:
    sampler = StepBatchSampler(len(ds), cfg.train.batch_size, cfg.train.seed, start_step, rank, world, stream)
    return DataLoader(ds, batch_sampler=sampler, num_workers=cfg.data.num_workers,
                      persistent_workers=cfg.data.num_workers > 0)


# --------------------------------------------------------------------------------------------------
# context handed to Method.train_step


class TrainContext:
    """What a method's train_step may use: wrapped models, named optimiser steps, seeded noise."""

    def __init__(self, accelerator, models: dict[str, torch.nn.Module], optimizers: dict, opt_nets: dict,
                 grad_clip: float, generator: torch.Generator, step: int = 0):
        self.accelerator = accelerator
        self._models = models
        self.optimizers = optimizers
        self._opt_nets = opt_nets
        self.grad_clip = grad_clip
        self.generator = generator
        self.step = step
        self.grad_norms: dict[str, float] = {}

    @property
    def device(self) -> torch.device:
        return self.accelerator.device

    def model(self, name: str) -> torch.nn.Module:
        return self._models[name]

    def randn_like(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn(x.shape, generator=self.generator, dtype=x.dtype).to(x.device)

    def rand(self, *shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator)

    def optimize(self, name: str, loss: torch.Tensor) -> None:
        """zero_grad -> backward -> clip the nets of optimiser ``name`` -> step."""
        opt = self.optimizers[name]
        opt.zero_grad(set_to_none=True)
        self.accelerator.backward(loss)
        if self.grad_clip > 0:
            params = [p for n in self._opt_nets[name] for p in self._models[n].parameters()]
            norm = self.accelerator.clip_grad_norm_(params, self.grad_clip)
            self.grad_norms[name] = float(norm)
        opt.step()

    def set_requires_grad(self, names, flag: bool) -> None:
        for n in names:
            for p in self._models[n].parameters():
                p.requires_grad_(flag)


# --------------------------------------------------------------------------------------------------
# EMA


@torch.no_grad()
def ema_update(ema: torch.nn.Module, net: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * net, for parameters; buffers are copied."""
    for pe, p in zip(ema.parameters(), net.parameters()):
        pe.lerp_(p.detach(), 1.0 - decay)
    for be, b in zip(ema.buffers(), net.buffers()):
        be.copy_(b)


# --------------------------------------------------------------------------------------------------
# Ctrl-C


class GracefulInterrupt:
    """First SIGINT: ask the loop to checkpoint and stop after this step. Second: raise at once."""

    def __init__(self):
        self.requested = False
        self._old = None

    def __enter__(self):
        if hasattr(signal, "SIGINT") and _main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        self.requested = True
        print("\n[translab] interrupt: saving a checkpoint after this step (Ctrl-C again to quit at once)", flush=True)

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
        return False


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


# --------------------------------------------------------------------------------------------------
# the loop


@dataclass
class TrainResult:
    """What ``train`` returns; ``method`` holds this process's live (trained) nets and EMA copies."""

    run_dir: Path
    step: int
    stopped_early: bool
    wall_seconds: float
    last_scalars: dict
    method: Method | None = None


def _check_resume_config(saved: dict, new: dict, ckpt: Path) -> list[str]:
    changed = diff_configs(saved, new)
    # every train.* change is allowed (and recorded); model and data keys define the weights' shape and meaning
    unsafe = [k for k in changed if not k.startswith(RESUME_SAFE_PREFIXES) and not k.startswith("train.")]
    if unsafe:
        raise TrainingError(
            f"cannot resume from {ckpt}: the config changed in keys that define the model or its data: "
            f"{', '.join(unsafe)}. Use a new --run-dir, or restore those values.")
    return changed


def _step_drop(train_cfg) -> Callable[[int], float] | None:
    """train.lr_drop_step / lr_drop_factor as a LambdaLR factor of the step count (None: no drop configured)."""
    drop, factor = train_cfg.lr_drop_step, train_cfg.lr_drop_factor
    if drop <= 0:
        return None
    return lambda step: 1.0 if step < drop else factor


def _make_accelerator(cfg: Config):
    from accelerate import Accelerator

    use_cpu = not torch.cuda.is_available()
    mp = cfg.train.mixed_precision
    if mp not in ("no", "bf16"):
        raise TrainingError(f"train.mixed_precision must be 'no' or 'bf16', got '{mp}'")
    if mp == "bf16" and use_cpu:
        mp = "no"
    return Accelerator(cpu=use_cpu, mixed_precision=mp)


def _rng_state(generator: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "generator": generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train(cfg: Config, run_dir: str | Path, pair=None, on_step=None) -> TrainResult:
    """Train ``cfg.method`` into ``run_dir`` (resuming from its latest checkpoint if there is one).

    ``on_step(step, method)``, if given, is called after each optimisation step (and its checkpoint).
    """
    run = RunDir(run_dir).ensure()
    if int(os.environ.get("RANK", "0")) != 0:  # other ranks of a multi-process run: rank 0 holds the lock
        return _train_locked(cfg, run, pair, on_step)
    with RunLock(run):
        return _train_locked(cfg, run, pair, on_step)


def _train_locked(cfg: Config, run: RunDir, pair, on_step) -> TrainResult:
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    if cfg.train.deterministic:
        torch.use_deterministic_algorithms(True)
    accelerator = _make_accelerator(cfg)
    rank, world = accelerator.process_index, accelerator.num_processes
    is_main = accelerator.is_main_process

    cfg_dict = cfg.to_dict()
    ckpt_path = latest_checkpoint(run.checkpoints)
    state = None
    if ckpt_path is not None:
        state = load_checkpoint(ckpt_path)
        changed = _check_resume_config(state["config"], cfg_dict, ckpt_path)
        if is_main:
            run.log(f"resuming from {ckpt_path.name} at step {state['step']}"
                    + (f"; changed keys: {', '.join(changed)}" if changed else ""))
    if is_main:
        run.config_file.write_text(dump_yaml(cfg))

    pair = pair or build_domain_pair(cfg.data)
    torch.manual_seed(cfg.train.seed)
    method: Method = build_method(cfg)
    if state is None:
        method.init_for_training(cfg)
    method.to(accelerator.device)
    if cfg.train.channels_last:
        method.nets.to(memory_format=torch.channels_last)
    for name in method.ema_nets:
        method.ema[name] = copy.deepcopy(method.nets[name]).requires_grad_(False).eval()

    specs = method.optimizer_specs(cfg.train)
    optimizers, opt_nets, schedulers = {}, {}, {}
    for oname, spec in specs.items():
        params = [p for n in spec.nets for p in method.nets[n].parameters()]
        optimizers[oname] = torch.optim.AdamW(params, lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay)
        opt_nets[oname] = spec.nets
    generator = torch.Generator().manual_seed(cfg.train.seed * 1000 + rank)

    start_step = 0
    if state is not None:
        try:
            for n, sd in state["nets"].items():
                method.nets[n].load_state_dict(sd)
            for n, sd in state.get("ema", {}).items():
                method.ema[n].load_state_dict(sd)
            for n, sd in state["optimizers"].items():
                optimizers[n].load_state_dict(sd)
            method.load_extra_state(state.get("extra", {}))
        except (KeyError, RuntimeError, ValueError) as e:
            raise CheckpointError(f"{ckpt_path} does not match the {cfg.method} model its config describes: "
                                  f"{str(e).splitlines()[0][:300]}") from None
        _set_rng_state(state["rng"], generator)
        start_step = int(state["step"])
    for oname, spec in specs.items():
        # the config's learning rate, also on a resume that changed it (a loaded optimizer state keeps the
        # checkpoint's); a schedule below scales it from initial_lr
        for group in optimizers[oname].param_groups:
            group["lr"] = group["initial_lr"] = spec.lr
        lr_lambda = spec.lr_lambda or _step_drop(cfg.train)
        if lr_lambda is not None:
            # last_epoch = start_step - 1: the scheduler's first internal step lands on start_step
            schedulers[oname] = torch.optim.lr_scheduler.LambdaLR(optimizers[oname], lr_lambda,
                                                                  last_epoch=start_step - 1)

    models = {}
    for n, net in method.nets.items():
        wrapped = accelerator.prepare(net)
        if cfg.train.compile:
            wrapped = torch.compile(wrapped)
        models[n] = wrapped
    for oname in optimizers:
        optimizers[oname] = accelerator.prepare(optimizers[oname])
    ctx = TrainContext(accelerator, models, optimizers, opt_nets, cfg.train.grad_clip, generator, start_step)

    loaders = [make_loader(pair.get(d, "train"), cfg, start_step, rank, world, i) for i, d in enumerate("ab")]
    fixed = {d: torch.stack([pair.get(d, "test")[i] for i in range(min(8, len(pair.get(d, "test"))))]) for d in "ab"}

    def save(step: int):
        if not is_main:
            return None
        unwrapped = {n: accelerator.unwrap_model(m) for n, m in models.items()}
        ckpt = {
            "config": cfg_dict,
            "method": cfg.method,
            "nets": {n: _cpu_state(m) for n, m in unwrapped.items()},
            "ema": {n: _cpu_state(m) for n, m in method.ema.items()},
            "optimizers": {n: o.state_dict() for n, o in optimizers.items()},
            "rng": _rng_state(generator),
            "extra": method.extra_state(),
            "wall_seconds": wall_before + (time.time() - t_start),
        }
        path = save_checkpoint(ckpt, run.checkpoints, step, cfg.train.keep_checkpoints)
        run.log(f"checkpoint {path.name}")
        return path

    def sample(step: int):
        if not is_main:
            return
        method.eval()
        rows = []
        gen = torch.Generator().manual_seed(0)
        for d in method.directions():
            src = fixed[d[0]].to(accelerator.device)
            with torch.no_grad():
                out = method.translate(src, d, steps=getattr(method.cfg, "sample_steps", None), generator=gen)
            rows += [src, out.images]
        save_grid(rows, run.samples / f"step_{step:08d}.png")
        method.nets.train()

    wall_before = float(state.get("wall_seconds", 0.0)) if state else 0.0
    t_start = time.time()
    steps = cfg.train.steps
    last_scalars: dict = {}
    stopped_early = False
    iters = [iter(ld) for ld in loaders]
    pbar = None
    if is_main and cfg.train.progress:
        from tqdm.auto import tqdm

        pbar = tqdm(total=steps, initial=start_step, desc=f"train {cfg.method}", dynamic_ncols=True)
    if is_main:
        run.log(f"training {cfg.method} on {pair.name} ({pair.source}) from step {start_step} to {steps} "
                f"on {accelerator.device} x{world}")
    method.nets.train()
    step = start_step
    window_t, window_n = time.time(), 0
    last_good = latest_checkpoint(run.checkpoints)
    last_saved = start_step
    with GracefulInterrupt() as interrupt:
        while step < steps:
            batch_a = next(iters[0]).to(accelerator.device)
            batch_b = next(iters[1]).to(accelerator.device)
            if cfg.train.channels_last:
                batch_a = batch_a.contiguous(memory_format=torch.channels_last)
                batch_b = batch_b.contiguous(memory_format=torch.channels_last)
            ctx.step = step
            with accelerator.autocast():
                scalars = method.train_step(ctx, batch_a, batch_b)
            bad = [k for k, v in scalars.items() if not math.isfinite(v)]
            if bad:
                msg = (f"training diverged at step {step + 1}: {', '.join(f'{k}={scalars[k]}' for k in bad)}. "
                       f"No checkpoint was written for this step; the last good one is "
                       f"{last_good if last_good else 'none (no checkpoint yet)'}. Lower train.lr or raise "
                       f"train.grad_clip, then resume.")
                if is_main:
                    run.log(msg)
                raise TrainingError(msg)
            step += 1
            step_lr = {n: o.param_groups[0]["lr"] for n, o in optimizers.items()}  # the rate this step used
            for sch in schedulers.values():
                sch.step()
            decay = cfg.train.ema_decay if step > cfg.train.ema_start else 0.0
            for n, ema in method.ema.items():
                ema_update(ema, accelerator.unwrap_model(models[n]), decay)
            window_n += (batch_a.shape[0] + batch_b.shape[0]) * world
            last_scalars = scalars
            if pbar is not None:
                pbar.update(1)
            if step % cfg.train.log_every == 0 or step == steps:
                ips = window_n / max(time.time() - window_t, 1e-9)
                window_t, window_n = time.time(), 0
                record = {"step": step, **{k: round(v, 6) for k, v in scalars.items()},
                          "images_per_s": round(ips, 2),
                          "lr": step_lr,
                          "wall_s": round(wall_before + time.time() - t_start, 1)}
                if is_main:
                    run.append_metrics(record)
                if pbar is not None:
                    pbar.set_postfix({k: f"{v:.4f}" for k, v in list(scalars.items())[:3]} | {"img/s": f"{ips:.1f}"})
            if cfg.train.sample_every and step % cfg.train.sample_every == 0 and step < steps:
                sample(step)
            if step % cfg.train.checkpoint_every == 0 or step == steps or interrupt.requested:
                accelerator.wait_for_everyone()
                last_good = save(step) or last_good
                last_saved = step
            if on_step is not None:
                on_step(step, method)
            if interrupt.requested:
                if last_saved != step:  # the interrupt landed after this step's checkpoint decision
                    last_good = save(step) or last_good
                stopped_early = True
                if is_main:
                    run.log(f"interrupted at step {step}; resume with the same command")
                break
    if pbar is not None:
        pbar.close()
    wall = wall_before + time.time() - t_start
    if not stopped_early:
        sample(step)
    if is_main and step > start_step:
        # the record of how the weights were made; an interrupted run records where it stopped, so that a run
        # stopped for time (and exported as it is) still says its steps, wall time and last losses
        run.write_json("train_record.json", {
            "method": cfg.method, "steps": step, "target_steps": steps, "completed": not stopped_early,
            "wall_seconds": round(wall, 1), "device": str(accelerator.device), "processes": world,
            "hardware": hardware_string(), "final": {k: round(v, 6) for k, v in last_scalars.items()}})
        if not stopped_early:
            run.log(f"finished at step {step} in {wall:.0f} s")
    return TrainResult(run.path, step, stopped_early, wall, last_scalars, method)


def _cpu_state(module: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def hardware_string() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    import platform

    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"


# --------------------------------------------------------------------------------------------------
# loading a trained method


def load_method(run_or_ckpt: str | Path, map_location: str = "cpu", as_method: str | None = None,
                overrides: dict | None = None) -> tuple[Method, Config, dict]:
    """Method with trained (and EMA) weights from a run directory or a checkpoint file.

    ``as_method`` reinterprets the weights as a compatible method (a DDIB run as 'sdedit'); ``overrides``
    are plain {'model.key': value} changes of inference settings.
    """
    path = Path(run_or_ckpt)
    if path.is_dir() and (path / "model.safetensors").is_file():
        from translab.export import load_inference_folder

        state, ckpt = load_inference_folder(path), path / "model.safetensors"
    else:
        ckpt = latest_checkpoint(path / "checkpoints") if path.is_dir() else path
        if ckpt is None:
            raise CheckpointError(f"no checkpoint found in {path / 'checkpoints'}")
        state = load_checkpoint(ckpt, map_location)
    data = copy.deepcopy(state["config"])
    if as_method:
        data["method"] = as_method
    from translab.config import apply_override

    for key, value in (overrides or {}).items():
        apply_override(data, key.split("."), value)
    cfg = build_config(data)
    method = build_method(cfg)
    try:
        for n, sd in state["nets"].items():
            method.nets[n].load_state_dict(sd)
        for n, sd in state.get("ema", {}).items():
            method.ema[n] = copy.deepcopy(method.nets[n]).requires_grad_(False)
            method.ema[n].load_state_dict(sd)
        method.load_extra_state(state.get("extra", {}))
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"{ckpt} does not match the {cfg.method} model its config describes: "
                              f"{str(e).splitlines()[0][:300]}") from None
    method.to(map_location).eval()
    return method, cfg, {"checkpoint": str(ckpt), "step": int(state["step"]), "wall_seconds": state.get("wall_seconds")}
