"""The house rules, checked on the source: data flows one way and nothing imports the package face.

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
    "distributed": 0,
    "activity": 0,
    "logistic": 0,
    "codec": 1,
    "backbone": 1,
    "architectures": 2,
    "data": 2,
    "holdout": 2,
    "synth": 2,
    "chunked": 2,
    "activations": 3,
    "probes": 4,
    "monitor": 5,
    "steering": 6,
    "generate": 7,
    "mixed": 7,
    "recorder": 7,
    "controls": 7,
    "stream": 8,
    "plots": 8,
    "defaults": 8,
    "demo": 9,
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
