"""ruff, with the short rule set in pyproject.toml ([tool.ruff.lint]), runs clean over the project's code."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: `pip install -e .[test]` installs it")
    done = subprocess.run([ruff, "check", "--output-format", "concise", "src", "tests", "benchmarks", "scripts"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"ruff found problems:\n{done.stdout}{done.stderr}"
