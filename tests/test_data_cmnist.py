"""Colored MNIST: the colour protocol can be read back, is deterministic, and bad requests fail clearly."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from translab.cli import main
from translab.config import DataConfig
from translab.data import DataError, build_domain_pair
from translab.data.cmnist import build_cmnist, colored_mnist_split
from translab.metrics.color import foreground_hue, hue_distance

# Every foreground pixel of an image is coloured with the same hue (HSV with saturation 1, value = grey),
# so reading the hue back is exact up to float rounding; 8-bit quantisation (what a saved PNG holds)
# moves it by well under a degree on these images. Tolerances, in degrees:
MAX_HUE_ERROR = 1.0      # worst image
P99_HUE_ERROR = 0.5      # 99th percentile over the test set


def _hue_errors(ds) -> torch.Tensor:
    return hue_distance(foreground_hue(ds.images), ds.meta["hue"])


@pytest.mark.parametrize("domain", ["a", "b"])
def test_hue_reads_back_on_every_test_image(cmnist_pair, domain):
    ds = cmnist_pair.get(domain, "test")
    err = _hue_errors(ds)
    assert not torch.isnan(err).any(), "an image has no foreground"
    assert err.max() <= MAX_HUE_ERROR
    assert torch.quantile(err, 0.99) <= P99_HUE_ERROR


@pytest.mark.parametrize("domain", ["a", "b"])
def test_hue_survives_8bit_quantisation(cmnist_pair, domain):
    ds = cmnist_pair.get(domain, "test")
    q = ((ds.images + 1) * 127.5).round() / 127.5 - 1  # what save_grid / a PNG keeps
    err = hue_distance(foreground_hue(q), ds.meta["hue"])
    assert err.max() <= MAX_HUE_ERROR
    assert torch.quantile(err, 0.99) <= P99_HUE_ERROR


def test_shapes_ranges_and_labels(cmnist_pair):
    # official MNIST test counts of the digits 2 and 3 (listed in shared/data/README.md)
    expected = {("a", "test"): (1032, 2), ("b", "test"): (1010, 3)}
    for (dom, split), (n, digit) in expected.items():
        ds = cmnist_pair.get(dom, split)
        assert ds.images.shape == (n, 3, 32, 32)
        assert ds.images.dtype == torch.float32
        assert ds.images.min() >= -1 and ds.images.max() <= 1
        assert ds.images.min() == -1  # black background really reaches -1
        assert (ds.meta["digit"] == digit).all()
        assert ds.meta["hue"].min() >= 0 and ds.meta["hue"].max() < 360
    assert len(cmnist_pair.get("a", "train")) > 5000 and len(cmnist_pair.get("b", "train")) > 5000


def test_colouring_is_deterministic_and_seeded(cmnist_pair):
    again = build_cmnist(2, 3, 32, 0, limit=200)
    for key in [("a", "test"), ("b", "train")]:
        assert torch.equal(again.datasets[key].images, cmnist_pair.datasets[key].images[:200])
        assert torch.equal(again.datasets[key].meta["hue"], cmnist_pair.datasets[key].meta["hue"][:200])
    other_seed = build_cmnist(2, 3, 32, 1, limit=200)
    assert not torch.equal(other_seed.get("a", "test").meta["hue"], again.get("a", "test").meta["hue"])


def test_domains_do_not_share_colour_sequences(cmnist_pair):
    for split in ("train", "test"):
        ha = cmnist_pair.get("a", split).meta["hue"]
        hb = cmnist_pair.get("b", split).meta["hue"]
        n = min(len(ha), len(hb))
        d = hue_distance(ha[:n], hb[:n])
        # independent uniform hues: mean circular distance 90 degrees; paired colours would give 0
        assert d.mean() > 60


@pytest.mark.parametrize("digits", [(10, 3), (2, -1), (2.5, 3), ("2", 3)])
def test_digit_outside_0_9_is_refused(digits):
    with pytest.raises(DataError, match="digit"):
        build_cmnist(*digits, limit=4)


def test_same_digit_twice_is_refused():
    with pytest.raises(DataError, match="different digits"):
        build_cmnist(3, 3, limit=4)


def test_unknown_dataset_is_refused_with_a_suggestion():
    with pytest.raises(DataError, match=r"unknown dataset 'cmnits'.*did you mean 'cmnist'"):
        build_domain_pair(DataConfig(dataset="cmnits"))


def test_non_shipped_digit_loads_from_real_mnist(mnist_root):
    ds, source = colored_mnist_split(7, "test", 1, 32, 0, str(mnist_root))
    assert "torchvision MNIST" in source
    assert ds.images.shape == (1028, 3, 32, 32)  # official count of test 7s
    assert (ds.meta["digit"] == 7).all()
    err = _hue_errors(ds)
    assert err.max() <= MAX_HUE_ERROR
    # the shipped 3s equal the 3s read from the real MNIST files
    pair = build_cmnist(7, 3, 32, 0, root=str(mnist_root), limit=50)
    real3, _ = colored_mnist_split(3, "test", 1, 32, 0, str(mnist_root), limit=50)
    assert torch.equal(pair.get("b", "test").images, real3.images)


def test_cli_data_show_cmnist_writes_a_grid(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["data", "show", "cmnist", "--out", str(out), "-n", "4", "--set", "data.limit=16"]) == 0
    text = capsys.readouterr().out
    assert "A train:     16" in text and "B test:     16" in text
    img = np.asarray(Image.open(out).convert("RGB"))
    # 4 rows (A/B x train/test) of 4 images of 32 px, 2 px padding, saved at scale 2
    assert img.shape == (2 * (4 * 34 + 2), 2 * (4 * 34 + 2), 3)
    # coloured digits: some pixels are strongly saturated (max - min channel large)
    sat = img.max(axis=2).astype(int) - img.min(axis=2).astype(int)
    assert (sat > 150).mean() > 0.02


def test_cli_data_list_and_bad_key(capsys):
    assert main(["data", "list"]) == 0
    listed = capsys.readouterr().out
    for name in ("cmnist", "celeba", "folders", "synthetic"):
        assert name in listed
    assert main(["data", "show", "cmnist", "--set", "data.digit_c=4"]) == 2
    assert "data.digit_c" in capsys.readouterr().err


def test_cli_data_show_default_path_is_in_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["data", "show", "cmnist", "-n", "2", "--set", "data.limit=4"]) == 0
    assert Image.open(tmp_path / "data-cmnist.png").size == (2 * (2 * 34 + 2), 2 * (4 * 34 + 2))
