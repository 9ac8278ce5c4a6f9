"""CelebA male -> female from both real layouts, written small by translab.data.layouts."""
from __future__ import annotations

import re
import shutil

import pytest
import torch

from translab.config import DataConfig
from translab.data import DataError, build_domain_pair
from translab.data.celeba import build_celeba
from layouts import CELEBA_ATTRIBUTES, make_celeba_kaggle, make_celeba_official

N = 3  # images per domain and partition


def warm(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) -> (N,) bool: red brighter than blue on average; layouts.py draws domain A warm."""
    return images[:, 0].mean(dim=(1, 2)) > images[:, 2].mean(dim=(1, 2))


def all_images(ds) -> torch.Tensor:
    return torch.stack([ds[i] for i in range(len(ds))])


def check_pair(pair, written, size):
    assert pair.domain_names == ("male", "female")
    assert pair.counts() == {"a/train": N, "a/test": N, "b/train": N, "b/test": N}  # validation left out
    for (dom, split), names in written.items():
        ds = pair.get(dom, split)
        assert ds.names == [n[:-4] for n in sorted(names)], (dom, split)
        x = all_images(ds)
        assert x.shape == (N, 3, size, size) and x.dtype == torch.float32
        assert x.min() >= -1 and x.max() <= 1
        assert warm(x).all() if dom == "a" else (~warm(x)).all(), (dom, split)


def test_official_layout(tmp_path):
    written = make_celeba_official(tmp_path, n=N)
    pair = build_celeba(tmp_path, 16)
    assert pair.notes["layout"] == "official"
    check_pair(pair, written, 16)


def test_official_male_column_is_read_by_name(tmp_path):
    """Domain assignment follows the Male column, not image order: males are exactly the Male == 1 rows."""
    make_celeba_official(tmp_path, n=N, seed=3)
    rows = (tmp_path / "list_attr_celeba.txt").read_text().splitlines()[2:]
    col = CELEBA_ATTRIBUTES.index("Male") + 1
    male = {r.split()[0][:-4] for r in rows if r.split()[col] == "1"}
    part = dict(line.split() for line in (tmp_path / "list_eval_partition.txt").read_text().splitlines())
    pair = build_celeba(tmp_path, 8)
    assert set(pair.get("a", "train").names) == {m for m in male if part[m + ".jpg"] == "0"}
    assert set(pair.get("a", "test").names) == {m for m in male if part[m + ".jpg"] == "2"}
    assert not set(pair.get("b", "train").names) & male


def test_official_layout_nested_folder_and_csv_lists(tmp_path):
    written = make_celeba_official(tmp_path, n=N)
    # Kaggle mirror of the official set: img_align_celeba/img_align_celeba/ and CSV lists
    inner = tmp_path / "img_align_celeba" / "img_align_celeba"
    inner.mkdir()
    for f in list((tmp_path / "img_align_celeba").glob("*.jpg")):
        shutil.move(f, inner / f.name)
    lines = (tmp_path / "list_attr_celeba.txt").read_text().splitlines()
    csv = ["image_id," + ",".join(lines[1].split())] + [",".join(r.split()) for r in lines[2:]]
    (tmp_path / "list_attr_celeba.csv").write_text("\n".join(csv) + "\n")
    part = (tmp_path / "list_eval_partition.txt").read_text().splitlines()
    (tmp_path / "list_eval_partition.csv").write_text("image_id,partition\n" + "\n".join(
        ",".join(r.split()) for r in part) + "\n")
    (tmp_path / "list_attr_celeba.txt").unlink()
    (tmp_path / "list_eval_partition.txt").unlink()
    pair = build_celeba(tmp_path, 8)
    check_pair(pair, written, 8)
    assert str(inner) in pair.source


@pytest.mark.parametrize("nested", [None, "gender-200k", "archive/inner"])
def test_kaggle_layout(tmp_path, nested):
    written = make_celeba_kaggle(tmp_path, n=N, nested=nested)
    pair = build_celeba(tmp_path, 12)
    assert pair.notes["layout"] == "kaggle"
    check_pair(pair, written, 12)


def test_default_size_and_limit(tmp_path):
    written = make_celeba_official(tmp_path, n=N, size=(90, 110))
    pair = build_celeba(tmp_path, limit=2)
    assert pair.image_size == 64
    assert pair.counts() == {"a/train": 2, "a/test": 2, "b/train": 2, "b/test": 2}
    assert pair.get("b", "test").names == [n[:-4] for n in sorted(written[("b", "test")])[:2]]
    assert pair.get("a", "train")[0].shape == (3, 64, 64)


def test_reverse_makes_female_domain_a(tmp_path):
    make_celeba_kaggle(tmp_path, n=N)
    cfg = DataConfig(dataset="celeba", root=str(tmp_path), image_size=8, reverse=True)
    pair = build_domain_pair(cfg)
    assert pair.domain_names == ("female", "male")
    assert (~warm(all_images(pair.get("a", "train")))).all()
    assert warm(all_images(pair.get("b", "test"))).all()


def test_official_list_errors_name_the_file(tmp_path):
    make_celeba_official(tmp_path, n=N)
    attr = tmp_path / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    attr.write_text("\n".join(lines[:-1] + [lines[-1].rsplit(" ", 2)[0]]) + "\n")  # last row loses a value
    with pytest.raises(DataError, match=re.escape(str(attr)) + r", line \d+: expected a file name and 40"):
        build_celeba(tmp_path, 8)
    attr.write_text("\n".join(lines[:-1]) + "\n")  # count line no longer matches
    with pytest.raises(DataError, match=re.escape(str(attr)) + ".*truncated"):
        build_celeba(tmp_path, 8)


def test_official_without_partition_list_names_it(tmp_path):
    make_celeba_official(tmp_path, n=N)
    (tmp_path / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match="list_eval_partition.txt"):
        build_celeba(tmp_path, 8)
