"""The codebase's shape: layers that import one way, no import circle, no very long function.

Layers, lowest first (a module may import its own layer and the ones below, never one above):
foundation (errors, settings, checkpoints, run dirs, image IO) -> data, diffusion, nets -> metrics -> methods
-> the full config (which reads the method table) -> training and loading -> evaluation and analysis -> report ->
commands and the CLI. Every ``import``
statement counts, also those inside functions (a lazy import is still a dependency).
"""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "translab"

LAYERS = (
    ("foundation", ("errors", "settings", "paths", "image_io", "checkpoint", "rundir", "feature_cache")),
    ("data", ("data", "diffusion", "nets")),
    ("metrics", ("metrics",)),
    ("methods", ("methods",)),
    ("config", ("config",)),
    ("training", ("training", "loading", "export", "shipped", "ddib_combine")),
    ("evaluation", ("evaluation", "ot_exact", "analysis")),
    ("report", ("report",)),
    ("commands", ("commands", "cli", "__main__", "__init__")),
)
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    top = module.split(".")[0]
    for i, (_, tops) in enumerate(LAYERS):
        if top in tops:
            return i
    raise AssertionError(f"module translab.{module} is in no layer of tests/test_architecture.py: add it")


def imports_of(path: Path) -> set[str]:
    """translab modules imported anywhere in the file (without the 'translab.' prefix)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("translab."):
            base = node.module[len("translab."):]
            out.add(base)
            for alias in node.names:  # `from translab.report import grids` imports the module report.grids
                if (SRC / base.replace(".", "/") / f"{alias.name}.py").is_file():
                    out.add(f"{base}.{alias.name}")
        elif isinstance(node, ast.Import):
            out |= {a.name[len("translab."):] for a in node.names if a.name.startswith("translab.")}
    return out


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def upward_imports(mods: dict[str, Path]) -> list[str]:
    wrong = []
    for mod, path in mods.items():
        for dep in imports_of(path):
            if layer_of(dep) > layer_of(mod):
                wrong.append(f"{mod} ({LAYERS[layer_of(mod)][0]}) imports {dep} ({LAYERS[layer_of(dep)][0]})")
    return wrong


def test_every_import_goes_down_or_sideways():
    wrong = upward_imports(modules())
    assert not wrong, "imports that run up the layers:\n" + "\n".join(wrong)


def test_no_import_circle():
    graph = {mod: {d for d in imports_of(path) if d in modules() and d != mod} for mod, path in modules().items()}
    # a package's __init__ re-exporting its own submodules is not a circle
    for mod in graph:
        graph[mod] = {d for d in graph[mod] if not d.startswith(mod + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph[m]):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            cycle = visit(m)
            assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checker_sees_a_lazy_upward_import(tmp_path):
    """The layer check can fail: a method that imports the training loop inside a function is reported."""
    bad = tmp_path / "unit_ddpm.py"
    bad.write_text("def init():\n    from translab.training import load_method\n    return load_method\n")
    assert upward_imports({"methods.unit_ddpm": bad}) == ["methods.unit_ddpm (methods) imports training (training)"]


def test_no_function_is_longer_than_the_limit():
    long = []
    for mod, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{mod}.{node.name}: {n} lines")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)
