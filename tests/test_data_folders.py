"""CycleGAN folder pairs and plain image folders load from generated PNGs with the right content."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from translab.cli import main
from translab.config import DataConfig
from translab.data import DataError, build_domain_pair
from translab.data.folders import build_folder_pair
from translab.data.images import ImageFiles, image_folder_dataset, list_images, load_image_folder, output_names
from layouts import make_folder_pair


def warm(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N,) bool: red channel brighter than blue on average (domain A of layouts.py)."""
    return images[:, 0].mean(dim=(1, 2)) > images[:, 2].mean(dim=(1, 2))


@pytest.fixture
def pair_root(tmp_path):
    written = make_folder_pair(tmp_path / "pair", n=6, size=24)
    return tmp_path / "pair", written


def test_folder_pair_counts_shapes_ranges_domains(pair_root):
    root, written = pair_root
    pair = build_folder_pair(root, 16)
    assert pair.counts() == {"a/train": 6, "a/test": 6, "b/train": 6, "b/test": 6}
    assert pair.image_size == 16
    for (dom, split), names in written.items():
        ds = pair.get(dom, split)
        assert isinstance(ds, ImageFiles) and ds.skipped == []
        assert ds.names == [n.rsplit(".", 1)[0] for n in sorted(names)]
        x = torch.stack([ds[i] for i in range(len(ds))])
        assert x.shape == (6, 3, 16, 16) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 1
        assert x.min() < -0.7 and x.max() > 0.5  # dark background and a bright shape, not a flat image
        assert warm(x).all() if dom == "a" else (~warm(x)).all()


def test_limit_keeps_the_first_files(pair_root):
    root, written = pair_root
    pair = build_folder_pair(root, 8, limit=2)
    assert pair.counts() == {"a/train": 2, "a/test": 2, "b/train": 2, "b/test": 2}
    assert pair.get("b", "test").names == [n[:-4] for n in sorted(written[("b", "test")])[:2]]


def test_reverse_swaps_domains(pair_root):
    root, _ = pair_root
    fwd = build_domain_pair(DataConfig(dataset="folders", root=str(root), image_size=8))
    rev = build_domain_pair(DataConfig(dataset="folders", root=str(root), image_size=8, reverse=True))
    assert rev.get("a", "train").paths == fwd.get("b", "train").paths
    assert rev.get("b", "test").paths == fwd.get("a", "test").paths
    a = torch.stack([rev.get("a", "train")[i] for i in range(6)])
    assert (~warm(a)).all()


def test_folder_pair_needs_a_root():
    with pytest.raises(DataError, match="data.root"):
        build_domain_pair(DataConfig(dataset="folders"))


def test_dataloader_batches(pair_root):
    root, _ = pair_root
    ds = build_folder_pair(root, 16).get("a", "train")
    batches = list(DataLoader(ds, batch_size=4, shuffle=False))
    assert [b.shape for b in batches] == [(4, 3, 16, 16), (2, 3, 16, 16)]


def test_list_images_filters_and_sorts(tmp_path):
    for name in ["b.PNG", "a.jpeg", "c.TiFf", "d.webp", "e.bmp", "notes.txt", ".hidden.png", "f.gif"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.png").mkdir()
    assert [p.name for p in list_images(tmp_path)] == ["a.jpeg", "b.PNG", "c.TiFf", "d.webp", "e.bmp"]


def test_load_image_folder_names_are_stems(tmp_path):
    rng = np.random.default_rng(0)
    for name in ["zeta.png", "alpha.jpg", "same.png", "same.jpg"]:
        Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)).save(tmp_path / name)
    images, names = load_image_folder(tmp_path, 8)
    assert names == ["alpha", "same_jpg", "same_png", "zeta"]
    assert images.shape == (4, 3, 8, 8) and images.dtype == torch.float32
    assert images.min() >= -1 and images.max() <= 1
    ds = image_folder_dataset(tmp_path, 8)
    assert ds.names == names and torch.equal(ds[3], images[3])


def test_output_names_are_unique():
    from pathlib import Path

    names = output_names([Path(n) for n in ["a.png", "a.PNG", "b.jpg", "a.jpg", "c.png"]])
    assert names == ["a_png", "a_png_2", "b", "a_jpg", "c"]


def test_load_image_folder_refuses_missing_empty_and_unreadable(tmp_path):
    with pytest.raises(DataError, match=re.escape(str(tmp_path / 'nope')) + ".*does not exist"):
        load_image_folder(tmp_path / "nope", 8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=re.escape(str(tmp_path / 'empty')) + ".*no image files"):
        load_image_folder(tmp_path / "empty", 8)
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.png").write_text("not a picture")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="no readable image.*a.png"):
        load_image_folder(tmp_path / "text", 8)
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(DataError, match="not a folder"):
        load_image_folder(tmp_path / "file.png", 8)


def test_cli_data_show_folders(pair_root, tmp_path, capsys):
    root, _ = pair_root
    out = tmp_path / "g.png"
    assert main(["data", "show", "folders", "--data-root", str(root), "--out", str(out), "-n", "3",
                 "--set", "data.image_size=16"]) == 0
    text = capsys.readouterr().out
    assert "A train:      6" in text and "16 x 16" in text
    assert Image.open(out).size == (2 * (3 * 18 + 2), 2 * (4 * 18 + 2))


def test_pairing_file_aligns_the_test_sets_and_drops_a_pair_with_a_bad_file(pair_root):
    from translab.evaluation import true_counterparts

    root, _ = pair_root
    (root / "testB" / "testB_002.png").write_bytes(b"not an image")
    lines = ["# testA file, its true counterpart in testB", "testA_000.png,testB_003.png", "",
             "testA_001.png, testB_002.png", "testA_004.png,testB_000.png"]
    (root / "test_pairs.csv").write_text("\n".join(lines) + "\n")
    with pytest.warns(UserWarning, match="testB_002"):
        pair = build_folder_pair(root, 16)
    a, b = pair.get("a", "test"), pair.get("b", "test")
    assert a.names == ["testA_000", "testA_004"] and b.names == ["testB_003", "testB_000"]
    assert pair.notes["paired_test"] and pair.notes["pairs_listed"] == 3 and pair.notes["pairs_dropped"] == 1
    assert torch.equal(a.meta["pair"], torch.tensor([0, 1])) and len(pair.get("a", "train")) == 6
    truth = true_counterparts(pair, "a", "b")
    assert torch.equal(truth, torch.stack([b[0], b[1]]))
    assert torch.equal(true_counterparts(pair.swapped(), "a", "b"), torch.stack([a[0], a[1]]))


@pytest.mark.parametrize("line, why", [("testA_000.png", "expected 'testA_file,testB_file'"),
                                       ("testA_000.png,nope.png", "is not a file"),
                                       ("testA_000.png,testB_000.png\ntestA_000.png,testB_001.png", "listed twice")])
def test_a_bad_pairing_file_is_one_line_naming_it(pair_root, line, why):
    root, _ = pair_root
    (root / "test_pairs.csv").write_text(line + "\n")
    with pytest.raises(DataError, match=why) as e:
        build_folder_pair(root, 16)
    assert "test_pairs.csv line" in str(e.value) and "\n" not in str(e.value)


def test_evaluate_scores_a_paired_folder_pair_against_its_counterparts(pair_root, tmp_path):
    import json

    from tiny_runs import tiny_ddib
    from translab.training import train

    root, _ = pair_root
    (root / "test_pairs.csv").write_text("".join(f"testA_{i:03d}.png,testB_{5 - i:03d}.png\n" for i in range(4)))
    cfg = tiny_ddib(2, "data.dataset=folders", f"data.root={root}")
    train(cfg, tmp_path / "run")
    assert main(["evaluate", "--run", str(tmp_path / "run"), "--threads", "1", "--no-progress",
                 "--no-inception"]) == 0
    e = json.loads(next((tmp_path / "run" / "eval").glob("*.json")).read_text())
    c = e["metrics"]["counterpart"]
    assert c["n_images"] == 4 and c["retrieval"]["space"] == "pixels"
    assert c["distance"]["pixel"]["ratio"] > 0 and 0 <= c["retrieval"]["output"]["top1"] <= 1
