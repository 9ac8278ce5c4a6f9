"""`translab classifier train cmnist [--out PATH]` and
`translab classifier train celeba-gender --data-root DIR [--out PATH]`: train translab's own classifiers
(digit reader for Colored MNIST; domain A vs B reader for CelebA), saved as .safetensors + a .json record."""
from __future__ import annotations

from pathlib import Path

TASKS = ("cmnist", "celeba-gender")


def register(sub) -> None:
    p = sub.add_parser("classifier", help="train the classifiers behind target accuracy and classifier FID")
    csub = p.add_subparsers(dest="classifier_command", metavar="ACTION")
    t = csub.add_parser("train", help="train a classifier")
    t.add_argument("task", choices=TASKS, help="cmnist: 10-digit colour-robust reader; celeba-gender: A vs B")
    t.add_argument("--out", help="output .safetensors (default: the shipped file for cmnist, "
                                 "runs/classifiers/celeba-gender.safetensors for celeba-gender)")
    t.add_argument("--data-root", help="MNIST root (cmnist; default $TRANSLAB_DATA) or the CelebA folder")
    t.add_argument("--epochs", type=int, default=3, help="cmnist: passes over the 60,000 training digits")
    t.add_argument("--steps", type=int, default=3000, help="celeba-gender: optimisation steps")
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--image-size", type=int, default=None, help="celeba-gender: image side (default 64)")
    t.add_argument("--dataset", default="celeba", help="celeba-gender: the domain pair's dataset "
                                                        "(celeba, or folders/synthetic for any A-vs-B pair)")
    t.add_argument("--limit", type=int, default=None, help="celeba-gender: at most this many images per domain")
    t.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch default)")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=run_train)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def run_train(args) -> int:
    from translab.metrics.classifier import (SHIPPED, TrainSettings, save_classifier, train_digit_classifier,
                                             train_domain_classifier)

    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                             threads=args.threads)
    if args.task == "cmnist":
        out = Path(args.out) if args.out else Path(__file__).resolve().parents[1] / "weights" / SHIPPED["cmnist"]
        model, record = train_digit_classifier(args.data_root, settings)
        record["command"] = f"translab classifier train cmnist --epochs {args.epochs} --batch-size {args.batch_size} " \
                            f"--lr {args.lr} --threads {args.threads} --seed {args.seed}"
    else:
        from translab.config import DataConfig
        from translab.data import build_domain_pair

        out = Path(args.out or "runs/classifiers/celeba-gender.safetensors")
        cfg = DataConfig(dataset=args.dataset, root=args.data_root, image_size=args.image_size or 64, limit=args.limit)
        pair = build_domain_pair(cfg)
        model, record = train_domain_classifier(pair, steps=args.steps, settings=settings)
    save_classifier(model, out, record)
    print(f"test accuracy {record['test_accuracy']:.4f}; saved {out} and {out.with_suffix('.json')}")
    return 0
