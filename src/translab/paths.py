"""Output names derived from input files never leave the chosen output directory."""
from __future__ import annotations

import re

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, max_len: int = 120) -> str:
    """A file-name stem from arbitrary text: no separators, no '..', no leading dot, never empty.

    'a/../../etc/passwd' -> 'a_.._.._etc_passwd' -> leading dots stripped, '..' runs collapsed.
    """
    stem = _UNSAFE.sub("_", str(name))
    stem = re.sub(r"\.{2,}", "_", stem).lstrip("._-")
    return (stem or "image")[:max_len]


def unique_names(names: list[str], max_len: int = 120) -> list[str]:
    """safe_name of each name, made unique ignoring case by appending _2, _3, ... within ``max_len``.

    Every result is a fixed point of safe_name, so writers that sanitise again keep it as it is.
    """
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        base = safe_name(name, max_len)
        cand, k = base, 1
        while cand.lower() in seen:
            k += 1
            suffix = f"_{k}"
            cand = safe_name(base[: max_len - len(suffix)] + suffix, max_len)
        seen.add(cand.lower())
        out.append(cand)
    return out
