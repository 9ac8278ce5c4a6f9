"""The shared training loop: checkpoints, exact resume after SIGKILL, NaN stop, bad checkpoints, DDP."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tiny_runs import TINY_DDIB, tiny_ddib
from translab.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint
from translab.training import TrainingError, load_method, train

ROOT = Path(__file__).resolve().parents[1]


def _weights(run: Path) -> dict:
    return load_checkpoint(latest_checkpoint(run / "checkpoints"))["nets"]


def _cli(args: list[str], **kw) -> subprocess.Popen:
    """`python -m translab ARGS` in a new process, with tests/pause_hook.py loaded (inactive unless env sets it)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests")]), OMP_NUM_THREADS="1")
    env.update(kw.pop("env", {}))
    launch = ["-c", "import pause_hook; pause_hook.run_translab()"]
    return subprocess.Popen([sys.executable, *launch, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _sets(extra: list[str]) -> list[str]:
    out = []
    for s in TINY_DDIB + extra:
        out += ["--set", s]
    return out


def test_run_directory_contract(tmp_path):
    res = train(tiny_ddib(4, "train.checkpoint_every=2"), tmp_path / "run")
    run = res.run_dir
    assert res.step == 4 and not res.stopped_early
    for name in ("config.yaml", "log.txt", "metrics.jsonl", "train_record.json"):
        assert (run / name).is_file(), name
    assert len(list((run / "samples").glob("*.png"))) == 1
    pointer = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert pointer == {"step": 4, "file": "step_00000004.pt"}
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [1, 2, 3, 4] and all(r["loss"] > 0 for r in lines)
    # the checkpoint loads with weights_only=True and carries the config
    state = torch.load(run / "checkpoints" / "step_00000004.pt", weights_only=True)
    assert state["config"]["method"] == "ddib" and state["step"] == 4


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    """Kill -9 a training process after its step-3 checkpoint; resuming to step 6 gives the same weights
    as an uninterrupted 6-step run with the same seed (CPU, deterministic algorithms on)."""
    common = ["train.checkpoint_every=3", "train.deterministic=true", "train.steps=6"]
    ref = _cli(["train", "ddib", "--preset", "cmnist-2to3", "--run-dir", str(tmp_path / "ref"), *_sets(common)])
    assert ref.wait(timeout=300) == 0, ref.stdout.read()

    run = tmp_path / "killed"
    # the step-6 checkpoint's rename is held (tests/pause_hook.py), so the kill lands after step 3's checkpoint
    # and before any later one, however fast the machine trains
    marker = tmp_path / "paused"
    hold = {"PAUSE_BEFORE_RENAME": str(marker), "PAUSE_MATCH": "step_00000006.pt", "PAUSE_SECONDS": "120"}
    p = _cli(["train", "ddib", "--preset", "cmnist-2to3", "--run-dir", str(run), *_sets(common + ["train.steps=1000"])],
             env=hold)
    deadline = time.time() + 240
    while time.time() < deadline and not marker.exists() and p.poll() is None:
        time.sleep(0.2)
    assert marker.exists() and (run / "checkpoints" / "step_00000003.pt").exists(), "no step-3 checkpoint appeared"
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    resumed = _cli(["train", "ddib", "--preset", "cmnist-2to3", "--run-dir", str(run), *_sets(common)])
    out = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, out
    assert "resuming from step_0000000" in (run / "log.txt").read_text()
    a, b = _weights(tmp_path / "ref"), _weights(run)
    assert load_checkpoint(latest_checkpoint(run / "checkpoints"))["step"] == 6
    for net in a:
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), f"{net}.{k} differs after resume"


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    """Weights poisoned with NaN after step 3 -> step 4's loss is NaN -> a clear stop; checkpoint 3 intact."""
    def poison(step, method):
        if step == 3:
            with torch.no_grad():
                for p in method.nets.parameters():
                    p.fill_(float("nan"))

    run = tmp_path / "run"
    with pytest.raises(TrainingError, match=r"diverged at step 4: loss=nan.*last good one is .*step_00000003.pt"):
        train(tiny_ddib(6, "train.checkpoint_every=1"), run, on_step=poison)
    good = load_checkpoint(latest_checkpoint(run / "checkpoints"))
    assert good["step"] == 3
    for net in good["nets"].values():
        for v in net.values():
            assert torch.isfinite(v.float()).all()
    assert "diverged at step 4" in (run / "log.txt").read_text()


def test_truncated_and_foreign_checkpoints_are_refused(tmp_path):
    run = tmp_path / "run"
    train(tiny_ddib(2, "train.checkpoint_every=2"), run)
    ckpt = latest_checkpoint(run / "checkpoints")
    data = ckpt.read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="foreign.pt.*not a translab checkpoint"):
        load_checkpoint(foreign)
    text = tmp_path / "text.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="text.pt"):
        load_method(text)


def test_save_load_translate_identical(tmp_path):
    run = tmp_path / "run"
    train(tiny_ddib(3, "train.checkpoint_every=3"), run)
    m1, _, _ = load_method(run)
    m2, _, _ = load_method(run)
    x = torch.rand(3, 3, 8, 8) * 2 - 1
    a = m1.translate(x, "a2b").images
    b = m2.translate(x, "a2b").images
    assert torch.equal(a, b)
    assert m1.translate(x, "a2b").nfe == 8


def test_changed_model_shape_refused_on_resume(tmp_path):
    run = tmp_path / "run"
    train(tiny_ddib(2, "train.checkpoint_every=2"), run)
    with pytest.raises(TrainingError, match="model.unet.base_channels"):
        train(tiny_ddib(4, "model.unet.base_channels=16"), run)
    res = train(tiny_ddib(3, "train.log_every=2"), run)  # harmless change: allowed and recorded
    assert res.step == 3
    line = [x for x in (run / "log.txt").read_text().splitlines() if "resuming from step_00000002.pt" in x][-1]
    assert "train.log_every" in line and "train.steps" in line


def test_resume_takes_a_changed_learning_rate(tmp_path):
    """A resume with a new train.lr trains at it (the loaded optimizer state carries the checkpoint's)."""
    run = tmp_path / "run"
    train(tiny_ddib(2, "train.checkpoint_every=2", "train.log_every=1", "train.lr=0.003"), run)
    train(tiny_ddib(4, "train.checkpoint_every=2", "train.log_every=1", "train.lr=0.0007"), run)
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    lrs = {r["step"]: r["lr"]["denoiser"] for r in logged if "lr" in r}
    assert lrs[2] == pytest.approx(0.003) and lrs[3] == lrs[4] == pytest.approx(0.0007)


def test_lr_drop_step_holds_across_a_resume(tmp_path):
    """train.lr_drop_step=3: the steps that start with 3 or more done run at lr_drop_factor x lr, resumed or not."""
    run = tmp_path / "run"
    drop = ["train.checkpoint_every=2", "train.log_every=1", "train.lr=0.004", "train.lr_drop_step=3",
            "train.lr_drop_factor=0.25"]
    train(tiny_ddib(2, *drop), run)
    train(tiny_ddib(5, *drop), run)
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # the lr logged at step k is the one step k trained at: steps 1-3 start with 0-2 done, 4-5 with 3-4
    lrs = {r["step"]: r["lr"]["denoiser"] for r in logged if "lr" in r}
    assert [lrs[k] for k in range(1, 6)] == pytest.approx([0.004, 0.004, 0.004, 0.001, 0.001])


def _torchrun_line(script: Path, port: int, tag: str) -> str:
    """Run ``script`` with torchrun on 2 CPU processes; the first line of its output that starts with ``tag``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
                        str(script)], cwd=script.parent, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return [x for x in p.stdout.splitlines() if x.startswith(tag)][0]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_two_cpu_processes_keep_identical_replicas(tmp_path):
    """torchrun with 2 gloo processes: after training, both ranks' weights are bit-identical."""
    script = tmp_path / "ddp.py"
    script.write_text(f"""
import sys, torch, torch.distributed as dist
sys.path.insert(0, {str(ROOT / 'tests')!r})
from tiny_runs import tiny_ddib
from translab.training import train
torch.set_num_threads(1)
res = train(tiny_ddib(4, "train.checkpoint_every=4"), {str(tmp_path / 'run')!r})
from accelerate import PartialState
state = PartialState()
rank = state.process_index
# gather a fingerprint of each rank's live weights (not only the checkpoint, which rank 0 writes)
vec = torch.cat([p.detach().flatten() for p in res.method.nets.parameters()])
out = [torch.zeros_like(vec) for _ in range(state.num_processes)]
dist.all_gather(out, vec)
if rank == 0:
    print("WORLD", state.num_processes, "MAXDIFF", float((out[0] - out[1]).abs().max()), "NORM", float(vec.norm()))
# shut the process group down before exit: a rank that exits while gloo threads still run can abort
dist.barrier()
dist.destroy_process_group()
""")
    line = _torchrun_line(script, 29517, "WORLD")
    fields = line.split()
    assert fields[1] == "2"
    assert float(fields[3]) == 0.0, line
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len(metrics) == 4  # only rank 0 writes


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")
def test_two_cpu_processes_resume_exactly(tmp_path):
    """torchrun with 2 gloo processes: a run stopped at step 2 and resumed to step 4 ends with the weights of an
    uninterrupted 4-step run, so each rank got its own random stream back (not rank 0's), and the checkpoint
    holds the other rank's state."""
    script = tmp_path / "ddp_resume.py"
    script.write_text(f"""
import sys, torch, torch.distributed as dist
sys.path.insert(0, {str(ROOT / 'tests')!r})
from tiny_runs import tiny_ddib
from translab.checkpoint import latest_checkpoint, load_checkpoint
from translab.training import train
torch.set_num_threads(1)
sets = ("train.checkpoint_every=2", "train.deterministic=true")
train(tiny_ddib(4, *sets), {str(tmp_path / 'ref')!r})
train(tiny_ddib(2, *sets), {str(tmp_path / 'cut')!r})
train(tiny_ddib(4, *sets), {str(tmp_path / 'cut')!r})
if dist.get_rank() == 0:
    a, b = (load_checkpoint(latest_checkpoint(__import__("pathlib").Path(d) / "checkpoints"))
            for d in ({str(tmp_path / 'ref')!r}, {str(tmp_path / 'cut')!r}))
    same = all(torch.equal(a["nets"][n][k], b["nets"][n][k]) for n in a["nets"] for k in a["nets"][n])
    print("SAME", same, "OTHER_RANKS", len(a.get("other_ranks", [])))
dist.barrier()
dist.destroy_process_group()
""")
    line = _torchrun_line(script, 29518, "SAME")
    assert line == "SAME True OTHER_RANKS 1", line


def test_each_rank_restores_its_own_random_stream_and_a_new_world_size_reseeds_the_others():
    """_restore_rank_state: rank r of the checkpoint's world takes other_ranks[r - 1]; on another world size,
    rank 0 keeps the checkpoint's own stream (and says so) and the other ranks draw streams of their own."""
    from translab.training import _restore_rank_state, _rng_state

    class Extra:
        loaded = None

        def load_extra_state(self, state):
            self.loaded = state

    def stream(seed):
        return _rng_state(torch.Generator().manual_seed(seed))

    cfg = tiny_ddib(2)
    state = {"step": 7, "rng": stream(1), "extra": {},
             "other_ranks": [{"rng": stream(2), "extra": {"pairs": 2}}]}
    draws, logs = [], []
    for rank, world in ((0, 2), (1, 2), (0, 3), (1, 3), (2, 3)):
        g, method = torch.Generator(), Extra()
        _restore_rank_state(state, method, g, cfg, rank, world, logs.append)
        draws.append(float(torch.rand(1, generator=g)))
        if (rank, world) == (1, 2):
            assert method.loaded == {"pairs": 2}
    first, second = (float(torch.rand(1, generator=torch.Generator().manual_seed(k))) for k in (1, 2))
    assert draws[:2] == [first, second]
    assert draws[2] == first and len({draws[2], draws[3], draws[4]}) == 3
    assert len(logs) == 1 and "2 process(es), this run has 3" in logs[0]


def test_hflip_mirrors_a_seeded_half_and_a_resumed_run_draws_the_same_flips(tmp_path):
    """train.hflip: each image mirrored with probability 1/2 from the run's generator; a run stopped at step 2 and
    resumed to step 4 ends with the weights of an uninterrupted 4-step run."""
    from translab.training import random_hflip

    x = torch.arange(4 * 3 * 2 * 2, dtype=torch.float32).reshape(4, 3, 2, 2)
    g = torch.Generator().manual_seed(0)
    picks = torch.rand(4, generator=torch.Generator().manual_seed(0)) < 0.5
    y = random_hflip(x, g)
    for i in range(4):
        assert torch.equal(y[i], x[i].flip(-1) if picks[i] else x[i])
    ref = train(tiny_ddib(4, "train.hflip=true", "train.checkpoint_every=2", "train.deterministic=true"),
                tmp_path / "ref").run_dir
    cut = tmp_path / "cut"
    train(tiny_ddib(2, "train.hflip=true", "train.checkpoint_every=2", "train.deterministic=true"), cut)
    train(tiny_ddib(4, "train.hflip=true", "train.checkpoint_every=2", "train.deterministic=true"), cut)
    plain = train(tiny_ddib(4, "train.checkpoint_every=2", "train.deterministic=true"), tmp_path / "plain").run_dir
    a, b, c = _weights(ref), _weights(cut), _weights(plain)
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])
    assert not all(torch.equal(a[n][k], c[n][k]) for n in a for k in a[n])  # the flips changed the training
