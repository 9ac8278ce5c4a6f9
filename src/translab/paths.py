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
