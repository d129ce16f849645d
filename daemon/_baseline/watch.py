"""The daemon's baselines: each watched series of a check (``baseline`` on it) is the
mean of its passing runs over each ``[daemon] baseline_window``, scored by its detector
when the window closes. A detector first learns the series' history from the state
database's rollups; an anomaly that begins or ends is logged (``check.anomaly``,
``check.anomaly_ended``), and with ``anomaly = "warn"`` a passing result says WARN once a
series has been anomalous for ``anomaly_for``. A series says nothing until its detector
has learnt ``WARMUP`` windows: how many it has is shown (``snapshot``) and kept in the
state database for ``vigil history --anomalies``. A series a passing run does not carry,
or whose window's mean is not above zero, is skipped and said once (``baseline.skipped``).
Windows close on the baselines' own thread (there is none without a baseline)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from vigil._api.check import Status
from vigil._baseline.detector import WARMUP, Detector, Score
from vigil._baseline.forecast import Trend
from vigil._config.sections import CheckSpec
from vigil._engine.runner import Outcome
from vigil._store import database, history
from vigil._store.store import Store

log = structlog.get_logger("vigil.baseline")

#: How far back a new detector learns from the rollups.
LEARN_FROM = 28 * 86400


@dataclass(slots=True)
class Series:
    """One watched series: its open window, its detector and its last verdict."""

    detector: Detector | None = None
    window: int = 0
    total: float = 0.0
    runs: int = 0
    #: A window a run moved past before the thread closed it: (window, total, runs).
    pending: tuple[int, float, int] | None = None
    last: Score | None = None
    value: float = 0.0
    #: Its current anomaly: the value it began with, and its highest-scored window.
    began: float = 0.0
    peak: Score | None = None
    #: When its current anomaly began (time.time()); None while it is usual.
    since: float | None = None
    #: With ``forecast``: the check type's threshold for it (from its last result), its
    #: trend, and in how many seconds it will pass the threshold (None: not within).
    threshold: float | None = None
    trend: Trend | None = None
    passes_in: float | None = None
    #: Said to be skipped (``baseline.skipped``): it is said once.
    skipped: bool = False


@dataclass(frozen=True)
class SeriesView:
    """What the page and /metrics show of a watched series: the windows its baseline has
    learnt, and its last verdict (None until a window was scored)."""

    windows: int
    last: Score | None
    #: The windows a baseline learns before it scores one.
    needed: int = WARMUP

    @property
    def learning(self) -> bool:
        return self.windows < self.needed


@dataclass
class Watched:
    spec: CheckSpec
    series: dict[str, Series] = field(default_factory=dict)


class Baselines:
    def __init__(self, state_dir: Path, store: Store | None = None) -> None:
        self.state_dir = state_dir
        #: Where anomalies are kept, for `vigil history --anomalies`.
        self.store = store
        self.window = 300.0
        self._checks: dict[str, Watched] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        #: The window whose end was last looked for: windows end once each.
        self._closed = 0
        #: A series was added that has no detector yet: the thread makes it at once (it
        #: reads the history), so that what it has learnt shows before a window closes.
        self._unlearnt = False

    def install(self, checks: dict[str, CheckSpec], window: float) -> None:
        """Adopt a config's checks; a series that stays keeps what it learnt."""
        with self._lock:
            if window != self.window:
                self._checks = {}
            self.window = window
            kept = {}
            for name, spec in checks.items():
                if not spec.baseline:
                    continue
                old = self._checks.get(name)
                kept[name] = Watched(spec, {s: old.series[s] if old and s in old.series
                                            else Series() for s in spec.baseline})
            self._checks = kept
            self._unlearnt = True
        self._publish()
        if kept and self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="baselines", daemon=True)
            self._thread.start()

    def observe(self, spec: CheckSpec, outcome: Outcome, now: float, held: bool) -> Outcome:
        """A run of a watched check (on its worker): a passing one counts into its
        windows; with ``anomaly = "warn"``, a passing result is WARN while a series has
        been anomalous long enough."""
        result = outcome.result
        missing: list[str] = []
        with self._lock:
            watched = self._checks.get(spec.name)
            if watched is None or held or not result.status.passing:
                return outcome
            window = int(now // self.window)
            for name, series in watched.series.items():
                value = outcome.duration_ms if name == "duration" else result.metrics.get(name)
                if not isinstance(value, int | float):
                    if not series.skipped:
                        series.skipped = True
                        missing.append(name)
                    continue
                if series.window != window:
                    if series.runs:  # not closed yet: the thread scores it, not this worker
                        series.pending = (series.window, series.total, series.runs)
                    series.window, series.total, series.runs = window, 0.0, 0
                series.total += value
                series.runs += 1
                series.threshold = result.thresholds.get(name, series.threshold)
            said = [f"{name} {_figure(s.value)}, usually {_figure(s.last.usual)}"
                    for name, s in watched.series.items() if spec.anomaly == "warn"
                    and s.since is not None and now - s.since >= spec.anomaly_for and s.last]
            coming = [f"{name} will pass {_figure(s.threshold or 0)} in about "
                      f"{_roughly(s.passes_in)}" for name, s in watched.series.items()
                      if s.passes_in is not None]
        for name in missing:
            log.warning("baseline.skipped", check=spec.name, series=name,
                        reason="not among the metrics of a passing run",
                        metrics=sorted(result.metrics))
        if not (said or coming) or result.status is not Status.OK:
            return outcome
        words = "; ".join(([f"anomalous: {'; '.join(said)}"] if said else []) + coming)
        return dataclasses.replace(outcome, result=dataclasses.replace(
            result, status=Status.WARN, summary=f"{result.summary} ({words})"))

    def forecasts(self) -> dict[str, dict[str, float]]:
        """In how many seconds each forecast series will pass its threshold, by check
        (only those that will, within their ``forecast``)."""
        with self._lock:
            return {name: found for name, w in self._checks.items()
                    if (found := {s: series.passes_in for s, series in w.series.items()
                                  if series.passes_in is not None})}

    def snapshot(self) -> dict[str, dict[str, SeriesView]]:
        """Each watched series' windows learnt and last verdict, by check, for /metrics
        and the page."""
        with self._lock:
            return {name: {s: SeriesView(_windows(series), series.last)
                           for s, series in w.series.items()}
                    for name, w in self._checks.items()}

    def _publish(self) -> None:
        """Hand the windows each series has learnt to the state database."""
        if self.store is not None:
            with self._lock:
                learnt = {name: {s: _windows(series) for s, series in w.series.items()}
                          for name, w in self._checks.items()}
            self.store.baselines(learnt)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.close()

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            self.close_windows(time.time())

    def close_windows(self, now: float) -> None:
        """Score every window that has ended (with a run in it). A new detector learns
        from the state database first, outside the lock: the checks' workers, which
        take it for every run, never wait for that read."""
        current = int(now // self.window)
        if self._unlearnt:
            self._learn_new(current)
        if current == self._closed:
            return
        ended: list[tuple[CheckSpec, str, Series, tuple[int, float, int]]] = []
        with self._lock:
            self._closed = current
            for watched in self._checks.values():
                for key, series in watched.series.items():
                    if series.pending is not None:
                        ended.append((watched.spec, key, series, series.pending))
                        series.pending = None
                    if series.runs and series.window < current:
                        ended.append((watched.spec, key, series,
                                      (series.window, series.total, series.runs)))
                        series.runs = 0
        for spec, key, series, window in ended:
            if series.detector is None:  # only this thread feeds detectors
                series.detector = self._learnt(spec.name, key, window[0] * self.window)
            with self._lock:
                self._close(spec, key, series, window, now)
        if ended:
            self._publish()

    def _learn_new(self, current: int) -> None:
        """Make the detectors of new series from the history before the current window
        (outside the lock, as in ``close_windows``)."""
        with self._lock:
            self._unlearnt = False
            new = [(w.spec.name, key, series) for w in self._checks.values()
                   for key, series in w.series.items() if series.detector is None]
        for check, key, series in new:
            series.detector = self._learnt(check, key, current * self.window)
        if new:
            self._publish()

    def _close(self, spec: CheckSpec, key: str, series: Series,
               window: tuple[int, float, int], now: float) -> None:
        """Score a window of the series (its runs' mean)."""
        number, total, runs = window
        assert series.detector is not None
        value = total / runs
        if value <= 0:  # a baseline compares ratios: log space has no zero
            if not series.skipped:
                series.skipped = True
                log.warning("baseline.skipped", check=spec.name, series=key,
                            reason="a window's mean is not above zero", value=value)
            return
        end = (number + 1) * self.window
        verdict = series.detector.feed(end, value)
        if verdict is not None:
            self._judge(spec, key, series, verdict, value, now)
        if spec.forecast:
            self._forecast(spec, series, end, value)

    def _forecast(self, spec: CheckSpec, series: Series, end: float, value: float) -> None:
        """Carry the series' trend forward: in how long it passes its threshold."""
        detector = series.detector
        assert detector is not None
        usual = detector.usual_log(end)
        if usual is None:
            return
        if series.trend is None:
            series.trend = Trend(int(spec.forecast_window / self.window))
        series.trend.add(end, math.log(max(value, 1e-9)) - usual)
        series.passes_in = None if series.threshold is None else series.trend.crossing(
            end, series.threshold, spec.forecast, self.window, detector.usual_log)

    def _judge(self, spec: CheckSpec, key: str, series: Series, verdict: Score,
               value: float, now: float) -> None:
        series.last, series.value = verdict, value
        fields = {"check": spec.name, "series": key, "value": round(value, 3),
                  "usual": round(verdict.usual, 3), "low": round(verdict.low, 3),
                  "high": round(verdict.high, 3), "score": verdict.score,
                  "season": verdict.season}
        if verdict.anomalous and series.since is None:
            series.since, series.began, series.peak = now, value, verdict
            log.warning("check.anomaly", level_set=spec.anomaly, **fields)
        elif not verdict.anomalous and series.since is not None:
            log.info("check.anomaly_ended", lasted_s=round(now - series.since, 1), **fields)
        if series.since is None:
            return
        if verdict.score > (series.peak.score if series.peak else 0):
            series.peak = verdict
        if self.store is not None and series.peak is not None:
            self.store.anomaly(spec.name, key, series.since,
                               None if verdict.anomalous else now, series.peak.score,
                               series.began, series.peak.usual)
        if not verdict.anomalous:
            series.since = series.peak = None

    def _learnt(self, check: str, series: str, before: float) -> Detector:
        """A detector that has learnt the series from the rollups before ``before``."""
        detector = Detector()
        try:
            if self._conn is None:
                self._conn = database.connect_readonly(self.state_dir)
            if self._conn is None:
                return detector
            check_id = history.check_id(self._conn, check)
            if check_id is None:
                return detector
            for end, value in _history(self._conn, check_id, series, before):
                detector.feed(end, value)
        except sqlite3.Error as exc:
            log.warning("baseline.unlearnt", check=check, series=series, error=str(exc))
        return detector


def _history(conn: sqlite3.Connection, check_id: int, series: str, before: float
             ) -> list[tuple[float, float]]:
    """(end, mean) of the series in each rolled-up bucket of the four weeks before
    ``before``: hourly buckets until the 5-minute ones begin, then those."""
    five, hour = history.STEPS
    since = before - LEARN_FROM
    fine = conn.execute("SELECT min(start) FROM rollups WHERE check_id = ? AND step = ? AND "
                        "start >= ?", (check_id, five, since)).fetchone()[0]
    fine = before if fine is None else fine
    rows = conn.execute(
        "SELECT start, step, dur_avg, metrics FROM rollups WHERE check_id = ? AND ("
        "(step = ? AND start >= ? AND start + step <= ?) OR "
        "(step = ? AND start >= ? AND start + step <= ?)) ORDER BY start",
        (check_id, hour, since, fine, five, fine, before))
    found = []
    for start, step, dur_avg, metrics in rows:
        value = dur_avg / 1000 if series == "duration" else (
            json.loads(metrics).get(series, [None, None])[1] if metrics else None)
        if isinstance(value, int | float) and value > 0:  # as a live window: above zero
            found.append((float(start + step), float(value)))
    return found


def _windows(series: Series) -> int:
    return series.detector.seen if series.detector is not None else 0


def _figure(value: float) -> str:
    """Three figures, as a person reads them: 0.42, 42.5, 425, and 1000 (not 1e+03)."""
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _roughly(seconds: float) -> str:
    """``6 h``, ``40 min``: how far off, as a person says it."""
    return f"{seconds / 3600:.0f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"
