"""Exact optimal transport between test sets (translab.ot_exact) and its reference row in the report.

Analytic oracles: a shifted, shuffled copy of a set is transported back by the inverse shuffle at cost
||shift||^2 / D (for any permutation s, sum_i <x_i - x_s(i), c> = 0); on the line the optimal coupling is
the monotone one, whose cost is the integral of the squared difference of the two quantile functions, also
with n != m.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from translab.cli import main
from translab.data.base import DataError
from translab.ot_exact import (OTSolverError, assignment, cost_matrix, evaluate_ot_exact, exact_plan, plan_cost,
                               plan_path, solve)

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Each test gets an empty $TRANSLAB_CACHE: plans and kept results never leak between tests."""
    monkeypatch.setenv("TRANSLAB_CACHE", str(tmp_path / "cache"))


def _quantile_cost_1d(x: np.ndarray, y: np.ndarray) -> float:
    """int_0^1 (F^-1(t) - G^-1(t))^2 dt for uniform empirical measures on the line (the 1-D OT cost)."""
    xs, ys = np.sort(x), np.sort(y)
    cuts = np.unique(np.concatenate([np.arange(len(x) + 1) / len(x), np.arange(len(y) + 1) / len(y)]))
    mid = (cuts[:-1] + cuts[1:]) / 2
    qx = xs[np.minimum((mid * len(x)).astype(int), len(x) - 1)]
    qy = ys[np.minimum((mid * len(y)).astype(int), len(y) - 1)]
    return float(((qx - qy) ** 2 * np.diff(cuts)).sum())


def _points(values: np.ndarray) -> torch.Tensor:
    """(n,) numbers -> n one-pixel images (n, 1, 1, 1), so that c(x, y) = (x - y)^2."""
    return torch.from_numpy(values).double().reshape(-1, 1, 1, 1)


# --------------------------------------------------------------------------------------------------
# the solver against closed forms


def test_shifted_shuffled_copy_is_sent_back_by_the_inverse_shuffle():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(12, 3, 4, 4, generator=g, dtype=torch.float64) - 0.5
    shift = 0.3 * torch.randn(1, 3, 4, 4, generator=g, dtype=torch.float64)
    perm = torch.randperm(12, generator=g)
    y = (x + shift)[perm]  # y_j = x_perm[j] + c, in float64 so that y - x is the shift to 1e-16
    ot = exact_plan(x, y, use_cache=False)
    expected = np.zeros((12, 12))
    expected[perm.numpy(), np.arange(12)] = 1 / 12
    np.testing.assert_allclose(ot.plan, expected, atol=1e-15)
    assert ot.cost == pytest.approx(float(shift.pow(2).mean()), rel=1e-10)
    assert np.array_equal(assignment(ot.plan), torch.argsort(perm).numpy())
    assert ot.cached is False and ot.cache_path is None and ot.solve_seconds >= 0


def test_cost_matrix_is_per_pixel_mse_like_transport_cost():
    from translab.methods.neural_ot import quadratic_cost
    from translab.metrics.color import transport_cost

    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(5, 3, 8, 8, generator=g) * 2 - 1, torch.rand(4, 3, 8, 8, generator=g) * 2 - 1
    c = cost_matrix(x, y)
    assert c.shape == (5, 4) and c.dtype == np.float64
    for i in range(5):
        for j in range(4):
            pair_x, pair_y = x[i:i + 1], y[j:j + 1]
            assert c[i, j] == pytest.approx(transport_cost(pair_x, pair_y), rel=1e-6)
            assert c[i, j] == pytest.approx(float(quadratic_cost(pair_x, pair_y)), rel=1e-6)


@pytest.mark.parametrize("n,m", [(7, 7), (7, 5), (4, 9)])
def test_one_dimensional_plan_is_the_monotone_coupling(n, m):
    rng = np.random.default_rng(n * 10 + m)
    xv, yv = rng.normal(size=n), rng.normal(1.0, 2.0, size=m)
    ot = exact_plan(_points(xv), _points(yv), use_cache=False)
    assert ot.cost == pytest.approx(_quantile_cost_1d(xv, yv), rel=1e-10)
    if n == m:  # the k-th smallest x goes to the k-th smallest y
        assert np.array_equal(assignment(ot.plan)[np.argsort(xv)], np.argsort(yv))


@pytest.mark.parametrize("n,m", [(9, 6), (5, 8)])
def test_marginals_and_assignment_with_unequal_sets(n, m):
    g = torch.Generator().manual_seed(n + m)
    x, y = torch.randn(n, 3, 2, 2, generator=g), torch.randn(m, 3, 2, 2, generator=g)
    ot = exact_plan(x, y, use_cache=False)
    assert ot.plan.shape == (n, m) and (ot.plan >= 0).all()
    np.testing.assert_allclose(ot.plan.sum(1), np.full(n, 1 / n), atol=1e-12)
    np.testing.assert_allclose(ot.plan.sum(0), np.full(m, 1 / m), atol=1e-12)
    assert (ot.plan > 0).sum() <= n + m - 1  # a vertex of the transport polytope
    assert (((ot.plan > 0).sum(1)) > 1).any()  # n != m: some rows must split their mass
    c = cost_matrix(x, y)
    assert ot.cost <= plan_cost(np.full((n, m), 1 / (n * m)), c)  # no worse than the independent coupling
    a = assignment(ot.plan)
    assert a.shape == (n,) and a.dtype == np.int64
    assert np.array_equal(ot.plan[np.arange(n), a], ot.plan.max(1))


# --------------------------------------------------------------------------------------------------
# the cache


def test_cache_returns_the_same_plan_and_is_keyed_on_content(tmp_path):
    g = torch.Generator().manual_seed(2)
    x, y = torch.rand(8, 3, 4, 4, generator=g), torch.rand(6, 3, 4, 4, generator=g)
    first = exact_plan(x, y)
    assert not first.cached and first.cache_path == plan_path(x, y) and first.cache_path.is_file()
    assert str(first.cache_path).startswith(str(tmp_path / "cache"))
    again = exact_plan(x, y)
    assert again.cached and np.array_equal(again.plan, first.plan) and again.cost == first.cost
    assert again.solve_seconds == pytest.approx(first.solve_seconds)
    changed = x.clone()
    changed[3, 1, 2, 2] += 0.01
    assert plan_path(changed, y) != plan_path(x, y) and plan_path(x, changed[:6]) != plan_path(x, y)
    assert not exact_plan(changed, y).cached


def test_damaged_cache_entry_is_solved_again(tmp_path):
    g = torch.Generator().manual_seed(3)
    x, y = torch.rand(5, 3, 2, 2, generator=g), torch.rand(5, 3, 2, 2, generator=g)
    good = exact_plan(x, y)
    good.cache_path.write_bytes(b"not a safetensors file")
    with pytest.warns(UserWarning, match="could not read"):
        again = exact_plan(x, y)
    assert not again.cached and np.array_equal(again.plan, good.plan)


# --------------------------------------------------------------------------------------------------
# bad input


@pytest.mark.parametrize("x,y,match", [
    (torch.zeros(0, 3, 4, 4), torch.zeros(2, 3, 4, 4), r"source set is empty.*expected at least 1 image"),
    (torch.zeros(2, 3, 4, 4), torch.zeros(0, 3, 4, 4), r"target set is empty"),
    (torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 8, 8), r"\(3, 4, 4\).*\(3, 8, 8\).*expected the same \(C, H, W\)"),
    (torch.zeros(2, 48), torch.zeros(2, 48), r"source set must be a tensor \(N, C, H, W\), got \(2, 48\)"),
    (torch.full((2, 3, 4, 4), float("nan")), torch.zeros(2, 3, 4, 4), r"source set holds NaN"),
])
def test_bad_inputs_raise_a_clear_error(x, y, match):
    with pytest.raises(DataError, match=match):
        exact_plan(x, y)


def test_solver_that_does_not_converge_raises():
    rng = np.random.default_rng(4)
    with pytest.raises(OTSolverError, match=r"result code 3.*numItermax=2"):
        solve(rng.random((30, 30)), num_iter_max=2)


# --------------------------------------------------------------------------------------------------
# the reference row: eval JSON, CLI and report


def test_cli_writes_an_eval_json_on_cmnist(tmp_path, capsys):
    out = tmp_path / "ot"
    assert main(["ot-exact", "--out", str(out), "--limit", "6", "--no-inception", "--no-progress"]) == 0
    assert "exact OT cost" in capsys.readouterr().out
    (path,) = (out / "eval").glob("ot-exact_a2b_*.json")
    e = json.loads(path.read_text())
    assert e["method"] == "ot-exact" and e["direction"] == "a2b" and e["cost"]["nfe_per_image"] is None
    assert e["dataset"]["n_inputs"] == 6 and e["dataset"]["n_reference"] == 6
    m = e["metrics"]
    # with n == m the optimal plan is a permutation: the assigned pairs pay exactly the OT cost
    assert m["ot_exact"]["sources_split"] == 0 and m["ot_exact"]["targets_assigned_once"] == 6
    assert m["transport_cost"]["value"] == pytest.approx(m["ot_exact"]["cost"], rel=1e-5)
    # the assigned outputs are real test 3s: the shipped digit reader reads (nearly) all of them as 3
    assert m["target_accuracy"]["available"] and m["target_accuracy"]["value"] >= 5 / 6
    assert not m["fid_kid"]["inception"]["available"] and m["fid_kid"]["classifier"]["available"]
    assert 0 <= m["hue_error"]["mean_deg"] <= 180
    assert (out / "eval" / e["samples"]["tensors"]).is_file() and (out / "eval" / e["samples"]["grid"]).is_file()


@pytest.fixture(scope="module")
def tiny_ddib_run(tmp_path_factory):
    """A tiny DDIB trained and evaluated (first 6 test images, no Inception) on the synthetic pair."""
    from tiny_runs import tiny_ddib

    from translab.training import train

    run = tmp_path_factory.mktemp("ot") / "ddib"
    cfg = tiny_ddib(2)
    train(cfg, run)
    assert main(["evaluate", "--run", str(run), "--limit", "6", "--threads", "1", "--no-progress",
                 "--no-inception"]) == 0
    return run, cfg


def _table(md: str) -> tuple[list[str], dict[str, list[str]]]:
    """The metrics table (the report's first): its header cells and its rows by label."""
    block = md.split("## Metrics", 1)[1].split("\n\n")[1]
    cells = [[c.strip() for c in line.strip()[1:-1].split(" | ")] for line in block.splitlines()]
    return cells[0], {row[0]: row for row in cells[2:]}


RATIO = "transport cost / exact OT \u2193"


def test_report_shows_the_reference_row_and_the_ratio_column(tiny_ddib_run, tmp_path):
    run, cfg = tiny_ddib_run
    ot_dir = tmp_path / "ot-ref"
    path = evaluate_ot_exact(ot_dir, limit=6, inception=False, progress=False, data_cfg=cfg.data)
    ref = json.loads(path.read_text())
    ddib = json.loads(next((run / "eval").glob("ddib_*.json")).read_text())
    out = tmp_path / "report"
    assert main(["compare", str(run), str(ot_dir), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    header, rows = _table(md)
    col = header.index(RATIO)
    assert header[col - 1].startswith("transport cost (MSE")
    exact = ref["metrics"]["ot_exact"]["cost"]
    assert float(rows["ddib a2b"][col]) == pytest.approx(ddib["metrics"]["transport_cost"]["value"] / exact, abs=6e-4)
    assert rows["ot-exact a2b"][col] == "1.000"  # 6 to 6 images: the hard assignment is the optimal plan itself
    assert rows["ot-exact a2b"][header.index("NFE / image \u2193")] == "n/a"
    assert f"divided by {exact:.5f}" in md and "ot-exact a2b (exact OT reference) @ ot-ref" in md
    html = (out / "report.html").read_text()
    assert "<th>transport cost / exact OT&nbsp;\u2193</th>" in html and f"divided by {exact:.5f}" in html
    assert '<tr class="reference"><td>ot-exact a2b</td>' in html


def _tables_only(md: str) -> str:
    """The report without its creation time (the one line that differs between two renderings)."""
    return "\n".join(line for line in md.splitlines() if not line.startswith("Created "))


def test_ratio_comes_only_from_a_compared_ot_exact_run_of_the_same_test_sets(tiny_ddib_run, tmp_path, monkeypatch):
    """The report reads only the run directories it is given: with the ot-exact run among them the ratio is
    there whatever $TRANSLAB_CACHE holds, without it the column is n/a with the reason, on every machine."""
    import hashlib

    from translab.ot_exact import data_identity

    run, cfg = tiny_ddib_run
    other = tmp_path / "other"
    evaluate_ot_exact(other, limit=5, inception=False, progress=False, data_cfg=cfg.data)
    assert main(["compare", str(run), str(other), "--out", str(tmp_path / "r1")]) == 0
    header, rows = _table((tmp_path / "r1" / "report.md").read_text())
    assert rows["ddib a2b"][header.index(RATIO)] == "n/a"  # 5 images, not the evaluated 6: never divided
    assert ("n/a for ddib a2b: the test sets differ from those of the ot-exact run (n_inputs 6 here, 5 in the "
            "ot-exact run") in (tmp_path / "r1" / "report.md").read_text()

    same = tmp_path / "same"
    path = evaluate_ot_exact(same, limit=6, inception=False, progress=False, data_cfg=cfg.data)
    # a result kept where older versions looked it up (the per-user cache) is never read
    result = json.loads(path.read_text())
    kept = tmp_path / "cache" / "ot-exact" / "results" / \
        f"{hashlib.sha256(data_identity(result).encode()).hexdigest()[:32]}.json"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(json.dumps({**result, "cached_from": str(path)}))
    assert main(["compare", str(run), "--out", str(tmp_path / "r0")]) == 0
    md0 = (tmp_path / "r0" / "report.md").read_text()
    assert "transport cost / exact OT n/a" in md0 and "no ot-exact run among the compared runs" in md0
    assert str(path) not in md0 and "kept in the cache" not in md0

    assert main(["compare", str(run), str(same), "--out", str(tmp_path / "r2")]) == 0
    md2 = (tmp_path / "r2" / "report.md").read_text()
    header, rows = _table(md2)
    assert rows["ddib a2b"][header.index(RATIO)] != "n/a"
    empty = tmp_path / "fresh-cache"
    empty.mkdir()
    monkeypatch.setenv("TRANSLAB_CACHE", str(empty))  # another machine: nothing cached
    assert main(["compare", str(run), str(same), "--out", str(tmp_path / "r3")]) == 0
    assert _tables_only((tmp_path / "r3" / "report.md").read_text()) == _tables_only(md2)
    assert list(empty.iterdir()) == []  # and the report wrote nothing there


def test_every_shipped_run_matches_the_exact_ot_problem_of_its_test_sets():
    """The ratio column needs each shipped model's data config to name the same OT problem as an ot-exact file
    written today for the same data, also for configs saved before a DataConfig field existed."""
    from dataclasses import asdict

    import yaml

    from translab.config import DataConfig
    from translab.ot_exact import data_identity
    from translab.shipped import shipped_models

    for name, folder in shipped_models().items():
        saved = yaml.safe_load((folder / "config.yaml").read_text())["data"]
        dataset = {"type": saved.get("dataset", "cmnist"), "name": "x", "source": "s", "image_size": 32,
                   "split": "test", "n_inputs": 8, "n_reference": 8}
        run_entry = {"_run_dir": folder, "dataset": dataset, "direction": "a2b"}
        ot_entry = {"data_config": asdict(DataConfig(**saved)), "dataset": dataset, "direction": "a2b"}
        assert data_identity(run_entry) == data_identity(ot_entry) is not None, name
