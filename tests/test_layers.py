"""The layers of the house, checked from the source: data flows one way and imports never circle.

    cli -> api (genvision/__init__) -> run layer (training/staged, run, recipes) -> {registry, model_dir,
    data, fit loop} -> families -> nn

Every import counts, lazy ones inside functions included (a lazy import hides a circle from
Python, not from a reader); only ``if TYPE_CHECKING:`` imports, which never run, are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "genvision"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports_of(path: Path, known: set[str]) -> set[str]:
    """genvision modules imported anywhere in ``path`` (``from pkg import mod`` counts as ``pkg.mod``)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    typing_only = {  # ``if TYPE_CHECKING:`` imports are for annotations and never run
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("genvision")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("genvision"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    out.discard(name)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: imports_of(path, set(mods)) for name, path in mods.items()}


def test_no_family_imports_upward():
    forbidden = ("genvision.training", "genvision.metrics", "genvision.cli", "genvision.apps")
    forbidden_exact = ("genvision", "genvision.model_dir", "genvision.registry", "genvision.sampling")
    bad = []
    for name, deps in graph().items():
        if not name.startswith("genvision.families"):
            continue
        for dep in deps:
            if dep in forbidden_exact or dep.startswith(forbidden):
                bad.append(f"{name} imports {dep}")
    assert not bad, "\n".join(sorted(bad))


def test_nn_imports_no_family_and_nothing_above():
    bad = [
        f"{name} imports {dep}"
        for name, deps in graph().items()
        if name.startswith("genvision.nn")
        for dep in deps
        if not (dep.startswith("genvision.nn") or dep in ("genvision.seeding", "genvision.io"))
    ]
    assert not bad, "\n".join(sorted(bad))


def test_the_import_graph_has_no_circle():
    g = graph()
    # the package root only re-exports the API: its own lazy imports are the top of the house
    g = {k: {d for d in v if d != "genvision"} for k, v in g.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(g.get(node, ())):
            if state.get(dep) == 1:
                circles.append(" -> ".join(stack[stack.index(dep) :] + [dep]))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node)
    assert not circles, "\n".join(circles)


def test_the_walker_sees_relative_and_lazy_imports():
    g = graph()
    assert "genvision.families.base" in g["genvision.families.diffusion.model"]
    assert "genvision.training.staged" in g["genvision"]  # lazy, inside a function
    assert "genvision.seeding" in g["genvision.families.base"]  # ``from .. import seeding``


def test_only_the_front_ends_import_the_package_root():
    """The API (``genvision/__init__``) is the top: only the CLI (``cli.py`` and its verb modules
    ``cli_*.py``) and the demo call it."""
    front_ends = {"genvision.cli", "genvision.demo", "genvision.__main__"}
    bad = [
        name
        for name, deps in graph().items()
        if "genvision" in deps and name not in front_ends and not name.startswith("genvision.cli_")
    ]
    assert not bad, f"import the module itself, not the package root: {sorted(bad)}"
