"""The one-step student (translab.methods.distill) on tiny real components.

Oracle: a teacher whose translation is known in closed form (a -> b: the colour negative -x; b -> a: x / 2),
so the kept pairs can be checked exactly and the student's error against the map measured; plus exact resume
of the kept pairs and the student, and the teacher checks.
"""
from __future__ import annotations

import pytest
import torch

import translab.training as training
from tiny_runs import with_teacher
from translab.config import resolve_config
from translab.methods.base import Method, MethodError, Translation
from translab.methods.distill import from_uint8, to_uint8

TINY = ["data.dataset=synthetic", "data.image_size=8", "data.limit=16", "train.batch_size=4",
        "train.progress=false", "train.sample_every=0", "train.log_every=1", "train.threads=1",
        "model.unet.base_channels=8", "model.unet.channel_mult=[1,2]", "model.unet.norm_groups=4"]


class ClosedFormTeacher(Method):
    """a2b: y = -x; b2a: y = x / 2. Counts its calls."""

    name = "closed-form"

    def __init__(self):
        super().__init__(None, 8, 3)
        self.nets["unused"] = torch.nn.Linear(1, 1)
        self.calls = 0

    def translate(self, x, direction, steps=None, generator=None, return_latents=False, progress=None):
        self.calls += 1
        return Translation(-x if direction == "a2b" else x / 2, 1)


def closed_form(x: torch.Tensor, direction: str) -> torch.Tensor:
    return -x if direction == "a2b" else x / 2


@pytest.fixture
def oracle_teacher(monkeypatch):
    """Every distillation trained in the test gets the closed-form teacher, on its own run's data settings."""
    teacher = ClosedFormTeacher()

    def load(method, names=None):
        names = method.init_sources() if names is None else names
        return {"teacher": (teacher, config("train.steps=1"), {"checkpoint": "closed form"})} if names else {}

    monkeypatch.setattr(training, "load_init_sources", load)
    return teacher


def config(*extra: str):
    return resolve_config("distill", None, overrides=TINY + ["model.teacher=closed-form", *extra])


def test_kept_pairs_are_the_teachers_translations_of_the_training_batches(oracle_teacher, tmp_path):
    result = training.train(config("model.pair_steps=3", "train.steps=5"), tmp_path / "run")
    method = result.method
    assert oracle_teacher.calls == 2 * 3, "the teacher is called for both directions in the pair steps only"
    for direction in ("a2b", "b2a"):
        assert method.kept(direction) == 3 * 4
        inputs, outputs = method.pairs[f"{direction}_in"], method.pairs[f"{direction}_out"]
        want = to_uint8(closed_form(from_uint8(inputs, "cpu"), direction))
        assert (outputs.int() - want.int()).abs().max() <= 1, direction  # the input's own uint8 rounding


def test_student_learns_the_closed_form_map(oracle_teacher, tmp_path):
    result = training.train(config("model.pair_steps=4", "train.steps=400", "train.lr=3e-3",
                                   "train.ema_decay=0.9"), tmp_path / "run")
    method = result.method.eval()
    for direction in ("a2b", "b2a"):
        x = from_uint8(method.pairs[f"{direction}_in"], "cpu")  # the training images (synthetic squares, discs)
        err = (method.translate(x, direction).images - closed_form(x, direction)).abs().mean()
        start = closed_form(x, direction).sub(x).abs().mean()  # the residual student's error at G = 0
        assert err < 0.1 * start, (direction, float(err), float(start))
        assert method.translate(x, direction).nfe == 1


def test_resumed_run_keeps_its_pairs_and_continues_exactly(oracle_teacher, tmp_path):
    straight = training.train(config("model.pair_steps=2", "train.steps=4"), tmp_path / "straight")
    training.train(config("model.pair_steps=2", "train.steps=1", "train.checkpoint_every=1"), tmp_path / "resumed")
    resumed = training.train(config("model.pair_steps=2", "train.steps=4", "train.checkpoint_every=1"),
                             tmp_path / "resumed")
    for key, kept in straight.method.pairs.items():
        assert torch.equal(kept, resumed.method.pairs[key]), key
    for a, b in zip(straight.method.nets.parameters(), resumed.method.nets.parameters()):
        assert torch.equal(a, b)


def test_a_teacher_of_other_domains_or_no_teacher_is_refused(tmp_path):
    teacher = with_teacher(TINY[:3] + ["{teacher}"])[-1]  # a tiny DDIB on 8x8 synthetic pairs
    cfg = resolve_config("distill", None, overrides=TINY + ["data.image_size=16", f"model.teacher={teacher}",
                                                            "train.steps=1"])
    with pytest.raises(MethodError, match=r"data.image_size=8, this run has data.image_size=16"):
        training.train(cfg, tmp_path / "other")
    from translab.rundir import RunDirError

    with pytest.raises(RunDirError, match=r"^model.teacher=no/such/run: no such run directory") as err:
        training.train(resolve_config("distill", None, overrides=TINY + ["model.teacher=no/such/run",
                                                                        "train.steps=1"]), tmp_path / "missing")
    assert len(str(err.value).splitlines()) == 1
    assert not list((tmp_path / "missing").glob("checkpoints/*.pt")), "nothing is trained without its teacher"
    with pytest.raises(MethodError, match="model.teacher is not set"):
        training.train(resolve_config("distill", None, overrides=TINY + ["train.steps=1"]), tmp_path / "none")


def test_teacher_settings_reach_the_teacher_and_a_wrong_one_is_refused(tmp_path):
    """model.teacher_settings: the kept pairs are the teacher's translations at those inference settings."""
    from translab.config import ConfigError
    from translab.loading import load_method

    teacher = with_teacher(TINY[:3] + ["{teacher}"])[-1]  # a tiny DDIB on 8x8 synthetic pairs
    overrides = TINY + [f"model.teacher={teacher}", "model.pair_steps=1", "train.steps=1"]
    cfg = resolve_config("distill", None, overrides=overrides + ["model.teacher_settings={lowpass_factor: 8}"])
    method = training.train(cfg, tmp_path / "set").method
    x = from_uint8(method.pairs["a2b_in"], "cpu")
    ddib = load_method(teacher)[0].eval()
    want = ddib.with_inference(lowpass_factor=8).translate(x, "a2b").images
    assert (method.pairs["a2b_out"].int() - to_uint8(want).int()).abs().max() <= 1
    assert (to_uint8(ddib.translate(x, "a2b").images).int() - to_uint8(want).int()).abs().max() > 1  # it matters
    bad = resolve_config("distill", None, overrides=overrides + ["model.teacher_settings={no_such: 1}"])
    with pytest.raises(ConfigError, match="model.no_such is not an inference setting of ddib"):
        training.train(bad, tmp_path / "bad")
    with pytest.raises(ConfigError, match="teacher_settings"):
        resolve_config("distill", None, overrides=overrides + ["model.teacher_settings=3"])
