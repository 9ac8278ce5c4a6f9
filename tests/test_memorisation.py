"""The memorisation diagnostic: copies of training targets are caught, fresh draws of the same distribution are not."""
from __future__ import annotations

import pytest
import torch

from translab.metrics.memorisation import memorisation, nearest_distances


def _draws(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, 6, 6, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_nearest_distances_match_brute_force():
    q, bank = _draws(7, 0), _draws(11, 1)
    brute = torch.stack([((bank - qi).pow(2).flatten(1).mean(1)).min() for qi in q]).double()
    assert torch.allclose(nearest_distances(q, bank, chunk=3), brute, rtol=1e-4)


def test_copies_of_training_targets_are_memorised_and_fresh_draws_are_not():
    train, test = _draws(200, 0), _draws(100, 1)
    copied = memorisation(train[:50] + 0.001, train, test)
    assert copied["ratio"] < 0.01 and copied["copy_share"] == 1.0
    fresh = memorisation(_draws(100, 2), train, test)
    assert 0.8 < fresh["ratio"] < 1.25 and fresh["copy_share"] < 0.2


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="one image shape"):
        nearest_distances(_draws(2, 0), torch.zeros(3, 3, 5, 5))
