"""`translab combine --a RUN_A --b RUN_B --out DIR`: join two single-domain DDIB runs into one translator
(DDIB's privacy setting; see translab.ddib_combine)."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("combine", help="join two DDIB runs, each trained on one domain only, into one translator")
    p.add_argument("--a", required=True, metavar="RUN_A", help="DDIB run trained on domain A (its eps_a is used)")
    p.add_argument("--b", required=True, metavar="RUN_B", help="DDIB run trained on domain B (its eps_b is used)")
    p.add_argument("--out", required=True, help="output folder (an inference folder usable as --run)")
    p.set_defaults(func=run)


def run(args) -> int:
    from translab.ddib_combine import combine_ddib
    from translab.shipped import resolve_run

    out = combine_ddib(resolve_run(args.a), resolve_run(args.b), args.out)
    print(f"combined DDIB: eps_a from {args.a}, eps_b from {args.b} -> {out} (use it as --run {out})")
    return 0
