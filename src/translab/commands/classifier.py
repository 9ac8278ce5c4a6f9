"""`translab classifier train cmnist [--out PATH]`,
`translab classifier train celeba-gender --data-root DIR [--out PATH]` and
`translab classifier train emoji-gender|emoji-tone|emoji-concept [--out PATH]`: train translab's own classifiers
(digit reader for Colored MNIST; domain A vs B reader for CelebA; the three readers of the OpenMoji man -> woman
benchmark), saved as .safetensors + a .json record."""
from __future__ import annotations

from pathlib import Path

from translab.commands.common import add_run_flags, non_negative_int, output_file, positive_float, positive_int

TASKS = ("cmnist", "celeba-gender", "emoji-gender", "emoji-tone", "emoji-concept")


def register(sub) -> None:
    p = sub.add_parser("classifier", help="train the classifiers behind target accuracy and classifier FID")
    csub = p.add_subparsers(dest="classifier_command", metavar="ACTION")
    t = csub.add_parser("train", help="train a classifier")
    t.add_argument("task", choices=TASKS, help="cmnist: 10-digit colour-robust reader; celeba-gender: A vs B; "
                                                   "emoji-*: man vs woman, skin tone, concept (OpenMoji)")
    t.add_argument("--out", help="output .safetensors, or a folder for <task>.safetensors (default: "
                                 "runs/classifiers/<task>.safetensors; the shipped readers stay untouched)")
    t.add_argument("--data-root", help="MNIST root (cmnist; default $TRANSLAB_DATA) or the CelebA folder")
    t.add_argument("--epochs", type=positive_int, default=3, help="cmnist: passes over the 60,000 training digits")
    t.add_argument("--steps", type=positive_int, default=None,
                   help="celeba-gender, emoji-*: optimisation steps (default 3000 for celeba, 1500 for emoji)")
    t.add_argument("--batch-size", type=positive_int, default=None, help="default 128 (emoji: 64)")
    t.add_argument("--lr", type=positive_float, default=2e-3)
    t.add_argument("--image-size", type=positive_int, default=None,
                   help="celeba-gender: image side (default 64); emoji-*: 32 or 64 (default 32)")
    t.add_argument("--dataset", default="celeba", help="celeba-gender: the domain pair's dataset "
                                                        "(celeba, or folders/synthetic for any A-vs-B pair)")
    t.add_argument("--limit", type=positive_int, default=None,
                   help="celeba-gender: at most this many images per domain")
    t.add_argument("--threads", type=non_negative_int, default=1, help="torch CPU threads (0: torch default)")
    add_run_flags(t, "seed")
    t.set_defaults(func=run_train)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def classifier_out(task: str, out: str | None) -> Path:
    """The .safetensors file to write: --out itself, --out/<task>.safetensors for a folder, or the default."""
    if out:
        path = output_file(out, f"{task}.safetensors", ".safetensors")
        return path.with_suffix(".safetensors")  # save_classifier wants the suffix in lower case
    return Path(f"runs/classifiers/{task}.safetensors")  # never the shipped file inside the installed package


def _emoji_classifier(args, settings):
    from translab.data import build_domain_pair
    from translab.config import DataConfig
    from translab.metrics.classifier_training import emoji_task, train_label_classifier

    pair = build_domain_pair(DataConfig(dataset="emoji", image_size=args.image_size or 32))
    task = emoji_task(args.task.split("-", 1)[1], pair)
    steps = args.steps or 1500
    model, record = train_label_classifier(pair, task, steps=steps, settings=settings)
    record["command"] = (f"translab classifier train {args.task} --image-size {pair.image_size} --steps {steps} "
                         f"--batch-size {settings.batch_size} --lr {settings.lr} --threads {settings.threads} "
                         f"--seed {settings.seed}")
    return model, record


def run_train(args) -> int:
    from translab.metrics.classifier import save_classifier
    from translab.metrics.classifier_training import TrainSettings, train_digit_classifier, train_domain_classifier

    emoji = args.task.startswith("emoji-")
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size or (64 if emoji else 128), lr=args.lr,
                             seed=args.seed, threads=args.threads)
    out = classifier_out(args.task, args.out)  # checked before training, so that no trained model is lost
    if args.task == "cmnist":
        model, record = train_digit_classifier(args.data_root, settings)
        record["command"] = f"translab classifier train cmnist --epochs {args.epochs} --batch-size " \
                            f"{settings.batch_size} --lr {args.lr} --threads {args.threads} --seed {args.seed}"
    elif emoji:
        model, record = _emoji_classifier(args, settings)
    else:
        from translab.config import DataConfig
        from translab.data import build_domain_pair

        cfg = DataConfig(dataset=args.dataset, root=args.data_root, image_size=args.image_size or 64, limit=args.limit)
        pair = build_domain_pair(cfg)
        model, record = train_domain_classifier(pair, steps=args.steps or 3000, settings=settings)
    save_classifier(model, out, record)
    print(f"test accuracy {record['test_accuracy']:.4f}; saved {out} and {out.with_suffix('.json')}")
    return 0
