"""Alert sink ``alertmanager``: push to Alertmanager's ``POST /api/v2/alerts``, as
Prometheus does. A firing alert is re-sent every minute with ``endsAt`` four minutes
ahead (so that Alertmanager resolves it should vigil die); a resolution is re-sent for
five minutes, in case one is lost."""

from __future__ import annotations

import time
from dataclasses import dataclass

from vigil import Alert, AlertSink, hookimpl, http_post, iso

RESEND_EVERY = 60.0


@dataclass
class AlertmanagerOptions:
    #: Alertmanager's base URL: ``http://127.0.0.1:9093``.
    url: str


class Alertmanager(AlertSink):
    Options = AlertmanagerOptions
    options: AlertmanagerOptions
    resend_every = RESEND_EVERY
    resend_resolved_for = 300.0

    def send(self, alert: Alert) -> None:
        ends = alert.ends_at if alert.ends_at is not None else time.time() + 4 * RESEND_EVERY
        body = [{"labels": alert.labels(), "annotations": alert.annotations(),
                 "startsAt": iso(alert.starts_at), "endsAt": iso(ends)}]
        http_post(self.options.url.rstrip("/") + "/api/v2/alerts", body,
                  timeout=self.timeout)


@hookimpl
def vigil_alert_sinks(register):
    register("alertmanager", Alertmanager)
