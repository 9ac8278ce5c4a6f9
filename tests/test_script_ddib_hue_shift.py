"""scripts/ddib_hue_shift.py: one row per setting, bins that cover every measured input, the signed shift against
an analytic oracle, and bad lists as one-line errors."""
from __future__ import annotations

import json

import pytest
import torch

from scripts_helper import load_script, run_script


def run(*args: str):
    return run_script("ddib_hue_shift.py", *args)


def test_rows_per_setting_and_bins_cover_every_measured_input(tmp_path):
    out = tmp_path / "hs.json"
    done = run("cmnist-2to3/ddib", "--steps", "1,2", "--guidance", "8,1", "--limit", "6", "--out", str(out))
    assert done.returncode == 0, done.stderr
    record = json.loads(out.read_text())
    assert [(r["steps"], r["guidance"]) for r in record["rows"]] == [(1, 8.0), (2, 8.0), (1, 1.0), (2, 1.0)]
    for r in record["rows"]:
        assert sum(b["images"] for b in r["by_input_hue"]) == 6 and len(r["by_input_hue"]) == 12
        assert r["bin_signed_range_deg"][0] <= r["mean_signed_deg"] <= r["bin_signed_range_deg"][1]


def test_signed_shift_oracle():
    """Analytic oracle: an output whose foreground is the input's rotated by +30 degrees of hue (R -> G -> B
    sectors: a pure red stroke becomes orange-yellow, hue 30) shifts by +30; an identical output by 0."""
    script = load_script("ddib_hue_shift.py")
    x = -torch.ones(2, 3, 8, 8)
    x[:, 0, 2:6, 2:6] = 1.0  # a red square: hue 0
    y = x.clone()
    y[1, 1, 2:6, 2:6] = 0.0  # green at half: (1, 0.5, 0) in [0, 1], hue 30
    h_in, shift = script.signed_shift(x, y)
    assert h_in.tolist() == pytest.approx([0.0, 0.0], abs=1e-4)
    assert shift.tolist() == pytest.approx([0.0, 30.0], abs=1e-3)
    bins = script.by_input_hue(h_in, shift)
    assert bins[0]["images"] == 2 and bins[0]["mean_signed_deg"] == pytest.approx(15.0, abs=1e-2)


def test_bad_lists_are_refused(tmp_path):
    for flag, bad in (("--steps", "a,b"), ("--steps", "8,0"), ("--guidance", "x"), ("--guidance", "-1")):
        done = run("cmnist-2to3/ddib", flag, bad, "--out", str(tmp_path / "x.json"))
        assert done.returncode != 0 and f"{flag}: expected comma-separated numbers" in done.stderr
    assert not (tmp_path / "x.json").exists()
