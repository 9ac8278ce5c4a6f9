"""Latent-space analysis (translab.analysis, `translab latent`): statistics, probes, sweeps, slerp, the command.

Analytic references only: true N(0, I) samples for the Gaussianity statistics, tensors with known structure,
the exact noise predictor of Gaussian data (tests/gaussian_oracle.py) for the encode/decode sweep, and probes on
pure noise (chance) against probes on a feature that holds the answer.
"""
from __future__ import annotations

import json
import math

import pytest
import torch
import yaml

from gaussian_oracle import gaussian_eps_fn
from translab.analysis.ddib_latents import pca_2d, reconstruction_sweep, slerp
from translab.analysis.gaussianity import autocorrelation, gaussianity_report, per_image_statistics
from translab.analysis.probes import probe_suite
from translab.diffusion.samplers import invert_ddim, sample_ddim
from translab.diffusion.schedule import NoiseSchedule


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- Gaussianity ---------------------------------------------------------------------------------


def test_gaussianity_statistics_read_gaussian_on_normal_samples():
    z = torch.randn(64, 3, 16, 16, generator=_gen(1))  # d = 768 per image
    rep = gaussianity_report(z, seed=5)
    s = rep["latents"]
    assert abs(s["mean"]["mean"]) < 0.01
    assert abs(s["std"]["mean"] - 1) < 0.02 and abs(s["norm_over_sqrt_d"]["mean"] - 1) < 0.02
    assert abs(s["excess_kurtosis"]["mean"]) < 0.1  # per-image spread ~ sqrt(24/768) = 0.18, mean of 64
    assert s["ks_statistic"]["mean"] < 0.06  # expected ~ 0.87 / sqrt(768) = 0.031
    assert s["ks_pvalue"]["share_below_0.01"] <= 0.1
    for key in ("autocorr_h", "autocorr_v", "channel_corr"):
        assert abs(s[key]["mean"]) < 0.02, key
    assert s["pooled_ks"]["pvalue"] > 1e-3
    # the seeded reference of the same shape agrees with the latents to within the sampling spread
    r = rep["reference_normal"]
    assert rep["d"] == 768 and rep["shape"] == [64, 3, 16, 16]
    for key in ("ks_statistic", "excess_kurtosis", "autocorr_h"):
        assert abs(s[key]["mean"] - r[key]["mean"]) < 3 * r[key]["std"] / math.sqrt(64) + 0.01, key


def test_gaussianity_statistics_flag_structured_tensors():
    xx = torch.arange(16.0)
    stripes = 0.5 + 0.3 * torch.sin(xx / 2.0)  # smooth along the width, constant along the height
    z = stripes.expand(32, 3, 16, 16) + 0.02 * torch.randn(32, 3, 16, 16, generator=_gen(2))
    s = gaussianity_report(z)["latents"]
    assert s["ks_statistic"]["mean"] > 0.3
    assert s["ks_pvalue"]["share_below_0.01"] == 1.0
    assert s["excess_kurtosis"]["mean"] < -1.0  # a sinusoid's values are arcsine-distributed: kurtosis -1.5
    assert s["autocorr_h"]["mean"] > 0.8 and s["autocorr_v"]["mean"] > 0.8
    assert s["channel_corr"]["mean"] > 0.8
    assert s["norm_over_sqrt_d"]["mean"] < 0.7


def test_autocorrelation_direction_and_sign():
    rows = torch.tensor([(-1.0) ** i for i in range(8)])[:, None].expand(8, 8)  # alternating rows
    z = rows.expand(2, 3, 8, 8)
    # neighbours along a row are equal, neighbours along a column opposite
    assert (autocorrelation(z, "h") > 0.999).all() and (autocorrelation(z, "v") < -0.999).all()
    checker = torch.tensor([[(-1.0) ** (i + j) for j in range(8)] for i in range(8)]).expand(2, 3, 8, 8)
    assert (autocorrelation(checker, "h") < -0.999).all() and (autocorrelation(checker, "v") < -0.999).all()
    stats = per_image_statistics(checker)
    assert torch.allclose(stats["channel_corr"], torch.ones(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="axis"):
        autocorrelation(checker, "x")


# ---- reconstruction sweep with the exact Gaussian denoiser -----------------------------------------


class OracleBridge:
    """DDIB's encode/decode interface over the exact noise predictors of two Gaussian domains."""

    def __init__(self, params: dict):
        self.schedule = NoiseSchedule.make("cosine", 1000)
        self.eps = {d: gaussian_eps_fn(self.schedule, m, s) for d, (m, s) in params.items()}

    def encode(self, x, domain, steps):
        return invert_ddim(self.eps[domain], self.schedule, x.double(), self.schedule.timesteps(steps))

    def decode(self, z, domain, steps):
        return sample_ddim(self.eps[domain], self.schedule, z.double(), self.schedule.timesteps(steps))


def test_reconstruction_and_cycle_error_fall_with_steps():
    params = {"a": (0.3, 0.5), "b": (-0.2, 0.3)}
    g = _gen(4)
    x_a = 0.3 + 0.5 * torch.randn(12, 3, 4, 4, generator=g, dtype=torch.float64)
    x_b = -0.2 + 0.3 * torch.randn(12, 3, 4, 4, generator=g, dtype=torch.float64)
    logged = []
    sweep = reconstruction_sweep(OracleBridge(params), x_a, x_b, [2, 5, 20, 100], batch_size=5, log=logged.append)
    assert [r["steps"] for r in sweep["rows"]] == [2, 5, 20, 100]
    assert any("steps=100" in line for line in logged)
    for key in ("recon_a", "recon_b", "cycle_aba"):
        means = [r[key]["mean"] for r in sweep["rows"]]
        maxes = [r[key]["max"] for r in sweep["rows"]]
        assert all(a > b for a, b in zip(means, means[1:])), (key, means)
        assert all(a > b for a, b in zip(maxes, maxes[1:])), (key, maxes)
        assert means[-1] < 5e-3 and means[2] / means[3] > 5, (key, means)
        assert all(r[key]["max"] >= r[key]["mean"] for r in sweep["rows"])


# ---- probes --------------------------------------------------------------------------------------


def test_probes_at_chance_on_noise_and_high_on_informative_features():
    n = 300
    g = _gen(6)
    hue = torch.rand(n, generator=g) * 360
    labels = torch.randint(0, 2, (n,), generator=g)
    rad = torch.deg2rad(hue).double()
    informative = torch.cat([rad.cos()[:, None], rad.sin()[:, None], labels[:, None].double() * 2 - 1,
                             torch.randn(n, 47, generator=g, dtype=torch.float64)], 1)
    noise = torch.randn(n, 50, generator=g)
    res = probe_suite({"noise": noise, "informative": informative}, labels, hue, seed=0)
    assert res["split"]["n_test"] == 90
    nz, inf = res["noise"], res["informative"]
    # tolerance: held-out accuracy on 90 images at chance 0.5 has std 0.053; 0.15 is almost 3 std
    assert abs(nz["class"]["accuracy"] - 0.5) < 0.15
    assert abs(nz["class"]["accuracy"] - nz["class"]["chance"]) < 0.15
    # a hue prediction independent of the hue errs by 90 deg on average (std of the mean over 90 ~ 5.5 deg)
    assert abs(nz["hue"]["mean_error_deg"] - 90) < 16
    assert inf["class"]["accuracy"] > 0.95
    assert inf["hue"]["mean_error_deg"] < 10
    assert inf["hue"]["mean_error_deg"] < inf["hue"]["constant_predictor_deg"] - 50


def test_probes_without_hue_and_with_too_few_images():
    labels = torch.tensor([0, 1] * 10)
    res = probe_suite({"f": torch.randn(20, 4, generator=_gen(7))}, labels, None)
    assert res["f"]["hue"]["available"] is False
    small = probe_suite({"f": torch.randn(5, 4)}, torch.tensor([0, 1, 0, 1, 0]), None)
    assert small["f"]["available"] is False and "at least" in small["f"]["reason"]


# ---- slerp and PCA -------------------------------------------------------------------------------


def test_slerp_endpoints_and_midpoint_norm():
    g = _gen(8)
    z0, z1 = torch.randn(4, 3, 8, 8, generator=g), torch.randn(4, 3, 8, 8, generator=g)
    assert torch.allclose(slerp(z0, z1, 0.0), z0, atol=1e-5)
    assert torch.allclose(slerp(z0, z1, 1.0), z1, atol=1e-5)
    ends = 0.5 * (z0.flatten(1).norm(dim=1) + z1.flatten(1).norm(dim=1))
    mid = slerp(z0, z1, 0.5).flatten(1).norm(dim=1)
    assert ((mid - ends).abs() / ends < 0.05).all()
    lerp = (0.5 * (z0 + z1)).flatten(1).norm(dim=1)  # linear interpolation shrinks by ~1/sqrt(2)
    assert (lerp / ends < 0.8).all()
    same = slerp(z0, z0.clone(), 0.3)  # parallel endpoints: no NaN, stays put
    assert torch.isfinite(same).all() and torch.allclose(same, z0, atol=1e-5)
    with pytest.raises(ValueError, match="shape"):
        slerp(z0, z1[:2], 0.5)


def test_pca_finds_the_dominant_direction():
    g = _gen(9)
    direction = torch.randn(12, generator=g)
    direction /= direction.norm()
    t = torch.randn(100, generator=g, dtype=torch.float64) * 5
    x = t[:, None] * direction.double() + 0.1 * torch.randn(100, 12, generator=g, dtype=torch.float64)
    coords, share = pca_2d(x.reshape(100, 3, 2, 2))
    assert coords.shape == (100, 2) and share[0] > 0.95 and share[0] > share[1]
    assert abs(torch.corrcoef(torch.stack([coords[:, 0], t]))[0, 1]) > 0.99


# ---- the command ---------------------------------------------------------------------------------


def _analysis_items(run):
    from translab.report.compare import ANALYSIS_JSON_MAX_CHARS, collect_analysis

    items = collect_analysis([run])
    assert all(not i.truncated for i in items), [i.name for i in items if i.truncated]
    assert ANALYSIS_JSON_MAX_CHARS > 0
    return {i.name for i in items}


def test_latent_command_analyses_a_guided_model_through_its_unguided_odes(tmp_path, capsys):
    """A model whose default decoding is guided: the latent analysis uses w = 1, so its within-domain
    reconstruction is the encoder's inverse, and equals the unguided model's."""
    from tiny_runs import tiny_ddib

    from translab.cli import main
    from translab.training import train

    run = tmp_path / "guided"
    train(tiny_ddib(3, "model.label_dropout=0.5", "model.guidance=3"), run)
    args = ["latent", "--run", str(run), "--limit", "4", "--sweep-steps", "4", "--sweep-limit", "4", "--device", "cpu"]
    assert main(args + ["--out-dir", str(tmp_path / "guided_out")]) == 0
    assert "unguided ODEs (model.guidance=1" in capsys.readouterr().out
    guided = json.loads((tmp_path / "guided_out" / "ddib_reconstruction.json").read_text())["sweep"]["rows"]
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["model"]["guidance"] = 1.0
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(args + ["--out-dir", str(tmp_path / "plain_out")]) == 0
    plain = json.loads((tmp_path / "plain_out" / "ddib_reconstruction.json").read_text())["sweep"]["rows"]
    def drop_seconds(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert drop_seconds(guided) == drop_seconds(plain)


def test_latent_command_ddib(tmp_path, capsys):
    from tiny_runs import tiny_ddib

    from translab.cli import main
    from translab.training import train

    run = tmp_path / "ddib_run"
    train(tiny_ddib(3), run)
    assert main(["latent", "--run", str(run), "--limit", "8", "--sweep-steps", "2,4", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "[reconstruction] steps=4" in printed
    folder = run / "analysis"
    names = {"ddib_gaussianity.json", "ddib_probes.json", "ddib_geometry.json", "ddib_reconstruction.json",
             "ddib_latent_histogram.png", "ddib_latent_pca.png", "ddib_interpolation.png", "ddib_reconstruction.png"}
    assert names <= _analysis_items(run)
    for name in names:
        assert (folder / name).stat().st_size > 0
    rec = json.loads((folder / "ddib_reconstruction.json").read_text())
    assert [r["steps"] for r in rec["sweep"]["rows"]] == [2, 4]
    assert rec["sweep"]["n_images"] == {"a": 8, "b": 8}
    gauss = json.loads((folder / "ddib_gaussianity.json").read_text())
    assert gauss["domains"]["a"]["shape"] == [8, 3, 8, 8]
    assert set(gauss["domains"]["a"]["reference_normal"]) >= {"ks_statistic", "excess_kurtosis", "autocorr_h"}
    probes = json.loads((folder / "ddib_probes.json").read_text())["probes"]
    assert {"latents", "images", "noise"} <= set(probes) and probes["split"]["n_test"] == 5
    geo = json.loads((folder / "ddib_geometry.json").read_text())
    assert geo["frechet"]["latents_a_vs_b"] >= 0 and len(geo["pca_variance_share"]) == 2
    # bad input: a clear one-line error, nothing half-written elsewhere
    assert main(["latent", "--run", str(run), "--sweep-steps", "0"]) == 2
    assert "--sweep-steps must be at least 1" in capsys.readouterr().err


def test_latent_command_unit_ddpm(tmp_path):
    from test_unit_ddpm import tiny_cfg

    from translab.cli import main
    from translab.metrics.classifier import ClassifierSpec, ImageClassifier, save_classifier
    from translab.training import train

    run = tmp_path / "unit_run"
    train(tiny_cfg("train.steps=2"), run)
    torch.manual_seed(0)
    clf = save_classifier(ImageClassifier(ClassifierSpec(classes=["square", "disc"], image_size=8, widths=[4],
                                                         feature_dim=8)).eval(), tmp_path / "clf.safetensors")
    out = tmp_path / "out"
    assert main(["latent", "--run", str(run), "--limit", "8", "--release-ts", "10,50", "--steps", "5",
                 "--no-inception", "--classifier", str(clf), "--out-dir", str(out), "--device", "cpu"]) == 0
    for name in ("unit_release_sweep.json", "unit_release_sweep.md", "unit_release_tradeoff.png", "unit_chains.png",
                 "unit_release_outputs.png", "unit_generators.png"):
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "unit_release_sweep.json").read_text())
    table = data["table"]
    assert [r["release_t"] for r in table] == [10, 50]
    assert table[0]["nfe"] < table[1]["nfe"]  # a later release runs the source net at more steps
    for r in table:
        assert r["fid_classifier"] is not None and r["fid_inception"] is None
        assert r["hue_error_deg"] is not None and r["transport_cost"] > 0 and 0 <= r["accuracy"] <= 1
    assert data["entries"][0]["metrics"]["fid_kid"]["inception"]["available"] is False
    md = (out / "unit_release_sweep.md").read_text()
    assert "| 10 |" in md and "| 50 |" in md
    assert "tone kept" not in md and "FID [inception]" not in md  # columns with no value anywhere are left out
    assert main(["latent", "--run", str(run), "--release-ts", "100", "--out-dir", str(out)]) == 2  # T = 100


def test_attribute_probes_find_a_coded_tone_and_not_one_in_noise():
    """probe_suite's attributes (the emoji's tone, concept): a 3-class label written one-hot into the features is
    read back; the same label is at chance in pure noise."""
    g = _gen(3)
    n = 300
    tone = torch.randint(0, 3, (n,), generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    coded = torch.cat([torch.nn.functional.one_hot(tone, 3).double() * 3, torch.randn(n, 20, generator=g,
                                                                                        dtype=torch.float64)], 1)
    res = probe_suite({"coded": coded, "noise": torch.randn(n, 23, generator=g)}, labels, None,
                      attributes={"tone": tone})
    assert res["coded"]["tone"]["accuracy"] > 0.95 and res["coded"]["tone"]["classes"] == 3
    # chance: the held-out majority share, about 1/3 (std of 90 held-out draws about 0.05)
    assert abs(res["noise"]["tone"]["accuracy"] - res["noise"]["tone"]["chance"]) < 0.2


def test_release_sweep_rows_carry_the_kept_attributes_and_the_counterpart_ratio():
    from translab.analysis.unit_release import flat_row, markdown_table

    metrics = {"fid_kid": {}, "transport_cost": {"value": 0.5}, "attribute_accuracy": {"value": 0.9},
               "tone_kept": {"available": True, "value": 0.75}, "concept_kept": {"available": True, "value": 0.5},
               "counterpart": {"distance": {"pixel": {"ratio": 0.6}}}}
    row = flat_row(250, 60, metrics)
    assert (row["tone_kept"], row["concept_kept"], row["pixel_ratio"], row["accuracy"]) == (0.75, 0.5, 0.6, 0.9)
    md = markdown_table([row])
    assert "| tone kept | concept kept |" in md and "| 250 | 60 | 0.9 | 0.75 | 0.5 | 0.6 | 0.5 |" in md
