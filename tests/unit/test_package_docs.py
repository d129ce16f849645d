"""The core's own map stays true: each part's docstring names every module in it, no
docstring names a module that is gone, and each module imports only the parts its
package's "May import" line allows (the layers in pyproject.toml, read the same way)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAEMON = ROOT / "daemon"
PARTS = sorted(p.parent for p in DAEMON.glob("_*/__init__.py"))
LAYERS: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
    "importlinter"]["contracts"][0]["layers"]
#: ``name`` in a docstring.
QUOTED = re.compile(r"``([A-Za-z_][\w.]*)``")


def docstring(path: Path) -> str:
    return ast.get_docstring(ast.parse(path.read_text())) or ""


def modules(part: Path) -> list[str]:
    return sorted(p.stem for p in part.glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.name)
def test_each_part_names_every_module_it_holds(part: Path) -> None:
    named = set(QUOTED.findall(docstring(part / "__init__.py")))
    missing = [m for m in modules(part) if m not in named]
    assert not missing, f"vigil.{part.name}'s docstring does not name {missing}"


def test_no_docstring_names_a_module_that_is_gone() -> None:
    # ``_name`` is how the old flat layout named a module that is now ``name`` in a part.
    parts = {p.name for p in PARTS}
    names = {p.stem for p in DAEMON.rglob("*.py")}
    stale = []
    for path in DAEMON.rglob("*.py"):
        for name in QUOTED.findall(docstring(path)):
            first = name.split(".")[0]
            if first not in parts and first.lstrip("_") in names and first.startswith("_"):
                stale.append(f"{path.relative_to(ROOT)}: ``{name}``")
    assert not stale, "docstrings name modules that are gone:\n" + "\n".join(stale)


def allowed(part: Path) -> set[str]:
    """The parts a part's "May import" line allows, itself included."""
    line = docstring(part / "__init__.py").split("May import:")[-1]
    if "every other part" in line:
        return set(LAYERS)
    named = set(re.findall(r"``(vigil\._\w+)``", line))
    if "the parts below it" in line:
        for name in list(named):
            named |= set(LAYERS[LAYERS.index(name) + 1:])
    return named | {f"vigil.{part.name}"}


def imported_parts(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                 [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                 else [])
        for name in names:
            if match := re.match(r"vigil\._\w+", name):
                found.add(match.group(0))
    return found


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.name)
def test_each_module_imports_only_what_its_part_may(part: Path) -> None:
    may = allowed(part)
    assert "May import:" in docstring(part / "__init__.py"), f"{part.name} says nothing"
    broken = {f"{part.name}/{path.name}": sorted(imported_parts(path) - may)
              for path in part.glob("*.py") if imported_parts(path) - may}
    assert not broken, f"imports that vigil.{part.name}'s docstring does not allow: {broken}"
