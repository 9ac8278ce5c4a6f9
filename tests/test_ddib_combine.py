"""DDIB's privacy setting: two single-domain runs joined by `translab combine` translate as the chained ODEs."""
from __future__ import annotations

import json

import pytest
import torch

from tiny_runs import tiny_ddib
from translab.cli import main
from translab.ddib_combine import combine_ddib
from translab.methods import MethodError
from translab.training import load_method, train

ONE_DOMAIN = "model.conditional=false"


@pytest.fixture(scope="module")
def single_domain_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("privacy")
    train(tiny_ddib(3, ONE_DOMAIN, "model.train_domains=[a]", "train.seed=1"), root / "only_a")
    train(tiny_ddib(4, ONE_DOMAIN, "model.train_domains=[b]", "train.seed=2"), root / "only_b")
    return root


def test_combined_translator_chains_a_encoder_into_b_decoder(single_domain_runs, tmp_path):
    root = single_domain_runs
    assert main(["combine", "--a", str(root / "only_a"), "--b", str(root / "only_b"), "--out", str(tmp_path / "ab")]) == 0
    joined, cfg, info = load_method(tmp_path / "ab")
    m_a, _, _ = load_method(root / "only_a")
    m_b, _, _ = load_method(root / "only_b")
    x = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        expected_ab = m_b.decode(m_a.encode(x, "a"), "b").clamp(-1, 1)
        expected_ba = m_a.decode(m_b.encode(x, "b"), "a").clamp(-1, 1)
    torch.testing.assert_close(joined.translate(x, "a2b").images, expected_ab, rtol=0, atol=0)
    torch.testing.assert_close(joined.translate(x, "b2a").images, expected_ba, rtol=0, atol=0)
    assert cfg.model.train_domains == ["a", "b"] and not cfg.model.conditional
    record = json.loads((tmp_path / "ab" / "train_record.json").read_text())
    assert (record["combined_from"]["a"]["steps"], record["combined_from"]["b"]["steps"]) == (3, 4)
    # each side's untrained net is left behind: the joined eps_b is B's, not A's initial one
    a_own_b = m_a.infer_net("eps_b").state_dict()
    assert any(not torch.equal(v, a_own_b[k]) for k, v in joined.infer_net("eps_b").state_dict().items())


def test_runs_that_cannot_be_chained_are_refused_with_the_reason(single_domain_runs, tmp_path):
    root = single_domain_runs
    with pytest.raises(MethodError, match=r"--a .*only_b.*domain a was never trained"):
        combine_ddib(root / "only_b", root / "only_b", tmp_path / "x")
    train(tiny_ddib(1, ONE_DOMAIN, "model.train_domains=[b]", "model.diffusion.num_timesteps=500"), tmp_path / "b500")
    with pytest.raises(MethodError, match=r"model.diffusion differs"):
        combine_ddib(root / "only_a", tmp_path / "b500", tmp_path / "x")
    train(tiny_ddib(1), tmp_path / "conditional")
    with pytest.raises(MethodError, match="domain-conditional"):
        combine_ddib(tmp_path / "conditional", root / "only_b", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert main(["combine", "--a", str(tmp_path / "conditional"), "--b", str(root / "only_b"),
                 "--out", str(tmp_path / "x")]) == 2


def test_checkpoint_curve_scores_each_step_of_two_single_domain_runs_joined(tmp_path, monkeypatch):
    """scripts/checkpoint_curve.py --combine-with: each checkpoint of the A run joined with the B run's of the same
    step scores as the joined folder itself (score_checkpoint on combine_ddib's output), with the two runs' summed
    wall seconds; a step the B run lacks is left out."""
    import sys

    from scripts_helper import load_script
    from translab.checkpoint import list_checkpoints, load_checkpoint

    cmnist = ["data.dataset=cmnist", "data.image_size=32", "data.limit=16", "train.checkpoint_every=1",
              "train.keep_checkpoints=0", ONE_DOMAIN]
    train(tiny_ddib(2, *cmnist, "model.train_domains=[a]"), tmp_path / "a")
    train(tiny_ddib(1, *cmnist, "model.train_domains=[b]"), tmp_path / "b")
    script = load_script("checkpoint_curve.py")
    monkeypatch.setattr(sys, "argv", ["checkpoint_curve.py", str(tmp_path / "a"), "--combine-with", str(tmp_path / "b"),
                                      "--limit", "4", "--steps", "2", "--name", "joined"])
    script.main()
    rows = json.loads((tmp_path / "a" / "analysis" / "joined.json").read_text())["rows"]
    assert [r["step"] for r in rows] == [1]  # step 2 of A has no B partner
    ckpt_a, ckpt_b = list_checkpoints(tmp_path / "a" / "checkpoints")[0], list_checkpoints(tmp_path / "b" / "checkpoints")[0]
    walls = [float(load_checkpoint(c)["wall_seconds"]) for c in (ckpt_a, ckpt_b)]
    assert rows[0]["wall_s"] == pytest.approx(sum(walls), abs=0.1)
    joined = combine_ddib(ckpt_a, ckpt_b, tmp_path / "ab")
    pair = script.build_domain_pair(load_method(joined)[1].data)
    x = script.stack_dataset(pair.get("a", "test"), 4)
    direct = script.score_checkpoint(joined, x, "a2b", script.target_class_name(pair, "b", "cmnist"), 2, "cmnist")
    assert {k: v for k, v in rows[0].items() if k not in ("step", "wall_s", "nearest_train_ratio")} == \
        {k: v for k, v in direct.items() if k not in ("step", "wall_s")}
