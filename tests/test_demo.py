"""`translab demo` on the shipped weights: every shipped method lands in one report (tiny subset, no Inception)."""
from __future__ import annotations

import json

import pytest

from translab.cli import main
from translab.commands.demo import DEMO_LIMIT, DEMO_ROWS, QUICK_LIMIT, demo_limit, split_counts
from translab.shipped import shipped_models


def test_demo_quick_fills_every_shipped_row(tmp_path, capsys):
    shipped = shipped_models()
    # the package ships every model the demo names (a missing one is a packaging defect, not a skipped check)
    assert {row.model for row in DEMO_ROWS} <= set(shipped)
    assert main(["demo", "--quick", "--limit", "2", "--out", str(tmp_path / "demo")]) == 0
    captured = capsys.readouterr()
    out, err = captured.out, captured.err
    report = (tmp_path / "demo" / "report.md").read_text()
    for model in shipped:
        method = model.split("/")[1]
        assert f"{method} a2b" in report, method
    assert "sdedit a2b" in report
    # DDIB's row runs the shipped model's own solver steps (its config is the one source of its setting)
    assert "ddib a2b (8 steps)" in report
    assert (tmp_path / "demo" / "report.html").is_file()
    assert f"report: {(tmp_path / 'demo' / 'report.html').resolve()}" in out
    # the installed package was not written to: evaluations live in the demo's own copies
    assert all(not (folder / "eval").exists() for folder in shipped.values())
    # every row used the same subset: the first 2 test 2s against the first 2 test 3s
    evals = [json.loads(p.read_text()) for p in (tmp_path / "demo" / "runs").glob("*/eval/*.json")]
    methods = sorted(e["method"] for e in evals)
    assert methods.count("ot-exact") == 1 and len(evals) == len(DEMO_ROWS) + 1  # the exact-OT reference row too
    assert "ot-exact a2b (exact OT reference)" in report and "transport cost / exact OT" in report
    assert {(e["dataset"]["n_inputs"], e["dataset"]["n_reference"]) for e in evals} == {(2, 2)}
    # one progress bar over the translators (2 inputs + 2 cycle images per row), none per method
    rows = len(DEMO_ROWS)
    assert f"{4 * rows}/{4 * rows}" in err
    assert "ddib a2b" not in err and "(cycle)" not in err


def parse_demo(*argv):
    from translab.cli import build_parser

    return build_parser().parse_args(["demo", *argv])


def test_demo_size_flags():
    from translab.config import ConfigError

    assert demo_limit(parse_demo()) == DEMO_LIMIT == 256
    assert demo_limit(parse_demo("--quick")) == QUICK_LIMIT
    assert demo_limit(parse_demo("--quick", "--limit", "8")) == 8
    assert demo_limit(parse_demo("--limit", "300")) == 300
    assert demo_limit(parse_demo("--full")) is None
    with pytest.raises(ConfigError, match="--full"):
        demo_limit(parse_demo("--full", "--limit", "5"))
    with pytest.raises(ConfigError, match="at least 1"):
        demo_limit(parse_demo("--limit", "0"))
    with pytest.raises(SystemExit):
        parse_demo("--quick", "--full")


def test_demo_default_subset_is_the_first_256_of_each_test_split():
    assert split_counts(DEMO_LIMIT) == (256, 256)
    assert split_counts(None) == (1032, 1010)  # --full: RESULTS.md's full split


def test_demo_ddib_row_uses_the_shipped_defaults():
    """The demo's DDIB row overrides nothing: the shipped model's config is the one source of its setting
    (DPM-Solver++(2M), 8 solver steps per chain from t = 850, guidance w = 12 on the luminance for t in [500, 999],
    the input's channel means kept, as RESULTS.md's table); its chains start at t = 850 whatever the step count (a start that moved with it lost the hue)."""
    from translab.shipped import resolve_run
    from translab.training import load_method

    ddib = next(r for r in DEMO_ROWS if r.label == "ddib")
    assert ddib.overrides == {} and ddib.steps is None and ddib.as_method is None
    shipped, _, _ = load_method(resolve_run(ddib.model))
    assert ((shipped.cfg.sampler, shipped.cfg.steps, shipped.cfg.t_max, shipped.cfg.guidance,
             shipped.cfg.guidance_interval, shipped.cfg.guidance_on, shipped.cfg.lowpass_factor)
            == ("dpmpp2m", 8, 850, 12.0, [500, 999], "luminance", 32))
    for steps in (8, 10, 20, 50):
        ts = shipped.timesteps(steps)
        assert (ts[0], ts[-1], len(ts)) == (850, 0, steps), steps
    assert len({r.label for r in DEMO_ROWS}) == len(DEMO_ROWS)


@pytest.mark.parametrize("denoiser_init", [None, "cmnist-2to3/ddib"], ids=["preset", "with-denoiser-init"])
def test_demo_train_trains_cyclegan_before_the_unit_ddpm_that_starts_from_it(tmp_path, monkeypatch, denoiser_init):
    """`demo --train` order and wiring, with training itself replaced by a recorder (no weights are made).

    Second case: a UNIT-DDPM preset that also starts its denoisers from a DDIB gets the DDIB trained here."""
    import translab.config
    import translab.training

    resolve_config = translab.config.resolve_config
    if denoiser_init is not None:
        def with_denoiser_init(method, *args, **kwargs):
            cfg = resolve_config(method, *args, **kwargs)
            if method == "unit-ddpm":
                cfg.model.denoiser_init = denoiser_init
            return cfg

        monkeypatch.setattr(translab.config, "resolve_config", with_denoiser_init)
    calls = []

    class Stop(Exception):
        pass

    def record(cfg, run_dir, **_):
        calls.append((cfg.method, str(run_dir), getattr(cfg.model, "generator_init", None),
                      getattr(cfg.model, "denoiser_init", None), getattr(cfg.model, "teacher", None)))
        if len(calls) == 6:
            raise Stop

    monkeypatch.setattr(translab.training, "train", record)
    try:
        main(["demo", "--train", "--out", str(tmp_path / "demo")])
    except Stop:
        pass
    assert [c[0] for c in calls] == ["ddib", "cyclegan", "unit-ddpm", "not", "dsbm", "distill"]
    assert calls[5][4] == str(tmp_path / "demo" / "train" / "ddib"), "the student learns the DDIB trained here"
    preset = translab.config.resolve_config("unit-ddpm", "cmnist-2to3").model
    for field, index, source in (("generator_init", 2, "cyclegan"), ("denoiser_init", 3, "ddib")):
        unit_init = calls[2][index]
        if getattr(preset, field) is not None:
            assert unit_init == str(tmp_path / "demo" / "train" / source), field
        else:
            assert unit_init is None, field
    assert calls[0][1] == str(tmp_path / "demo" / "train" / "ddib")


def test_demo_emoji_fills_every_row_with_the_counterpart_columns(tmp_path, capsys):
    """`translab demo --dataset emoji-m2f`: every shipped OpenMoji model, the exact-OT row, and the columns that
    use the true counterparts (tone and concept kept, retrieval, distance to the truth)."""
    from translab.commands.demo import EMOJI_ROWS

    assert {row.model for row in EMOJI_ROWS} <= set(shipped_models())
    out = tmp_path / "demo"
    assert main(["demo", "--dataset", "emoji-m2f", "--quick", "--limit", "4", "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    for label in ("ddib a2b", "sdedit a2b", "unit-ddpm a2b", "cyclegan a2b", "not a2b", "dsbm a2b", "ot-exact a2b"):
        assert label in report, label
    for header in ("tone kept", "concept kept", "counterpart top-1 (input's)", "to counterpart, pixels (/ input's)",
                   "target accuracy"):
        assert header in report, header
    evals = [json.loads(p.read_text()) for p in (out / "runs").glob("*/eval/*.json")]
    assert len(evals) == len(EMOJI_ROWS) + 1
    assert all(e["dataset"]["type"] == "emoji" and e["dataset"]["n_inputs"] == 4 for e in evals)
    ot = next(e for e in evals if e["method"] == "ot-exact")
    assert ot["metrics"]["counterpart"]["available"] and "tone_kept" in ot["metrics"]
    assert "test men" in capsys.readouterr().out


def test_working_copy_replaces_each_file_by_a_rename(tmp_path):
    """Two commands on one shipped model share its writable copy: copying again renames complete files into
    place, so a file the first command has open still reads whole, and no temporary file is left."""
    import os

    from translab.shipped import shipped_models, working_copy

    name = "cmnist-2to3/not"
    src = shipped_models()[name] / "model.safetensors"
    dest = working_copy(name, tmp_path)
    copied = dest / "model.safetensors"
    assert copied.read_bytes() == src.read_bytes()
    with open(copied, "rb") as held:
        before = os.fstat(held.fileno()).st_ino
        assert working_copy(name, tmp_path) == dest
        assert os.stat(copied).st_ino != before
        assert held.read() == src.read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == sorted(p.name for p in src.parent.iterdir() if p.is_file())
