"""A malformed evaluation file is a one-line error naming the file and field, never a dropped row or a string
rendered as a number; `compare --out FILE` is refused before any work."""
from __future__ import annotations

import json

import pytest

from translab.cli import main
from translab.report.tables import load_evals
from translab.rundir import RunDirError


def eval_dir(tmp_path, name: str, data) -> object:
    run = tmp_path / name
    (run / "eval").mkdir(parents=True)
    (run / "config.yaml").write_text("method: not\n")
    (run / "eval" / "not_a2b_nosteps.json").write_text(json.dumps(data))
    return run


GOOD = {"method": "not", "direction": "a2b", "metrics": {"transport_cost": {"value": 0.1},
                                                       "fid_kid": {"inception": {"fid": 3.0, "kid_mean": 0.1}}},
        "cost": {"nfe_per_image": 1}}


def test_a_well_formed_file_loads(tmp_path):
    assert [e["method"] for e in load_evals([eval_dir(tmp_path, "ok", GOOD)])] == ["not"]


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(metrics=[1, 2]), "'metrics' must be a mapping"),
    (lambda d: d.pop("metrics"), "'metrics' must be a mapping"),
    (lambda d: d["metrics"]["transport_cost"].update(value="oops"), "metrics.transport_cost.value must be a number"),
    (lambda d: d["metrics"]["fid_kid"]["inception"].update(fid="12"), "metrics.fid_kid.inception.fid must be a number"),
    (lambda d: d["cost"].update(nfe_per_image=True), "cost.nfe_per_image must be a number"),
])
def test_malformed_evaluation_files_are_named(tmp_path, change, message):
    data = json.loads(json.dumps(GOOD))
    change(data)
    run = eval_dir(tmp_path, "bad", data)
    with pytest.raises(RunDirError, match=message) as err:
        load_evals([eval_dir(tmp_path, "ok", GOOD), run])
    assert "not_a2b_nosteps.json" in str(err.value)


def test_compare_refuses_an_out_that_is_a_file(tmp_path, capsys):
    out = tmp_path / "report.txt"
    out.write_text("keep me")
    assert main(["compare", str(eval_dir(tmp_path, "ok", GOOD)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a file" in err and "Traceback" not in err and out.read_text() == "keep me"
