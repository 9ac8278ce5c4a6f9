"""Shared fixtures only (nothing method-specific): thread cap, MNIST location, the shipped cMNIST pair."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run on small CPUs next to other work: one intra-op thread keeps them cheap and deterministic."""
    torch.set_num_threads(1)
    yield


@pytest.fixture(autouse=True, scope="session")
def _private_feature_cache(tmp_path_factory):
    """Tests never read or fill the user's on-disk feature cache (translab.feature_cache)."""
    old = os.environ.get("TRANSLAB_CACHE")
    os.environ["TRANSLAB_CACHE"] = str(tmp_path_factory.mktemp("translab-cache"))
    yield
    if old is None:
        os.environ.pop("TRANSLAB_CACHE", None)
    else:
        os.environ["TRANSLAB_CACHE"] = old


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """Folder holding MNIST/raw/*-ubyte ($TRANSLAB_DATA; CI sets it to ../shared/data); skip if absent."""
    env = os.environ.get("TRANSLAB_DATA")
    if not env:
        pytest.skip("TRANSLAB_DATA is not set: no real MNIST copy to read digits other than 2 and 3 from")
    root = Path(env)
    if not (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip(f"no MNIST/raw under TRANSLAB_DATA={root}")
    return root


@pytest.fixture(scope="session")
def cmnist_pair():
    """Colored MNIST 2 -> 3 at 32x32 from the shipped digits (all images, colour seed 0); do not modify."""
    from translab.data.cmnist import build_cmnist

    return build_cmnist(2, 3, 32, 0)
