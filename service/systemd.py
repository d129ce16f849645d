"""Service manager ``systemd``: ``systemctl [--user] start|restart|stop|is-active``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil import Action, RegisterManager, ServiceManager, hookimpl, replace_file, watch_unit


@dataclass
class SystemdOptions:
    unit: str
    #: Talk to the user's manager (systemctl --user) instead of the system's.
    user: bool = False
    #: With the service's `ports`: the file vigil writes the chosen port into, which
    #: the unit reads with EnvironmentFile=, and the variable it sets.
    env_file: str | None = None
    port_variable: str = "PORT"


class Systemd(ServiceManager):
    Options = SystemdOptions
    options: SystemdOptions
    #: A unit's result says whether it was stopped or died (``watch``).
    tells_stops = True

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
        """The unit's state as systemctl show reports it: why it failed, how often
        systemd itself restarted it."""
        action = self.run(self.systemctl(
            "show", "-p", "ActiveState,SubState,MainPID,NRestarts,Result", self.options.unit),
            timeout=10)
        return dict(line.split("=", 1) for line in action.output.splitlines() if "=" in line)

    def watch(self, exited: Callable[[dict[str, Any]], None]) -> bool:
        """Over systemd's private D-Bus socket: for root, or for the user's own manager.
        A unit that left the active state with the result ``success`` was stopped
        through systemd (`systemctl stop`, a stop job) or ended by itself, not killed nor
        failed (``signal``, ``exit-code``...): ``deliberate``."""

        def seen(fields: dict[str, Any]) -> None:
            exited({**fields, "deliberate": fields.get("result") == "success"})

        self.stop_watching = watch_unit(self.options.unit, self.options.user, seen)
        return self.stop_watching is not None

    def start_failed(self) -> dict[str, Any] | None:
        details = self.details()
        return {"service_state": details} if details.get("ActiveState") == "failed" else None

    def port_problem(self) -> str | None:
        if not self.options.env_file:
            return "set env_file, the file the unit reads with EnvironmentFile="
        return None

    def use_port(self, port: int) -> None:
        write_env_file(Path(self.options.env_file or ""), {self.options.port_variable: str(port)})

    def describe(self) -> str:
        return f"systemd {'user ' if self.options.user else ''}unit {self.options.unit}"


def write_env_file(path: Path, values: dict[str, str]) -> None:
    """Set these variables in a systemd environment file, keeping its other lines, so
    that the unit never reads half of it."""
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [line for line in lines if line.split("=", 1)[0].strip() not in values]
    text = "\n".join([*kept, *(f"{k}={v}" for k, v in values.items())]) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    replace_file(path, text.encode(), mode=0o600)  # it may hold other secrets


@hookimpl
def vigil_service_managers(register: RegisterManager) -> None:
    register("systemd", Systemd)
