"""Find, load and call plugins: built-in modules, the ``vigil`` entry-point group, and
modules named in ``[daemon] plugins``, in that order."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy
import structlog

from daemon import hookspecs
from daemon.check import Check

BUILTIN_PLUGINS = (
    "plugins.system",
    "plugins.tcp",
    "plugins.http",
    "plugins.process",
    "plugins.exec",
)
ENTRY_POINT_GROUP = "vigil"

log = structlog.get_logger("vigil.plugins")


@dataclass
class PluginInfo:
    name: str
    origin: str
    check_types: list[str] = field(default_factory=list)
    error: str | None = None


class Plugins:
    """The loaded plugins and what they offer."""

    def __init__(self, config_modules: Iterable[str] = (), entry_points: bool = True) -> None:
        self.manager = pluggy.PluginManager("vigil")
        self.manager.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.check_types: dict[str, type[Check]] = {}
        for module in BUILTIN_PLUGINS:
            self._load(module, module, "builtin")
        if entry_points:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "unknown distribution"
                self._load(ep.name, ep.value, f"entry point of {dist}", ep.load)
        for module in config_modules:
            self._load(module, module, "config [daemon] plugins")
        self._collect_check_types()

    def _load(self, name: str, target: str, origin: str, loader: Any = None) -> None:
        if name in self.infos:
            return
        info = self.infos[name] = PluginInfo(name=name, origin=origin)
        try:
            plugin = loader() if loader else importlib.import_module(target)
            self.manager.register(plugin, name=name)
        except Exception as exc:
            # A broken plugin costs its own checks, never the daemon.
            info.error = f"{type(exc).__name__}: {exc}"
            log.error("plugin.failed", plugin=name, origin=origin, error=info.error)

    def _collect_check_types(self) -> None:
        for impl in self.manager.hook.vigil_check_types.get_hookimpls():
            info = self.infos[impl.plugin_name]

            def register(type_name: str, cls: type[Check], info: PluginInfo = info) -> None:
                problem = _check_class_problem(cls)
                owner = self.plugin_of(type_name)
                if problem:
                    raise TypeError(f"check type {type_name!r}: {problem}")
                if owner:
                    raise ValueError(f"check type {type_name!r} is already registered by {owner!r}")
                self.check_types[type_name] = cls
                info.check_types.append(type_name)

            try:
                impl.function(register=register)
            except Exception as exc:
                info.error = f"{type(exc).__name__}: {exc}"
                log.error("plugin.failed", plugin=info.name, origin=info.origin, error=info.error)

    def plugin_of(self, type_name: str) -> str | None:
        return next((i.name for i in self.infos.values() if type_name in i.check_types), None)

    def failed(self) -> list[PluginInfo]:
        return [info for info in self.infos.values() if info.error]

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call every implementation of an observer hook, each isolated from the others."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception as exc:
                log.error("plugin.error", plugin=impl.plugin_name, hook=hook,
                          error=f"{type(exc).__name__}: {exc}")


def _check_class_problem(cls: Any) -> str | None:
    if not (isinstance(cls, type) and issubclass(cls, Check)):
        return f"{cls!r} is not a subclass of daemon.Check"
    if cls.Options is not None and not dataclasses.is_dataclass(cls.Options):
        return f"{cls.__name__}.Options must be a dataclass"
    return None
