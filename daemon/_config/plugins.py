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

from vigil import hookspecs
from vigil._api.alert import AlertSink
from vigil._api.check import Check
from vigil._api.manager import ServiceManager
from vigil._config.options import unsupported

BUILTIN_PLUGINS = (
    "vigil.plugins.system",
    "vigil.plugins.tcp",
    "vigil.plugins.http",
    "vigil.plugins.process",
    "vigil.plugins.exec",
    "vigil.plugins.postgres",
    "vigil.plugins.mcp_server",
    "vigil.plugins.redis_cache",
    "vigil.plugins.events",
    "vigil.plugins.docs",
    "vigil.plugins.backlog",
    "vigil.plugins.load",
    "vigil.plugins.alertmanager",
    "vigil.plugins.webhook",
    "vigil.plugins.alert_command",
    "vigil.plugins.ntfy",
    "vigil.plugins.slack",
    "vigil.service.systemd",
    "vigil.service.launchd",
    "vigil.service.brew",
    "vigil.service.command",
)
ENTRY_POINT_GROUP = "vigil"

log = structlog.get_logger("vigil.plugins")


@dataclass
class PluginInfo:
    name: str
    origin: str
    check_types: list[str] = field(default_factory=list)
    service_managers: list[str] = field(default_factory=list)
    alert_sinks: list[str] = field(default_factory=list)
    error: str | None = None


class Plugins:
    """The loaded plugins and what they offer."""

    def __init__(self, config_modules: Iterable[str] = ()) -> None:
        self.manager = pluggy.PluginManager("vigil")
        self.manager.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.check_types: dict[str, type[Check]] = {}
        self.service_managers: dict[str, type[ServiceManager]] = {}
        self.alert_sinks: dict[str, type[AlertSink]] = {}
        for module in BUILTIN_PLUGINS:
            self._load(module, module, "builtin")
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "unknown distribution"
            self._load(ep.name, ep.value, f"entry point of {dist}", ep.load)
        for module in config_modules:
            self._load(module, module, "config [daemon] plugins")
        self._reject_unknown_hooks()
        self._collect("vigil_check_types", self.check_types, Check, "check_types")
        self._collect("vigil_service_managers", self.service_managers, ServiceManager,
                      "service_managers")
        self._collect("vigil_alert_sinks", self.alert_sinks, AlertSink, "alert_sinks")

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

    def _reject_unknown_hooks(self) -> None:
        """A hook implementation no spec names (``vigil_check_type`` for
        ``vigil_check_types``) would never be called: its plugin fails, saying the name
        it probably meant, rather than doing nothing in silence."""
        known = [name for name in vars(hookspecs) if name.startswith("vigil_")]
        for name, caller in list(vars(self.manager.hook).items()):
            if caller.has_spec():
                continue
            for impl in caller.get_hookimpls():
                import difflib  # only for a misspelled hook: most daemons never need it

                info = self.infos[impl.plugin_name]
                guess = difflib.get_close_matches(name, known, n=1)
                info.error = (f"unknown hook {name!r}" + (f" (did you mean {guess[0]!r}?)"
                                                          if guess else "")
                              + f"; the hooks are {', '.join(known)}")
                log.error("plugin.failed", plugin=info.name, origin=info.origin,
                          error=info.error)
                self.manager.unregister(impl.plugin)

    def _collect(self, hook: str, registry: dict[str, type], base: type, listed: str) -> None:
        """Call one ``register`` hook of every plugin, each on its own, noting which
        plugin offered what."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            info = self.infos[impl.plugin_name]

            def register(name: str, cls: Any, info: PluginInfo = info) -> None:
                problem = _class_problem(cls, base)
                if problem:
                    raise TypeError(f"{name!r}: {problem}")
                owner = next((i.name for i in self.infos.values()
                              if name in getattr(i, listed)), None)
                if owner:
                    raise ValueError(f"{name!r} is already registered by {owner!r}")
                registry[name] = cls
                getattr(info, listed).append(name)

            try:
                impl.function(register=register)
            except Exception as exc:
                info.error = f"{type(exc).__name__}: {exc}"
                log.error("plugin.failed", plugin=info.name, origin=info.origin, error=info.error)

    def owner(self, cls: type) -> str:
        """The name of the plugin that registered ``cls``: a plugin's own error is
        blamed on it, not on the config."""
        for info in self.infos.values():
            for listed, registry in (("check_types", self.check_types),
                                     ("service_managers", self.service_managers),
                                     ("alert_sinks", self.alert_sinks)):
                names: list[str] = getattr(info, listed)
                if any(registry.get(name) is cls for name in names):
                    return info.name
        return "unknown"

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


def _class_problem(cls: Any, base: type) -> str | None:
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return f"{cls!r} is not a subclass of vigil.{base.__name__}"
    options = getattr(cls, "Options", None)
    if options is None:
        return None
    if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        return f"{cls.__name__}.Options must be a dataclass"
    return unsupported(options)
