"""Validate a configuration's data, collecting every mistake at once, each with the
file, the key path and the line."""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import ipaddress
import itertools
import os
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from vigil._api.alert import AlertSink
from vigil._api.check import Check
from vigil._api.errors import ConfigError, ConfigIssue
from vigil._api.manager import ServiceManager
from vigil._config.options import Table, coerce, key_of, parse_options
from vigil._config.plugins import Plugins
from vigil._config.sections import (
    ALERT_EVENTS,
    ALERT_STATUSES,
    HISTORY_MINIMUMS,
    LOG_LEVELS,
    LOG_RESULTS,
    PACKAGED,
    AlertSpec,
    CheckSpec,
    Config,
    DaemonSettings,
    Defaults,
    RemediationSpec,
    ScheduleSpec,
    ServiceSpec,
    SloSpec,
    cron,
    dependency_cycles,
    time_zone,
)
from vigil._config.tomllines import key_lines, locate
from vigil._kit.durations import format_duration, parse_duration
from vigil._kit.ports import parse_ports
from vigil._store.history import Retention

_Plugged = TypeVar("_Plugged", bound=Check | ServiceManager | AlertSink)


def _keys(cls: type) -> dict[str, tuple[Any, Any]]:
    """A section's keys from its dataclass: key -> (type hint, default); ... is required.
    A default from a factory is made anew each time, so no two sections share a list."""
    keys: dict[str, tuple[Any, Any]] = {}
    for name, hint, f in _key_fields(cls):
        default: Any = ...
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        keys[name] = (hint, default)
    return keys


@functools.cache
def _key_fields(cls: type) -> list[tuple[str, Any, dataclasses.Field[Any]]]:
    # Resolving the type hints is the slow part: once per section type, not per section.
    hints = typing.get_type_hints(cls)
    return [(f.name, f.metadata.get("type", hints[f.name]), f)
            for f in dataclasses.fields(cls) if f.metadata.get("key", True)]


def _unknown(what: str, name: str, known: Table, plugins: Plugins) -> str:
    broken = "".join(f"; plugin {p.name!r} failed to load: {p.error}" for p in plugins.failed())
    return f"unknown {what} {name!r} (known: {', '.join(sorted(known))}){broken}"


#: The shortest token that guards an address other hosts reach.
MIN_TOKEN = 16


def shortest_gap(trigger: Any, starts: int = 64) -> float | None:
    """The shortest time between a schedule's next ``starts`` starts (None for one that
    starts once or never)."""
    fire = trigger.get_next_fire_time(None, datetime.now(UTC))
    times: list[float] = []
    while fire is not None and len(times) < starts:
        times.append(fire.timestamp())
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return min((b - a for a, b in itertools.pairwise(times)), default=None)

class Validator:
    def __init__(self, source: str, text: str, data: Table) -> None:
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
        known = ("daemon", "defaults", "services", "checks", "alerts", "remediation",
                 "maintenance", "slos")
        for key in self.data.keys() - set(known):
            self.error((key,), f"unknown section (known: {', '.join(known)})")
        daemon = self.daemon()
        plugins = Plugins(daemon.plugins)
        defaults = self._table(("defaults",), Defaults, {})
        services = self._services(plugins)
        checks = self._checks(plugins, defaults, services)
        alerts = self._alerts(plugins, checks)
        remediation = self._remediation() if "remediation" in self.data else None
        schedules = {name: spec for name in self._section(("maintenance",))
                     if (spec := self._schedule(name, services)) is not None}
        objectives = {name: slo for name in self._section(("slos",))
                      if (slo := self._slo(name, checks, daemon.retention())) is not None}
        if self.issues:
            # In the order of the file: a reader fixes them top to bottom.
            raise ConfigError(issues=sorted(self.issues, key=lambda i: i.line or 0))
        return Config(self.source, daemon, checks, services, plugins, alerts, remediation,
                      schedules, objectives)

    def _section(self, path: tuple[str, ...]) -> Table:
        node: Any = self.data
        for part in path:
            node = node.get(part, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            self.error(path, f"expected a table, got {type(node).__name__} {node!r}")
            return {}
        return node

    def _table(
        self, path: tuple[str, ...], spec: type, inherited: Table,
        extra: Table | None = None,
    ) -> Table:
        """The core keys of one section, as its dataclass ``spec`` declares them: typed,
        with defaults (``inherited`` first); ``extra`` receives the other keys. A key
        with a bad value is an issue, and gets its default so that checking goes on."""
        keys = _keys(spec)
        raw = self._section(path)
        out: Table = {}
        for key, value in raw.items():
            if key in keys:
                try:
                    out[key] = coerce(keys[key][0], value)
                except ValueError as exc:
                    self.error((*path, *key_of(key, exc).split(".")), str(exc))
            elif extra is not None:
                extra[key] = value
            else:
                self.error((*path, key), f"unknown key (known: {', '.join(keys)})")
        for key, (_hint, default) in keys.items():
            if key in out:
                continue
            if default is ... and key not in raw:
                self.error((*path, key), "is required")
            elif default is not ...:
                out[key] = inherited.get(key, default)
        return out

    def daemon(self) -> DaemonSettings:
        values = self._table(("daemon",), DaemonSettings, {})
        level = values["log_level"].lower()
        if level not in LOG_LEVELS:
            self.error(("daemon", "log_level"), f"must be one of {', '.join(LOG_LEVELS)}")
        if values["log_results"] not in LOG_RESULTS:
            self.error(("daemon", "log_results"), f"must be one of {', '.join(LOG_RESULTS)}")
        shorter = None
        for key, minimum in HISTORY_MINIMUMS.items():
            if values[key] < minimum:
                self.error(("daemon", key), f"must be at least {format_duration(minimum)}")
            elif shorter and values[key] < values[shorter]:
                self.error(("daemon", key), f"must be at least {shorter} "
                                            f"({format_duration(values[shorter])})")
            shorter = key
        if values["slo_interval"] < 1:
            self.error(("daemon", "slo_interval"), "must be at least 1s")
        if values["baseline_window"] < 10:
            self.error(("daemon", "baseline_window"), "must be at least 10s")
        self._http(values)
        # Relative paths are taken relative to the config file.
        values["state_dir"] = self.base / os.path.expanduser(values["state_dir"])
        if values["log_file"] != "-":
            values["log_file"] = str(self.base / os.path.expanduser(values["log_file"]))
        return DaemonSettings(**{**values, "log_level": level, "source": self.source})

    def _http(self, values: Table) -> None:
        """``http`` is host:port; a token comes from ``http_token`` or the file
        ``http_token_file``; only loopback may go without one."""
        if values["http_token_file"]:
            if values["http_token"]:
                self.error(("daemon", "http_token_file"), "set http_token or http_token_file, "
                                                          "not both")
            path = self.base / os.path.expanduser(values["http_token_file"])
            values["http_token_file"] = str(path)  # the daemon looks at its mode
            try:
                # A BOM that an editor put first is no part of the token.
                values["http_token"] = path.read_text(encoding="utf-8-sig").strip()
            except OSError as exc:
                self.error(("daemon", "http_token_file"), f"cannot read {path}: "
                                                          f"{exc.strerror or exc}")
            else:
                if not values["http_token"]:
                    self.error(("daemon", "http_token_file"), f"{path} is empty: write the "
                                                              "token into it")
        token_key = "http_token_file" if values["http_token_file"] else "http_token"
        if any(c.isspace() for c in values["http_token"]):
            self.error(("daemon", token_key), "a token has no spaces or line breaks in it")
        elif not (values["http_token"].isascii() and values["http_token"].isprintable()):
            # An HTTP header carries ASCII: any other character could never match.
            self.error(("daemon", token_key), "a token is printable ASCII (letters, digits, "
                                              "punctuation)")
        if not values["http"]:
            return
        host, _, port = values["http"].rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            self.error(("daemon", "http"), 'expected "host:port", like "127.0.0.1:8787" '
                                           '(or "" for no HTTP)')
            return
        try:
            loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback and not values["http_token"]:
            self.error(("daemon", "http"), f"{host} is reachable from other hosts: set "
                                           "http_token or http_token_file first")
        elif not loopback and len(values["http_token"]) < MIN_TOKEN:
            self.error(("daemon", token_key),
                       f"{host} is reachable from other hosts: a token of at least "
                       f"{MIN_TOKEN} characters guards it (`openssl rand -hex 16` makes one)")

    def _services(self, plugins: Plugins) -> dict[str, ServiceSpec]:
        services = {}
        depends: dict[str, list[str]] = {}
        for name in self._section(("services",)):
            path = ("services", name)
            options: Table = {}
            values = self._table(path, ServiceSpec, {}, extra=options)
            depends[name] = values["depends_on"]
            self._positive(path, values, ("restarts", "start_timeout", "within"))
            kind = values.get("manager")
            if kind is None:
                continue
            cls = plugins.service_managers.get(kind)
            if cls is None:
                self.error((*path, "manager"), _unknown("manager", kind,
                                                             plugins.service_managers, plugins))
                continue
            service_manager = self._build(plugins, cls, path, options, values["start_timeout"])
            if ("respect_stops" in self._section(path) and service_manager is not None
                    and not service_manager.tells_stops):
                telling = sorted(k for k, c in plugins.service_managers.items() if c.tells_stops)
                self.error((*path, "respect_stops"), f"the {kind} manager cannot tell a stop "
                           "from a crash, so every exit is healed; respect_stops applies to "
                           f"{' and '.join(telling) or 'no'} services only")
            if values.get("ports") is not None:
                try:
                    values["ports"] = parse_ports(values["ports"])
                except ValueError as exc:
                    self.error((*path, "ports"), str(exc))
                    continue
                if service_manager is not None and (
                        problem := service_manager.port_problem()):
                    self.error((*path, "ports"), problem)
                    continue
            elif service_manager is not None and (key := service_manager.asks_for_port()):
                self.error((*path, key), "has a {port} placeholder, but the service has no "
                                         "ports to choose from: add ports = [3000, 3010]")
                continue
            if service_manager is not None:
                built: type[ServiceManager] = type(service_manager)
                make = functools.partial(built, name, service_manager.options,
                                         timeout=service_manager.timeout)
                services[name] = ServiceSpec(name=name, make_manager=make, **values)
        for name, deps in depends.items():
            for dep in deps:
                if dep not in depends:
                    self.error(("services", name, "depends_on"), f"no service named {dep!r}")
        for name, cycle in dependency_cycles(depends):
            self.error(("services", name, "depends_on"), f"dependency cycle: {cycle}")
        return services

    def _positive(
        self, path: tuple[str, ...], values: Table, keys: tuple[str, ...]
    ) -> None:
        for key in keys:
            if key in values and values[key] <= 0:
                self.error((*path, key), f"must be greater than zero, got {values[key]!r}")
                values.pop(key)

    def _checks(
        self, plugins: Plugins, defaults: Table, services: dict[str, ServiceSpec]
    ) -> dict[str, CheckSpec]:
        self._positive(("defaults",), defaults, ("interval", "timeout", "fall", "rise"))
        checks = {}
        #: Each series [defaults] baseline names: whether some check has it.
        inherited: dict[str, bool] = {}
        for name in self._section(("checks",)):
            path = ("checks", name)
            options: Table = {}
            values = self._table(path, CheckSpec, defaults, extra=options)
            self._positive(path, values, ("interval", "timeout", "fall", "rise"))
            service = values.get("service")
            if service is not None and service not in self._section(("services",)):
                known = ", ".join(services) or "none declared"
                self.error((*path, "service"), f"no service named {service!r} (known: {known})")
            check = self._instantiate(plugins, path, values, options)
            if check is not None:
                self._bounded(path, check, values)
                self._series(path, check, values, inherited)
            if check is not None and not self._has_errors_under(path):
                checks[name] = CheckSpec(name=name, check=check, **values)
        for series, somewhere in inherited.items():
            if not somewhere:
                self.error(("defaults", "baseline"), f"no check has a series {series!r} "
                                                     "(duration, or a metric of its type)")
        return checks

    def _series(self, path: tuple[str, ...], check: Check, values: Table,
                inherited: dict[str, bool]) -> None:
        """A baseline watches the run's duration and metrics the check type says it
        carries: one named in the check's own section that it does not is an error; one
        from [defaults] is watched where it is carried (``inherited`` notes where)."""
        declared = type(check).metrics
        own = "baseline" in self._section(path)
        watched = []
        for series in values["baseline"]:
            carried = series == "duration" or declared is None or any(
                fnmatch.fnmatchcase(series, pattern) for pattern in declared)
            if own and not carried:
                self.error((*path, "baseline"), f"no series {series!r} in a "
                           f"{values['type']} check (its series: "
                           f"{', '.join(('duration', *(declared or ())))})")
            elif not own:
                inherited[series] = inherited.get(series, False) or carried
            if carried:
                watched.append(series)
        values["baseline"] = watched

    def _bounded(self, path: tuple[str, ...], check: Check, values: Table) -> None:
        """A check that loads its service runs no more often than its type allows: at
        its interval, and at its fast interval (after a failure, during a heal)."""
        floor = type(check).min_interval
        if not floor or getattr(check.options, "allow_frequent", False):
            return
        for key in ("interval", "fast_interval"):
            every = values.get(key) or floor  # no fast_interval: the floor at least
            if every < floor:
                self.error((*path, key), f"{format_duration(every)} is more often than a "
                           f"{values.get('type')} check may run ({format_duration(floor)} "
                           "at least: it loads a real service); set allow_frequent = true "
                           "to run it more often")

    def _alerts(self, plugins: Plugins, checks: dict[str, CheckSpec]) -> dict[str, AlertSpec]:
        alerts = {}
        for name in self._section(("alerts",)):
            path = ("alerts", name)
            options: Table = {}
            values = self._table(path, AlertSpec, {}, extra=options)
            self._positive(path, values, ("max_open", "timeout"))
            self._alert_rules(path, values, checks)
            cls = plugins.alert_sinks.get(values.get("type", ""))
            if "type" in values and cls is None:
                self.error((*path, "type"), _unknown("alert sink type", values["type"],
                                                     plugins.alert_sinks, plugins))
            sink = (self._build(plugins, cls, path, options, values.get("timeout", 10.0))
                    if cls else None)
            if sink is not None and not self._has_errors_under(path):
                alerts[name] = AlertSpec(name=name, sink=sink, **values)
        return alerts

    def _alert_rules(self, path: tuple[str, ...], values: Table,
                     checks: dict[str, CheckSpec]) -> None:
        for event in values["on"]:
            if event not in ALERT_EVENTS:
                self.error((*path, "on"), f"unknown event {event!r} (known: "
                                          f"{', '.join(ALERT_EVENTS)})")
        if values["min_status"] not in ALERT_STATUSES:
            self.error((*path, "min_status"), f"must be UNKNOWN or CRIT, got "
                       f"{values['min_status']!r} (a WARN result passes: it never makes a "
                       "check FAILING)")
        services = self._section(("services",))
        for service in values["services"]:
            if service not in services:
                self.error((*path, "services"), f"no service named {service!r} (known: "
                                                f"{', '.join(services) or 'none declared'})")
        probe = AlertSpec(type="", checks=values["checks"], services=values["services"])
        if checks and not any(probe.matches(n, c.service) for n, c in checks.items()):
            self.error((*path, "checks"), "matches no configured check (checks: "
                                          f"{', '.join(sorted(checks))})")

    def _remediation(self) -> RemediationSpec:
        path = ("remediation",)
        values = self._table(path, RemediationSpec, {})
        target = self.base / os.path.expanduser(values.get("path", ""))
        if target.suffix.lower() != ".md":
            self.error((*path, "path"), "remediation writes into a Markdown backlog: a .md "
                                        f"file, got {target.name!r}")
        values["path"] = str(target)
        for item in values["when"]:
            kind, _, after = item.partition(":")
            if kind == "failing" and after:
                try:
                    values["failing_for"] = parse_duration(after)
                except ValueError as exc:
                    self.error((*path, "when"), f"{item!r}: {exc}")
            elif item not in ("gave_up", "crit"):
                self.error((*path, "when"), f"unknown trigger {item!r} (known: gave_up, "
                                            "crit, failing:DURATION such as failing:1h)")
        return RemediationSpec(**values)

    def _schedule(self, name: str, services: dict[str, ServiceSpec]) -> ScheduleSpec | None:
        """A ``[maintenance.NAME]`` window that opens on a cron schedule."""
        path = ("maintenance", name)
        values = self._table(path, ScheduleSpec, {})
        self._positive(path, values, ("duration",))
        for service in values.get("services", []):
            if service not in services:
                self.error((*path, "services"), f"no service named {service!r}")
        # Every check the file declares, those with mistakes of their own too: a glob
        # that matches one of them is no mistake of this window's.
        declared = sorted(self._section(("checks",)))
        for glob in values.get("checks", []):
            if not any(fnmatch.fnmatchcase(check, glob) for check in declared):
                self.error((*path, "checks"), f"{glob!r} matches no check (checks: "
                                              f"{', '.join(declared) or 'none declared'})")
        if not values.get("services") and not values.get("checks"):
            self.error(path, "name what it covers: services = [...] or checks = [...]")
        zone = "UTC"
        try:
            zone = time_zone(values.get("timezone", "UTC"))
        except ValueError as exc:
            self.error((*path, "timezone"), str(exc))
        try:
            values["trigger"] = cron(values.get("schedule", ""), zone)
        except ValueError as exc:
            self.error((*path, "schedule"), str(exc))
        else:
            gap = shortest_gap(values["trigger"])
            if gap is not None and values.get("duration", 0) >= gap:
                # Each window would open before the last one ended: one long window with
                # no end anyone could read.
                self.error((*path, "duration"),
                           f"{format_duration(values['duration'])} is as long as the "
                           f"{format_duration(gap)} between this schedule's starts, or "
                           "longer: its windows would overlap")
        return None if self._has_errors_under(path) else ScheduleSpec(name=name, **values)

    def _slo(self, name: str, checks: dict[str, CheckSpec],
             keep: Retention | None) -> SloSpec | None:
        from vigil._config import slos

        path = ("slos", name)
        values = self._table(path, SloSpec, {})
        for key, message in slos.problems(values, checks, keep.hourly if keep else None):
            self.error((*path, key), message)
        return None if self._has_errors_under(path) else SloSpec(name=name, **values)

    def _has_errors_under(self, path: tuple[str, ...]) -> bool:
        prefix = ".".join(path)
        return any(i.key == prefix or i.key.startswith(prefix + ".") for i in self.issues)

    def _instantiate(
        self, plugins: Plugins, path: tuple[str, ...], values: Table, raw: Table
    ) -> Check | None:
        type_name = values.get("type")
        if type_name is None:
            return None
        cls = plugins.check_types.get(type_name)
        if cls is None:
            self.error((*path, "type"),
                       _unknown("check type", type_name, plugins.check_types, plugins))
            return None
        return self._build(plugins, cls, path, raw, values["timeout"])

    def _build(self, plugins: Plugins, cls: type[_Plugged], path: tuple[str, ...], raw: Table,
               timeout: float) -> _Plugged | None:
        """A check or service manager from its section's own keys, its ``Options``
        validated first; every problem becomes an issue at the right key."""
        options: Any = raw
        blame = f" (plugin {plugins.owner(cls)!r})"
        if cls.Options is not None:
            options, errors = parse_options(cls.Options, raw, self.base)
            for key, message in errors:
                # A key's error is the config's; one for the whole section, the plugin's.
                self.error((*path, *key.split(".")) if key else path,
                           message if key else message + blame)
            if errors:
                return None
        try:
            return cls(path[-1], options, timeout=timeout)
        except ConfigError as exc:
            for key, message in exc.problems:
                self.error((*path, *key.split(".")) if key else path, message)
        except Exception as exc:
            self.error(path, f"{cls.__name__} failed to set up: {type(exc).__name__}: {exc}"
                       + blame)
        return None
