"""Counterpart metrics (translab.metrics.counterpart) against analytic oracles, and their place in the evaluation
of a benchmark with aligned test sets."""
from __future__ import annotations

import pytest
import torch

from translab.metrics.classifier import ClassifierSpec, ImageClassifier, classifier_outputs
from translab.metrics.counterpart import counterpart_retrieval, distance_pair, reader_agreement


def test_retrieval_of_the_truth_itself_is_perfect_and_of_a_shift_is_zero():
    f = torch.eye(6) * 3.0
    assert counterpart_retrieval(f, f) == {"top1": 1.0, "top5": 1.0}
    line = torch.arange(6.0).unsqueeze(1)  # truths at 0, 1, ..., 5
    r = counterpart_retrieval(line + 0.6, line, ks=(1, 2))  # query k is nearer truth k+1 (0.4) than its own (0.6)
    assert r["top1"] == pytest.approx(1 / 6) and r["top2"] == 1.0  # only the last query finds its own first


def test_retrieval_ties_go_to_the_lower_index():
    truth = torch.zeros(4, 2)  # all truths identical: only query 0 ranks its own first
    r = counterpart_retrieval(torch.zeros(4, 2), truth, ks=(1, 2))
    assert r == {"top1": 0.25, "top2": 0.5}
    with pytest.raises(ValueError, match="one shape"):
        counterpart_retrieval(torch.zeros(3, 2), torch.zeros(4, 2))


def test_distance_ratio_is_zero_at_the_truth_and_one_at_the_input():
    g = torch.Generator().manual_seed(0)
    x, truth = torch.rand(5, 3, 4, 4, generator=g), torch.rand(5, 3, 4, 4, generator=g)
    at_truth = distance_pair(x, truth, truth, "u")
    assert at_truth["output"] == 0.0 and at_truth["ratio"] == 0.0 and at_truth["share_nearer_than_input"] == 1.0
    assert distance_pair(x, x, truth, "u")["ratio"] == pytest.approx(1.0)
    half = distance_pair(x, (x + truth) / 2, truth, "u")  # halfway in every pixel: a quarter of the squared distance
    assert half["ratio"] == pytest.approx(0.25)


def test_reader_agreement_counts_outputs_read_as_their_input():
    torch.manual_seed(0)
    reader = ImageClassifier(ClassifierSpec(classes=["p", "q", "r"], image_size=8, widths=[4])).eval()
    g = torch.Generator().manual_seed(1)
    cand = torch.rand(64, 3, 8, 8, generator=g) * 2 - 1
    _, pred = classifier_outputs(reader, cand)
    a = cand[0]
    b = cand[int((pred != pred[0]).nonzero()[0])]  # an image read differently from a
    x = a.expand(4, -1, -1, -1)
    out = reader_agreement(reader, x, torch.stack([a, a, b, b]))
    assert out["value"] == 0.5 and out["n_images"] == 4
    assert reader_agreement(reader, x, x)["value"] == 1.0
    with pytest.raises(ValueError, match="as many inputs as outputs"):
        reader_agreement(reader, x, x[:3])


def test_emoji_evaluation_scores_the_true_counterparts_as_perfect():
    """The shipped readers on the real benchmark: outputs that are the true counterparts keep tone and concept as
    far as the readers see them, retrieve themselves and sit at distance 0; the inputs are the ratio-1 baseline."""
    from translab.data.base import stack_dataset
    from translab.data.emoji import build_emoji
    from translab.evaluation import EvalOptions, measure_outputs, true_counterparts

    pair = build_emoji(32)
    x = stack_dataset(pair.get("a", "test"), 24)
    truth = true_counterparts(pair, "a", "b", 24)
    assert truth is not None and torch.equal(truth, stack_dataset(pair.get("b", "test"), 24))
    assert torch.equal(true_counterparts(pair, "b", "a", 24), x)  # the pairing holds both ways
    opts = EvalOptions(inception=False, progress=False)
    m = measure_outputs(x, truth, truth, "emoji", "woman", "b", opts, counterpart=truth)
    assert m["target_accuracy"]["value"] > 0.9
    assert m["tone_kept"]["value"] > 0.9 and m["concept_kept"]["value"] > 0.8
    c = m["counterpart"]
    assert c["retrieval"]["output"]["top1"] == 1.0 and c["distance"]["pixel"]["ratio"] == 0.0
    assert m["translated_and_kept"]["value"] >= 0.75  # the three readers at once, on the truth itself
    assert m["translated_and_kept"]["value"] <= min(m["target_accuracy"]["value"], m["tone_kept"]["value"],
                                                    m["concept_kept"]["value"])
    same = measure_outputs(x, x, truth, "emoji", "woman", "b", opts, counterpart=truth)
    assert same["counterpart"]["distance"]["pixel"]["ratio"] == pytest.approx(1.0)
    assert same["target_accuracy"]["value"] < 0.2  # men read as men
    assert same["translated_and_kept"]["value"] <= same["target_accuracy"]["value"]


def test_translated_and_kept_needs_every_count_on_the_same_output():
    from translab.metrics.counterpart import translated_and_kept

    torch.manual_seed(0)
    gender = ImageClassifier(ClassifierSpec(classes=["man", "woman"], image_size=8, widths=[4])).eval()
    tone = ImageClassifier(ClassifierSpec(classes=["p", "q", "r"], image_size=8, widths=[4])).eval()
    cand = torch.rand(256, 3, 8, 8, generator=torch.Generator().manual_seed(1)) * 2 - 1
    g, t = classifier_outputs(gender, cand)[1], classifier_outputs(tone, cand)[1]
    woman = int(gender.spec.classes.index("woman"))
    a = cand[0]  # an input; outputs: a woman of a's tone, a woman of another tone, a man of a's tone
    w_same = cand[int(((g == woman) & (t == t[0])).nonzero()[0])]
    w_other = cand[int(((g == woman) & (t != t[0])).nonzero()[0])]
    m_same = cand[int(((g != woman) & (t == t[0])).nonzero()[0])]
    x = a.expand(4, -1, -1, -1)
    out = translated_and_kept(gender, "woman", {"tone": tone}, x, torch.stack([w_same, w_other, m_same, w_same]))
    assert out["value"] == 0.5 and out["n_images"] == 4 and out["what"] == "read as woman with tone kept"


def test_unpaired_test_sets_have_no_counterparts(cmnist_pair):
    from translab.evaluation import true_counterparts

    assert true_counterparts(cmnist_pair, "a", "b") is None


def test_without_a_reader_retrieval_runs_in_pixels_and_finds_an_exact_copy():
    from translab.metrics.counterpart import counterpart_metrics

    g = torch.Generator().manual_seed(0)
    truth = torch.rand(6, 3, 8, 8, generator=g) * 2 - 1
    x = torch.rand(6, 3, 8, 8, generator=g) * 2 - 1
    m = counterpart_metrics(x, truth.clone(), truth, None)
    assert m["retrieval"]["space"] == "pixels" and m["retrieval"]["output"]["top1"] == 1.0
    assert m["distance"]["pixel"]["output"] == 0 and m["distance"]["pixel"]["ratio"] == 0
