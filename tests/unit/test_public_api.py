"""The built-in plugins and service managers are written exactly as a third-party plugin
is: they import from `vigil` only what `vigil.__all__` offers, and nothing internal."""

from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import vigil
import vigil.testing
from tests.helpers import ROOT
from vigil._config.plugins import BUILTIN_PLUGINS

PUBLIC_MODULES = {"__init__", "__main__", "hookspecs", "testing"}


def builtin_sources() -> list[Path]:
    return [ROOT / ("plugins" if m.startswith("vigil.plugins.") else "service")
            / f"{m.rsplit('.', 1)[1]}.py" for m in BUILTIN_PLUGINS]


def internal_imports(source: str) -> list[str]:
    """Each import of a vigil name that is not in vigil's public API."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            if module == "vigil":
                found += [f"vigil.{a.name}" for a in node.names if a.name not in vigil.__all__]
            elif node.level or module.startswith("vigil."):
                found.append(module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("vigil.")]
    return found


def test_the_checker_finds_internal_imports() -> None:
    bad = ("from vigil import Check, _proc\nfrom vigil._kit.ports import parse_ports\n"
           "import vigil._kit.atomic\nfrom vigil.plugins.http import MAX_BODY\nfrom . import x\n"
           "from vigil import hookimpl, run_command\n")
    assert internal_imports(bad) == ["vigil._proc", "vigil._kit.ports", "vigil._kit.atomic",
                                     "vigil.plugins.http", "."]


def test_builtin_plugins_and_managers_use_only_the_public_api() -> None:
    sources = builtin_sources()
    assert len(sources) == len(BUILTIN_PLUGINS) == 21 and all(p.exists() for p in sources)
    offenders = {p.name: bad for p in sources if (bad := internal_imports(p.read_text()))}
    assert not offenders, f"built-ins importing internal names: {offenders}"


def test_internal_modules_are_marked_internal() -> None:
    for folder in ("daemon", "plugins", "service"):
        for path in (ROOT / folder).glob("*.py"):
            builtin = f"vigil.{folder}.{path.stem}" in BUILTIN_PLUGINS
            public = path.stem in PUBLIC_MODULES or builtin
            assert public or path.stem.startswith("_"), f"{folder}/{path.name} is internal: " \
                "name it with a leading underscore, or export what plugins need from vigil"


def test_every_public_name_is_documented_in_the_plugin_guide() -> None:
    guide = (ROOT / "plugins" / "README.md").read_text()
    missing = [name for name in [*vigil.__all__, *vigil.testing.__all__]
               if f"`{name}" not in guide]
    assert not missing, f"public names missing from plugins/README.md: {missing}"


def test_every_public_name_and_method_says_what_it_does() -> None:
    undocumented = []
    for module, name in [*((vigil, n) for n in vigil.__all__),
                         *((vigil.testing, n) for n in vigil.testing.__all__)]:
        obj = getattr(module, name)
        if typing.get_origin(obj) is not None:  # a type alias (RegisterCheck...)
            continue
        if not (obj.__doc__ or "").strip():
            undocumented.append(name)
        if not inspect.isclass(obj):
            continue
        for attr, value in vars(obj).items():
            function = value.fget if isinstance(value, property) else getattr(
                value, "__func__", value)
            if not attr.startswith("_") and inspect.isfunction(function) and not (
                    function.__doc__ or "").strip():
                undocumented.append(f"{name}.{attr}")
    assert not undocumented, f"no docstring: {undocumented}"
