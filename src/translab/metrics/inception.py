"""The ``inception`` feature extractor: the standard 2048-d pool3 features of the FID Inception-v3.

Built on torchmetrics' ``NoTrainInceptionV3`` (torch-fidelity's network) with ``antialias=False``, i.e.
torch-fidelity's TF1-style bilinear resize to 299x299, the protocol of the published Colored MNIST numbers.
Inputs are uint8 images, as torch-fidelity expects. Greyscale images (N, 1, H, W) (data.channels = 1) are
measured as RGB images whose three channels repeat the grey level, the usual way to put greyscale data such as
MNIST through the RGB Inception network; their FID/KID compare only with other greyscale sets measured the same way.

Where the weights come from, in order:
1. ``$TRANSLAB_INCEPTION_WEIGHTS`` (a path; relative paths are taken from the working directory);
2. ``$TORCH_HOME/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth`` (torch.hub's cache);
3. torchmetrics' standard download (needs internet).
When none works the extractor is *unavailable* with a reason; nothing is substituted. Every load is forced
to ``weights_only`` (TORCH_FORCE_WEIGHTS_ONLY_LOAD during construction), since torch-fidelity itself calls
``torch.load(weights_only=False)`` on a given path.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch
from torch import nn

from translab.image_io import as_rgb

FILE_NAME = "weights-inception-2015-12-05-6726825d.pth"
ENV_VAR = "TRANSLAB_INCEPTION_WEIGHTS"
#: images per Inception forward on a CPU, whatever batch the caller passes: on the 2-core AMD EPYC of
#: benchmarks/bench_inference.py, one thread, 16 images per forward gave 11.3-12.3 images per CPU second against
#: 9.3-9.4 at 64 (the evaluation's batch size), 7.8 at 128 and 7.0 at 256 (the 299x299 activations of a large
#: batch no longer fit the caches); 4 and 8 were in between. GPUs keep the caller's batch.
CPU_MICRO_BATCH = 16
PROTOCOL = ("torchmetrics NoTrainInceptionV3 pool3 (2048-d), antialias=False (torch-fidelity's TF1 bilinear "
            "resize to 299x299), uint8 inputs")


class InceptionUnavailable(RuntimeError):
    """The Inception weights cannot be had here; the message says why and what to set."""


@contextlib.contextmanager
def _weights_only_loads():
    """Force torch.load(weights_only=True) for everything loaded inside the block."""
    saved = {k: os.environ.get(k) for k in ("TORCH_FORCE_WEIGHTS_ONLY_LOAD", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")}
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def resolve_weights() -> tuple[str | None, str]:
    """(path or None for "download", a description of the source). Raises InceptionUnavailable."""
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise InceptionUnavailable(f"${ENV_VAR}={env} does not name a file (resolved to {p.resolve()})")
        # the description is written into evaluation files: the file's name and size, never a machine's path
        return str(p), f"${ENV_VAR} ({p.name}, {p.stat().st_size} bytes)"
    cached = Path(torch.hub.get_dir()) / "checkpoints" / FILE_NAME
    if cached.is_file():
        return str(cached), f"torch hub cache ({FILE_NAME}, {cached.stat().st_size} bytes)"
    return None, "torchmetrics' standard download (torch-fidelity release v0.2.0)"


class InceptionFeatures(nn.Module):
    """(N, 3, H, W) in [-1, 1] -> pool3 features (N, 2048) float64 (images quantised to uint8 first). Greyscale
    (N, 1, H, W) images are repeated to 3 equal channels first (translab.image_io.as_rgb); uint8 inputs pass as is.

    On a CPU the images go through the network ``micro_batch`` at a time (CPU_MICRO_BATCH; None: all at once);
    the features do not depend on it (each image is processed independently, eval mode)."""

    num_features = 2048

    def __init__(self, net: nn.Module, source: str, micro_batch: int | None = None):
        super().__init__()
        self.net = net
        self.source = source
        self.micro_batch = micro_batch

    @staticmethod
    def to_uint8(images: torch.Tensor) -> torch.Tensor:
        return ((images.float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected images (N, 3, H, W) or greyscale (N, 1, H, W), got {tuple(images.shape)}")
        x = images if images.dtype == torch.uint8 else self.to_uint8(images)
        if x.shape[1] == 1:  # greyscale: the grey level in all three channels
            x = as_rgb(x).contiguous()
        x = x.to(next(self.net.parameters()).device)
        step = self.micro_batch or max(1, x.shape[0])
        feats = [self.net(x[i:i + step]).reshape(-1, self.num_features) for i in range(0, x.shape[0], step)]
        return (torch.cat(feats) if feats else x.new_zeros(0, self.num_features)).double().cpu()


_CACHE: dict[tuple, InceptionFeatures] = {}


def load_inception(device: str | torch.device = "cpu") -> InceptionFeatures:
    """The Inception pool3 extractor (cached per weights path and device). Raises InceptionUnavailable."""
    path, source = resolve_weights()
    key = (path, str(device))
    if key in _CACHE:
        return _CACHE[key]
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
    except ImportError as e:  # torch-fidelity missing
        raise InceptionUnavailable(f"torchmetrics' Inception needs torch-fidelity ({e})") from None
    try:
        with _weights_only_loads():
            net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                     feature_extractor_weights_path=path, antialias=False)
    except Exception as e:  # download refused, truncated file, code in the pickle, wrong keys
        msg = str(e).splitlines()[0][:300] if str(e) else ""
        hint = "" if path else f"; without internet set ${ENV_VAR} to a local {FILE_NAME}"
        raise InceptionUnavailable(f"could not load Inception weights from {source}: "
                                   f"{type(e).__name__}: {msg}{hint}") from None
    # channels_last weights: oneDNN's convolutions ran about 1.2x faster on the 2-core CPU (features equal to
    # 6e-6 of a largest value of about 5)
    micro_batch = CPU_MICRO_BATCH if torch.device(device).type == "cpu" else None
    model = InceptionFeatures(net.to(device).to(memory_format=torch.channels_last).eval(), source, micro_batch)
    _CACHE[key] = model
    return model


@torch.no_grad()
def inception_features(model: InceptionFeatures, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    """images (N, 3, H, W) or greyscale (N, 1, H, W, repeated to 3 channels) in [-1, 1] -> (N, 2048) float64, in
    batches."""
    out = [model(images[i:i + batch_size]) for i in range(0, images.shape[0], batch_size)]
    return torch.cat(out) if out else torch.zeros(0, 2048, dtype=torch.float64)
