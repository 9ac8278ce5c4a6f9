"""`translab demo` on the shipped weights: every shipped method lands in one report (tiny subset, no Inception)."""
from __future__ import annotations

import pytest

from translab.cli import main
from translab.shipped import shipped_models


def test_demo_quick_fills_every_shipped_row(tmp_path, capsys):
    shipped = shipped_models()
    assert main(["demo", "--quick", "--limit", "2", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    report = (tmp_path / "demo" / "report.md").read_text()
    for model in shipped:
        method = model.split("/")[1]
        assert f"{method} a2b" in report, method
    if "cmnist-2to3/ddib" in shipped:
        assert "sdedit a2b" in report
    assert (tmp_path / "demo" / "report.html").is_file()
    assert "report:" in out
    # the installed package was not written to: evaluations live in the demo's own copies
    assert all(not (folder / "eval").exists() for folder in shipped.values())


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
                      getattr(cfg.model, "denoiser_init", None)))
        if len(calls) == 4:
            raise Stop

    monkeypatch.setattr(translab.training, "train", record)
    try:
        main(["demo", "--train", "--out", str(tmp_path / "demo")])
    except Stop:
        pass
    assert [c[0] for c in calls] == ["ddib", "cyclegan", "unit-ddpm", "not"]
    preset = translab.config.resolve_config("unit-ddpm", "cmnist-2to3").model
    for field, index, source in (("generator_init", 2, "cyclegan"), ("denoiser_init", 3, "ddib")):
        unit_init = calls[2][index]
        if getattr(preset, field) is not None:
            assert unit_init == str(tmp_path / "demo" / "train" / source), field
        else:
            assert unit_init is None, field
    assert calls[0][1] == str(tmp_path / "demo" / "train" / "ddib")
