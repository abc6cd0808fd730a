"""The house rules, checked on the source: data flows one way, nothing imports the package face,
and no modules import each other in a circle (not even lazily, inside a function).

Each top-level module or package of smitin has a rank; a module may import only modules of a
lower or equal rank (equal: inside one package, or siblings of one layer). Ranks follow the
data flow: audio -> codes -> head activations -> probes -> steering -> audio, then the
applications (experiment, studio, tiny-model training) and, on top, the command line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "smitin"

RANKS = {
    "version": 0,
    "options": 0,
    "recipes": 0,
    "lanes": 0,
    "audio": 0,
    "files": 0,
    "textfiles": 0,
    "distributed": 0,
    "activity": 0,
    "logistic": 0,
    "codec": 1,
    "backbone": 1,
    "budget": 2,
    "architectures": 2,
    "data": 2,
    "holdout": 2,
    "synth": 2,
    "chunked": 2,
    "activations": 3,
    "probes": 4,
    "monitor": 5,
    "edits": 5,
    "steering": 6,
    "captured": 6,
    "generate": 7,
    "mixed": 7,
    "recorder": 7,
    "controls": 7,
    "stream": 8,
    "plots": 8,
    "defaults": 8,
    "demo": 9,
    "diagnose": 9,
    "experiment": 9,
    "tiny": 9,
    "ui": 9,
    "cli": 10,
    "__main__": 11,
}


def owner(path: Path) -> str:
    """The top-level unit a file belongs to: `smitin/ui/app.py` -> `ui`."""
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported_units(path: Path) -> set[str]:
    """The smitin units a file imports (absolute `smitin.x` or relative), with their line numbers."""
    tree = ast.parse(path.read_text())
    package = path.relative_to(SRC.parent).with_suffix("").parts[:-1]  # ('smitin', 'ui') for ui/app.py
    units = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("smitin")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join((*base, node.module) if node.module else base)
            else:
                mod = node.module or ""
            if not mod.startswith("smitin"):
                continue
            names = [mod] if mod != "smitin" else [f"smitin.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            units.add(parts[1] if len(parts) > 1 else "smitin")
    return units


FILES = sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC)


def test_every_unit_has_a_rank():
    units = {owner(p) for p in FILES}
    assert units <= set(RANKS), f"give these a rank in tests/test_layers.py: {sorted(units - set(RANKS))}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_runs_back_up(path):
    me = owner(path)
    for unit in imported_units(path):
        assert unit != "smitin", f"{path.name} imports the package face; import the module it needs"
        assert unit in RANKS, f"{path.name} imports unknown smitin.{unit}"
        assert RANKS[unit] <= RANKS[me], f"{me} (rank {RANKS[me]}) imports {unit} (rank {RANKS[unit]})"


def test_the_checker_sees_relative_and_absolute_imports():
    fake = SRC / "ui" / "handlers.py"
    units = imported_units(fake)
    assert "generate" in units or "steering" in units  # the studio generates with steering


# -- import circles, module by module ---------------------------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SRC.rglob("*.py")}


def _type_only(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def runtime_imports(path: Path) -> set[str]:
    """smitin modules a file imports when it runs, at the top or inside functions.

    Imports under `if TYPE_CHECKING:` never run and are left out; `from . import x` of a submodule
    imports that submodule (its package is already loaded), not the package's own code.
    """
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_only(child):
                for other in child.orelse:  # type: ignore[attr-defined]
                    visit(other)
                continue
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name in MODULES)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[: len(package.split(".")) - child.level + 1]
                    mod = ".".join([*base, child.module] if child.module else base)
                else:
                    mod = child.module or ""
                subs = {f"{mod}.{a.name}" for a in child.names} & set(MODULES)
                found.update(subs)
                if mod in MODULES and len(subs) < len(child.names):
                    found.add(mod)
            visit(child)

    visit(ast.parse(path.read_text()))
    return found - {me}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or around a loop (Tarjan's components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    graph = {name: runtime_imports(path) for name, path in MODULES.items()}
    assert circles(graph) == []


def test_the_circle_check_finds_circles():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    assert "smitin.experiment.config" in runtime_imports(SRC / "experiment" / "runner.py")
    assert "smitin.synth.fluid" in runtime_imports(SRC / "synth" / "render.py")  # from . import fluid
