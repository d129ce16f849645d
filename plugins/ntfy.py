"""Alert sink ``ntfy``: a push notification through an ntfy server's topic."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from vigil import Alert, AlertSink, RegisterSink, hookimpl, http_post


@dataclass
class NtfyOptions:
    #: The topic's URL: ``https://ntfy.sh/my-vigil``.
    url: str
    #: An access token, for a protected topic.
    token: str = field(default="", repr=False)


class Ntfy(AlertSink):
    Options = NtfyOptions
    options: NtfyOptions

    def send(self, alert: Alert) -> None:
        headers = {"Title": header(alert.title()),
                   "Priority": "default" if alert.resolved else "high",
                   "Tags": "white_check_mark" if alert.resolved else "rotating_light"}
        if self.options.token:
            headers["Authorization"] = f"Bearer {self.options.token}"
        http_post(self.options.url, alert.text().encode(), headers=headers,
                  timeout=self.timeout)


def header(text: str) -> str:
    """A header value ntfy reads as UTF-8 (RFC 2047 when not plain ASCII): a check named
    in any script, and no line break that would end the header."""
    if text.isascii() and text.isprintable():
        return text
    return f"=?UTF-8?B?{base64.b64encode(text.encode()).decode()}?="


@hookimpl
def vigil_alert_sinks(register: RegisterSink) -> None:
    register("ntfy", Ntfy)
