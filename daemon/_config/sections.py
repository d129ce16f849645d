"""The config's sections as dataclasses: each field a key, its default written once.
The validator (``validate``) builds them from the TOML."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from vigil._api.alert import AlertSink
from vigil._api.check import Check, Status
from vigil._api.manager import ServiceManager
from vigil._config.plugins import Plugins
from vigil._kit.durations import Duration
from vigil._kit.paths import default_state_dir
from vigil._store.history import Retention

PACKAGED = "<packaged defaults>"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_RESULTS = ("changes", "all")


#: Field metadata of what a section holds but no config key sets.
NOT_A_KEY = {"key": False}


@dataclass(kw_only=True)
class DaemonSettings:
    """``[daemon]``: each field is a key, its default written here once."""

    #: Where state lives; the platform's default folder when unset.
    state_dir: Path = field(default_factory=default_state_dir, metadata={"type": str})
    log_file: str = "-"
    log_level: str = "info"
    #: "changes": a passing result is logged (at info) only when its status changed;
    #: "all": every result.
    log_results: str = "changes"
    plugins: list[str] = field(default_factory=list)
    #: History in the state database: every result for ``history_keep_results``, then
    #: 5-minute rollups for ``history_keep_5m``, then hourly ones (and every state change
    #: and heal) for ``history_keep``.
    history: bool = True
    history_keep: Duration = Duration(30 * 86400)
    history_keep_5m: Duration = Duration(2 * 86400)
    history_keep_results: Duration = Duration(3600)
    #: How often the objectives (``[slos.NAME]``) are counted again.
    slo_interval: Duration = Duration(30)
    #: The windows a baseline scores (``baseline`` on a check): each one's mean.
    baseline_window: Duration = Duration(300)
    #: The HTTP surface (health, metrics, API): "host:port", "" for none.
    http: str = "127.0.0.1:8787"
    #: A bearer token for the API's actions (and, when set, for every endpoint but the
    #: probes); or the file holding it, read at start and at reload.
    http_token: str = field(default="", repr=False)
    http_token_file: str = ""
    #: With a token set, the status page (its data, stream, /health and the badges)
    #: stays open to anyone who reaches the address.
    public_status: bool = False
    #: Host names the HTTP surface answers to besides IP literals, localhost and the
    #: host of ``http`` (exact, or globs: "*.lan"); any other gets 421.
    allowed_hosts: list[str] = field(default_factory=list)
    #: Whether other sites' pages may show the badges (else only vigil's own page).
    cross_origin_badges: bool = False
    #: Whether the owner's group may read the state folder's files and the logs (0750
    #: and 0640); else only the user vigil runs as (0700, 0600).
    group_read: bool = False
    #: The config file these came from, or PACKAGED.
    source: str = field(default=PACKAGED, metadata=NOT_A_KEY)

    def http_address(self) -> tuple[str, int] | None:
        """(host, port) of the HTTP surface, None when it is off (validated at load)."""
        if not self.http:
            return None
        host, _, port = self.http.rpartition(":")
        return host.strip("[]"), int(port)

    def retention(self) -> Retention | None:
        """How long each tier of history is kept; None when history is off."""
        if not self.history:
            return None
        return Retention(self.history_keep_results, self.history_keep_5m, self.history_keep)


#: The shortest each tier may be kept: long enough for the next tier to be made from it.
HISTORY_MINIMUMS = {"history_keep_results": 900, "history_keep_5m": 7200,
                    "history_keep": 86400}


@dataclass(kw_only=True)
class Defaults:
    """``[defaults]``: what every check inherits unless it sets its own."""

    interval: Duration = Duration(30)
    timeout: Duration = Duration(10)
    fall: int = 3
    rise: int = 2
    #: Series whose usual values vigil learns, and whose anomalies it reports:
    #: "duration" (the run's) and names of the check's metrics.
    baseline: list[str] = field(default_factory=list)
    #: "info": an anomaly is shown, logged and exported; "warn": the check is also WARN
    #: while a series has been anomalous for ``anomaly_for`` (WARN never heals).
    anomaly: Literal["info", "warn"] = "info"
    anomaly_for: Duration = Duration(900)
    #: WARN when a watched series' trend will pass its threshold (the check type's) within
    #: this long; 0: no forecast. The trend is a line through ``forecast_window``.
    forecast: Duration = Duration(0)
    forecast_window: Duration = Duration(6 * 3600)


@dataclass(kw_only=True)
class CheckSpec(Defaults):
    """A ``[checks.NAME]`` section: the core's keys; the rest are the check type's."""

    type: str
    service: str | None = None
    enabled: bool = True
    #: Re-run interval while a failure is being confirmed or a heal awaits a pass;
    #: 0 is a quarter of ``interval``.
    fast_interval: Duration = Duration(0)
    #: Whether this check FAILING fails /readyz; unset: its check type says.
    readiness: bool | None = None
    name: str = field(default="", metadata=NOT_A_KEY)
    check: Check = field(default=None, metadata=NOT_A_KEY)  # type: ignore[assignment]

    #: The least time between the starts of two runs, whoever asks for them (its pace,
    #: SIGUSR1, `vigil wait`, the API): for a check that loads its service, its type's
    #: ``min_interval``, or with ``allow_frequent`` the quickest pace it is configured
    #: for; 0 for any other check.
    floor: float = field(default=0.0, init=False, metadata=NOT_A_KEY)

    def __post_init__(self) -> None:
        bounded = self.check is not None and type(self.check).min_interval > 0
        frequent = bounded and getattr(self.check.options, "allow_frequent", False)
        least = type(self.check).min_interval if bounded and not frequent else 0.0
        if not self.fast_interval:
            # A quarter of the interval, never sooner than its type lets it run.
            self.fast_interval = Duration(max(self.interval / 4, least))
        self.floor = min(self.interval, self.fast_interval) if frequent else least

    @property
    def gates_readiness(self) -> bool:
        return type(self.check).readiness if self.readiness is None else self.readiness


@dataclass(kw_only=True)
class ServiceSpec:
    """A ``[services.NAME]`` section: the core's keys; the rest are its manager's."""

    manager: str
    depends_on: list[str] = field(default_factory=list)
    start_timeout: Duration = Duration(30)
    restarts: int = 3
    within: Duration = Duration(600)
    #: The wait after a heal, doubled after each heal of a crash loop...
    backoff: Duration = Duration(5)
    #: ...which ends once a healed service has stayed healthy this long.
    backoff_reset: Duration = Duration(60)
    heal: bool = True
    #: Watch the service (systemd over D-Bus, a command's process by pidfd) and re-run
    #: its checks the moment it dies; false: its checks find out on their interval.
    watch: bool = True
    #: A service stopped on purpose (`systemctl stop`: its manager says so) is left
    #: stopped, under maintenance until it runs again; false: healed whatever the cause.
    respect_stops: bool = True
    #: Ports the service may be started on, preferred first (None: vigil picks none).
    ports: list[int] | None = field(default=None, metadata={"type": str | list[int] | None})
    name: str = field(default="", metadata=NOT_A_KEY)
    #: A new manager for this service, its options validated: the healer keeps the live
    #: one (with its PID and port) in the service's runtime, never in this spec.
    make_manager: Callable[[], ServiceManager] = field(default=None,  # type: ignore[assignment]
                                                       metadata=NOT_A_KEY)


#: What an ``[alerts.NAME]`` section's ``on`` may list: a check failing, a heal failing,
#: healing giving up (these open an alert), the check recovering (its resolution), a
#: remediation item written into the backlog, and an objective's error budget burning.
ALERT_EVENTS = ("failing", "heal_failed", "gave_up", "recovered", "remediation", "burn")
#: ``min_status`` from the mildest: WARN passes, so it never makes a check FAILING.
ALERT_STATUSES = ("UNKNOWN", "CRIT")


@dataclass(kw_only=True)
class AlertSpec:
    """An ``[alerts.NAME]`` section: the core's keys (which alerts go to this sink, and
    when); the rest are the sink type's."""

    type: str
    #: Globs of the checks whose alerts come here...
    checks: list[str] = field(default_factory=lambda: ["*"])
    #: ...and, when not empty, only those guarding one of these services.
    services: list[str] = field(default_factory=list)
    on: list[str] = field(default_factory=lambda: list(ALERT_EVENTS))
    #: A FAILING check that guards a service alerts only once healing did not help
    #: (the heal failed, gave up, or was skipped).
    after_heal: bool = True
    min_status: str = "UNKNOWN"
    #: Send a firing alert again this often while it lasts (wall-clock time); 0: once.
    repeat: Duration = Duration(0)
    send_resolved: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    timeout: Duration = Duration(10)
    #: Alerts open at once; past it new ones are dropped (and counted): a storm of a
    #: thousand messages tells nobody more than the first hundred.
    max_open: int = 100
    name: str = field(default="", metadata=NOT_A_KEY)
    sink: AlertSink = field(default=None, metadata=NOT_A_KEY)  # type: ignore[assignment]

    def matches(self, check: str, service: str | None) -> bool:
        return (any(fnmatch.fnmatchcase(check, pattern) for pattern in self.checks)
                and (not self.services or service in self.services))

    def opens_on(self, reason: str, status: str) -> bool:
        """Whether a FAILING check opens an alert here: ``failing`` in ``on`` takes
        every reason, the others only their own."""
        severe = Status[status] is Status.CRIT or self.min_status == "UNKNOWN"
        return severe and ("failing" in self.on or reason in self.on)

    @property
    def resolves(self) -> bool:
        return self.send_resolved and "recovered" in self.on


@dataclass(kw_only=True)
class RemediationSpec:
    """``[remediation]``: problems vigil writes into a Markdown backlog as items."""

    path: str = field(metadata={"type": str})
    #: "gave_up" (a service vigil gave up healing), "failing:DURATION" (a check FAILING
    #: that long), "crit" (a check CRIT with a result healing cannot fix).
    when: list[str] = field(default_factory=lambda: ["gave_up", "failing:1h", "crit"])
    id_prefix: str = "OPS-"
    checks: list[str] = field(default_factory=lambda: ["*"])
    #: From ``when``: how long a check must be FAILING (None: not a trigger).
    failing_for: float | None = field(default=None, metadata=NOT_A_KEY)

    def covers(self, check: str) -> bool:
        return any(fnmatch.fnmatchcase(check, pattern) for pattern in self.checks)


@dataclass(kw_only=True)
class ScheduleSpec:
    """A ``[maintenance.NAME]`` section: a maintenance window that opens on a schedule
    (the weekly backup, the nightly vacuum) and lasts ``duration``."""

    #: Five cron fields: minute hour day-of-month month day-of-week.
    schedule: str
    duration: Duration
    services: list[str] = field(default_factory=list)
    #: Globs of check names.
    checks: list[str] = field(default_factory=list)
    timezone: str = "UTC"
    reason: str = ""
    name: str = field(default="", metadata=NOT_A_KEY)
    #: The schedule, as APScheduler's CronTrigger.
    trigger: Any = field(default=None, metadata=NOT_A_KEY)

    def opened(self, now: float) -> float | None:
        """When the window open at ``now`` opened (time.time()); None when none is."""
        # A window open at ``now`` opened after ``now - duration`` (the end is not in it).
        start = datetime.fromtimestamp(now - self.duration + 0.001, UTC)
        fire = self.trigger.get_next_fire_time(None, start)
        return None if fire is None or fire.timestamp() > now else fire.timestamp()

    def next_start(self, now: float) -> float | None:
        """When the next window opens after ``now`` (time.time()); None when none will."""
        fire = self.trigger.get_next_fire_time(None, datetime.fromtimestamp(now, UTC)
                                               + timedelta(microseconds=1))
        return None if fire is None else float(fire.timestamp())


def time_zone(name: str) -> Any:
    """The time zone ``name``, as APScheduler takes it; ValueError saying what is wrong."""
    from apscheduler.util import astimezone

    try:
        return astimezone(name)
    except (ValueError, LookupError):  # a ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"unknown time zone {name!r} (an IANA name such as "
                         "\"Europe/Paris\", or \"UTC\")") from None


#: cron's weekdays, from 0 (7 too) for Sunday.
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron(schedule: str, zone: Any) -> Any:
    """An APScheduler trigger for five cron fields in ``zone`` (``time_zone``'s), read as
    cron reads them: weekday 0 or 7 is Sunday (APScheduler counts from Monday), and a
    day of the month and a weekday both given match either (cron's OR, where
    APScheduler would want both). ValueError saying what is wrong."""
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger

    fields = schedule.split()
    if len(fields) != 5:
        raise ValueError(f"expected five cron fields (minute hour day month weekday), "
                         f"got {schedule!r}")
    minute, hour, day, month, weekday = fields
    try:
        days = weekdays(weekday)

        def at(day: str, days: str) -> Any:
            return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                               day_of_week=days, timezone=zone)

        if day != "*" and days != "*":
            return OrTrigger([at(day, "*"), at("*", days)])
        return at(day, days)
    except ValueError as exc:
        raise ValueError(f"{schedule!r}: {exc}") from None


def weekdays(field: str) -> str:
    """cron's weekday field (numbers 0-7, names, ranges, lists, steps) as the days'
    names, which APScheduler reads without a numbering of its own."""
    if field == "*":
        return field
    days: set[int] = set()
    for part in field.split(","):
        body, slash, step = part.partition("/")
        if slash and not step.isdigit():
            raise ValueError(f"weekday step {step!r} is not a number")
        every = int(step) if slash else 1
        if body == "*":
            first, last = 0, 6
        elif "-" in body:
            first, last = (_weekday(word) for word in body.split("-", 1))
        else:
            first = _weekday(body)
            last = 7 if slash else first
        if last < first or every < 1:
            raise ValueError(f"weekday {part!r}: a range runs forward (0 or 7 is Sunday)")
        days.update(day % 7 for day in range(first, last + 1, every))
    return ",".join(WEEKDAYS[day] for day in sorted(days))


def _weekday(word: str) -> int:
    if word.isdigit() and int(word) <= 7:
        return int(word)
    if word[:3].lower() in WEEKDAYS and len(word) >= 3:
        return WEEKDAYS.index(word[:3].lower())
    raise ValueError(f"weekday {word!r}: 0-7 (0 and 7 are Sunday) or a name (sun..sat)")


@dataclass(kw_only=True)
class SloSpec:
    """A ``[slos.NAME]`` section: a service level objective over the checks' history,
    the share of good runs (or fast runs, or good events) a rolling window must keep."""

    #: "99.9%": the share of good runs (or events) the window must keep.
    objective: str | float
    #: Globs of the checks it covers; or ``check``, one check.
    checks: list[str] = field(default_factory=list)
    check: str = ""
    #: Rolling: the last this long.
    window: Duration = Duration(30 * 86400)
    #: availability: passing runs (OK or WARN); latency: runs at most ``threshold``;
    #: events: good events of an ``events`` check (under ``threshold`` when set).
    sli: Literal["availability", "latency", "events"] = "availability"
    #: occurrences: each run counts; timeslices: each minute of each check counts, good
    #: when every run in it passed.
    budgeting: Literal["occurrences", "timeslices"] = "occurrences"
    threshold: Duration | None = None
    #: events: only this group (the events check's ``group_by`` value).
    group: str | None = None
    description: str = ""
    name: str = field(default="", metadata=NOT_A_KEY)
    #: The objective as a fraction (0.999), and the checks covered (resolved at load).
    target: float = field(default=0.0, metadata=NOT_A_KEY)
    covers: list[str] = field(default_factory=list, metadata=NOT_A_KEY)
    #: The runs a second those checks make at their intervals: what a window holds when
    #: they ran all along (0: not known; every window then holds enough).
    runs_per_s: float = field(default=0.0, metadata=NOT_A_KEY)

    @property
    def budget(self) -> float:
        """The error budget: the share of the window that may be bad."""
        return 1.0 - self.target

    @property
    def threshold_ms(self) -> int | None:
        return None if self.threshold is None else round(self.threshold * 1000)


@dataclass
class Config:
    source: str
    daemon: DaemonSettings
    checks: dict[str, CheckSpec]
    services: dict[str, ServiceSpec]
    plugins: Plugins
    alerts: dict[str, AlertSpec] = field(default_factory=dict)
    remediation: RemediationSpec | None = None
    schedules: dict[str, ScheduleSpec] = field(default_factory=dict)
    slos: dict[str, SloSpec] = field(default_factory=dict)


def dependency_cycles(depends: dict[str, list[str]]) -> list[tuple[str, str]]:
    """Each service where a ``depends_on`` cycle closes, with the cycle: ``a -> b -> a``."""
    done: set[str] = set()
    found: list[tuple[str, str]] = []

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            found.append((name, " -> ".join([*trail[trail.index(name):], name])))
            return
        if name in done or name not in depends:
            return
        for dep in depends[name]:
            visit(dep, [*trail, name])
        done.add(name)

    for name in depends:
        visit(name, [])
    return found
