"""Test hook, loaded only by the processes that tests/test_reliability_faults.py starts: hold one file rename.

When $PAUSE_BEFORE_RENAME names a marker file, the n-th ``os.replace`` whose target's file name matches the
glob $PAUSE_MATCH (default: every rename; the first $PAUSE_SKIP matches go through, default 0) first creates
the marker and sleeps $PAUSE_SECONDS (default 30), so that the test can signal the process between
"temporary file written" and "renamed into place" (translab.checkpoint.atomic_write_bytes). The package itself
carries no test hook.

Run as ``python -c "import pause_hook; pause_hook.run_translab()" ARGS`` with tests/ on PYTHONPATH.
"""
from __future__ import annotations

import fnmatch
import os
import runpy
import time
from pathlib import Path

_real_replace = os.replace
_seen = 0


def _pausing_replace(src, dst, *args, **kwargs):
    global _seen
    marker = os.environ.get("PAUSE_BEFORE_RENAME")
    if marker and fnmatch.fnmatch(Path(dst).name, os.environ.get("PAUSE_MATCH", "*")):
        _seen += 1
        if _seen > int(os.environ.get("PAUSE_SKIP", "0")):
            Path(marker).touch()
            time.sleep(float(os.environ.get("PAUSE_SECONDS", "30")))
    return _real_replace(src, dst, *args, **kwargs)


def run_translab() -> None:
    """Install the hook, then run ``python -m translab`` with this process's arguments."""
    os.replace = _pausing_replace
    runpy.run_module("translab", run_name="__main__", alter_sys=True)
