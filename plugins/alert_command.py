"""Alert sink ``command``: run a program for each alert, the alert as JSON on its stdin
and as ``VIGIL_ALERT_*`` variables (argv, never a shell; killed at ``timeout``)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from vigil import Alert, AlertSink, ConfigError, RegisterSink, SinkError, hookimpl, run_command


@dataclass
class CommandOptions:
    command: list[str]

    def __post_init__(self) -> None:
        if not self.command:
            raise ConfigError("command", 'must name a program: ["/usr/local/bin/page-me"]')


class AlertCommand(AlertSink):
    Options = CommandOptions
    options: CommandOptions

    def send(self, alert: Alert) -> None:
        try:
            done = run_command(self.options.command, self.timeout, max_output=2000,
                               env={**os.environ, **alert.env()}, keep_tail=True,
                               stdin=json.dumps(alert.to_dict()).encode())
        except OSError as exc:
            program = self.options.command[0]
            raise SinkError(f"cannot run {program}: {exc.strerror or exc}") from None
        if done.timed_out:
            raise SinkError(f"still running after {self.timeout:g}s: killed")
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip()[-300:]
            raise SinkError(f"exit code {done.returncode}: {output}")


@hookimpl
def vigil_alert_sinks(register: RegisterSink) -> None:
    register("command", AlertCommand)
