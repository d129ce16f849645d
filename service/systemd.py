"""Service manager ``systemd``: ``systemctl [--user] start|restart|stop|is-active``."""

from __future__ import annotations

from dataclasses import dataclass

from daemon import hookimpl
from daemon.manager import Action, ServiceManager


@dataclass
class SystemdOptions:
    unit: str
    #: Talk to the user's manager (systemctl --user) instead of the system's.
    user: bool = False


class Systemd(ServiceManager):
    Options = SystemdOptions
    options: SystemdOptions

    def systemctl(self, *args: str) -> list[str]:
        return ["systemctl", *(["--user"] if self.options.user else []), *args]

    def start(self) -> Action:
        return self.run(self.systemctl("start", self.options.unit))

    def stop(self) -> Action:
        return self.run(self.systemctl("stop", self.options.unit))

    def restart(self) -> Action:
        return self.run(self.systemctl("restart", self.options.unit))

    def is_running(self) -> bool | None:
        action = self.run(self.systemctl("is-active", self.options.unit), timeout=10)
        if action.timed_out or action.returncode is None:
            return None
        # is-active prints "activating" for a unit that is starting: not running yet.
        return action.output.strip() == "active"

    def details(self) -> dict[str, str]:
        """The unit's state as systemctl show reports it, for the heal event."""
        action = self.run(self.systemctl(
            "show", "-p", "ActiveState,SubState,MainPID,NRestarts,Result", self.options.unit),
            timeout=10)
        return dict(line.split("=", 1) for line in action.output.splitlines() if "=" in line)

    def describe(self) -> str:
        return f"systemd {'user ' if self.options.user else ''}unit {self.options.unit}"


@hookimpl
def vigil_service_managers(register):
    register("systemd", Systemd)
