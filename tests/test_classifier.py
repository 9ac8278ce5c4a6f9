"""translab's classifiers: the shipped colour-robust digit reader (accuracy on real coloured test digits) and
domain classifiers trained on generated tiny images; safetensors round trip and refusals."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from translab.checkpoint import CheckpointError
from translab.data.cmnist import build_cmnist, colorize
from translab.metrics.classifier import (ClassifierSpec, ImageClassifier, accuracy, classifier_outputs,
                                         load_classifier, read_record, save_classifier, shipped_classifier_path)
from translab.metrics.classifier_training import coloured_test_set

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shipped():
    return load_classifier(shipped_classifier_path("cmnist"))


@pytest.fixture(scope="module")
def cmnist_test():
    pair = build_cmnist()
    return pair.get("a", "test"), pair.get("b", "test")


def test_shipped_classifier_reads_real_coloured_2s_and_3s(shipped, cmnist_test):
    twos, threes = cmnist_test
    x = torch.cat([twos.images, threes.images])
    y = torch.cat([twos.meta["digit"], threes.meta["digit"]])
    assert x.shape[0] == 1032 + 1010  # the full MNIST test 2s and 3s
    acc = accuracy(shipped, x, y)
    assert acc >= 0.99, acc
    _, pred3 = classifier_outputs(shipped, threes.images)
    assert float((pred3 == 3).float().mean()) >= 0.99


def test_shipped_classifier_is_colour_robust(shipped, cmnist_test):
    _, threes = cmnist_test
    x = threes.images[:300]
    grey = ((x + 1) / 2).amax(dim=1)
    for turn in (90.0, 180.0):
        rotated = colorize(grey, (threes.meta["hue"][:300] + turn) % 360.0) * 2 - 1
        _, pred = classifier_outputs(shipped, rotated)
        assert float((pred == 3).float().mean()) >= 0.98, turn


def test_shipped_classifier_on_all_ten_digits(shipped):
    root = Path(os.environ.get("TRANSLAB_DATA", "")) if os.environ.get("TRANSLAB_DATA") else None
    if root is None or not (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip("all-digit check needs MNIST under $TRANSLAB_DATA (MNIST/raw/t10k-*-ubyte); not set here")
    x, y = coloured_test_set(root)
    assert x.shape == (10000, 3, 32, 32)
    assert accuracy(shipped, x, y, batch_size=500) >= 0.99


def test_shipped_record_states_accuracy_and_training(shipped):
    rec = read_record(shipped_classifier_path("cmnist"))
    assert rec is not None and rec["test_accuracy"] >= 0.99
    assert rec["training"]["threads"] == 1 and rec["architecture"]["classes"] == [str(d) for d in range(10)]
    assert shipped.num_features == rec["architecture"]["feature_dim"]


def test_features_are_penultimate_and_resized(shipped, cmnist_test):
    twos, _ = cmnist_test
    feats, pred = classifier_outputs(shipped, twos.images[:8])
    assert feats.shape == (8, shipped.num_features) and feats.dtype == torch.float64 and (feats >= 0).all()
    small = torch.nn.functional.interpolate(twos.images[:8], size=(16, 16), mode="bilinear", antialias=True)
    f16, _ = classifier_outputs(shipped, small)  # resized to 32 inside
    assert f16.shape == feats.shape


def test_save_load_round_trip_and_refusals(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = ImageClassifier(ClassifierSpec(classes=["x", "y"], image_size=8, widths=[4], feature_dim=6)).eval()
    path = save_classifier(model, tmp_path / "c.safetensors", {"note": "test"})
    back = load_classifier(path)
    x = torch.rand(3, 3, 8, 8) * 2 - 1
    assert torch.equal(model(x), back(x)) and back.spec.classes == ["x", "y"]
    assert read_record(path) == {"note": "test"}
    with pytest.raises(CheckpointError, match="do not exist"):
        load_classifier(tmp_path / "none.safetensors")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "foreign.safetensors"))
    with pytest.raises(CheckpointError, match="not a translab classifier"):
        load_classifier(tmp_path / "foreign.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="junk.safetensors"):
        load_classifier(tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match="safetensors"):
        save_classifier(model, tmp_path / "c.pt")


def test_domain_classifier_command_on_generated_images(tmp_path):
    """`translab classifier train celeba-gender` on a generated pair (squares vs discs) learns A vs B."""
    from translab.cli import main

    out = tmp_path / "dom.safetensors"
    rc = main(["classifier", "train", "celeba-gender", "--dataset", "synthetic", "--image-size", "16",
               "--steps", "150", "--batch-size", "32", "--out", str(out), "--threads", "1"])
    assert rc == 0
    model = load_classifier(out)
    assert model.spec.classes == ["square", "disc"] and model.spec.image_size == 16
    rec = read_record(out)
    assert rec["test_accuracy"] >= 0.9, rec
    assert set(rec["test_accuracy_per_domain"]) == {"a", "b"}


def test_celeba_gender_command_on_a_generated_celeba_layout(tmp_path):
    """The real CelebA path: a tiny Kaggle-layout folder of generated JPEGs (male: warm squares, female: cool discs)."""
    import layouts
    from translab.cli import main

    layouts.make_celeba_kaggle(tmp_path / "celeba", n=12, size=(20, 24))
    out = tmp_path / "gender.safetensors"
    assert main(["classifier", "train", "celeba-gender", "--data-root", str(tmp_path / "celeba"), "--image-size", "16",
                 "--steps", "60", "--batch-size", "16", "--out", str(out), "--threads", "1"]) == 0
    model = load_classifier(out)
    assert model.spec.classes == ["male", "female"]
    assert read_record(out)["test_accuracy"] >= 0.9
