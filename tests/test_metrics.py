"""Metrics against analytic oracles: Frechet distance of Gaussians, KID of identical sets, hue error of
identity and half-turn hue rotations, transport cost, SSIM, and the Inception extractor (weights or a reason)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from translab.data.cmnist import build_cmnist, colorize
from translab.metrics.color import hue_error, transport_cost
from translab.metrics.frechet import Extractor, frechet_distance, kernel_distance, labelled_distances
from translab.metrics.structure import ssim

torch.set_num_threads(1)


def closed_form_fid(m1, s1, m2, s2) -> float:
    """||m1 - m2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) with scipy's matrix square root (float64)."""
    from scipy.linalg import sqrtm

    covmean = sqrtm(s1 @ s2).real
    return float(((m1 - m2) ** 2).sum() + np.trace(s1 + s2 - 2.0 * covmean))


def random_spd(d: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.3 * np.eye(d))


def with_exact_moments(n: int, mean: np.ndarray, cov: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """n samples whose sample mean is exactly ``mean`` and unbiased sample covariance exactly ``cov``."""
    d = mean.shape[0]
    z = rng.normal(size=(n, d))
    z -= z.mean(0)
    sample_cov = z.T @ z / (n - 1)
    white = z @ np.linalg.inv(np.linalg.cholesky(sample_cov)).T  # sample covariance I
    return torch.from_numpy(white @ np.linalg.cholesky(cov).T + mean)


def test_frechet_matches_matrix_formula_on_exact_moments():
    rng = np.random.default_rng(0)
    d = 6
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    s1, s2 = random_spd(d, rng), random_spd(d, rng, 2.0)
    f1, f2 = with_exact_moments(300, m1, s1, rng), with_exact_moments(500, m2, s2, rng)
    expected = closed_form_fid(m1, s1, m2, s2)
    assert expected > 1.0
    assert frechet_distance(f1, f2) == pytest.approx(expected, rel=1e-7, abs=1e-8)


def test_frechet_diagonal_covariances_without_sqrtm():
    # commuting (diagonal) covariances: tr(S1 + S2 - 2 (S1 S2)^(1/2)) = sum_i (sqrt(a_i) - sqrt(b_i))^2
    rng = np.random.default_rng(1)
    a, b = np.array([1.0, 4.0, 0.25, 9.0]), np.array([4.0, 1.0, 1.0, 1.0])
    m1, m2 = np.zeros(4), np.array([1.0, -2.0, 0.0, 0.5])
    f1, f2 = with_exact_moments(200, m1, np.diag(a), rng), with_exact_moments(200, m2, np.diag(b), rng)
    expected = float(((m1 - m2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum())  # 5.25 + 6 = 11.25
    assert frechet_distance(f1, f2) == pytest.approx(expected, rel=1e-7)


def test_frechet_of_a_set_with_itself_is_zero():
    f = torch.randn(200, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs(frechet_distance(f, f)) < 1e-8


def test_frechet_of_sampled_gaussians_is_close_to_closed_form():
    """40,000 draws per set in 4-d: the estimate's bias and spread are O(d/n); tolerance 0.05 absolute."""
    rng = np.random.default_rng(2)
    d = 4
    m1, m2 = np.zeros(d), np.full(d, 0.5)
    s1, s2 = random_spd(d, rng), random_spd(d, rng, 0.5)
    g = torch.Generator().manual_seed(3)
    def draw(m, s, n):
        z = torch.randn(n, d, generator=g, dtype=torch.float64)
        return z @ torch.from_numpy(np.linalg.cholesky(s)).T + torch.from_numpy(m)
    expected = closed_form_fid(m1, s1, m2, s2)
    got = frechet_distance(draw(m1, s1, 40000), draw(m2, s2, 40000))
    assert expected > 1.0
    assert abs(got - expected) < 0.05, (got, expected)


def test_frechet_needs_two_samples():
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(torch.randn(1, 3), torch.randn(5, 3))


def test_kid_identical_sets_near_zero_and_different_sets_not():
    # For X against itself the unbiased MMD^2 estimate is O(mean k(x, x) / m), not exactly 0: about -0.02 here.
    g = torch.Generator().manual_seed(0)
    f = torch.randn(1000, 8, generator=g, dtype=torch.float64)
    same = kernel_distance(f, f, subsets=10)
    shifted = kernel_distance(f, f + 1.0, subsets=10)
    assert abs(same["mean"]) < 0.01 * shifted["mean"], (same, shifted)
    assert shifted["mean"] > 1.0


def test_kid_subset_size_adapts_to_small_sets():
    g = torch.Generator().manual_seed(0)
    k = kernel_distance(torch.randn(60, 8, generator=g), torch.randn(45, 8, generator=g))
    assert k["subset_size"] == 45 and k["subsets"] == 100  # min(1000, 60, 45)


def test_kid_is_reproducible_with_its_seed():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(50, 4, generator=g), torch.randn(40, 4, generator=g) + 0.3
    k1, k2 = kernel_distance(a, b, subset_size=20, seed=5), kernel_distance(a, b, subset_size=20, seed=5)
    assert k1 == k2 and k1["subset_size"] == 20


def test_labelled_distances_keep_unavailable_entries_and_reasons():
    f = torch.randn(10, 3, dtype=torch.float64)
    ex = [Extractor("inception", reason="no weights here"), Extractor("classifier", lambda x: x, "toy")]
    out = labelled_distances(ex, {"classifier": f}, {"classifier": f[:1]})
    assert out["inception"] == {"available": False, "reason": "no weights here"}
    assert out["classifier"]["available"] is False and "at least 2" in out["classifier"]["reason"]
    out = labelled_distances(ex, {"classifier": f}, {"classifier": f})
    assert out["classifier"]["available"] is True and abs(out["classifier"]["fid"]) < 1e-8
    with pytest.raises(ValueError):
        Extractor("classifier")  # neither a function nor a reason


# --------------------------------------------------------------------------------------------------
# colour, cost, structure


@pytest.fixture(scope="module")
def twos():
    ds = build_cmnist(limit=120).get("a", "test")
    return ds.images, ds.meta["hue"]


def test_hue_error_zero_for_identity_and_180_for_half_turn(twos):
    x, hue = twos
    grey = ((x + 1) / 2).amax(dim=1)  # colorize uses value = grey, so the max channel is the grey level
    assert torch.allclose(colorize(grey, hue) * 2 - 1, x, atol=1e-5)
    same = hue_error(x, x)
    assert same["mean_deg"] == pytest.approx(0.0, abs=1e-3) and same["n_measured"] == x.shape[0]
    turned = colorize(grey, (hue + 180.0) % 360.0) * 2 - 1
    half = hue_error(x, turned)
    assert half["mean_deg"] > 179.0 and half["no_foreground_share"] == 0.0
    quarter = hue_error(x, colorize(grey, (hue + 90.0) % 360.0) * 2 - 1)
    assert quarter["mean_deg"] == pytest.approx(90.0, abs=1.0)


def test_hue_error_counts_outputs_without_foreground_as_the_worst_error(twos):
    x, _ = twos
    y = x.clone()
    y[::2] = -1.0  # black: no foreground, the colour is lost
    h = hue_error(x, y)
    assert h["no_foreground_share"] == pytest.approx(0.5)
    assert h["n_measured"] == x.shape[0] // 2
    assert h["measured_mean_deg"] == pytest.approx(0.0, abs=1e-3)  # the rest keep their hue exactly
    share = (x.shape[0] + 1) // 2 / x.shape[0]  # y[::2] blacks out ceil(N / 2) images
    assert h["mean_deg"] == pytest.approx(180.0 * share, abs=1e-2)
    none = hue_error(x, torch.full_like(x, -1.0))  # an all-black method is the least faithful, not unmeasured
    assert none["mean_deg"] == 180.0 and none["median_deg"] == 180.0 and none["no_foreground_share"] == 1.0
    assert math.isnan(none["measured_mean_deg"])


def test_transport_cost_units(twos):
    x, _ = twos
    assert transport_cost(x, x) == 0.0
    assert transport_cost(x, x + 0.1) == pytest.approx(0.01, rel=1e-4)  # mean squared per pixel, [-1, 1] units
    with pytest.raises(ValueError):
        transport_cost(x, x[:3])


def test_ssim_identity_one_and_noise_lower():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 8, 8, generator=g) * 2 - 1
    same = ssim(x, x)
    assert same["mean"] == pytest.approx(1.0, abs=1e-5) and same["kernel_size"] == 7  # shrunk for 8x8 images
    noisy = ssim(x, (x + 0.5 * torch.randn(x.shape, generator=g)).clamp(-1, 1))
    assert noisy["mean"] < 0.9


# --------------------------------------------------------------------------------------------------
# Inception


def test_inception_fid_of_small_set_with_itself_near_zero(twos):
    from translab.metrics.inception import InceptionUnavailable, inception_features, load_inception

    try:
        model = load_inception("cpu")
    except InceptionUnavailable as e:
        pytest.skip(f"Inception weights not reachable: {e}")
    threes = build_cmnist(limit=4).get("b", "test").images
    f2 = inception_features(model, twos[0][:4])
    f3 = inception_features(model, threes)
    assert f2.shape == (4, 2048) and f2.dtype == torch.float64
    self_fid = frechet_distance(f2, f2)
    assert abs(self_fid) < 1e-2, self_fid
    assert frechet_distance(f2, f3) > 100 * max(abs(self_fid), 1e-3)


class _Code:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_inception_unavailable_paths_give_reasons(tmp_path, monkeypatch):
    from translab.evaluation import EvalOptions, build_extractors
    from translab.metrics.inception import ENV_VAR, InceptionUnavailable, load_inception

    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing.pth"))
    with pytest.raises(InceptionUnavailable, match="missing.pth"):
        load_inception()
    extractors, _ = build_extractors("synthetic", EvalOptions())
    inc = [e for e in extractors if e.name == "inception"][0]
    assert not inc.available and "missing.pth" in inc.unavailable_entry()["reason"]
    assert inc.unavailable_entry()["available"] is False

    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    monkeypatch.setenv(ENV_VAR, str(junk))
    with pytest.raises(InceptionUnavailable, match="could not load"):
        load_inception()

    code = tmp_path / "code.pth"
    torch.save({"x": _Code()}, code)
    monkeypatch.setenv(ENV_VAR, str(code))
    with pytest.raises(InceptionUnavailable, match="could not load"):  # refused: loads are forced weights-only
        load_inception()


@pytest.mark.parametrize("micro_batch", [None, 1, 3, 64])
def test_inception_features_do_not_depend_on_the_micro_batch(micro_batch):
    """InceptionFeatures splits the images into micro-batches on a CPU; with a tiny real network in eval mode
    (a convolution, BatchNorm with running statistics, pooling to 2048 features) the features of 7 images are
    the same whatever the split, in order, and an empty input gives (0, 2048)."""
    from torch import nn

    from translab.metrics.inception import InceptionFeatures

    class ToFloat(nn.Module):  # the real network takes uint8 images, as InceptionFeatures passes them
        def forward(self, x):
            return x.float() / 255

    torch.manual_seed(0)
    net = nn.Sequential(ToFloat(), nn.Conv2d(3, 2048, 3), nn.BatchNorm2d(2048), nn.AdaptiveAvgPool2d(1)).eval()
    x = torch.rand(7, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    whole = InceptionFeatures(net, "test", None)(x)
    split = InceptionFeatures(net, "test", micro_batch)(x)
    assert split.shape == (7, 2048) and split.dtype == torch.float64
    assert torch.allclose(split, whole, atol=1e-6)
    assert torch.allclose(split[3], InceptionFeatures(net, "test", None)(x[3:4])[0], atol=1e-6)
    assert InceptionFeatures(net, "test", micro_batch)(x[:0]).shape == (0, 2048)


def test_median_brightness_is_the_background_level():
    """Black images give 0, mid-grey 0.5; a few bright foreground pixels leave the median at the background."""
    from translab.metrics.color import median_brightness

    black = -torch.ones(2, 3, 8, 8)
    assert median_brightness(black) == 0.0
    assert median_brightness(torch.zeros(2, 3, 8, 8)) == pytest.approx(0.5)
    digit = black.clone()
    digit[:, :, 2:5, 3] = 1.0  # 3 of 64 pixels lit
    assert median_brightness(digit) == 0.0
    hazy = black + 0.2  # a uniform haze of 0.1 in [0, 1]
    assert median_brightness(hazy) == pytest.approx(0.1)
