"""Service manager ``brew``: ``brew services start|restart|stop FORMULA``, how macOS
developers run PostgreSQL and Redis."""

from __future__ import annotations

import json
from dataclasses import dataclass

from vigil import Action, RegisterManager, ServiceManager, hookimpl


@dataclass
class BrewOptions:
    formula: str


class Brew(ServiceManager):
    Options = BrewOptions
    options: BrewOptions

    def start(self) -> Action:
        return self.run(["brew", "services", "start", self.options.formula])

    def restart(self) -> Action:
        return self.run(["brew", "services", "restart", self.options.formula])

    def stop(self) -> Action:
        return self.run(["brew", "services", "stop", self.options.formula])

    def is_running(self) -> bool | None:
        action = self.run(["brew", "services", "info", self.options.formula, "--json"],
                          timeout=20)
        try:
            return bool(json.loads(action.output)[0]["running"])
        except (ValueError, LookupError, TypeError):
            return None

    def describe(self) -> str:
        return f"brew formula {self.options.formula}"


@hookimpl
def vigil_service_managers(register: RegisterManager) -> None:
    register("brew", Brew)
