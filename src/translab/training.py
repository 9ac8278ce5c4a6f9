"""The one training loop for every method, on HF Accelerate.

It owns: devices and processes (one CPU process by default; `accelerate launch` / torchrun for several),
optimisers (AdamW) with optional per-step LR multipliers, gradient clipping, EMA, the progress bar,
metrics.jsonl, sample grids, atomic checkpoints with a latest pointer and rotation, exact resume (step,
optimisers, EMA, RNG and data position), a NaN/inf stop that keeps the last good checkpoint, and a clean
Ctrl-C (first: checkpoint and exit; second: exit at once). Methods own their optimisation step.
"""
from __future__ import annotations

import copy
import json
import math
import os
import signal
import time
from dataclasses import dataclass, is_dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import DataLoader, Dataset

from translab.errors import TranslabError
from translab.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint
from translab.config import Config, DataConfig, diff_configs, dump_yaml, inference_fields, to_dict
from translab.data import build_domain_pair
from translab.data.base import stack_dataset
from translab.diffusion.process import seeded_noise
from translab.image_io import save_grid
from translab.loading import load_method, restore_nets  # noqa: F401  (load_method: re-exported for callers)
from translab.methods import Method, MethodError, build_method
from translab.rundir import RunDir, RunLock


class TrainingError(TranslabError, RuntimeError):
    """Training stopped for a reason the user must see (diverged, incompatible resume)."""


# --------------------------------------------------------------------------------------------------
# data order


def stream_seed(seed: int, stream: int, index: int) -> int:
    """A seed fixed by (seed, stream, index) alone, the same on every interpreter and platform (Python's
    ``hash`` of a tuple is not promised to be): a mix of the three with two large odd multipliers."""
    return ((seed * 1_000_003 + stream) * 998_244_353 + index) % (2 ** 62)


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
            g = torch.Generator().manual_seed(stream_seed(self.seed, self.stream, step))
            glob = torch.randint(0, self.n, (g_bs,), generator=g)
        else:
            epoch, pos = divmod(step, per_epoch)
            g = torch.Generator().manual_seed(stream_seed(self.seed, self.stream, epoch))
            glob = torch.randperm(self.n, generator=g)[pos * g_bs:(pos + 1) * g_bs]
        return glob[self.rank * self.bs:(self.rank + 1) * self.bs].tolist()

    def __iter__(self):
        step = self.start
        while True:
            yield self.indices(step)
            step += 1

    def __len__(self):  # pragma: no cover - infinite
        return 2 ** 62


def make_loader(ds: Dataset, cfg: Config, start_step: int, rank: int, world: int, stream: int,
                factor: int = 1) -> DataLoader:
    """Loader of ``factor * train.batch_size`` images per step (Method.batch_factors)."""
    sampler = StepBatchSampler(len(ds), cfg.train.batch_size * factor, cfg.train.seed, start_step, rank, world, stream)
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
        return seeded_noise(x, self.generator)

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
# the loop: fit() over small named steps on one TrainSession


@dataclass
class TrainResult:
    """What ``train`` returns; ``method`` holds this process's live (trained) nets and EMA copies."""

    run_dir: Path
    step: int
    stopped_early: bool
    wall_seconds: float
    last_scalars: dict
    method: Method | None = None


@dataclass
class TrainSession:
    """Everything one training process holds, built by ``start_session`` and advanced by ``fit``."""

    cfg: Config
    run: RunDir
    accelerator: object
    method: Method
    models: dict
    optimizers: dict
    schedulers: dict
    ctx: TrainContext
    batches: list
    fixed: dict
    start_step: int
    wall_before: float
    last_good: Path | None
    t_start: float = 0.0

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def wall(self) -> float:
        return self.wall_before + time.time() - self.t_start


def resume_safe_keys(cfg: Config) -> tuple[str, ...]:
    """Config keys that may change between a run and its resumption: every train.* key, data.num_workers,
    data.root, and the method's inference settings (fields declared with ``describe(..., inference=True)``)."""
    keys = ["train.", "data.num_workers", "data.root"]
    if is_dataclass(cfg.model):
        keys += [f"model.{name}" for name in inference_fields(cfg.model)]
    return tuple(keys)


def with_data_defaults(saved: dict) -> dict:
    """A saved config mapping whose ``data`` section gains the DataConfig keys added after it was written, at
    their defaults (e.g. data.channels = 3), so that a run saved before a data setting existed still resumes."""
    data = saved.get("data")
    if not isinstance(data, dict):
        return saved
    return dict(saved, data={**to_dict(DataConfig()), **data})


def _check_resume_config(saved: dict, cfg: Config, ckpt: Path) -> list[str]:
    changed = diff_configs(with_data_defaults(saved), cfg.to_dict())
    safe = resume_safe_keys(cfg)
    # model and data keys define the weights' shape and meaning; the rest may change (all changes are logged)
    unsafe = [k for k in changed if not any(k == s or (s.endswith(".") and k.startswith(s)) for s in safe)]
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

    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    if cfg.train.deterministic:
        torch.use_deterministic_algorithms(True)
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


def _gather_rank_states(s: TrainSession) -> list[dict]:
    """Each process's random state and method extra state (e.g. the student's kept pairs), in rank order: one
    collective when there are several processes, so every rank calls it."""
    mine = {"rng": _rng_state(s.ctx.generator), "extra": s.method.extra_state()}
    if s.accelerator.num_processes == 1:
        return [mine]
    from accelerate.utils import gather_object

    return gather_object([mine])


def _restore_rank_state(state: dict, method: Method, generator: torch.Generator, cfg: Config,
                        rank: int, world: int, log) -> None:
    """This process's random streams and extra state from a checkpoint: rank 0's are the checkpoint's own,
    rank r's its ``other_ranks[r - 1]``. On another number of processes than the checkpoint's, a rank with no
    saved state keeps rank 0's extra state and draws from a stream seeded by (seed, rank, step), never a copy
    of another rank's; the run then continues, but not bit for bit as it would have."""
    others = state.get("other_ranks", [])
    if len(others) == world - 1:
        mine = state if rank == 0 else others[rank - 1]
        _set_rng_state(mine["rng"], generator)
        if rank > 0:
            method.load_extra_state(mine.get("extra", {}))
        return
    if rank == 0:
        _set_rng_state(state["rng"], generator)
        log(f"the checkpoint was written by {len(others) + 1} process(es), this run has {world}: the other "
            f"ranks' random streams are seeded anew, so the resumed run is not bit-exact")
        return
    seed = (cfg.train.seed * 1000 + rank) * 1_000_003 + int(state["step"])
    torch.manual_seed(seed)
    generator.manual_seed(seed)


def train(cfg: Config, run_dir: str | Path, pair=None, on_step=None) -> TrainResult:
    """Train ``cfg.method`` into ``run_dir`` (resuming from its latest checkpoint if there is one).

    ``on_step(step, method)``, if given, is called after each optimisation step (and its checkpoint).
    """
    run = RunDir(run_dir).ensure()
    if int(os.environ.get("RANK", "0")) != 0:  # other ranks of a multi-process run: rank 0 holds the lock
        return fit(start_session(cfg, run, pair), on_step)
    with RunLock(run):
        return fit(start_session(cfg, run, pair), on_step)


def _read_resume_state(cfg: Config, run: RunDir, is_main: bool) -> tuple[dict | None, Path | None]:
    """The run's latest checkpoint (None on a fresh run), checked against ``cfg``; logs what changed."""
    ckpt_path = latest_checkpoint(run.checkpoints)
    if ckpt_path is None:
        return None, None
    state = load_checkpoint(ckpt_path)
    changed = _check_resume_config(state["config"], cfg, ckpt_path)
    if is_main:
        run.log(f"resuming from {ckpt_path.name} at step {state['step']}"
                + (f"; changed keys: {', '.join(changed)}" if changed else ""))
    return state, ckpt_path


def _build_method(cfg: Config, device, fresh: bool) -> Method:
    """The method's nets on ``device`` (initialised for training on a fresh run) and its EMA copies."""
    torch.manual_seed(cfg.train.seed)
    method = build_method(cfg)
    if fresh:
        method.init_for_training(cfg, load_init_sources(method))
    elif method.resume_sources():
        method.resume_training(cfg, load_init_sources(method, method.resume_sources()))
    method.to(device)
    if cfg.train.channels_last:
        method.nets.to(memory_format=torch.channels_last)
    for name in method.ema_nets:
        method.ema[name] = copy.deepcopy(method.nets[name]).requires_grad_(False).eval()
    return method


def load_init_sources(method: Method, names: dict[str, str] | None = None) -> dict:
    """Load every trained run that ``names`` (default ``method.init_sources()``) names: {field: (Method, Config,
    info)}."""
    names = method.init_sources() if names is None else names
    from translab.shipped import resolve_run

    sources = {field: load_method(resolve_run(name, f"model.{field}")) for field, name in names.items()}
    for field, (_, source_cfg, info) in sources.items():
        if source_cfg.data.channels != method.channels:
            raise MethodError(f"model.{field}: {info['checkpoint']} was trained on data.channels="
                              f"{source_cfg.data.channels}, this run has data.channels={method.channels}")
    return sources


def _build_optimizers(method: Method, specs: dict) -> tuple[dict, dict]:
    """AdamW per OptimizerSpec of the method -> ({name: optimiser}, {name: net names it steps})."""
    optimizers, opt_nets = {}, {}
    for oname, spec in specs.items():
        params = [p for n in spec.nets for p in method.nets[n].parameters()]
        optimizers[oname] = torch.optim.AdamW(params, lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay)
        opt_nets[oname] = spec.nets
    return optimizers, opt_nets


def _build_schedulers(specs: dict, cfg: Config, optimizers: dict, start_step: int) -> dict:
    """Set every optimiser to the config's rate (also on a resume that changed it: a loaded optimiser state
    keeps the checkpoint's) and attach the method's LR schedule or the configured step drop."""
    schedulers = {}
    for oname, spec in specs.items():
        for group in optimizers[oname].param_groups:
            group["lr"] = group["initial_lr"] = spec.lr
        lr_lambda = spec.lr_lambda or _step_drop(cfg.train)
        if lr_lambda is not None:
            # last_epoch = start_step - 1: the scheduler's first internal step lands on start_step
            schedulers[oname] = torch.optim.lr_scheduler.LambdaLR(optimizers[oname], lr_lambda,
                                                                  last_epoch=start_step - 1)
    return schedulers


def _batch_streams(method: Method, cfg: Config, pair, start_step: int, rank: int, world: int) -> list:
    """One endless iterator of training batches per domain, positioned at ``start_step``."""
    factors = method.batch_factors()
    return [iter(make_loader(pair.get(d, "train"), cfg, start_step, rank, world, i, factors[d]))
            for i, d in enumerate("ab")]


def start_session(cfg: Config, run: RunDir, pair=None) -> TrainSession:
    """Build (or restore from the run's latest checkpoint) everything the loop needs."""
    accelerator = _make_accelerator(cfg)
    state, ckpt_path = _read_resume_state(cfg, run, accelerator.is_main_process)
    if accelerator.is_main_process:
        run.config_file.write_text(dump_yaml(cfg))
    pair = pair or build_domain_pair(cfg.data)
    method = _build_method(cfg, accelerator.device, fresh=state is None)
    specs = method.optimizer_specs(cfg.train)
    optimizers, opt_nets = _build_optimizers(method, specs)
    generator = torch.Generator().manual_seed(cfg.train.seed * 1000 + accelerator.process_index)
    start_step = 0
    if state is not None:
        restore_nets(method, state, ckpt_path)
        try:
            for n, sd in state["optimizers"].items():
                optimizers[n].load_state_dict(sd)
        except (KeyError, ValueError) as e:
            raise CheckpointError(f"{ckpt_path}: its optimiser states do not fit the {cfg.method} model: {e}") from None
        _restore_rank_state(state, method, generator, cfg, accelerator.process_index, accelerator.num_processes,
                            run.log)
        start_step = int(state["step"])
    schedulers = _build_schedulers(specs, cfg, optimizers, start_step)
    models = {}
    for n, net in method.nets.items():
        wrapped = accelerator.prepare(net)
        models[n] = torch.compile(wrapped) if cfg.train.compile else wrapped
    optimizers = {n: accelerator.prepare(o) for n, o in optimizers.items()}
    ctx = TrainContext(accelerator, models, optimizers, opt_nets, cfg.train.grad_clip, generator, start_step)
    rank, world = accelerator.process_index, accelerator.num_processes
    fixed = {d: stack_dataset(pair.get(d, "test"), 8) for d in "ab"}
    if any(x.shape[1] != method.channels for x in fixed.values()):
        raise TrainingError(f"data.channels={cfg.data.channels}, but the images given have "
                            f"{[x.shape[1] for x in fixed.values()]} channels (domains a, b)")
    if accelerator.is_main_process:
        run.log(f"training {cfg.method} on {pair.name} ({pair.source}) from step {start_step} to {cfg.train.steps} "
                f"on {accelerator.device} x{world}")
    return TrainSession(cfg, run, accelerator, method, models, optimizers, schedulers, ctx,
                        _batch_streams(method, cfg, pair, start_step, rank, world), fixed, start_step,
                        float(state.get("wall_seconds", 0.0)) if state else 0.0, ckpt_path)


def save_training_checkpoint(s: TrainSession, step: int) -> Path | None:
    """Atomic checkpoint of step ``step``, written by the main process (the others return None), with every
    rank's random and extra state. Every process calls it."""
    ranks = _gather_rank_states(s)
    if not s.is_main:
        return None
    unwrapped = {n: s.accelerator.unwrap_model(m) for n, m in s.models.items()}
    ckpt = {
        "config": s.cfg.to_dict(),
        "method": s.cfg.method,
        "nets": {n: _cpu_state(m) for n, m in unwrapped.items()},
        "ema": {n: _cpu_state(m) for n, m in s.method.ema.items()},
        "optimizers": {n: o.state_dict() for n, o in s.optimizers.items()},
        "rng": ranks[0]["rng"],
        "extra": ranks[0]["extra"],
        "wall_seconds": s.wall(),
    }
    if len(ranks) > 1:
        ckpt["other_ranks"] = ranks[1:]
    path = save_checkpoint(ckpt, s.run.checkpoints, step, s.cfg.train.keep_checkpoints)
    s.run.log(f"checkpoint {path.name}")
    return path


def save_sample_grid(s: TrainSession, step: int) -> None:
    """Translate the first 8 test images of each trained direction into RUN/samples/step_N.png."""
    if not s.is_main:
        return
    s.method.eval()
    rows = []
    gen = torch.Generator().manual_seed(0)
    for d in s.method.directions():
        src = s.fixed[d[0]].to(s.accelerator.device)
        with torch.no_grad():
            out = s.method.translate(src, d, steps=getattr(s.method.cfg, "sample_steps", None), generator=gen)
        rows += [src, out.images]
    save_grid(rows, s.run.samples / f"step_{step:08d}.png")
    s.method.nets.train()


def random_hflip(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``batch`` (N, C, H, W) with a random half (each image with probability 1/2, from ``generator``) mirrored."""
    pick = (torch.rand(batch.shape[0], generator=generator) < 0.5).to(batch.device)
    return torch.where(pick[:, None, None, None], batch.flip(-1), batch)


def train_one_step(s: TrainSession, step: int) -> tuple[dict[str, float], int]:
    """The method's optimisation step ``step + 1`` on the next batches; refuses non-finite scalars.
    Returns (the method's scalars, images this process trained on)."""
    device = s.accelerator.device
    batch_a, batch_b = (next(it).to(device) for it in s.batches)
    if s.cfg.train.hflip:
        batch_a, batch_b = (random_hflip(b, s.ctx.generator) for b in (batch_a, batch_b))
    if s.cfg.train.channels_last:
        batch_a = batch_a.contiguous(memory_format=torch.channels_last)
        batch_b = batch_b.contiguous(memory_format=torch.channels_last)
    s.ctx.step = step
    with s.accelerator.autocast():
        scalars = s.method.train_step(s.ctx, batch_a, batch_b)
    bad = [k for k, v in scalars.items() if not math.isfinite(v)]
    if bad:
        msg = (f"training diverged at step {step + 1}: {', '.join(f'{k}={scalars[k]}' for k in bad)}. "
               f"No checkpoint was written for this step; the last good one is "
               f"{s.last_good if s.last_good else 'none (no checkpoint yet)'}. Lower train.lr or raise "
               f"train.grad_clip, then resume.")
        if s.is_main:
            s.run.log(msg)
        raise TrainingError(msg)
    return scalars, batch_a.shape[0] + batch_b.shape[0]


def advance_schedules(s: TrainSession, step: int) -> dict[str, float]:
    """After optimisation step ``step``: step the LR schedules and the EMA copies. Returns the rates the step
    trained at."""
    step_lr = {n: o.param_groups[0]["lr"] for n, o in s.optimizers.items()}
    for sch in s.schedulers.values():
        sch.step()
    decay = s.cfg.train.ema_decay if step > s.cfg.train.ema_start else 0.0
    for n, ema in s.method.ema.items():
        ema_update(ema, s.accelerator.unwrap_model(s.models[n]), decay)
    return step_lr


class _RateMeter:
    """Images per second over the window since the last ``read``."""

    def __init__(self):
        self.t, self.n = time.time(), 0.0

    def add(self, n: float) -> None:
        self.n += n

    def read(self) -> float:
        ips = self.n / max(time.time() - self.t, 1e-9)
        self.t, self.n = time.time(), 0.0
        return ips


def log_step(s: TrainSession, step: int, scalars: dict, step_lr: dict, ips: float, pbar) -> None:
    """One metrics.jsonl line (main process) and the progress bar's postfix."""
    record = {"step": step, **{k: round(v, 6) for k, v in scalars.items()}, "images_per_s": round(ips, 2),
              "lr": step_lr, "wall_s": round(s.wall(), 1)}
    if s.is_main:
        s.run.append_metrics(record)
    if pbar is not None:
        pbar.set_postfix({k: f"{v:.4f}" for k, v in list(scalars.items())[:3]} | {"img/s": f"{ips:.1f}"})


def _progress_bar(s: TrainSession):
    if not (s.is_main and s.cfg.train.progress):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=s.cfg.train.steps, initial=s.start_step, desc=f"train {s.cfg.method}", dynamic_ncols=True)


def fit(s: TrainSession, on_step=None) -> TrainResult:
    """Run optimisation steps from ``s.start_step`` to ``train.steps``: log, sample, checkpoint, and stop
    cleanly on Ctrl-C (checkpoint, then return with ``stopped_early``)."""
    tc = s.cfg.train
    s.t_start = time.time()
    pbar, meter = _progress_bar(s), _RateMeter()
    s.method.nets.train()
    step, last_scalars, stopped_early, last_saved = s.start_step, {}, False, s.start_step
    with GracefulInterrupt() as interrupt:
        while step < tc.steps:
            scalars, n_images = train_one_step(s, step)
            meter.add(n_images * s.accelerator.num_processes)
            step += 1
            step_lr = advance_schedules(s, step)
            last_scalars = scalars
            if pbar is not None:
                pbar.update(1)
            if step % tc.log_every == 0 or step == tc.steps:
                log_step(s, step, scalars, step_lr, meter.read(), pbar)
            if tc.sample_every and step % tc.sample_every == 0 and step < tc.steps:
                save_sample_grid(s, step)
            if step % tc.checkpoint_every == 0 or step == tc.steps or interrupt.requested:
                s.accelerator.wait_for_everyone()
                s.last_good = save_training_checkpoint(s, step) or s.last_good
                last_saved = step
            if on_step is not None:
                on_step(step, s.method)
            if interrupt.requested:
                if last_saved != step:  # the interrupt landed after this step's checkpoint decision
                    s.last_good = save_training_checkpoint(s, step) or s.last_good
                stopped_early = True
                if s.is_main:
                    s.run.log(f"interrupted at step {step}; resume with the same command")
                break
    if pbar is not None:
        pbar.close()
    if not stopped_early:
        save_sample_grid(s, step)
    wall = s.wall()
    if s.is_main and step > s.start_step:
        write_train_record(s, step, stopped_early, wall, last_scalars)
    s.accelerator.wait_for_everyone()  # no rank returns before rank 0's files of this run are written
    return TrainResult(s.run.path, step, stopped_early, wall, last_scalars, s.method)


def write_train_record(s: TrainSession, step: int, stopped_early: bool, wall: float, last_scalars: dict) -> None:
    """RUN/train_record.json: how the weights were made. An interrupted run records where it stopped, so a
    run stopped for time (and exported as it is) still says its steps, wall time and last losses."""
    record = {
        "method": s.cfg.method, "steps": step, "target_steps": s.cfg.train.steps, "completed": not stopped_early,
        "wall_seconds": round(wall, 1), "device": str(s.accelerator.device),
        "processes": s.accelerator.num_processes, "hardware": hardware_string(),
        "final": {k: round(v, 6) for k, v in last_scalars.items()}}
    earlier = earlier_stage_record(s.method)
    if earlier is not None:
        record["init_from"] = earlier
    s.run.write_json("train_record.json", record)
    if not stopped_early:
        s.run.log(f"finished at step {step} in {wall:.0f} s")


def earlier_stage_record(method: Method) -> dict | None:
    """The train_record of the run whose training ``method`` continues (``Method.continued_source``), named
    under "run", its own earlier stages nested in it. A checkpoint file, a run without a readable record or one
    gone since the training started gives the name alone: the stage history is lost, never this run's record.
    None when the method continues no run."""
    field = method.continued_source()
    if field is None:
        return None
    from translab.shipped import portable_path, resolve_run

    name = method.init_sources()[field]
    try:
        path = resolve_run(name, f"model.{field}")
        name = portable_path(path)
        earlier = json.loads((path / "train_record.json").read_text()) if path.is_dir() else {}
    except (TranslabError, OSError, ValueError):
        earlier = {}
    return {"run": name, **(earlier if isinstance(earlier, dict) else {})}


def _cpu_state(module: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def hardware_string() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    import platform

    return f"CPU {platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
