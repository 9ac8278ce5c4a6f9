"""Models shipped inside the package (weights/<dataset>/<method>/) and name -> path resolution.

A shipped model is a folder with model.safetensors (inference weights), config.yaml and train_record.json.
Every command that takes ``--run RUN`` also takes a shipped model's name such as ``cmnist-2to3/ddib``.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from translab.rundir import RunDirError


def shipped_root() -> Path:
    return Path(str(resources.files("translab") / "weights"))


def shipped_models() -> dict[str, Path]:
    """name ('cmnist-2to3/ddib') -> folder, for every shipped model folder holding model.safetensors."""
    root = shipped_root()
    out = {}
    if root.is_dir():
        for f in sorted(root.glob("*/*/model.safetensors")):
            out[f"{f.parent.parent.name}/{f.parent.name}"] = f.parent
    return out


def resolve_run(name: str, setting: str = "--run") -> Path:
    """A run directory, checkpoint file or shipped model folder for ``--run`` (or the config key ``setting`` that
    names it, e.g. 'model.teacher'); a one-line error naming it otherwise."""
    p = Path(name)
    if p.exists():
        return p
    models = shipped_models()
    if name in models:
        return models[name]
    known = ", ".join(models) or "none shipped"
    where = f"--run {name}" if setting == "--run" else f"{setting}={name}"
    raise RunDirError(f"{where}: no such run directory or checkpoint, and not a shipped model ({known})")


def is_shipped(path: Path) -> bool:
    try:
        Path(path).resolve().relative_to(shipped_root().resolve())
        return True
    except ValueError:
        return False


def portable_path(path: str | Path) -> str:
    """How a result file names a model or run: a shipped model by its name ('emoji-m2f/ddib', or
    'emoji-m2f/ddib/model.safetensors' for a file in it), a path under the working directory relative to it,
    anything else as given. Reports committed to a repository then hold no machine's absolute paths."""
    p = Path(path).resolve()
    root = shipped_root().resolve()
    for base in (root, Path.cwd().resolve()):
        try:
            return p.relative_to(base).as_posix() or "."
        except ValueError:
            continue
    return str(path)


def working_copy(name_or_path: str, dest_root: str | Path) -> Path:
    """A writable run directory for ``--run``: shipped models are copied to dest_root/<dataset>-<method>
    (evaluations and analyses then land there, never inside the installed package). Each file goes through a
    temporary file and a rename, so a command already reading the copy never sees a half-written file."""
    import shutil

    from translab.checkpoint import atomic_path

    path = resolve_run(name_or_path)
    if not is_shipped(path):
        return path
    dest = Path(dest_root) / f"{path.parent.name}-{path.name}"
    dest.mkdir(parents=True, exist_ok=True)
    for f in path.iterdir():
        if f.is_file():
            with atomic_path(dest / f.name) as tmp:
                shutil.copy2(f, tmp)
    return dest
