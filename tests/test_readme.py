"""The README's Python example runs as written and does what its comments say."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_python_example_runs(tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "the README holds one Python example"
    script = tmp_path / "example.py"
    check = ("\nassert women.shape == men.shape == (8, 3, 32, 32)\n"
             "assert float(women.min()) >= -1 and float(women.max()) <= 1\n"
             "assert not torch.equal(women, men)\nprint('ok')\n")
    script.write_text(blocks[0] + check)
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
