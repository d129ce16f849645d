"""Alert sink ``webhook``: POST each alert as Alertmanager's webhook payload (version 4),
so that receivers written for Alertmanager take vigil's alerts as they are."""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil import Alert, AlertSink, RegisterSink, hookimpl, http_post, iso

#: What Alertmanager writes for the end of an alert still firing.
NO_END = "0001-01-01T00:00:00Z"


@dataclass
class WebhookOptions:
    url: str
    #: Sent with each request: ``{Authorization = "Bearer ..."}``.
    headers: dict[str, str] = field(default_factory=dict, repr=False)


class Webhook(AlertSink):
    Options = WebhookOptions
    options: WebhookOptions

    def send(self, alert: Alert) -> None:
        labels, annotations = alert.labels(), alert.annotations()
        http_post(self.options.url, {
            "version": "4", "groupKey": f"{{}}:{{check=\"{alert.check}\"}}",
            "truncatedAlerts": 0, "status": alert.status, "receiver": self.name,
            "groupLabels": {"check": alert.check}, "commonLabels": labels,
            "commonAnnotations": annotations, "externalURL": "",
            "alerts": [{"status": alert.status, "labels": labels, "annotations": annotations,
                        "startsAt": iso(alert.starts_at),
                        "endsAt": iso(alert.ends_at) if alert.ends_at is not None else NO_END,
                        "generatorURL": "", "fingerprint": alert.fingerprint()}],
        }, headers=self.options.headers, timeout=self.timeout)


@hookimpl
def vigil_alert_sinks(register: RegisterSink) -> None:
    register("webhook", Webhook)
