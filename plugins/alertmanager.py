"""Alert sink ``alertmanager``: push to Alertmanager's ``POST /api/v2/alerts``, as
Prometheus does. A firing alert is re-sent every ``resend`` (1m) with ``endsAt`` four
times that ahead, so that Alertmanager resolves it should vigil die; a resolution is
re-sent for five times that, in case one is lost. vigil's silences become Alertmanager
silences (``createdBy = "vigil"``, matching the check and this host), so a silenced
alert stays firing there, held back where Alertmanager holds back alerts."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime

from vigil import Alert, AlertSink, Duration, RegisterSink, Silence, hookimpl, http_request, iso

#: Who made a silence, for Alertmanager: vigil only touches its own.
CREATED_BY = "vigil"


@dataclass
class AlertmanagerOptions:
    #: Alertmanager's base URL: ``http://127.0.0.1:9093``.
    url: str
    #: How often a firing alert is sent again.
    resend: Duration = Duration(60.0)


def glob_regex(pattern: str) -> str:
    """A check glob as the (anchored) regular expression Alertmanager matches with."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


class Alertmanager(AlertSink):
    Options = AlertmanagerOptions
    options: AlertmanagerOptions

    def __init__(self, name: str, options: AlertmanagerOptions, timeout: float = 10.0) -> None:
        super().__init__(name, options, timeout)
        self.every = float(options.resend)
        self.resend_every = self.every
        self.resend_resolved_for = 5 * self.every
        self.api = options.url.rstrip("/") + "/api/v2"

    def send(self, alert: Alert) -> None:
        ends = alert.ends_at if alert.ends_at is not None else time.time() + 4 * self.every
        body = [{"labels": alert.labels(), "annotations": alert.annotations(),
                 "startsAt": iso(alert.starts_at), "endsAt": iso(ends)}]
        http_request("POST", self.api + "/alerts", body, timeout=self.timeout)

    def mirror_silences(self, silences: list[Silence], host: str) -> bool:
        wanted = {(glob_regex(s.pattern), s.until): s for s in silences}
        for found in json.loads(http_request("GET", self.api + "/silences",
                                             timeout=self.timeout)):
            matchers = {m["name"]: m["value"] for m in found.get("matchers", [])}
            if (found.get("createdBy") != CREATED_BY or matchers.get("host") != host
                    or found["status"]["state"] == "expired"):
                continue
            ends = datetime.fromisoformat(found["endsAt"]).timestamp()
            same = next((key for key in wanted if key[0] == matchers.get("check")
                         and abs(key[1] - ends) < 1), None)
            if same is not None:
                del wanted[same]  # already there
            else:
                http_request("DELETE", f"{self.api}/silence/{found['id']}",
                             timeout=self.timeout)
        for (regex, until), entry in wanted.items():
            http_request("POST", self.api + "/silences", {
                "matchers": [{"name": "check", "value": regex, "isRegex": True,
                              "isEqual": True},
                             {"name": "host", "value": host, "isRegex": False,
                              "isEqual": True}],
                "startsAt": iso(time.time()), "endsAt": iso(until), "createdBy": CREATED_BY,
                "comment": entry.reason or f"vigil silence {entry.pattern}"},
                timeout=self.timeout)
        return True


@hookimpl
def vigil_alert_sinks(register: RegisterSink) -> None:
    register("alertmanager", Alertmanager)
