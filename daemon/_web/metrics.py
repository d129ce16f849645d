"""Prometheus metrics for ``/metrics``: a collector that reads one snapshot of the daemon
per scrape, so a removed check leaves no stale series. ``prometheus_client`` is imported
at the first scrape: a daemon nobody scrapes does not carry it."""

from __future__ import annotations

import importlib.metadata
import platform
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from vigil._alerts.alerter import SinkStats
from vigil._api.ladder import LATENCY_LADDER_MS
from vigil._baseline.detector import WARMUP
from vigil._store.records import CheckEntry, ServiceEntry, State

if TYPE_CHECKING:
    from vigil._baseline.watch import SeriesView
    from vigil._slo.objectives import Report

STATUS_CODES = {"OK": 0, "WARN": 1, "CRIT": 2, "UNKNOWN": 3}
#: What a run can come to besides a result: counted per check.
PROBLEMS = ("timeout", "error", "skipped", "missed")

#: A plugin metric's name, with Prometheus-style labels: role_requests{role="planner"}.
_METRIC = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse_metric(key: str) -> tuple[str, dict[str, str]] | None:
    """``role_requests{role="planner"}`` -> ("role_requests", {"role": "planner"});
    a plain name has no labels; None for what is neither."""
    match = _METRIC.match(key.strip())
    if match is None:
        return None
    name, inside = match.groups()
    labels: dict[str, str] = {}
    position = 0
    while inside and position < len(inside):
        label = _LABEL.match(inside, position)
        if label is None:
            return None
        labels[label[1]] = label[2].replace('\\"', '"').replace("\\\\", "\\")
        position = label.end()
    return name, labels


def version() -> str:
    try:
        return importlib.metadata.version("vigil-daemon")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class Collector:
    """The metrics of one snapshot of the checks, the services and the alert sinks, as
    the check table, the healer and the alerter describe them."""

    def __init__(self, checks: dict[str, CheckEntry], services: dict[str, ServiceEntry],
                 alerts: dict[str, SinkStats], slos: list[Report],
                 anomalies: dict[str, dict[str, SeriesView]],
                 forecasts: dict[str, dict[str, float]]) -> None:
        self.checks, self.services, self.alerts, self.slos = checks, services, alerts, slos
        self.anomalies, self.forecasts = anomalies, forecasts

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import InfoMetricFamily

        yield from self._checks()
        yield from self._services()
        yield from self._sinks()
        yield from self._slos()
        yield from self._anomalies()
        yield InfoMetricFamily("vigil_build", "vigil's version",
                               value={"version": version(),
                                      "python": platform.python_version()})

    def _checks(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

        up = GaugeMetricFamily("vigil_check_up", "1 when the check's last result passed "
                               "(OK or WARN), 0 when it failed or has not run yet",
                               labels=["check", "type", "service"])
        code = GaugeMetricFamily("vigil_check_status_code", "Nagios code of the last result: "
                                 "0 OK, 1 WARN, 2 CRIT, 3 UNKNOWN", labels=["check"])
        state = GaugeMetricFamily("vigil_check_state", "1 for the check's state, one of "
                                  f"{', '.join(State)} (rise and fall applied; MAINTENANCE "
                                  "while a maintenance window covers it)",
                                  labels=["check", "state"])
        duration = GaugeMetricFamily("vigil_check_duration_seconds", "How long the last run "
                                     "took", labels=["check"], unit="seconds")
        runs = CounterMetricFamily("vigil_check_runs", "Runs by the status of their result",
                                   labels=["check", "status"])
        worked_on = GaugeMetricFamily("vigil_check_maintenance", "1 while a maintenance "
                                      "window covers the check: not healed, not alerted",
                                      labels=["check"])
        problems = CounterMetricFamily("vigil_check_problems", "Runs that timed out or raised, "
                                       "and runs skipped or missed", labels=["check", "problem"])
        # One family for every check's own metrics: their label names differ.
        own = Metric("vigil_check_metric", "A check's own metric (its perfdata), named by "
                     "the metric label, with the labels the check gave it", "gauge")
        for name, entry in sorted(self.checks.items()):
            last = entry["last"]
            status = last["status"] if last else None
            up.add_metric([name, entry["type"], entry["service"] or ""],
                          1.0 if status in ("OK", "WARN") else 0.0)
            if last and status in STATUS_CODES:
                code.add_metric([name], STATUS_CODES[last["status"]])
                duration.add_metric([name], float(last["duration_ms"] or 0) / 1000)
            for kind in State:
                state.add_metric([name, kind], 1.0 if entry["state"] == kind else 0.0)
            worked_on.add_metric([name], 1.0 if entry["state"] == State.MAINTENANCE else 0.0)
            counts = entry["counts"]
            for each in STATUS_CODES:
                runs.add_metric([name, each], counts.get(f"status.{each}", 0))
            for each in PROBLEMS:
                problems.add_metric([name, each], counts.get(each, 0))
            for key, value in (last["metrics"] if last else {}).items():
                parsed = parse_metric(key)
                if parsed is None or not isinstance(value, int | float):
                    continue
                metric, labels = parsed
                labels = {f"metric_{k}" if k in ("check", "metric") else k: v
                          for k, v in labels.items()}
                own.add_sample("vigil_check_metric", {"check": name, "metric": metric, **labels},
                               float(value))
        yield from (up, code, state, worked_on, duration, runs, problems, own)

    def _services(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        heals = CounterMetricFamily("vigil_heals", "Heals by outcome", labels=["service",
                                                                                "outcome"])
        given_up = GaugeMetricFamily("vigil_service_given_up", "1 when the restart budget is "
                                     "spent and vigil no longer heals it", labels=["service"])
        healing = GaugeMetricFamily("vigil_service_healing", "1 while a heal runs",
                                    labels=["service"])
        for name, entry in sorted(self.services.items()):
            for outcome in ("succeeded", "failed"):
                heals.add_metric([name, outcome], entry["heals"].get(outcome, 0))
            given_up.add_metric([name], 1.0 if entry["given_up"] else 0.0)
            healing.add_metric([name], 1.0 if entry["healing"] else 0.0)
        yield from (heals, given_up, healing)


    def _sinks(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        opened = GaugeMetricFamily("vigil_alerts_open", "Firing alerts at each alert sink",
                                   labels=["sink"])
        up = GaugeMetricFamily("vigil_alert_sink_up", "0 when the last delivery to the sink "
                               "failed (vigil retries), else 1", labels=["sink"])
        deliveries = CounterMetricFamily("vigil_alert_deliveries", "Deliveries to each sink "
                                         "since the daemon started (or reloaded), by result",
                                         labels=["sink", "result"])
        for sink, figures in sorted(self.alerts.items()):
            opened.add_metric([sink], figures["open"])
            up.add_metric([sink], 1.0 if figures["up"] else 0.0)
            for result in ("sent", "failed"):
                deliveries.add_metric([sink, result], figures[result])
        yield from (opened, up, deliveries)


    def _slos(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        objective = GaugeMetricFamily("vigil_slo_objective", "The objective: the share of "
                                      "good runs (or events) its window must keep",
                                      labels=["slo"])
        sli = GaugeMetricFamily("vigil_slo_sli", "The share of good runs (or events) over "
                                "the objective's window", labels=["slo"])
        left = GaugeMetricFamily("vigil_slo_error_budget_remaining", "The share of the error "
                                 "budget left over the window (negative when overspent)",
                                 labels=["slo"])
        burn = GaugeMetricFamily("vigil_slo_burn_rate", "How fast the error budget burns over "
                                 "each window (1: exactly the budget over the objective's "
                                 "window)", labels=["slo", "window"])
        within = CounterMetricFamily("vigil_check_runs_within", "Runs that passed and "
                                     "took at most le seconds, for each latency objective's "
                                     "checks and threshold", labels=["check", "le"])
        pairs: set[tuple[str, int]] = set()
        for report in sorted(self.slos, key=lambda r: r.name):
            objective.add_metric([report.name], report.objective)
            if report.sli is not None:
                sli.add_metric([report.name], report.sli)
            left.add_metric([report.name], report.budget_remaining)
            for window, rate in report.burn_rate.items():
                burn.add_metric([report.name, window], rate)
            if report.kind == "latency" and report.threshold_ms is not None:
                pairs.update((check, report.threshold_ms) for check in report.checks)
        for check, threshold in sorted(pairs):
            if (entry := self.checks.get(check)) is not None:
                counts = entry["counts"]
                within.add_metric([check, f"{threshold / 1000:g}"], sum(
                    counts.get(f"duration.d{bound}", 0) for bound in LATENCY_LADDER_MS
                    if bound <= threshold))
        yield from (objective, sli, left, burn, within)


    def _anomalies(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        score = GaugeMetricFamily("vigil_check_anomaly_score", "How far the last window of "
                                  "a watched series lay from its usual value, in units of "
                                  "its noise", labels=["check", "series"])
        flagged = GaugeMetricFamily("vigil_check_anomalous", "1 while the series is "
                                    "anomalous", labels=["check", "series"])
        passes = GaugeMetricFamily("vigil_check_forecast_seconds", "In how long a watched "
                                   "series' trend will pass its threshold (only those that "
                                   "will, within their forecast)", labels=["check", "series"])
        windows = GaugeMetricFamily("vigil_check_baseline_windows", "The windows a watched "
                                    "series' baseline has learnt", labels=["check", "series"])
        learning = GaugeMetricFamily("vigil_check_baseline_learning", "1 while the baseline "
                                     f"has learnt fewer than {WARMUP} windows: the series "
                                     "has no anomaly score yet", labels=["check", "series"])
        for check, series in sorted(self.anomalies.items()):
            for name, view in sorted(series.items()):
                windows.add_metric([check, name], view.windows)
                learning.add_metric([check, name], 1.0 if view.learning else 0.0)
                if view.last is not None:
                    score.add_metric([check, name], view.last.score)
                    flagged.add_metric([check, name], 1.0 if view.last.anomalous else 0.0)
        for check, seconds in sorted(self.forecasts.items()):
            for name, value in sorted(seconds.items()):
                passes.add_metric([check, name], value)
        yield from (score, flagged, passes, windows, learning)


def render(checks: dict[str, CheckEntry], services: dict[str, ServiceEntry],
           alerts: dict[str, SinkStats], slos: list[Report],
           anomalies: dict[str, dict[str, SeriesView]], forecasts: dict[str, dict[str, float]],
           accept: str) -> tuple[str, bytes]:
    """(content type, body): OpenMetrics when the scraper asks for it, else Prometheus
    text."""
    from prometheus_client import CollectorRegistry
    from prometheus_client.exposition import choose_encoder

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector(checks, services, alerts, slos, anomalies, forecasts))
    encoder, content_type = choose_encoder(accept)
    return content_type, encoder(registry)
