"""The published Colored MNIST protocol (translab.data.cmnist_asbm, ``evaluate --protocol asbm``): its colouring
against the per-image rule as published, its tiling and hue stream, and an evaluation file written under it."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from translab.data.cmnist_asbm import SEED, asbm_colorize, asbm_test_set
from translab.methods import MethodError


def published_rule(v: np.ndarray, h: float) -> np.ndarray:
    """The published per-image colouring, written out: six sectors picked by round(H / 60) mod 6."""
    a = v * (h % 60) / 60
    inc, dec, z = a, v - a, np.zeros_like(v)
    return np.stack({0: (v, inc, z), 1: (dec, v, z), 2: (z, v, inc), 3: (z, dec, v), 4: (inc, z, v),
                     5: (v, z, dec)}[round(h / 60) % 6])


def test_colouring_matches_the_published_rule_in_every_sector():
    rng = np.random.default_rng(0)
    grey, hues = rng.random((60, 5, 5)), np.linspace(0, 359.9, 60)  # every sector, both sides of each rounding
    out = asbm_colorize(grey, hues)
    for i in range(60):
        np.testing.assert_allclose(out[i], published_rule(grey[i], hues[i]), atol=1e-12)


def test_test_sets_are_tiled_and_share_one_seeded_hue_stream():
    twos, threes = asbm_test_set(2, 2500), asbm_test_set(3, 2500)
    assert twos.images.shape == (2500, 3, 32, 32) and float(twos.images.min()) >= -1 and float(twos.images.max()) <= 1
    np.random.seed(SEED)  # the published notebook's stream: np.random.seed(42); 360 * np.random.rand(size)
    expected = torch.from_numpy(360 * np.random.rand(2500)).float()
    assert torch.equal(twos.meta["hue"], expected) and torch.equal(threes.meta["hue"], expected)
    n = 1032  # MNIST's test 2s: copy k of digit i is image k * 1032 + i, with its own hue
    grey = (twos.images[0] + 1).amax(0) / 2
    assert torch.allclose((twos.images[n] + 1).amax(0) / 2, grey, atol=1e-6)
    assert not torch.allclose(twos.images[n], twos.images[0])
    assert twos.names[n] == "test_2_00000_copy1"


def test_an_evaluation_under_the_published_protocol(tmp_path):
    from translab.config import resolve_config
    from translab.evaluation import EvalOptions, evaluate_run
    from translab.training import train

    cfg = resolve_config("cyclegan", None, None, [
        "data.limit=16", "train.batch_size=4", "train.log_every=1", "train.sample_every=0", "train.progress=false",
        "train.threads=1", "train.steps=1", "model.generator.ngf=4",
        "model.generator.n_blocks=1", "model.discriminator.ndf=4", "model.discriminator.n_layers=1"])
    run = tmp_path / "run"
    train(cfg, run)
    opts = EvalOptions(limit=12, inception=False, progress=False, protocol="asbm")
    result, path = evaluate_run(run, opts)
    assert path.name == "cyclegan_a2b_nosteps_limit12_asbm.json"
    saved = json.loads(path.read_text())
    assert saved["protocol"]["name"] == "asbm" and "tiled to 10,000" in saved["protocol"]["test_sets"]
    assert saved["dataset"]["n_inputs"] == saved["dataset"]["n_reference"] == 12
    floor = saved["metrics"]["protocol_floor"]["fid_kid"]["classifier"]
    assert floor["available"] and floor["fid"] > 0  # two recolourings of the same 3s differ only in hue
    assert saved["metrics"]["cycle_error"]["available"] is False and "memorisation" not in saved["metrics"]


def test_the_published_protocol_refuses_other_data(tmp_path):
    from translab.evaluation import check_protocol

    with pytest.raises(MethodError, match="needs a run trained on cmnist at 32x32 RGB, not synthetic"):
        check_protocol("asbm", "synthetic", 8, 3)
    with pytest.raises(MethodError, match="unknown evaluation protocol 'paper'"):
        check_protocol("paper", "cmnist", 32, 3)


def test_the_commands_offer_every_protocol_and_no_other():
    from translab.commands.common import PROTOCOL_NAMES
    from translab.evaluation import PROTOCOLS

    assert PROTOCOL_NAMES == tuple(PROTOCOLS)
