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
        http_post(self.options.url, {"text": f"{icon}\n{quoted(alert.text())}"},
                  timeout=self.timeout)


def quoted(text: str) -> str:
    """A check's words as words, in a code block, where no chat parses a mention
    (``@channel``, ``<!here>``), a link or an image; escaped as Slack requires (``&``,
    ``<``, ``>``), and with no fence of their own to end the block."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "```\n" + text.replace("```", "`\u200b``") + "\n```"


@hookimpl
def vigil_alert_sinks(register: RegisterSink) -> None:
    register("slack", Slack)
