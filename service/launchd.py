"""Service manager ``launchd`` (macOS), with the modern verbs only:
``kickstart``, ``bootstrap``, ``bootout`` and ``print``; never load/unload."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from vigil import Action, RegisterManager, ServiceManager, hookimpl, replace_file


@dataclass
class LaunchdOptions:
    label: str
    #: The job's plist, for ``bootstrap`` when the job is not loaded.
    plist: str | None = None
    #: The launchd domain; a LaunchAgent lives in the user's GUI domain.
    domain: str = "gui"
    #: With the service's `ports`: the job's environment variable that carries the port.
    port_variable: str = "PORT"


class Launchd(ServiceManager):
    Options = LaunchdOptions
    options: LaunchdOptions

    @property
    def domain(self) -> str:
        return "system" if self.options.domain == "system" else f"gui/{os.getuid()}"

    @property
    def target(self) -> str:
        return f"{self.domain}/{self.options.label}"

    def loaded(self) -> bool:
        return self.run(["launchctl", "print", self.target], timeout=10).ok

    def start(self) -> Action:
        if not self.loaded() and self.options.plist:
            boot = self.run(["launchctl", "bootstrap", self.domain, self.options.plist])
            if not boot.ok:
                return boot
        return self.run(["launchctl", "kickstart", self.target])

    def restart(self) -> Action:
        if not self.loaded():
            return self.start()
        # -k kills a running instance first: launchd's own restart.
        return self.run(["launchctl", "kickstart", "-k", self.target])

    def stop(self) -> Action:
        return self.run(["launchctl", "bootout", self.target])

    def is_running(self) -> bool | None:
        action = self.run(["launchctl", "print", self.target], timeout=10)
        if action.timed_out:
            return None
        return action.ok and re.search(r"^\s*state = running\s*$", action.output, re.M) is not None

    def port_problem(self) -> str | None:
        return None if self.options.plist else "set plist: vigil writes the port into it"

    def use_port(self, port: int) -> None:
        """Put the port in the job's EnvironmentVariables; the next bootstrap reads it."""
        import plistlib  # here, not above: its XML parser is ~0.3 MB a Linux daemon never uses

        path = Path(self.options.plist or "")
        job = plistlib.loads(path.read_bytes())
        job.setdefault("EnvironmentVariables", {})[self.options.port_variable] = str(port)
        replace_file(path, plistlib.dumps(job))  # launchd must never read half a plist

    def describe(self) -> str:
        return f"launchd job {self.target}"


@hookimpl
def vigil_service_managers(register: RegisterManager) -> None:
    register("launchd", Launchd)
