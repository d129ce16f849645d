"""Read and validate the TOML configuration, collecting every mistake at once."""

from __future__ import annotations

import importlib.resources
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil._check import Check
from vigil._durations import Duration
from vigil._errors import ConfigError, ConfigIssue
from vigil._manager import ServiceManager
from vigil._options import coerce, parse_options
from vigil._paths import config_candidates, default_state_dir
from vigil._pluginmanager import Plugins
from vigil._ports import parse_ports
from vigil._tomllines import key_lines, locate

PACKAGED = "<packaged defaults>"
LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass
class DaemonSettings:
    state_dir: Path
    #: The config file these came from, or PACKAGED.
    source: str = PACKAGED
    log_file: str = "-"
    log_level: str = "info"
    plugins: list[str] = field(default_factory=list)


@dataclass
class ServiceSpec:
    name: str
    manager: str
    service_manager: ServiceManager
    depends_on: list[str] = field(default_factory=list)
    start_timeout: float = 30.0
    restarts: int = 3
    within: float = 600.0
    backoff: float = 5.0
    heal: bool = True
    #: Ports the service may be started on, preferred first (None: vigil picks none).
    ports: list[int] | None = None


@dataclass
class CheckSpec:
    name: str
    type: str
    check: Check
    interval: float
    timeout: float
    fall: int
    rise: int
    service: str | None = None
    enabled: bool = True
    #: Re-run interval while a failure is being confirmed or a heal awaits a pass.
    fast_interval: float = 0.0

    def __post_init__(self) -> None:
        if not self.fast_interval:
            self.fast_interval = self.interval / 4


@dataclass
class Config:
    source: str
    daemon: DaemonSettings
    checks: dict[str, CheckSpec]
    services: dict[str, ServiceSpec]
    plugins: Plugins


# key -> (type hint, default); a default of ... means required.
_DAEMON_KEYS: dict[str, tuple[Any, Any]] = {
    "state_dir": (str, None), "log_file": (str, "-"), "log_level": (str, "info"),
    "plugins": (list[str], []),
}
_DEFAULT_KEYS: dict[str, tuple[Any, Any]] = {
    "interval": (Duration, Duration(30)), "timeout": (Duration, Duration(10)),
    "fall": (int, 3), "rise": (int, 2),
}
_CHECK_KEYS: dict[str, tuple[Any, Any]] = {
    "type": (str, ...), "service": (str | None, None), "enabled": (bool, True),
    "fast_interval": (Duration, 0.0), **_DEFAULT_KEYS,
}
_SERVICE_KEYS: dict[str, tuple[Any, Any]] = {
    "manager": (str, ...), "depends_on": (list[str], []), "start_timeout": (Duration, 30.0),
    "restarts": (int, 3), "within": (Duration, 600.0), "backoff": (Duration, 5.0),
    "heal": (bool, True), "ports": (str | list[int] | None, None),
}


def find_source(explicit: str | None = None) -> str:
    """The file name of the config in effect, following the lookup order, or PACKAGED."""
    for path, must_exist in config_candidates(explicit):
        if path.is_file():
            return str(path)
        if must_exist:
            what = "is a folder" if path.is_dir() else "does not exist"
            raise ConfigError(issues=[ConfigIssue(str(path), "", f"config file {what}")])
    return PACKAGED


def read_source(explicit: str | None = None) -> tuple[str, str]:
    """(file name, TOML text) of the config in effect, following the lookup order."""
    source = find_source(explicit)
    if source == PACKAGED:
        return PACKAGED, packaged_text()
    return source, Path(source).read_text(encoding="utf-8")


def packaged_text() -> str:
    """The commented defaults shipped with vigil: used when no config file is found, and
    what `vigil init` writes."""
    return (importlib.resources.files("vigil") / "defaults.toml").read_text("utf-8")


def load(explicit: str | None = None) -> Config:
    """The validated config; raises ConfigError listing every issue."""
    return parse(*read_source(explicit))


def load_daemon(explicit: str | None = None) -> DaemonSettings:
    """Only the ``[daemon]`` section, as far as it can be read: for commands that must work
    while the rest of the config is broken (status, logs, plugins). A file that is not
    TOML at all gives the platform defaults."""
    source, text = read_source(explicit)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return DaemonSettings(state_dir=default_state_dir(), source=source)
    return _Validator(source, text, data).daemon()


def parse(source: str, text: str) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(str(exc))
        issue = ConfigIssue(source, "", f"not valid TOML: {exc}", line)
        raise ConfigError(issues=[issue]) from None
    return _Validator(source, text, data).run()


def _toml_error_line(message: str) -> int | None:
    marker = "(at line "
    if marker in message:
        return int(message.split(marker, 1)[1].split(",", 1)[0])
    return None


class _Validator:
    def __init__(self, source: str, text: str, data: dict[str, Any]) -> None:
        self.source = source
        self.lines = key_lines(text)
        self.data = data
        self.issues: list[ConfigIssue] = []
        self.base = Path(source).resolve().parent if source != PACKAGED else Path.cwd()

    def error(self, path: tuple[str, ...], message: str) -> None:
        self.issues.append(
            ConfigIssue(self.source, ".".join(path), message, locate(self.lines, path))
        )

    def run(self) -> Config:
        for key in self.data.keys() - {"daemon", "defaults", "services", "checks"}:
            self.error((key,), "unknown section (known: daemon, defaults, services, checks)")
        daemon = self.daemon()
        plugins = Plugins(daemon.plugins)
        defaults = self._table(("defaults",), _DEFAULT_KEYS, {})
        services = self._services(plugins)
        checks = self._checks(plugins, defaults, services)
        if self.issues:
            raise ConfigError(issues=self.issues)
        return Config(self.source, daemon, checks, services, plugins)

    def _section(self, path: tuple[str, ...]) -> dict[str, Any]:
        node: Any = self.data
        for part in path:
            node = node.get(part, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            self.error(path, f"expected a table, got {type(node).__name__} {node!r}")
            return {}
        return node

    def _table(
        self, path: tuple[str, ...], keys: dict[str, tuple[Any, Any]], inherited: dict[str, Any],
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Core keys of one section, typed, with defaults; ``extra`` receives the rest."""
        raw = self._section(path)
        out: dict[str, Any] = {}
        for key, value in raw.items():
            if key in keys:
                try:
                    out[key] = coerce(keys[key][0], value)
                except ValueError as exc:
                    self.error((*path, key), str(exc))
            elif extra is not None:
                extra[key] = value
            else:
                self.error((*path, key), f"unknown key (known: {', '.join(keys)})")
        for key, (_hint, default) in keys.items():
            if key in out or key in raw:
                continue
            if default is ...:
                self.error((*path, key), "is required")
            else:
                out[key] = inherited.get(key, default)
        return out

    def daemon(self) -> DaemonSettings:
        values = self._table(("daemon",), _DAEMON_KEYS, {})
        level = values.get("log_level", "info").lower()
        if level not in LOG_LEVELS:
            self.error(("daemon", "log_level"), f"must be one of {', '.join(LOG_LEVELS)}")
        state_dir = values.get("state_dir")
        path = self.base / os.path.expanduser(state_dir) if state_dir else default_state_dir()
        log_file = values.get("log_file", "-")
        if log_file != "-":
            log_file = str(self.base / os.path.expanduser(log_file))
        return DaemonSettings(
            state_dir=path, source=self.source, log_file=log_file, log_level=level,
            plugins=values.get("plugins", []),
        )

    def _services(self, plugins: Plugins) -> dict[str, ServiceSpec]:
        services = {}
        depends: dict[str, list[str]] = {}
        for name in self._section(("services",)):
            path = ("services", name)
            options: dict[str, Any] = {}
            values = self._table(path, _SERVICE_KEYS, {}, extra=options)
            depends[name] = values.get("depends_on", [])
            self._positive(path, values, ("restarts", "start_timeout", "within"))
            kind = values.get("manager")
            if kind is None:
                continue
            cls = plugins.service_managers.get(kind)
            if cls is None:
                self.error((*path, "manager"), self._unknown("manager", kind,
                                                             plugins.service_managers, plugins))
                continue
            manager = self._build(cls, path, options, values.get("start_timeout", 30.0))
            if values.get("ports") is not None:
                try:
                    values["ports"] = parse_ports(values["ports"])
                except ValueError as exc:
                    self.error((*path, "ports"), str(exc))
                    continue
                if manager is not None and (problem := manager.port_problem()):
                    self.error((*path, "ports"), problem)
                    continue
            if manager is not None:
                services[name] = ServiceSpec(name=name, service_manager=manager, **values)
        for name, deps in depends.items():
            for dep in deps:
                if dep not in depends:
                    self.error(("services", name, "depends_on"), f"no service named {dep!r}")
        self._cycles(depends)
        return services

    def _cycles(self, depends: dict[str, list[str]]) -> None:
        done: set[str] = set()

        def visit(name: str, trail: list[str]) -> None:
            if name in trail:
                cycle = " -> ".join([*trail[trail.index(name):], name])
                self.error(("services", name, "depends_on"), f"dependency cycle: {cycle}")
                return
            if name in done or name not in depends:
                return
            for dep in depends[name]:
                visit(dep, [*trail, name])
            done.add(name)

        for name in depends:
            visit(name, [])

    def _positive(
        self, path: tuple[str, ...], values: dict[str, Any], keys: tuple[str, ...]
    ) -> None:
        for key in keys:
            if key in values and values[key] <= 0:
                self.error((*path, key), f"must be greater than zero, got {values[key]!r}")
                values.pop(key)

    def _checks(
        self, plugins: Plugins, defaults: dict[str, Any], services: dict[str, ServiceSpec]
    ) -> dict[str, CheckSpec]:
        self._positive(("defaults",), defaults, ("interval", "timeout", "fall", "rise"))
        checks = {}
        for name in self._section(("checks",)):
            path = ("checks", name)
            options: dict[str, Any] = {}
            values = self._table(path, _CHECK_KEYS, defaults, extra=options)
            self._positive(path, values, ("interval", "timeout", "fall", "rise"))
            service = values.get("service")
            if service is not None and service not in self._section(("services",)):
                known = ", ".join(services) or "none declared"
                self.error((*path, "service"), f"no service named {service!r} (known: {known})")
            check = self._instantiate(plugins, path, values, options)
            if check is not None and not self._has_errors_under(path):
                checks[name] = CheckSpec(name=name, check=check, **values)
        return checks

    def _has_errors_under(self, path: tuple[str, ...]) -> bool:
        prefix = ".".join(path)
        return any(i.key == prefix or i.key.startswith(prefix + ".") for i in self.issues)

    def _instantiate(
        self, plugins: Plugins, path: tuple[str, ...], values: dict[str, Any], raw: dict[str, Any]
    ) -> Check | None:
        type_name = values.get("type")
        if type_name is None:
            return None
        cls = plugins.check_types.get(type_name)
        if cls is None:
            self.error((*path, "type"),
                       self._unknown("check type", type_name, plugins.check_types, plugins))
            return None
        return self._build(cls, path, raw, values.get("timeout", 10.0))

    @staticmethod
    def _unknown(what: str, name: str, known: dict[str, Any], plugins: Plugins) -> str:
        broken = "".join(f"; plugin {p.name!r} failed to load: {p.error}"
                         for p in plugins.failed())
        return f"unknown {what} {name!r} (known: {', '.join(sorted(known))}){broken}"

    def _build(self, cls: Any, path: tuple[str, ...], raw: dict[str, Any], timeout: float) -> Any:
        """A check or service manager from its section's own keys, its ``Options``
        validated first; every problem becomes an issue at the right key."""
        options: Any = raw
        if cls.Options is not None:
            options, errors = parse_options(cls.Options, raw)
            for key, message in errors:
                self.error((*path, *key.split(".")) if key else path, message)
            if errors:
                return None
        try:
            return cls(path[-1], options, timeout=timeout)
        except ConfigError as exc:
            self.error((*path, *exc.key.split(".")) if exc.key else path, exc.message)
        except Exception as exc:
            self.error(path, f"{cls.__name__} failed to set up: {type(exc).__name__}: {exc}")
        return None
