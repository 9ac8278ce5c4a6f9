"""data.channels (issue 20): a greyscale folder pair stays greyscale through the data, every method's networks,
the saved outputs, the metrics and the report; channels=3 keeps today's RGB tensors; other values are refused.

Everything runs on a tiny generated pair of 12x12 L-mode PNGs read at 8x8, with the tiny method settings of
tests/test_method_contract.py, so the whole file takes seconds at one thread.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from test_method_contract import TINY
from tiny_runs import with_teacher
from translab.config import ConfigError, DataConfig, resolve_config
from translab.data import DataError, build_domain_pair
from translab.data.images import load_image
from translab.methods import METHODS

SIDE, SIZE, PER_FOLDER = 12, 8, 4
FOLDERS = ("trainA", "trainB", "testA", "testB")


def grey_image(kind: str, rng: np.random.Generator) -> Image.Image:
    """A SIDE x SIDE L-mode image: a bright square ('A') or disc ('B') of random grey level on a dark ground."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE].astype(np.float32)
    r, c = rng.uniform(2.5, 4.0), SIDE / 2 + rng.uniform(-1, 1, size=2)
    mask = (np.abs(yy - c[0]) <= r) & (np.abs(xx - c[1]) <= r) if kind == "A" else \
        (yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= r * r
    level = rng.integers(150, 256)
    return Image.fromarray(np.where(mask, level, rng.integers(0, 30)).astype(np.uint8), "L")


@pytest.fixture(scope="module")
def grey_root(tmp_path_factory):
    """root/{trainA,trainB,testA,testB}/NN.png, PER_FOLDER greyscale (L-mode) PNGs each."""
    root = tmp_path_factory.mktemp("grey_pair")
    rng = np.random.default_rng(0)
    for folder in FOLDERS:
        (root / folder).mkdir()
        for i in range(PER_FOLDER):
            grey_image(folder[-1], rng).save(root / folder / f"{i:02d}.png")
    return root


def data_settings(root, channels: int = 1) -> list[str]:
    return ["data.dataset=folders", f"data.root={root}", f"data.image_size={SIZE}", f"data.channels={channels}"]


def stack(ds) -> torch.Tensor:
    return torch.stack([ds[i] for i in range(len(ds))])


# --------------------------------------------------------------------------------------------------
# data


def test_greyscale_folder_pair_yields_one_channel_in_range(grey_root):
    pair = build_domain_pair(DataConfig(dataset="folders", root=str(grey_root), image_size=SIZE, channels=1))
    assert pair.channels == 1 and pair.swapped().channels == 1
    for d in ("a", "b"):
        for s in ("train", "test"):
            x = stack(pair.get(d, s))
            assert x.shape == (PER_FOLDER, 1, SIZE, SIZE) and x.dtype == torch.float32
            assert x.min() >= -1 and x.max() <= 1 and x.max() > 0.0  # a bright shape on a dark ground


def test_channels_3_on_an_l_mode_folder_is_todays_rgb(grey_root):
    """channels=3 (the default) gives what translab gave before data.channels existed: PIL's RGB conversion,
    bilinear resize, [-1, 1]; three equal channels, whose first is exactly the channels=1 item."""
    rgb = build_domain_pair(DataConfig(dataset="folders", root=str(grey_root), image_size=SIZE))
    grey = build_domain_pair(DataConfig(dataset="folders", root=str(grey_root), image_size=SIZE, channels=1))
    assert rgb.channels == 3
    ds = rgb.get("a", "train")
    for i, path in enumerate(ds.paths):
        with Image.open(path) as im:
            ref = np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR), dtype=np.uint8)
        expected = torch.from_numpy(ref.copy()).permute(2, 0, 1).float().div(127.5).sub(1.0)
        assert torch.equal(ds[i], expected)
    x3, x1 = stack(ds), stack(grey.get("a", "train"))
    assert torch.equal(x3[:, 0], x3[:, 1]) and torch.equal(x3[:, 0], x3[:, 2])
    assert torch.equal(x3[:, :1], x1)


def test_greyscale_composites_transparency_on_black(tmp_path):
    rng = np.random.default_rng(1)
    rgba = Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 4), dtype=np.uint8), "RGBA")
    rgba.save(tmp_path / "rgba.png")
    black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    ref = np.asarray(Image.alpha_composite(black, rgba).convert("RGB").convert("L"), dtype=np.float32)
    x = load_image(tmp_path / "rgba.png", SIZE, channels=1)
    assert x.shape == (1, SIZE, SIZE)
    assert torch.equal(x[0], torch.from_numpy(ref) / 127.5 - 1.0)


def test_bad_channel_values_are_config_errors(grey_root):
    for bad in ("2", "4", "0", "true"):
        with pytest.raises(ConfigError, match="data.channels") as err:
            resolve_config("cyclegan", None, overrides=data_settings(grey_root, bad))
        assert bad in str(err.value) or "True" in str(err.value)
        assert len(str(err.value).splitlines()) == 1
    with pytest.raises(ConfigError, match=r"data.channels: expected 1 \(greyscale\) or 3 \(RGB\), got 2"):
        DataConfig(channels=2)
    with pytest.raises(DataError, match="got 2"):
        load_image(next((grey_root / "trainA").iterdir()), SIZE, channels=2)


@pytest.mark.parametrize("dataset", ["cmnist", "synthetic"])
def test_hue_coloured_datasets_refuse_greyscale(dataset):
    with pytest.raises(DataError, match=f"data.channels=1: dataset '{dataset}'"):
        build_domain_pair(DataConfig(dataset=dataset, image_size=SIZE, limit=4, channels=1))


# --------------------------------------------------------------------------------------------------
# methods


def grey_config(name: str, root, *extra: str):
    common = ["data.limit=4", "train.batch_size=3", "train.progress=false", "train.sample_every=0",
              "train.log_every=1", "train.threads=1", "train.steps=2"]
    return resolve_config(name, None, overrides=with_teacher(data_settings(root) + common + TINY[name][0] + list(extra)))


@pytest.fixture(scope="module", params=sorted(METHODS))
def grey_trained(request, grey_root, tmp_path_factory):
    from translab.training import train

    name = request.param
    run = tmp_path_factory.mktemp(f"grey_{name.replace('-', '_')}") / "run"
    return name, train(grey_config(name, grey_root), run)


def first_conv_in_channels(net: torch.nn.Module) -> int:
    return next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d)).in_channels


def test_every_method_trains_and_translates_greyscale(grey_trained):
    from translab.loading import load_method

    name, result = grey_trained
    assert result.step == 2 and all(math.isfinite(v) for v in result.last_scalars.values()), name
    method = result.method.eval()
    assert method.channels == 1
    for net_name, net in method.nets.items():  # UNIT-DDPM's denoisers read [x_t, condition]: 2 channels
        want = 2 if name == "unit-ddpm" and net_name.startswith("eps") else 1
        assert first_conv_in_channels(net) == want, (name, net_name)
    loaded, cfg, _ = load_method(result.run_dir)
    assert cfg.data.channels == 1
    x = torch.rand(3, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    for direction in method.directions():
        with torch.no_grad():
            y = method.translate(x, direction, generator=torch.Generator().manual_seed(0)).images
            again = loaded.translate(x, direction, generator=torch.Generator().manual_seed(0)).images
        assert y.shape == (3, 1, SIZE, SIZE), (name, direction)
        assert y.min() >= -1 and y.max() <= 1, (name, direction)
        assert torch.equal(y, again), f"{name} {direction}: the saved greyscale run translates differently"
    grids = sorted((result.run_dir / "samples").glob("*.png"))
    assert grids and Image.open(grids[-1]).mode == "RGB"


@pytest.mark.parametrize("grey_trained", ["cyclegan"], indirect=True)
def test_a_greyscale_run_does_not_resume_as_rgb(grey_trained, grey_root):
    from translab.training import TrainingError, train

    name, result = grey_trained
    with pytest.raises(TrainingError, match="data.channels"):
        train(grey_config(name, grey_root, "data.channels=3", "train.steps=3"), result.run_dir)


def test_a_run_saved_before_data_channels_existed_still_resumes(grey_root):
    from translab.training import _check_resume_config

    cfg = grey_config("cyclegan", grey_root, "data.channels=3")
    saved = cfg.to_dict()
    del saved["data"]["channels"]  # the config of a checkpoint written before data.channels existed
    assert _check_resume_config(saved, cfg, grey_root / "step_1.pt") == []


# --------------------------------------------------------------------------------------------------
# outputs, metrics, report


def test_greyscale_images_save_as_l_pngs_and_grey_grids(tmp_path):
    from translab.image_io import grid_array, save_images

    x = torch.linspace(-1, 1, 2 * SIZE * SIZE).reshape(2, 1, SIZE, SIZE)
    paths = save_images(x, tmp_path, ["p", "q"])
    with Image.open(paths[1]) as im:
        assert im.mode == "L" and im.size == (SIZE, SIZE)
        assert torch.equal(torch.from_numpy(np.asarray(im).copy()),
                           ((x[1, 0] + 1) * 127.5).round().to(torch.uint8))
    assert np.array_equal(grid_array([x, x]), grid_array([x.expand(2, 3, SIZE, SIZE)] * 2))


def test_inception_features_repeat_greyscale_to_three_channels():
    from translab.metrics.inception import InceptionFeatures

    class Probe(torch.nn.Module):
        """Stands in for Inception: demands uint8 (N, 3, H, W) and returns per-channel means as features."""

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            assert x.dtype == torch.uint8 and x.shape[1] == 3
            feats = torch.zeros(x.shape[0], 2048)
            feats[:, :3] = x.float().mean(dim=(2, 3))
            return feats

    model = InceptionFeatures(Probe(), "probe")
    x = torch.rand(4, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.equal(model(x), model(x.expand(4, 3, SIZE, SIZE)))


@pytest.mark.parametrize("grey_trained", ["cyclegan"], indirect=True)
def test_evaluation_and_report_of_a_greyscale_run(grey_trained, tmp_path):
    """Hue error needs colour: it is left out for greyscale outputs; samples keep one channel; the report builds."""
    from translab.evaluation import EvalOptions, evaluate_run, measure_outputs
    from translab.metrics.color import hue_error
    from translab.report.compare import write_report

    _, result = grey_trained
    out, path = evaluate_run(result.run_dir, EvalOptions(inception=False, progress=False, limit=4))
    assert out["dataset"]["channels"] == 1 and "hue_error" not in out["metrics"]
    samples = torch.load(path.parent / out["samples"]["tensors"], weights_only=True)
    assert samples["inputs"].shape == samples["outputs"].shape == (4, 1, SIZE, SIZE)
    x = torch.rand(4, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 2 - 1
    metrics = measure_outputs(x, x.flip(0), x, "synthetic", "disc", "b", EvalOptions(inception=False))
    assert "hue_error" not in metrics and metrics["ssim"]["mean"] <= 1
    with pytest.raises(ValueError, match="greyscale images have no hue"):
        hue_error(x, x)
    written = write_report([result.run_dir], tmp_path / "report")
    assert written


@pytest.mark.parametrize("grey_trained", ["cyclegan"], indirect=True)
def test_translate_command_writes_greyscale_pngs(grey_trained, grey_root, tmp_path):
    from translab.cli import main

    _, result = grey_trained
    out = tmp_path / "out"
    assert main(["translate", "--run", str(result.run_dir), "--input", str(grey_root / "testA"),
                 "--out", str(out)]) == 0
    written = sorted((out / "outputs").glob("*.png"))
    assert len(written) == PER_FOLDER
    for path in written + sorted((out / "inputs").glob("*.png")):
        with Image.open(path) as im:
            assert im.mode == "L" and im.size == (SIZE, SIZE), path
    with Image.open(out / "grid.png") as im:
        assert im.mode == "RGB"
