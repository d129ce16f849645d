"""Burn alerts: while an objective's error budget burns past a condition of the SRE
workbook's table, ``VigilErrorBudgetBurn`` fires at each sink that takes burns (``on``
lists ``"burn"``, and its ``checks`` match a check the objective covers), one alert per
severity (``page``, ``ticket``), as Sloth makes them. It resolves when no condition of its
severity fires: the short window fell back. None opens while every check the objective
covers is under maintenance (no alert while it is worked on)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from vigil._alerts.delivery import Sender
from vigil._alerts.outbox import Outbox, Row
from vigil._api.alert import Alert
from vigil._config.sections import AlertSpec
from vigil._kit.durations import format_duration

if TYPE_CHECKING:
    from vigil._slo.objectives import Report
    from vigil._slo.watch import SloWatch

log = structlog.get_logger("vigil.alerts")

#: The outbox names a burn alert ``slo:NAME:SEVERITY``.
KEY = "slo:"


class BurnAlerts:
    def __init__(self, outbox: Outbox, host: str) -> None:
        self.outbox = outbox
        self.host = host
        #: The daemon's objectives; None until the agent hands them over.
        self.watch: SloWatch | None = None
        #: The firing burn alerts, by (sink, outbox key).
        self.open: dict[tuple[str, str], Alert] = {}

    def reconcile(self, rows: list[Row], specs: dict[str, AlertSpec]) -> None:
        """Take the firing burn alerts the outbox kept across a restart."""
        self.open = {(row.sink, row.check): row.alert for row in rows
                     if row.check.startswith(KEY) and row.sink in specs
                     and row.status == "firing"}

    def decide(self, specs: dict[str, AlertSpec], senders: dict[str, Sender],
               now: float, drop: Callable[[AlertSpec, float], None],
               maintained: Callable[[str], bool]) -> None:
        """Open and resolve burn alerts as the objectives' last reports say;
        ``maintained(check)``: whether a check is under maintenance."""
        reports = self.watch.reports if self.watch is not None else {}
        wanted: dict[tuple[str, str], tuple[AlertSpec, Report, str]] = {}
        for report in reports.values():
            for severity in sorted({c.severity for c in report.firing}):
                for spec in specs.values():
                    if "burn" in spec.on and any(spec.matches(c, None) for c in report.checks):
                        wanted[(spec.name, f"{KEY}{report.name}:{severity}")] = (
                            spec, report, severity)
        for (sink, key), alert in list(self.open.items()):
            if (sink, key) not in wanted or sink not in specs:
                self._resolve(specs.get(sink), sink, key, alert, now, senders)
        for (sink, key), (spec, report, severity) in wanted.items():
            if (sink, key) in self.open or all(map(maintained, report.checks)):
                continue
            if sum(k[0] == sink for k in self.open) >= spec.max_open:
                drop(spec, now)
                continue
            alert = Alert(check=report.name, status="firing", reason="burn",
                          severity=severity, summary=_summary(report, severity),
                          host=self.host, starts_at=now, opened_at=now,
                          extra_labels=dict(spec.labels),
                          notes=_notes(report))
            self.outbox.open(sink, alert, key)
            self.open[(sink, key)] = alert
            log.warning("alert.opened", sink=sink, check=report.name, reason="burn",
                        severity=severity)
            senders[sink].nudge()

    def _resolve(self, spec: AlertSpec | None, sink: str, key: str, alert: Alert, now: float,
                 senders: dict[str, Sender]) -> None:
        del self.open[(sink, key)]
        alert.status, alert.ends_at = "resolved", now
        if spec is not None and spec.send_resolved:
            self.outbox.resolve(sink, alert, now, key)
            senders[sink].nudge()
        else:
            self.outbox.forget(sink, key)
        log.info("alert.resolved", sink=sink, check=alert.check, reason="burn",
                 sends_resolution=spec is not None and spec.send_resolved,
                 lasted_s=round(alert.lasted(now), 1))


def _summary(report: Report, severity: str) -> str:
    fired = [c for c in report.firing if c.severity == severity]
    rates = ", ".join(f"{report.burn_rate[c.long]:.1f}x over {c.long} and "
                      f"{report.burn_rate[c.short]:.1f}x over {c.short} (over "
                      f"{c.factor(report.window):g}x)" for c in fired)
    return (f"{report.name} is burning its error budget ({report.objective * 100:g}% over "
            f"{format_duration(report.window)}): {rates}; budget {report.budget_left()}")


def _notes(report: Report) -> dict[str, str]:
    return {"budget_remaining": report.budget_left(),
            "burn_rates": ", ".join(f"{name} {rate:.2f}"
                                    for name, rate in report.burn_rate.items()),
            "checks": ", ".join(report.checks)}
