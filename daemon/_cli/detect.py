"""What is running on this host, for ``vigil init --detect``: the plugins' own
``vigil_detect`` hooks do the looking; these helpers serve them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import structlog
import tomli_w

from vigil._config.plugins import Plugins

log = structlog.get_logger("vigil.detect")


@dataclass
class Found:
    name: str
    check: dict[str, Any]
    service: dict[str, Any] | None = None
    note: str = ""
    plugin: str = ""


@dataclass
class Findings:
    items: list[Found] = field(default_factory=list)

    def toml(self) -> str:
        """Config sections for everything found, each under a comment saying what it is."""
        chunks = []
        for found in self.items:
            text = f"# detected by {found.plugin}: {found.note}\n"
            if found.service is not None:
                found.check.setdefault("service", found.name)
                text += tomli_w.dumps({"services": {found.name: found.service}}) + "\n"
            text += tomli_w.dumps({"checks": {found.name: found.check}})
            chunks.append(text)
        return "\n".join(chunks)


def detect(plugins: Plugins) -> Findings:
    findings = Findings()
    names: set[str] = set()
    for impl in plugins.manager.hook.vigil_detect.get_hookimpls():

        def add(name: str, check: dict[str, Any], service: dict[str, Any] | None = None,
                note: str = "", plugin: str = impl.plugin_name) -> None:
            if name not in names:
                names.add(name)
                findings.items.append(Found(name, dict(check), service, note, plugin))

        try:
            impl.function(add=add)
        except Exception as exc:  # one plugin's detection never spoils the others'
            log.error("plugin.error", plugin=impl.plugin_name, hook="vigil_detect",
                      error=f"{type(exc).__name__}: {exc}")
    return findings
