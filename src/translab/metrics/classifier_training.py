"""Training translab's classifiers (translab.metrics.classifier holds the network, its files and inference).

The colour-robust Colored MNIST digit reader: all ten MNIST training digits, coloured on the fly with random
hue, saturation, brightness, shift and noise, tested on the 10,000 test digits coloured by the protocol.
Domain classifiers (e.g. CelebA male vs female): both training splits with horizontal flips.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from translab.metrics.classifier import ClassifierSpec, ImageClassifier, accuracy, classifier_outputs


# --------------------------------------------------------------------------------------------------
# training data: all ten MNIST digits, coloured on the fly


def load_mnist(split: str, root: str | Path | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All MNIST digits of a split from torchvision's layout under ``root`` ($TRANSLAB_DATA by default).

    Returns (grey (N, 28, 28) uint8, labels (N,) long). Raises DataError naming the folder when no copy
    exists and the download fails.
    """
    from translab.data.cmnist import load_mnist_split

    images, labels, _ = load_mnist_split(split, None if root is None else str(root))
    return torch.from_numpy(images.copy()), torch.from_numpy(labels).long()


def resize_grey(grey: torch.Tensor, image_size: int) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, S, S) in [0, 1], resized exactly as translab.data.cmnist does."""
    g = grey.float().div(255.0)[:, None]
    if image_size != g.shape[-1]:
        g = F.interpolate(g, size=(image_size, image_size), mode="bilinear", align_corners=False, antialias=True)
    return g.clamp(0.0, 1.0)[:, 0]


def colour_protocol(grey: torch.Tensor, hues: torch.Tensor) -> torch.Tensor:
    """The Colored MNIST protocol (saturation 1, value = grey): (N, S, S) in [0, 1] -> (N, 3, S, S) in [-1, 1]."""
    from translab.data.cmnist import colorize

    return colorize(grey, hues) * 2.0 - 1.0


def augment_digits(grey: torch.Tensor, gen: torch.Generator, max_shift: int = 3) -> torch.Tensor:
    """Training augmentation of grey digits (N, S, S) in [0, 1] -> RGB (N, 3, S, S) in [-1, 1].

    Random hue (uniform in [0, 360)), saturation in [0.5, 1], brightness gain in [0.6, 1], an integer shift
    of up to ``max_shift`` pixels (zero padding) and Gaussian pixel noise with std up to 0.08: the reader
    must not care about colour, exact position or the mild noise a translation leaves behind.
    """
    from translab.data.cmnist import hsv_to_rgb

    n, s, _ = grey.shape
    padded = F.pad(grey, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    shifted = torch.stack([padded[i, dy[i]:dy[i] + s, dx[i]:dx[i] + s] for i in range(n)])
    hue = torch.rand(n, generator=gen) * 360.0
    sat = 0.5 + 0.5 * torch.rand(n, generator=gen)
    gain = 0.6 + 0.4 * torch.rand(n, generator=gen)
    v = shifted * gain[:, None, None]
    rgb = hsv_to_rgb(hue[:, None, None].expand_as(v), sat[:, None, None].expand_as(v), v).permute(0, 3, 1, 2)
    noise = torch.randn(rgb.shape, generator=gen) * (0.08 * torch.rand(n, 1, 1, 1, generator=gen))
    return (rgb * 2.0 - 1.0 + noise).clamp(-1.0, 1.0)


def coloured_test_set(root: str | Path | None = None, image_size: int = 32,
                      seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """All 10,000 MNIST test digits coloured by the protocol with seeded uniform hues.

    Returns (images (10000, 3, S, S) in [-1, 1], labels (10000,)).
    """
    import numpy as np

    grey, labels = load_mnist("test", root)
    hues = torch.from_numpy(np.random.default_rng([seed, 1, 1000]).uniform(0.0, 360.0, size=grey.shape[0])).float()
    return colour_protocol(resize_grey(grey, image_size), hues), labels


# --------------------------------------------------------------------------------------------------
# training


@dataclass
class TrainSettings:
    epochs: int = 3
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 1


def _cosine_lr(opt: torch.optim.Optimizer, base_lr: float, step: int, total: int, warmup: int = 100) -> None:
    import math

    if step < warmup:
        lr = base_lr * (step + 1) / warmup
    else:
        lr = 0.5 * base_lr * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    for g in opt.param_groups:
        g["lr"] = lr


def fit(model: ImageClassifier, batches, total_steps: int, settings: TrainSettings,
        progress: bool = True) -> list[float]:
    """Cross-entropy training with AdamW and a cosine schedule over ``batches`` (an iterator of (x, y))."""
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    model.train()
    losses = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, desc="train classifier", dynamic_ncols=True)
    for step in range(total_steps):
        x, y = next(batches)
        _cosine_lr(opt, settings.lr, step, total_steps)
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if bar is not None:
            bar.update(1)
            if step % 20 == 0:
                bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")
    if bar is not None:
        bar.close()
    return losses


def _digit_batches(grey: torch.Tensor, labels: torch.Tensor, settings: TrainSettings, gen: torch.Generator):
    n = grey.shape[0]
    while True:
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n - settings.batch_size + 1, settings.batch_size):
            idx = perm[i:i + settings.batch_size]
            yield augment_digits(grey[idx], gen), labels[idx]


def _seeded_start(settings: TrainSettings) -> torch.Generator:
    """Apply the thread count, seed torch's global RNG (weight init) and return the batch generator."""
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.manual_seed(settings.seed)
    return torch.Generator().manual_seed(settings.seed)


def train_digit_classifier(root: str | Path | None = None, settings: TrainSettings | None = None,
                           image_size: int = 32, progress: bool = True) -> tuple[ImageClassifier, dict]:
    """Train the colour-robust 10-digit reader on all MNIST training digits; evaluate on the coloured test set.

    Returns (model in eval mode, training record with the test accuracy overall and per digit).
    """
    import platform
    import time

    settings = settings or TrainSettings()
    gen = _seeded_start(settings)
    t0 = time.time()
    grey, labels = load_mnist("train", root)
    grey = resize_grey(grey, image_size)
    model = ImageClassifier(ClassifierSpec(classes=[str(d) for d in range(10)], image_size=image_size))
    steps_per_epoch = grey.shape[0] // settings.batch_size
    total = settings.epochs * steps_per_epoch
    losses = fit(model, _digit_batches(grey, labels, settings, gen), total, settings, progress)
    model.eval()
    test_x, test_y = coloured_test_set(root, image_size)
    _, pred = classifier_outputs(model, test_x)
    per_digit = {str(d): round(float((pred[test_y == d] == d).float().mean()), 4) for d in range(10)}
    record = {
        "task": "cmnist digits 0-9",
        "test_accuracy": round(float((pred == test_y).float().mean()), 5),
        "test_accuracy_per_digit": per_digit,
        "test_set": (f"all {test_x.shape[0]} MNIST test digits, resized to {image_size}x{image_size} as "
                     f"translab.data.cmnist does, coloured by the protocol (saturation 1, value = grey) with "
                     f"uniform hues from numpy default_rng([0, 1, 1000])"),
        "train_set": f"all {grey.shape[0]} MNIST training digits",
        "augmentations": "per sample and step: uniform hue, saturation U(0.5, 1), brightness gain U(0.6, 1), "
                         "shift up to +-3 px, Gaussian noise std up to 0.08",
        "architecture": asdict(model.spec),
        "parameters": sum(p.numel() for p in model.parameters()),
        "training": {**asdict(settings), "steps": total, "optimizer": "AdamW, cosine LR with 100 warm-up steps",
                     "final_loss_mean_last_100": round(sum(losses[-100:]) / max(1, len(losses[-100:])), 5)},
        "wall_seconds": round(time.time() - t0, 1),
        "hardware": f"{platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)",
    }
    return model, record


def _resample_blur(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Half the batch (at random) resized down to a random side in [S/2, S) and back up (bilinear, antialiased):
    the softness a generated image may have, so that a reader reads the attribute, not the sharpness."""
    s = xb.shape[-1]
    side = int(torch.randint(s // 2, s, (1,), generator=gen))
    soft = F.interpolate(F.interpolate(xb, size=(side, side), mode="bilinear", antialias=True, align_corners=False),
                         size=(s, s), mode="bilinear", align_corners=False)
    pick = torch.rand(xb.shape[0], generator=gen) < 0.5
    return torch.where(pick[:, None, None, None], soft, xb)


def _labelled_batches(x: torch.Tensor, y: torch.Tensor, settings: TrainSettings, gen: torch.Generator,
                      flips: bool, max_shift: int = 0, noise: float = 0.0, blur: bool = False):
    """Random batches of images x (N, 3, S, S) in [-1, 1] with labels y (N,): horizontal flips (if ``flips``),
    integer shifts of up to ``max_shift`` pixels (edge padding), resampling blur (if ``blur``) and Gaussian noise
    with std up to ``noise``."""
    n, s = x.shape[0], x.shape[-1]
    while True:
        idx = torch.randint(0, n, (settings.batch_size,), generator=gen)
        xb = x[idx]
        if flips:
            flip = torch.rand(xb.shape[0], generator=gen) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(-1), xb)
        if max_shift:
            padded = F.pad(xb, (max_shift,) * 4, mode="replicate")
            dy, dx = (torch.randint(0, 2 * max_shift + 1, (2,), generator=gen)).tolist()
            xb = padded[..., dy:dy + s, dx:dx + s]
        if blur:
            xb = _resample_blur(xb, gen)
        if noise:
            xb = (xb + torch.randn(xb.shape, generator=gen) * noise * torch.rand(xb.shape[0], 1, 1, 1,
                                                                               generator=gen)).clamp(-1, 1)
        yield xb, y[idx]


@dataclass
class LabelTask:
    """What a label classifier reads: ``key`` 'domain' (A = 0, B = 1) or a meta key of both domains' items, its
    class names, and the augmentations that keep the label."""

    name: str
    key: str
    classes: list[str]
    flips: bool = True
    max_shift: int = 0
    noise: float = 0.0
    blur: bool = False


def labelled_split(pair, split: str, key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Both domains' images of a split (N, C, S, S) and their labels (N,): the domain (key 'domain') or meta[key]."""
    from translab.data.base import stack_dataset

    xs, ys = [], []
    for label, d in enumerate("ab"):
        ds = pair.get(d, split)
        xs.append(stack_dataset(ds))
        ys.append(torch.full((len(ds),), label, dtype=torch.long) if key == "domain" else ds.meta[key].long())
    return torch.cat(xs), torch.cat(ys)


def train_label_classifier(pair, task: LabelTask, steps: int = 2000, settings: TrainSettings | None = None,
                           widths: list[int] | None = None, progress: bool = True) -> tuple[ImageClassifier, dict]:
    """A classifier of ``task``'s labels on both training splits of a DomainPair; accuracy on both test splits."""
    import time

    settings = settings or TrainSettings()
    gen = _seeded_start(settings)
    t0 = time.time()
    size = pair.image_size
    if widths is None:
        widths = [16, 32, 64, 128][: max(1, min(4, (size // 4).bit_length() - 1))]
    model = ImageClassifier(ClassifierSpec(classes=list(task.classes), image_size=size, widths=list(widths)))
    x, y = labelled_split(pair, "train", task.key)
    batches = _labelled_batches(x, y, settings, gen, task.flips, task.max_shift, task.noise, task.blur)
    losses = fit(model, batches, steps, settings, progress)
    model.eval()
    tx, ty = labelled_split(pair, "test", task.key)
    record = {
        "task": f"{task.name} classifier of {pair.name} ({len(task.classes)} classes)",
        "test_accuracy": round(accuracy(model, tx, ty), 5),
        "train_accuracy": round(accuracy(model, x, y), 5),
        "test_set": f"both test splits of {pair.name}: {tx.shape[0]} images",
        "train_set": f"both training splits of {pair.name}: {x.shape[0]} images",
        "data": pair.source,
        "architecture": asdict(model.spec),
        "training": {**asdict(settings), "steps": steps,
                     "augmentations": {"horizontal_flip": task.flips, "max_shift_px": task.max_shift,
                                       "resample_blur": task.blur, "noise_std_max": task.noise},
                     "final_loss_mean_last_100": round(sum(losses[-100:]) / max(1, len(losses[-100:])), 5)},
        "wall_seconds": round(time.time() - t0, 1),
    }
    if task.key == "domain":
        n_a = len(pair.get("a", "test"))
        record["test_accuracy_per_domain"] = {"a": round(accuracy(model, tx[:n_a], ty[:n_a]), 5),
                                              "b": round(accuracy(model, tx[n_a:], ty[n_a:]), 5)}
    return model, record


def train_domain_classifier(pair, steps: int = 2000, settings: TrainSettings | None = None,
                            widths: list[int] | None = None, progress: bool = True) -> tuple[ImageClassifier, dict]:
    """Binary classifier of a DomainPair (class 0 = domain A, 1 = domain B), e.g. CelebA male vs female.

    Trains on both training splits (random horizontal flips) and reports accuracy on both test splits.
    """
    task = LabelTask("domain", "domain", list(pair.domain_names), flips=True)
    return train_label_classifier(pair, task, steps, settings, widths, progress)


#: the three readers of the OpenMoji man -> woman benchmark (translab.data.emoji): gender (the domain), skin tone
#: and concept; shifts of 2 px, resampling blur (half of each batch at a random side in [S/2, S): without it the
#: readers misread a 16-px softened emoji's tone 61% of the time) and mild noise, flips for all but the concept
#: (poses face one way per concept)
EMOJI_TASKS = {"gender": ("domain", True), "tone": ("tone", True), "concept": ("concept", False)}


def emoji_task(name: str, pair) -> LabelTask:
    """The LabelTask of one emoji reader ('gender', 'tone' or 'concept') of an emoji DomainPair."""
    from translab.data.emoji import TONES

    if name not in EMOJI_TASKS:
        raise ValueError(f"emoji classifier '{name}': expected one of {', '.join(EMOJI_TASKS)}")
    key, flips = EMOJI_TASKS[name]
    classes = {"domain": list(pair.domain_names), "tone": list(TONES), "concept": list(pair.notes["concepts"])}[key]
    return LabelTask(name, key, classes, flips=flips, max_shift=2, noise=0.05, blur=True)
