"""Fuzzing the two parsers of untrusted input: the image loader and the config parser.

Contract under test: every input ends in a result or in translab's own documented error, never in an
unhandled exception. Image loader (translab.data.images): a (N, 3, S, S) finite tensor in [-1, 1] or a
DataError. Config parser (translab.config): a Config that survives a YAML round trip, or a ConfigError (a
MethodError for a well-formed but unknown method name). The default run holds a fixed corpus of nasty
inputs; the hypothesis versions are marked slow and bounded by max_examples (run with -m slow).
"""
from __future__ import annotations

import io
import os
import struct
import tempfile
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from translab.config import Config, ConfigError, build_config, dump_yaml, load_yaml, resolve_config
from translab.data.base import DataError
from translab.data.images import ImageFiles, load_image_folder
from translab.methods import MethodError

CONFIG_ERRORS = (ConfigError, MethodError)
MARKER = Path(tempfile.gettempdir()) / f"translab-fuzz-pwned-{os.getpid()}"


# --------------------------------------------------------------------------------------------------
# oracles


def check_image_bytes(data: bytes, ext: str, folder: Path) -> str:
    """Write ``data`` as the only image of ``folder`` and load it both ways; returns 'ok' or 'refused'."""
    for p in folder.iterdir():
        p.unlink()
    path = folder / f"x{ext}"
    path.write_bytes(data)
    results = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            x, names = load_image_folder(folder, 8)
            assert x.shape == (1, 3, 8, 8) and x.dtype == torch.float32 and names == ["x"]
            assert torch.isfinite(x).all() and x.min() >= -1 and x.max() <= 1
            results.append("ok")
        except DataError as e:
            assert str(path) in str(e)
            results.append("refused")
        try:  # the lazy path: a stat scan lets the file through, __getitem__ meets it
            y = ImageFiles([path], 8, scan="stat")[0]
            assert y.shape == (3, 8, 8) and torch.isfinite(y).all()
        except DataError:
            pass
    return results[0]


def check_overrides(overrides: list[str], preset: str | None = None) -> Config | None:
    try:
        cfg = resolve_config("ddib", preset, None, overrides)
    except CONFIG_ERRORS:
        return None
    check_config(cfg)
    return cfg


def check_config(cfg: Config) -> None:
    """A config that was accepted can be saved and read back to the same thing (what a run directory needs)."""
    assert isinstance(cfg, Config)
    again = build_config(yaml.safe_load(dump_yaml(cfg)))
    assert again.to_dict() == cfg.to_dict()


def check_dict(data: dict) -> None:
    try:
        cfg = build_config(data)
    except ConfigError as e:
        assert len(str(e)) < 5000, str(e)[:300]  # hostile values are cut in messages
        return
    except MethodError:
        return
    check_config(cfg)


def check_yaml_bytes(data: bytes, folder: Path) -> None:
    path = folder / "c.yaml"
    path.write_bytes(data)
    try:
        loaded = load_yaml(path)
    except ConfigError as e:
        assert str(path) in str(e) and len(str(e)) < 5000
        return
    assert isinstance(loaded, dict)
    check_dict(loaded)
    try:
        check_config(resolve_config("ddib", "cmnist-2to3", str(path), []))
    except CONFIG_ERRORS:
        pass


# --------------------------------------------------------------------------------------------------
# the fixed corpus


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _png(w: int, h: int, depth: int = 8, ctype: int = 2, idat: bytes | None = None, extra: bytes = b"") -> bytes:
    """A hand-made PNG (signature, IHDR, extra chunks, IDAT, IEND) that may claim anything."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra
            + _chunk(b"IDAT", zlib.compress(b"\0" * 16) if idat is None else idat) + _chunk(b"IEND", b""))


def _enc(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def image_corpus() -> dict[str, bytes]:
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 255, (9, 7, 3), dtype=np.uint8))
    good_png, good_jpg = _enc(rgb, "PNG"), _enc(rgb, "JPEG")
    nan = np.full((4, 4), np.nan, np.float32)
    return {
        "empty": b"", "junk": bytes(np.random.default_rng(1).integers(0, 256, 700, dtype=np.uint8)),
        "png signature only": b"\x89PNG\r\n\x1a\n", "jpeg SOI only": b"\xff\xd8\xff",
        "zero width": _png(0, 5), "zero height": _png(5, 0), "bomb header": _png(100_000, 100_000),
        "one huge row": _png(2 ** 31 - 1, 1), "max dims": _png(2 ** 32 - 1, 2 ** 32 - 1),
        "bad bit depth": _png(4, 4, depth=7), "bad colour type": _png(4, 4, ctype=5),
        "palette without PLTE": _png(4, 4, ctype=3),
        "IDAT zip bomb": _png(4, 4, idat=zlib.compress(b"\0" * 20_000_000)),
        "zTXt zip bomb": _png(4, 4, extra=_chunk(b"zTXt", b"k\0\0" + zlib.compress(b"a" * 20_000_000))),
        "iCCP zip bomb": _png(4, 4, extra=_chunk(b"iCCP", b"p\0\0" + zlib.compress(b"a" * 20_000_000))),
        "bad CRC": good_png[:29] + b"\0\0\0\0" + good_png[33:],
        "truncated png": good_png[: len(good_png) // 2], "truncated jpeg": good_jpg[: len(good_jpg) // 2],
        "jpeg named png": good_jpg, "gif": _enc(Image.new("P", (4, 4)), "GIF"),
        "animated gif": _enc(Image.new("L", (4, 4)), "GIF", save_all=True, append_images=[Image.new("L", (4, 4), 255)]),
        "cmyk jpeg": _enc(Image.new("CMYK", (6, 6), (0, 255, 0, 0)), "JPEG"),
        "float tiff of NaN": _enc(Image.fromarray(nan), "TIFF"),
        "float tiff of inf": _enc(Image.fromarray(np.full((4, 4), -np.inf, np.float32)), "TIFF"),
        "16-bit big-endian tiff": _enc(Image.new("I;16B", (4, 4)), "TIFF"),
        "32-bit int tiff": _enc(Image.new("I", (3, 3)), "TIFF"), "1-bit png": _enc(Image.new("1", (3, 3)), "PNG"),
        "ico": _enc(Image.new("RGB", (16, 16)), "ICO"), "webp": _enc(Image.new("RGB", (4, 4)), "WEBP"),
        "bmp header bomb": b"BM" + struct.pack("<IHHI", 0, 0, 0, 54)
                           + struct.pack("<IiiHHIIiiII", 40, 100_000, 100_000, 1, 24, 0, 0, 0, 0, 0, 0),
        "psd magic": b"8BPS" + b"\0" * 40, "svg": b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        "pdf": b"%PDF-1.4\n", "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
        "tga": _enc(Image.new("RGB", (4, 4)), "TGA"), "1x1": _enc(Image.new("RGB", (1, 1)), "PNG"),
        "1x500": _enc(Image.new("RGB", (1, 500)), "PNG"), "good png": good_png, "good jpeg": good_jpg,
    }


IMAGES = image_corpus()


@pytest.mark.parametrize("name", list(IMAGES))
def test_image_corpus_loads_or_is_refused(tmp_path, name):
    for ext in (".png", ".jpg"):
        check_image_bytes(IMAGES[name], ext, tmp_path)


def test_image_corpus_controls(tmp_path):
    """The oracle can tell the two outcomes apart: good files load, junk and bombs are refused."""
    assert check_image_bytes(IMAGES["good png"], ".png", tmp_path) == "ok"
    assert check_image_bytes(IMAGES["jpeg named png"], ".png", tmp_path) == "ok"
    assert check_image_bytes(IMAGES["junk"], ".png", tmp_path) == "refused"
    assert check_image_bytes(IMAGES["bomb header"], ".jpg", tmp_path) == "refused"


BILLION_LAUGHS = "\n".join(["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
                           + [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")])

OVERRIDES = [
    "", "=", "a", "a=b", "=1", ".=1", "..=1", "train..steps=1", "train.=1", " train.steps = 5 ",
    "train.steps=" + "1" * 5000, "train.steps=-" + "9" * 5000, "train.steps=1e999", "train.steps=0x10",
    "train.steps=1_000", "train.steps=.inf", "train.lr=.nan", "train.lr=-.inf", "train.lr=1e-400",
    "train.steps=" + "[" * 5000, "train.steps=" + "{a: " * 3000, "model.unet.channel_mult=" + "[" * 200 + "]" * 200,
    "model.unet.channel_mult=[]", "model.unet.channel_mult=[1, [2]]", "model.unet.channel_mult=[true]",
    "method=[1]", "method={a: 1}", "method=", "method=null", "method=DDIB", "method=ddib\0",
    "data=", "data=null", "train=1", "model=5", "model=[1]", "train.steps.x=1", "train=1", "é.ü=1",
    "train.steps=!!python/object/apply:os.system ['touch " + str(MARKER) + "']",
    "train.steps=!!python/name:os.system", "train.steps=!!binary aGVsbG8=", "train.steps=!!set {a}",
    "train.steps=&a [*a]", "train.steps=*undefined", "train.steps=" + BILLION_LAUGHS.replace("\n", ", "),
    "\x00=\x00", "train.steps=\x00", "train.steps=\ufeff5", "train.steps=2001-01-01", "train.steps=true",
    "train.steps=5\n---\n6", "train.log_every=0", "train.checkpoint_every=-1", "train.batch_size=0",
    "data.image_size=-8", "train.ema_decay=1.5", "train.seed=" + str(2 ** 70), "data.limit=0",
    "train.progress=yes", "train.progress=maybe", "data.root=" + "x" * 100_000, "data.root=/dev/null",
    "train.mixed_precision=[]", "data.digit_a=3.5", "model.diffusion.num_timesteps=0", "x" * 10_000 + "=1",
]


@pytest.mark.parametrize("text", OVERRIDES, ids=[f"o{i}" for i in range(len(OVERRIDES))])
def test_override_corpus_resolves_or_raises_config_error(text):
    check_overrides([text])
    check_overrides([text], "cmnist-2to3")
    assert not MARKER.exists()


def test_override_corpus_controls():
    assert check_overrides(["train.steps=7"]).train.steps == 7
    assert check_overrides(["train.steps=0x10"]).train.steps == 16  # YAML 1.1 hex
    assert check_overrides(["train.log_every=0"]) is None
    with pytest.raises(ConfigError, match="override .train.steps.: the value cannot be parsed .maximum recursion depth"):
        resolve_config("ddib", None, None, ["train.steps=" + "[" * 5000])
    with pytest.raises(ConfigError, match="method: expected a method name"):
        resolve_config(None, None, None, ["method=[1]"])


def _deep(n: int, leaf) -> dict:
    d = leaf
    for _ in range(n):
        d = {"a": d}
    return d


def _cycle() -> dict:
    d: dict = {"steps": 1}
    d["train"] = d
    return {"train": d}


DICTS = [
    {}, {"method": None}, {"method": 5}, {"method": [1]}, {"method": {"x": 1}}, {"method": "ddib "},
    {1: 2}, {None: 1}, {(1, 2): 3}, {"": {}}, {"train": None}, {"train": []}, {"train": {"steps": {"a": 1}}},
    {"train": {"steps": 2 ** 200}}, {"train": {"lr": float("nan")}}, {"train": {"lr": "1e-3"}},
    {"train": {"lr": "fast"}}, {"train": {"steps": True}}, {"model": {"unet": [1]}}, {"model": 0},
    {"model": {"unet": {"channel_mult": list(range(10_000))}}}, {"model": {"diffusion": "x"}},
    {"data": {"root": b"\xff"}}, {"data": {"image_size": 8.0}}, {"train": _deep(3000, 1)}, _deep(3000, 1),
    {"model": {"unet": {"channel_mult": [[[[1]]]]}}}, _cycle(), {"ü": {"日本": 1}},
    {"method": "cyclegan", "model": {"unet": {}}}, {"method": "not", "data": {"dataset": 7}},
]


@pytest.mark.parametrize("data", DICTS, ids=[f"d{i}" for i in range(len(DICTS))])
def test_dict_corpus_builds_or_raises_config_error(data):
    check_dict(data)


YAMLS = [
    b"", b"\n\n", b"# only a comment", b"\xff\xfe\x00j\x00u\x00n\x00k", b"\xef\xbb\xbfmethod: ddib\n", b"\0\0\0",
    bytes(range(256)), b"- 1\n- 2\n", b"just a string", b"42", b"null", b"[" * 5000, b"{a: " * 3000,
    b"train: {steps: " + b"9" * 5000 + b"}", BILLION_LAUGHS.encode(), b"train: &t {steps: 1}\ndata: *t\n",
    b"train: *nothing\n", b"a: &a [*a]\n", b"train:\n  steps: 1\n  steps: 2\n", b"? [1, 2]\n: 3\n",
    f"method: !!python/object/apply:os.system ['touch {MARKER}']\n".encode(),
    b"method: !!python/name:os.system\n", b"train: !!python/object:translab.config.TrainConfig {}\n",
    b"method: ddib\n---\nmethod: not\n", b"\t\tbad: [", b"train: {steps: 1", "ü: {日本: 1}\n".encode(),
    b"train:\n" + b"  x" * 50_000, b"method: " + b"a" * 1_000_000,
]


@pytest.mark.parametrize("data", YAMLS, ids=[f"y{i}" for i in range(len(YAMLS))])
def test_yaml_corpus_loads_or_raises_config_error(tmp_path, data):
    check_yaml_bytes(data, tmp_path)
    assert not MARKER.exists()


# --------------------------------------------------------------------------------------------------
# hypothesis (slow)

FUZZ = settings(max_examples=300, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SEEDS = [v for k, v in IMAGES.items() if not k.endswith("zip bomb")]


@st.composite
def mutated_image(draw) -> bytes:
    """A real image file with a few bytes overwritten, inserted or cut: gets past the magic numbers."""
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "insert", "cut"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(max_size=16))
        else:
            data = data[:pos]
    return bytes(data)


@pytest.mark.slow
@FUZZ
@given(data=st.one_of(st.binary(max_size=4096), mutated_image()), ext=st.sampled_from([".png", ".jpg"]))
def test_fuzz_image_bytes(data, ext):
    with tempfile.TemporaryDirectory() as d:
        check_image_bytes(data, ext, Path(d))


KEYS = ["method", "data", "train", "model", "train.steps", "train.lr", "data.image_size", "data.root",
        "model.unet.channel_mult", "model.unet", "model.diffusion.schedule", "train.progress", "data.limit"]
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
nested = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), inner, max_size=4)),
    max_leaves=30)


@pytest.mark.slow
@FUZZ
@given(overrides=st.lists(st.one_of(
    st.text(max_size=60),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), st.text(max_size=60)),
    st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), nested.map(lambda x: yaml.safe_dump(x, default_flow_style=True).strip()))),
    max_size=4))
def test_fuzz_overrides(overrides):
    check_overrides(overrides)


@pytest.mark.slow
@FUZZ
@given(data=st.dictionaries(st.sampled_from(["method", "data", "train", "model"]), nested, max_size=4))
def test_fuzz_build_config(data):
    check_dict(data)


@pytest.mark.slow
@FUZZ
@given(text=st.one_of(st.text(max_size=400).map(str.encode), st.binary(max_size=400),
                      nested.map(lambda x: yaml.safe_dump(x).encode())))
def test_fuzz_load_yaml(text):
    with tempfile.TemporaryDirectory() as d:
        check_yaml_bytes(text, Path(d))
