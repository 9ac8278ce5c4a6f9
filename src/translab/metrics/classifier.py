"""translab's own image classifiers: the colour-robust Colored MNIST digit reader and domain classifiers.

One small CNN serves both uses. Its penultimate activations are the ``classifier`` features for FID/KID
(the DESIGN's second, domain-specific feature extractor next to Inception pool3), its arg-max is the
target accuracy (cmnist: share of translations read as the target digit) and the attribute accuracy
(CelebA: share of translations read as the target domain).

Weights are stored with safetensors; the architecture travels in the file's metadata
(key ``translab_classifier``, a JSON object), so a file is self-describing and loads without pickle.
A JSON sidecar (same stem, ``.json``) records how the weights were trained and their test accuracy.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from translab.checkpoint import CheckpointError
from translab.image_io import as_rgb

METADATA_KEY = "translab_classifier"
SHIPPED = {"cmnist": "cmnist_classifier.safetensors",
           # the OpenMoji man -> woman readers (translab classifier train emoji-gender|emoji-tone|emoji-concept)
           "emoji-gender": "emoji_gender_classifier.safetensors",
           "emoji-tone": "emoji_tone_classifier.safetensors",
           "emoji-concept": "emoji_concept_classifier.safetensors"}


@dataclass
class ClassifierSpec:
    """Architecture of an ImageClassifier (stored in the weights file's metadata)."""

    classes: list[str]
    image_size: int = 32
    widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    feature_dim: int = 128
    dropout: float = 0.2

    def check(self) -> "ClassifierSpec":
        if len(self.classes) < 2:
            raise CheckpointError(f"a classifier needs at least 2 classes, got {self.classes}")
        if self.image_size // 2 ** len(self.widths) < 1:
            raise CheckpointError(f"image_size {self.image_size} is too small for {len(self.widths)} pooling stages")
        return self


class ImageClassifier(nn.Module):
    """Conv(3x3)-BN-ReLU-MaxPool stages, flatten, Linear -> ReLU (penultimate features) -> Linear (logits).

    Input: (N, 3, H, W) in [-1, 1] (greyscale (N, 1, H, W) is repeated to 3 channels); images whose side differs from ``spec.image_size`` are resized
    (bilinear, antialiased) first. ``features`` -> (N, feature_dim); ``forward`` -> logits (N, classes).
    """

    def __init__(self, spec: ClassifierSpec):
        super().__init__()
        self.spec = spec.check()
        layers, c_in = [], 3
        for w in spec.widths:
            layers += [nn.Conv2d(c_in, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c_in = w
        self.trunk = nn.Sequential(*layers)
        side = spec.image_size // 2 ** len(spec.widths)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, spec.feature_dim), nn.ReLU(inplace=True))
        self.drop = nn.Dropout(spec.dropout)
        self.head = nn.Linear(spec.feature_dim, len(spec.classes))

    @property
    def num_features(self) -> int:
        return self.spec.feature_dim

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"classifier input must be (N, 3, H, W) or greyscale (N, 1, H, W), got {tuple(x.shape)}")
        x = as_rgb(x).float()  # greyscale: the grey level in all three channels
        s = self.spec.image_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> penultimate activations (N, feature_dim), >= 0 (after ReLU)."""
        return self.embed(self.trunk(self.prepare(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.features(x)))


# --------------------------------------------------------------------------------------------------
# save / load


def save_classifier(model: ImageClassifier, path: str | Path, record: dict | None = None) -> Path:
    """Weights to ``path`` (.safetensors, architecture in the metadata) and ``record`` to the .json sidecar."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"classifier weights must be saved as .safetensors, got {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path), metadata={METADATA_KEY: json.dumps(asdict(model.spec))})
    if record is not None:
        path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return path


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> ImageClassifier:
    """ImageClassifier in eval mode from a translab .safetensors file; CheckpointError names bad files."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"classifier weights {path} do not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"cannot read classifier weights {path}: not a safetensors file ({e})") from None
    if METADATA_KEY not in meta:
        raise CheckpointError(f"{path} is not a translab classifier (no '{METADATA_KEY}' entry in its metadata)")
    try:
        spec = ClassifierSpec(**json.loads(meta[METADATA_KEY]))
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: malformed classifier metadata ({e})") from None
    model = ImageClassifier(spec)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not match the stored architecture ({str(e)[:300]})") from None
    return model.to(device).eval()


def shipped_classifier_path(name: str = "cmnist") -> Path:
    """Path of a classifier shipped in translab/weights (CheckpointError if it is missing)."""
    if name not in SHIPPED:
        raise CheckpointError(f"no shipped classifier '{name}': translab ships {', '.join(SHIPPED)}")
    p = Path(str(resources.files("translab") / "weights" / SHIPPED[name]))
    if not p.is_file():
        raise CheckpointError(f"the shipped classifier {p} is missing; "
                              f"train it with `translab classifier train {name}`")
    return p


def read_record(path: str | Path) -> dict | None:
    """The JSON training record next to a classifier file, or None."""
    p = Path(path).with_suffix(".json")
    return json.loads(p.read_text()) if p.is_file() else None


# --------------------------------------------------------------------------------------------------
# inference helpers


@torch.no_grad()
def classifier_outputs(model: ImageClassifier, images: torch.Tensor,
                       batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """images (N, 3, H, W) in [-1, 1] (greyscale (N, 1, H, W): repeated to 3 channels) -> (features
    (N, feature_dim) float64, predicted labels (N,) long)."""
    model.eval()
    device = next(model.parameters()).device
    feats, preds = [], []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size].to(device)
        f = model.features(x)
        feats.append(f.double().cpu())
        preds.append(model.head(f).argmax(1).cpu())
    if not feats:
        return torch.zeros(0, model.num_features, dtype=torch.float64), torch.zeros(0, dtype=torch.long)
    return torch.cat(feats), torch.cat(preds)


def accuracy(model: ImageClassifier, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256) -> float:
    """Share of images whose arg-max class equals ``labels`` (N,)."""
    _, pred = classifier_outputs(model, images, batch_size)
    return float((pred == labels.cpu()).float().mean())
