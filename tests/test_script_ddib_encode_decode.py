"""scripts/ddib_encode_decode.py: each chain gets its own step count, and bad step pairs are one-line errors."""
from __future__ import annotations

import json

import pytest

from scripts_helper import load_script, run_script


def run(*args: str):
    return run_script("ddib_encode_decode.py", *args)


def test_each_chain_uses_its_own_step_count(tmp_path):
    out = tmp_path / "ed.json"
    done = run("cmnist-2to3/ddib", "--pairs", "1:1,1:2,2:1", "--limit", "4", "--out", str(out))
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    rows = record["rows"]
    assert [(r["encode_steps"], r["decode_steps"]) for r in rows] == [(1, 1), (1, 2), (2, 1)]
    assert [len(r["encode_timesteps"]) for r in rows] == [1, 1, 2]
    assert [len(r["decode_timesteps"]) for r in rows] == [1, 2, 1]
    assert record["images"] == 4 and record["settings"]["t_max"] == 850
    assert all(0 <= r["target_accuracy"] <= 1 and 0 <= r["hue_error_deg"] <= 180 for r in rows)


def test_guidance_and_lowpass_flags_set_the_run_s_settings_and_the_record(tmp_path):
    """The shipped model guides with w = 12 and keeps the input's channel means; the flags replace both, and the
    recorded command repeats them."""
    out = tmp_path / "ed.json"
    done = run("cmnist-2to3/ddib", "--pairs", "1:1", "--limit", "2", "--out", str(out), "--guidance", "8",
               "--lowpass-factor", "0")
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert (record["settings"]["guidance"], record["settings"]["lowpass_factor"]) == (8.0, 0)
    assert record["command"].endswith("--lowpass-factor 0 --guidance 8")


def test_equal_step_counts_score_the_method_s_own_translation():
    """Oracle: with the same count for both chains the script scores what DDIB's translate gives at that count."""
    from translab.data import build_domain_pair
    from translab.data.base import stack_dataset
    from translab.metrics.color import hue_error
    from translab.shipped import resolve_run
    from translab.training import load_method

    script = load_script("ddib_encode_decode.py")
    method, cfg, _ = load_method(resolve_run("cmnist-2to3/ddib"))
    x = stack_dataset(build_domain_pair(cfg.data).get("a", "test"), 4)
    row = script.score(method, x, 2, 2, cfg.data.digit_b)
    own = method.translate(x, "a2b", steps=2).images
    assert row["hue_error_deg"] == pytest.approx(hue_error(x, own)["mean_deg"], abs=1e-4)
    other = script.score(method, x, 1, 2, cfg.data.digit_b)  # another encoder: other outputs
    assert other["hue_error_deg"] != pytest.approx(row["hue_error_deg"], abs=1e-4)


def test_bad_step_pairs_are_refused(tmp_path):
    for bad in ("8", "8:0", "a:b", "8:8:8"):
        done = run("cmnist-2to3/ddib", "--pairs", bad, "--out", str(tmp_path / "x.json"))
        assert done.returncode != 0
        assert "--pairs: expected ENCODE:DECODE" in done.stderr
    assert not (tmp_path / "x.json").exists()
