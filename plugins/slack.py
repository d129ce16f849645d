"""Alert sink ``slack``: a message through a Slack incoming webhook (Mattermost and
Rocket.Chat take the same)."""

from __future__ import annotations

from dataclasses import dataclass, field

from vigil import Alert, AlertSink, RegisterSink, hookimpl, http_post


@dataclass
class SlackOptions:
    #: The incoming webhook's URL; it is the secret, and never logged.
    url: str = field(repr=False)


class Slack(AlertSink):
    Options = SlackOptions
    options: SlackOptions

    def send(self, alert: Alert) -> None:
        icon = ":white_check_mark:" if alert.resolved else ":rotating_light:"
        http_post(self.options.url, {"text": f"{icon} {escape(alert.text())}"},
                  timeout=self.timeout)


def escape(text: str) -> str:
    """Slack's own escaping: a check's words stay words, never a ``<!channel>`` that
    notifies everyone nor a ``<https://...|link>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@hookimpl
def vigil_alert_sinks(register: RegisterSink) -> None:
    register("slack", Slack)
