"""Check type ``events``: count and measure the events applications append to a file as
JSON lines (compliance incidents, DSPy signature validations): in a window, per group,
against thresholds, and against the window's own baseline."""

from __future__ import annotations

import collections
import json
import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from vigil import (
    Check,
    ConfigError,
    Duration,
    FileTail,
    RegisterCheck,
    Result,
    Status,
    above,
    format_duration,
    hookimpl,
    latency_slot,
    plural,
    worst,
)

TIME_FIELDS = ("ts", "time", "timestamp")
#: Latencies are kept as counts per bin, each 2% wider than the one before: a p95 read
#: from them is within 1% of the exact one, in bounded memory at any event rate.
BIN = math.log(1.02)
#: A spike needs at least this many failures in the window: one failure after a quiet
#: hour is not a trend.
SPIKE_MIN_FAILURES = 3


@dataclass
class EventsOptions:
    path: str
    time_field: str | None = None
    window: Duration = Duration(300)
    match: dict[str, Any] = field(default_factory=dict)
    group_by: str | None = None
    count_warn: int | None = None
    count_crit: int | None = None
    ok_field: str | None = None
    failure_rate_warn_pct: float | None = None
    failure_rate_crit_pct: float | None = None
    #: Groups with fewer events than this in the window are not judged on their rate.
    min_events: int = 1
    latency_field: str | None = None
    latency_p95_warn_ms: float | None = None
    latency_p95_crit_ms: float | None = None
    error_field: str | None = None
    spike_factor: float | None = None
    baseline: Duration = Duration(3600)
    #: WARN passes, so a spike alerts only as CRIT.
    spike_status: Literal["WARN", "CRIT"] = "WARN"
    #: False: a restart does not undo what these events record.
    healable: bool = False

    def __post_init__(self) -> None:
        rates = (self.failure_rate_warn_pct, self.failure_rate_crit_pct, self.spike_factor)
        if any(v is not None for v in rates) and not self.ok_field:
            raise ConfigError("ok_field", "is required for failure rates and spikes: the "
                                          "boolean field that says whether an event failed")
        latencies = (self.latency_p95_warn_ms, self.latency_p95_crit_ms)
        if any(v is not None for v in latencies) and not self.latency_field:
            raise ConfigError("latency_field", "is required for latency thresholds")


@dataclass
class Stats:
    events: int = 0
    failures: int = 0
    latency: collections.Counter[int] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, failed: bool, latency: float | None, error: str | None) -> None:
        self.events += 1
        self.failures += failed
        if latency is not None:
            self.latency[-1 if latency <= 0 else math.ceil(math.log(latency) / BIN)] += 1
        if error:
            self.errors[error[:200]] += 1

    def merge(self, other: Stats) -> None:
        self.events += other.events
        self.failures += other.failures
        self.latency.update(other.latency)
        self.errors.update(other.errors)

    @property
    def rate_pct(self) -> float:
        return 100.0 * self.failures / self.events if self.events else 0.0

    def percentile(self, q: float) -> float | None:
        total = sum(self.latency.values())
        if not total:
            return None
        seen = 0
        for index in sorted(self.latency):
            seen += self.latency[index]
            if seen >= q * total:
                return 0.0 if index < 0 else round(math.exp(index * BIN), 2)
        return None


class Events(Check):
    Options = EventsOptions
    options: EventsOptions
    #: What it finds is for people to act on: /readyz fails on it only with
    #: ``readiness = true``.
    readiness = False
    metrics = ("malformed_lines", "events*", "failures*", "failure_rate_pct*", "latency_p*_ms*")

    def __init__(self, name: str, options: Any, timeout: float = 10.0) -> None:
        super().__init__(name, options, timeout)
        self.tail = FileTail(options.path)
        self.step = max(1.0, options.window / 300)
        #: Per time step: the stats of all events, and of each group.
        self.buckets: dict[int, tuple[Stats, dict[str, Stats]]] = {}
        self.malformed = 0
        #: The events this run read, for the history (what an events objective counts):
        #: ``total``, ``good`` and good ones per latency slot (``good_d100``), each also
        #: per group (``total/GROUP``).
        self.counts: collections.Counter[str] = collections.Counter()

    def run(self) -> Result:
        if not self.tail.opened and not self.tail.path.exists():
            return Result(Status.UNKNOWN, f"no events file at {self.tail.path}",
                          healable=self.options.healable)
        now = time.time()
        first = not self.tail.opened
        for line in self.tail.read():
            self._take(line, now, first)
        horizon = int((now - self.options.window - self.options.baseline) // self.step)
        for key in [k for k in self.buckets if k < horizon]:
            del self.buckets[key]
        result = self._judge(now)
        result.counts, self.counts = dict(self.counts), collections.Counter()
        return result

    def close(self) -> None:
        self.tail.close()

    def _take(self, line: bytes, now: float, backfill: bool) -> None:
        if not line.strip():
            return
        try:
            event = json.loads(line)
            if not isinstance(event, dict):
                raise ValueError("not an object")
            at = self._time(event)
        except ValueError:
            self.malformed += 1
            return
        if at is None:
            if backfill:
                return  # written before vigil looked, at a time nobody recorded
            at = now
        opts = self.options
        if any(event.get(k) != v for k, v in opts.match.items()):
            return
        failed = bool(opts.ok_field) and event.get(opts.ok_field) is False
        latency = event.get(opts.latency_field) if opts.latency_field else None
        latency = float(latency) if isinstance(latency, int | float) else None
        error = str(event.get(opts.error_field) or "") if opts.error_field and failed else None
        overall, groups = self.buckets.setdefault(int(at // self.step), (Stats(), {}))
        overall.add(failed, latency, error)
        group = str(event.get(opts.group_by, "none")) if opts.group_by else None
        if group is not None:
            groups.setdefault(group, Stats()).add(failed, latency, error)
        if not backfill:  # what was there before vigil looked is no news of this run
            self._count(failed, latency, group)

    def _count(self, failed: bool, latency: float | None, group: str | None) -> None:
        kinds = ["total"]
        if not failed:
            kinds.append("good")
            if latency is not None:
                kinds.append(f"good_{latency_slot(latency)}")
        for kind in kinds:
            self.counts[kind] += 1
            if group is not None:
                self.counts[f"{kind}/{group}"] += 1

    def _time(self, event: dict[str, Any]) -> float | None:
        names = [self.options.time_field] if self.options.time_field else TIME_FIELDS
        for name in names:
            value = event.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value / 1000 if value > 1e11 else float(value)  # ms since the epoch
            if isinstance(value, str):
                return datetime.fromisoformat(value).timestamp()
        return None

    def _stats(self, start: float, end: float) -> tuple[Stats, dict[str, Stats]]:
        overall = Stats()
        groups: collections.defaultdict[str, Stats] = collections.defaultdict(Stats)
        for key, (bucket, by_group) in self.buckets.items():
            if start <= key * self.step < end:
                overall.merge(bucket)
                for name, stats in by_group.items():
                    groups[name].merge(stats)
        return overall, dict(groups)

    def _judge(self, now: float) -> Result:
        opts = self.options
        window, groups = self._stats(now - opts.window, now + self.step)
        span = format_duration(opts.window)
        statuses = [above(window.events, opts.count_warn, opts.count_crit)]
        summary = f"{plural(window.events, 'event')} in {span}"
        if statuses[0] is not Status.OK:
            limit = opts.count_crit if statuses[0] is Status.CRIT else opts.count_warn
            summary += f" ({statuses[0].name} from {limit:g})"
        problems: list[str] = []
        for label, stats in [("", window), *sorted(groups.items())]:
            statuses += self._slo(label, stats, problems)
        if opts.spike_factor and window.failures >= SPIKE_MIN_FAILURES:
            base, _ = self._stats(now - opts.window - opts.baseline, now - opts.window)
            if base.events and window.rate_pct >= opts.spike_factor * max(
                    base.rate_pct, 100.0 / base.events):
                statuses.append(Status[opts.spike_status])
                problems.append(f"failure spike: {window.rate_pct:.1f}% against "
                                f"{base.rate_pct:.1f}% over the {format_duration(opts.baseline)} "
                                "before")
        if opts.ok_field:
            summary += f", {window.failures:g} failed ({window.rate_pct:.1f}%)"
        if (p95 := window.percentile(0.95)) is not None:
            summary += f", p95 {_ms(p95)}"
        if problems:
            summary += ": " + "; ".join(problems)
        if common := window.errors.most_common(3):
            summary += "; most common errors: " + ", ".join(f"{e!r} x{n}" for e, n in common)
        return Result(worst(statuses), summary, metrics=self._metrics(window, groups),
                      details={"errors": dict(window.errors.most_common(10)),
                               "errors_by_group": {name: dict(stats.errors.most_common(3))
                                                   for name, stats in groups.items()
                                                   if stats.errors},
                               "malformed_lines": self.malformed,
                               "rotations": self.tail.rotations,
                               "truncations": self.tail.truncations},
                      healable=opts.healable)

    def _slo(self, group: str, stats: Stats, problems: list[str]) -> list[Status]:
        """The failure-rate and p95 verdicts of one group ("" for all events)."""
        opts = self.options
        # All events' figures are in the summary already: only their limit is news.
        who = f"{opts.group_by} {group} " if group else ""
        found = []
        if stats.events >= opts.min_events:
            rate = above(stats.rate_pct, opts.failure_rate_warn_pct, opts.failure_rate_crit_pct)
            if rate is not Status.OK:
                limit = (opts.failure_rate_crit_pct if rate is Status.CRIT
                         else opts.failure_rate_warn_pct)
                problems.append(f"{who}failure rate {stats.rate_pct:.1f}% (over {limit:g}%)")
            found.append(rate)
        p95 = stats.percentile(0.95)
        if p95 is not None:
            slow = above(p95, opts.latency_p95_warn_ms, opts.latency_p95_crit_ms)
            if slow is not Status.OK:
                limit = (opts.latency_p95_crit_ms if slow is Status.CRIT
                         else opts.latency_p95_warn_ms)
                problems.append(f"{who}p95 {_ms(p95)} (over {_ms(limit)})")
            found.append(slow)
        return found

    def _metrics(self, window: Stats, groups: dict[str, Stats]) -> dict[str, float]:
        metrics: dict[str, float] = {"malformed_lines": self.malformed}
        key = self.options.group_by
        for label, stats in [("", window), *sorted(groups.items())]:
            suffix = f'{{{key}="{_label(label)}"}}' if label else ""
            metrics[f"events{suffix}"] = stats.events
            if self.options.ok_field:
                metrics[f"failures{suffix}"] = stats.failures
                metrics[f"failure_rate_pct{suffix}"] = round(stats.rate_pct, 3)
            for q in (50, 95, 99):
                if (value := stats.percentile(q / 100)) is not None:
                    metrics[f"latency_p{q}_ms{suffix}"] = value
        return metrics


def _ms(value: float | None) -> str:
    return f"{value or 0:.0f} ms" if (value or 0) >= 100 else f"{value or 0:.1f} ms"


def _label(value: str) -> str:
    """A group's name as a label value: no quote or backslash to escape."""
    return "".join(c if c.isalnum() or c in "-_.:/ " else "_" for c in value)[:100]


@hookimpl
def vigil_check_types(register: RegisterCheck) -> None:
    register("events", Events)
