"""Bad input: missing or empty folders, unknown layouts, broken files, odd image modes and sizes, bombs."""
from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from translab.data import DataError
from translab.data import images as images_mod
from translab.data.celeba import build_celeba
from translab.data.folders import build_folder_pair
from translab.data.images import ImageFiles, SkippedImagesWarning, load_image, load_image_folder
from layouts import make_celeba_kaggle, make_folder_pair


def esc(path) -> str:
    return re.escape(str(path))


def skipped_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, SkippedImagesWarning)]


def jpeg_bytes(size=64, seed=0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def png_bytes(size=64, seed=0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG file whose IHDR claims width x height RGB pixels (PNG spec: signature, IHDR, IDAT, IEND)."""
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


# --------------------------------------------------------------------------------------------------
# missing, empty, unknown layouts


def test_missing_domain_folders_are_named_in_one_error(tmp_path):
    make_folder_pair(tmp_path, n=2, size=8)
    for sub in ("testB", "trainA"):
        for f in (tmp_path / sub).iterdir():
            f.unlink()
        (tmp_path / sub).rmdir()
    with pytest.raises(DataError) as e:
        build_folder_pair(tmp_path, 8)
    msg = str(e.value)
    assert str(tmp_path / "testB") in msg and str(tmp_path / "trainA") in msg and "missing" in msg
    assert "trainA/, root/trainB/, root/testA/, root/testB/" in msg  # the expected layout


def test_empty_domain_folder_is_named(tmp_path):
    make_folder_pair(tmp_path, n=2, size=8)
    for f in (tmp_path / "trainB").iterdir():
        f.unlink()
    (tmp_path / "trainB" / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match=esc(tmp_path / "trainB") + " holds no image files.*expected"):
        build_folder_pair(tmp_path, 8)


def test_missing_root_is_named(tmp_path):
    with pytest.raises(DataError, match=esc(tmp_path / "absent") + ".*trainA"):
        build_folder_pair(tmp_path / "absent", 8)
    with pytest.raises(DataError, match=esc(tmp_path / "absent") + ".*img_align_celeba"):
        build_celeba(tmp_path / "absent", 8)


def test_celeba_folder_matching_neither_layout(tmp_path):
    make_folder_pair(tmp_path, n=2, size=8)  # a CycleGAN pair is not CelebA
    (tmp_path / "Dataset" / "Train" / "Male").mkdir(parents=True)  # half a Kaggle layout
    with pytest.raises(DataError) as e:
        build_celeba(tmp_path, 8)
    msg = str(e.value)
    assert f"no CelebA layout found at {tmp_path}" in msg
    assert "list_attr_celeba.txt" in msg and "Dataset/{Train,Validation,Test}/{Male,Female}" in msg


def test_celeba_empty_domain_is_named(tmp_path):
    make_celeba_kaggle(tmp_path, n=2)
    female_test = tmp_path / "Dataset" / "Test" / "Female"
    for f in female_test.iterdir():
        f.unlink()
    with pytest.raises(DataError, match=esc(tmp_path / "Dataset") + ".*has no images"):
        build_celeba(tmp_path, 8)


# --------------------------------------------------------------------------------------------------
# broken files


def add_broken_files(folder) -> dict[str, str]:
    """Zero-byte, truncated (JPEG and PNG) and text-as-PNG files among the good ones; name -> reason word."""
    (folder / "b_empty.png").write_bytes(b"")
    (folder / "c_trunc.jpg").write_bytes(jpeg_bytes()[: len(jpeg_bytes()) * 6 // 10])
    (folder / "d_trunc.png").write_bytes(png_bytes()[: len(png_bytes()) * 6 // 10])
    (folder / "e_text.png").write_text("this is a text file, not a PNG\n" * 20)
    return {"b_empty.png": "empty", "c_trunc.jpg": "truncated", "d_trunc.png": "truncated",
            "e_text.png": "not an image"}


def test_broken_files_are_skipped_counted_and_named_once(tmp_path):
    make_folder_pair(tmp_path, n=4, size=16)
    bad = add_broken_files(tmp_path / "trainA")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        pair = build_folder_pair(tmp_path, 8)
    msgs = skipped_warnings(record)
    assert len(msgs) == 1  # one warning, for the one folder with bad files
    assert "skipped 4 unusable file(s)" in msgs[0]
    for name in bad:
        assert str(tmp_path / "trainA" / name) in msgs[0]
    ds = pair.get("a", "train")
    assert len(ds) == 4 and pair.notes["skipped_files"] == 4
    reasons = {p.name: r for p, r in ds.skipped}
    assert set(reasons) == set(bad)
    for name, word in bad.items():
        assert word in reasons[name]
    batches = list(DataLoader(ds, batch_size=3))
    assert sum(b.shape[0] for b in batches) == 4 and all(b.shape[1:] == (3, 8, 8) for b in batches)


def test_warning_names_first_few_and_counts_the_rest(tmp_path):
    make_folder_pair(tmp_path, n=1, size=8)
    for i in range(8):
        (tmp_path / "testA" / f"z{i}.png").write_bytes(b"")
    with pytest.warns(SkippedImagesWarning) as record:
        build_folder_pair(tmp_path, 8)
    msg = skipped_warnings(record)[0]
    assert "skipped 8 unusable" in msg and "and 3 more" in msg
    assert msg.count("empty file") == images_mod.WARN_NAMES


def test_file_failing_after_scan_falls_back_without_crashing(tmp_path):
    make_folder_pair(tmp_path, n=5, size=16)
    folder = tmp_path / "trainB"
    trunc = folder / "trainB_002.png"
    trunc.write_bytes(png_bytes(32)[:300])  # truncated: the header reads, the pixels do not
    paths = sorted(folder.iterdir())
    ds = ImageFiles(paths, 8, scan="header")  # header scan cannot see truncation
    assert len(ds) == 5 and ds.skipped == []
    (folder / "trainB_004.png").write_text("replaced by text after the scan")
    with pytest.warns(SkippedImagesWarning, match="trainB_00[24].png.*next image"):
        batches = list(DataLoader(ds, batch_size=2))
    assert sum(b.shape[0] for b in batches) == 5
    assert {p.name for p, _ in ds.skipped} == {"trainB_002.png", "trainB_004.png"}
    # the fallback is the next good file: item 2 equals item 3
    assert torch.equal(ds[2], ds[3])


def test_full_scan_finds_truncation(tmp_path):
    make_folder_pair(tmp_path, n=2, size=16)
    trunc = tmp_path / "trainB" / "trainB_001.png"
    trunc.write_bytes(png_bytes(32)[:300])
    with pytest.warns(SkippedImagesWarning, match="trainB_001.png.*truncated"):
        ds = ImageFiles(sorted((tmp_path / "trainB").iterdir()), 8, scan="full")
    assert len(ds) == 1


def test_auto_scan_level_follows_the_number_of_files_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(images_mod, "FULL_SCAN_MAX_FILES", 3)
    monkeypatch.setattr(images_mod, "HEADER_SCAN_MAX_FILES", 5)
    make_folder_pair(tmp_path, n=6, size=8)
    paths = sorted((tmp_path / "trainA").iterdir())
    assert ImageFiles(paths, 8).scan == "stat"
    assert ImageFiles(paths[:5], 8).scan == "header"
    assert ImageFiles(paths, 8, limit=3).scan == "full"


def test_stat_scan_skips_empty_files_and_the_rest_fall_back_once(tmp_path):
    make_folder_pair(tmp_path, n=3, size=8)
    folder = tmp_path / "testA"
    (folder / "testA_000.png").write_bytes(b"")
    (folder / "testA_001.png").write_text("text, not pixels")
    with pytest.warns(SkippedImagesWarning, match="testA_000.png.*empty"):
        ds = ImageFiles(sorted(folder.iterdir()), 8, scan="stat")
    assert len(ds) == 2  # the text file passes a stat scan
    with pytest.warns(SkippedImagesWarning, match="testA_001.png"):
        first = ds[0]
    assert torch.equal(first, ds[1])
    for _ in range(3):  # a known-bad file is recorded once, not once per epoch
        list(DataLoader(ds, batch_size=2))
    assert [p.name for p, _ in ds.skipped] == ["testA_000.png", "testA_001.png"]


def test_bomb_missed_by_a_stat_scan_is_skipped_when_loaded(tmp_path):
    bomb = tmp_path / "a_bomb.png"
    bomb.write_bytes(png_header_claiming(100_000, 100_000))
    (tmp_path / "b_ok.png").write_bytes(png_bytes(8))
    ds = ImageFiles(sorted(tmp_path.iterdir()), 8, scan="stat")
    assert len(ds) == 2  # a stat scan does not open files
    with pytest.warns(SkippedImagesWarning, match=esc(bomb) + ".*too large.*decompression bomb"):
        first = ds[0]
    assert torch.equal(first, ds[1])  # the next good image stands in
    assert [(p.name, "decompression bomb" in r) for p, r in ds.skipped] == [("a_bomb.png", True)]
    alone = ImageFiles([bomb], 8, scan="stat")
    with pytest.warns(SkippedImagesWarning), pytest.raises(DataError, match="none of the 1 images.*" + esc(bomb)):
        alone[0]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file_is_skipped(tmp_path):
    make_folder_pair(tmp_path, n=2, size=8)
    locked = tmp_path / "trainA" / "trainA_000.png"
    locked.chmod(0)
    try:
        with pytest.warns(SkippedImagesWarning, match="trainA_000.png.*unreadable"):
            pair = build_folder_pair(tmp_path, 8)
        assert len(pair.get("a", "train")) == 1
    finally:
        locked.chmod(0o644)


# --------------------------------------------------------------------------------------------------
# image modes and sizes


def save(img: Image.Image, path) -> str:
    img.save(path)
    return str(path)


def test_modes_become_rgb(tmp_path):
    S = 6
    red_palette = Image.new("P", (10, 10), 1)
    red_palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    transparent_palette = red_palette.copy()
    transparent_palette.info["transparency"] = 1
    cases = {
        # name: (image, expected (R, G, B) in [0, 1] everywhere)
        "grey.png": (Image.new("L", (10, 10), 100), (100 / 255,) * 3),
        "rgba.png": (Image.new("RGBA", (10, 10), (255, 0, 0, 128)), (128 / 255, 0, 0)),
        "la.png": (Image.new("LA", (10, 10), (200, 51)), (200 * 51 / 255 / 255,) * 3),
        "palette.png": (red_palette, (1, 0, 0)),
        "palette_transparent.png": (transparent_palette, (0, 0, 0)),
        "bilevel.png": (Image.new("1", (10, 10), 1), (1, 1, 1)),
        "grey16.png": (Image.fromarray(np.full((10, 10), 32768, np.uint16)), (32768 / 65535,) * 3),
        "grey32.tif": (Image.fromarray(np.full((10, 10), 40000, np.int32)), (40000 / 65535,) * 3),
    }
    for name, (img, rgb) in cases.items():
        path = save(img, tmp_path / name)
        reopened = Image.open(path)
        if name == "grey16.png":
            assert reopened.mode.startswith("I;16"), reopened.mode
        if name == "grey32.tif":
            assert reopened.mode == "I", reopened.mode
        x = load_image(path, S)
        assert x.shape == (3, S, S) and x.dtype == torch.float32, name
        want = torch.tensor(rgb, dtype=torch.float32)[:, None, None] * 2 - 1
        assert torch.allclose(x, want.expand_as(x), atol=2 / 255), (name, x[:, 0, 0], want[:, 0, 0])


@pytest.mark.parametrize("wh", [(40, 30), (30, 40), (31, 52)])
def test_other_sizes_are_centre_cropped_and_resized(tmp_path, wh):
    """Oracle: an image whose centre square is white and whose outside bands are red loads as pure white."""
    w, h = wh
    side = min(w, h)
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = 255
    top, left = (h - side) // 2, (w - side) // 2
    arr[top:top + side, left:left + side] = 255
    path = save(Image.fromarray(arr), tmp_path / "band.png")
    x = load_image(path, 12)
    assert x.shape == (3, 12, 12)
    assert x.min() > 0.99


def test_small_images_are_upscaled(tmp_path):
    path = save(Image.new("RGB", (5, 5), (0, 255, 0)), tmp_path / "tiny.bmp")
    x = load_image(path, 16)
    assert x.shape == (3, 16, 16)
    assert torch.allclose(x[1], torch.ones(16, 16)) and torch.allclose(x[0], -torch.ones(16, 16))


# --------------------------------------------------------------------------------------------------
# decompression bombs


@pytest.mark.parametrize("side", [10_000, 100_000])  # above PIL's limit (warning) and twice above (error)
def test_header_claiming_huge_size_is_skipped_like_a_corrupt_file(tmp_path, side):
    (tmp_path / "ok.png").write_bytes(png_bytes(8))
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_claiming(side, side))
    assert bomb.stat().st_size < 200
    claims = f" \\(too large: it claims {side * side:,} pixels.*decompression bomb"
    with pytest.warns(SkippedImagesWarning, match=esc(bomb) + claims):
        images, names = load_image_folder(tmp_path, 8)
    assert names == ["ok"] and images.shape == (1, 3, 8, 8)
    with pytest.raises(images_mod.ImageTooLargeError, match=esc(bomb) + ".*decompression bomb"):
        load_image(bomb, 8)  # on its own, loading one is still refused


def test_image_above_the_module_limit_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(images_mod, "MAX_IMAGE_PIXELS", 100 * 100)
    make_folder_pair(tmp_path, n=2, size=8)
    big = tmp_path / "testA" / "big.png"
    Image.new("RGB", (200, 200), (9, 9, 9)).save(big)
    with pytest.warns(SkippedImagesWarning, match=esc(big) + r".*200 x 200 = 40,000 pixels.*10,000"):
        pair = build_folder_pair(tmp_path, 8)
    assert len(pair.get("a", "test")) == 2 and pair.notes["skipped_files"] == 1
    with pytest.raises(DataError, match=esc(big)):
        load_image(big, 8)


def test_read_image_folder_lists_skipped_files_without_warning(tmp_path):
    (tmp_path / "a.png").write_bytes(png_bytes(8))
    (tmp_path / "b.png").write_bytes(png_header_claiming(10_000, 10_000))
    (tmp_path / "c.png").write_text("text")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = images_mod.read_image_folder(tmp_path, 8)
    assert got.names == ["a"] and [p.name for p in got.files] == ["a.png"] and got.images.shape == (1, 3, 8, 8)
    assert [(p.name, r.split(":")[0]) for p, r in got.skipped] == [("b.png", "too large"),
                                                                  ("c.png", "not an image (PIL cannot identify it)")]


def test_output_names_keep_accented_letters_readable():
    from pathlib import Path

    names = images_mod.output_names([Path(n) for n in ["café.png", "Ärger.jpg", "日本.png", "ﬁle.png"]])
    assert names == ["cafe", "Arger", "image", "file"]
