"""DDIB's model.init_from: a fine-tuning starts from a trained DDIB's inference denoisers, and refuses one that
does not fit (tiny real runs)."""
from __future__ import annotations

import json

import pytest
import torch

from tiny_runs import tiny_ddib


@pytest.fixture(scope="module")
def tiny_source(tmp_path_factory):
    from translab.training import train

    run = tmp_path_factory.mktemp("ddib_source") / "run"
    train(tiny_ddib(2, "model.label_dropout=0.1"), run)
    return run


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(v, b[k]) for k, v in a.items())


def test_init_from_copies_the_source_ema_then_fine_tunes(tmp_path, tiny_source):
    from translab.methods import build_method
    from translab.rundir import training_total
    from translab.training import load_init_sources, load_method, train

    source, _, _ = load_method(tiny_source)
    theirs = source.infer_net("eps").state_dict()
    cfg = tiny_ddib(2, "model.label_dropout=0.1", f"model.init_from={tiny_source}", "train.seed=3")
    fresh = build_method(cfg)
    assert not _same(fresh.nets["eps"].state_dict(), theirs)
    fresh.init_for_training(cfg, load_init_sources(fresh))
    assert _same(fresh.nets["eps"].state_dict(), theirs)
    train(cfg, tmp_path / "tuned")
    tuned, _, _ = load_method(tmp_path / "tuned")
    assert not _same(tuned.infer_net("eps").state_dict(), theirs)  # two steps moved the weights
    record = json.loads((tmp_path / "tuned" / "train_record.json").read_text())
    assert training_total(record, "steps") == 4  # both stages counted


def test_init_from_refuses_another_layout_or_method(tmp_path, tiny_source):
    from translab.methods import build_method
    from translab.methods.base import MethodError
    from translab.training import load_init_sources

    cases = [(("model.label_dropout=0.1", "model.unet.base_channels=4"), r"set model.unet to match"),
             (("model.label_dropout=0.0",), r"has the null class"),
             (("model.label_dropout=0.1", "model.diffusion.num_timesteps=100"), r"set model.diffusion to match"),
             (("model.label_dropout=0.1", "data.reverse=true"), r"data.reverse=False.*data.reverse=True")]
    for overrides, message in cases:
        cfg = tiny_ddib(1, *overrides, f"model.init_from={tiny_source}")
        method = build_method(cfg)
        with pytest.raises(MethodError, match=message):
            method.init_for_training(cfg, load_init_sources(method))
    cfg = tiny_ddib(1, f"model.init_from={tiny_source}", "model.label_dropout=0.1")
    with pytest.raises(MethodError, match="not loaded"):
        build_method(cfg).init_for_training(cfg, {})
