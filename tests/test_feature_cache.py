"""The on-disk cache of real-set features: computed once, keyed by images and network, safe when broken."""
from __future__ import annotations

import warnings

import pytest
import torch

from translab import evaluation, feature_cache
from translab.metrics.frechet import Extractor


class CountingExtractor(Extractor):
    """Mean colour per image as a 3-d feature, counting how many images it embedded."""

    def __init__(self, cache_id="mean-colour v1"):
        self.calls = 0

        def fn(im):
            self.calls += im.shape[0]
            return im.mean(dim=(2, 3))

        super().__init__("counting", fn, "mean colour", cache_id=cache_id)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(feature_cache.ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(evaluation, "_REAL_CACHE", {})
    return tmp_path / "cache"


def _images(seed, n=5):
    return torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_second_process_reads_features_from_disk(cache):
    ex, x = CountingExtractor(), _images(0)
    first = evaluation.features_for([ex], x, ("data", "b", 5))["counting"]
    assert ex.calls == 5 and len(list((cache / "features").glob("*.safetensors"))) == 1
    evaluation._REAL_CACHE.clear()  # a new process: only the disk remains
    again = evaluation.features_for([ex], x, ("data", "b", 5))["counting"]
    assert ex.calls == 5
    torch.testing.assert_close(again, first, rtol=0, atol=0)
    torch.testing.assert_close(first, x.mean(dim=(2, 3)))


def test_other_images_or_weights_miss_the_cache(cache):
    ex = CountingExtractor()
    evaluation.features_for([ex], _images(0), ("data", "b", 5))
    changed = _images(0)  # same key, same process: the in-memory cache must miss too
    changed[2, 1, 3, 3] += 0.01  # one pixel
    out = evaluation.features_for([ex], changed, ("data", "b", 5))["counting"]
    assert ex.calls == 10
    torch.testing.assert_close(out, changed.mean(dim=(2, 3)))
    evaluation._REAL_CACHE.clear()
    other_net = CountingExtractor(cache_id="mean-colour v2")
    evaluation.features_for([other_net], _images(0), ("data", "b", 5))
    assert other_net.calls == 5


def test_generated_sets_are_never_cached(cache):
    ex = CountingExtractor()
    evaluation.features_for([ex], _images(1), None)
    evaluation.features_for([ex], _images(1), None)
    assert ex.calls == 10 and not (cache / "features").exists()


def test_damaged_entry_is_recomputed_with_a_warning(cache):
    ex, x = CountingExtractor(), _images(2)
    evaluation.features_for([ex], x, ("k",))
    entry = feature_cache.entry_path(("k", "counting", ex.cache_id), x)
    entry.write_bytes(b"not a safetensors file")
    evaluation._REAL_CACHE.clear()
    feature_cache._warned.clear()
    with pytest.warns(UserWarning, match="could not read"):
        out = evaluation.features_for([ex], x, ("k",))["counting"]
    assert ex.calls == 10
    torch.testing.assert_close(out, x.mean(dim=(2, 3)))
    assert feature_cache.load(("k", "counting", ex.cache_id), x) is not None  # rewritten


def test_unwritable_cache_computes_and_warns(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv(feature_cache.ENV, str(blocker))
    monkeypatch.setattr(evaluation, "_REAL_CACHE", {})
    feature_cache._warned.clear()
    ex, x = CountingExtractor(), _images(3)
    with pytest.warns(UserWarning, match="could not write"):
        out = evaluation.features_for([ex], x, ("k",))["counting"]
    torch.testing.assert_close(out, x.mean(dim=(2, 3)))
    assert list(tmp_path.iterdir()) == [blocker]


def test_digest_sees_dtype_and_shape():
    x = torch.zeros(2, 3, 4, 4)
    assert feature_cache.images_digest(x) != feature_cache.images_digest(x.reshape(3, 2, 4, 4))
    assert feature_cache.images_digest(x) != feature_cache.images_digest(x.double())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert feature_cache.images_digest(x) == feature_cache.images_digest(x.clone())
