"""``vigil init``: a starter config, and with ``--detect`` sections for what runs on
this host (the plugins' own ``vigil_detect`` hooks do the looking)."""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from vigil._agent import logs
from vigil._config import loader as config_mod
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
        import tomli_w  # only here: every other command, the daemon too, goes without

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


def cmd_init(args: argparse.Namespace) -> int:
    path = Path(args.path or args.config or "config.toml")
    if path.exists() and not args.force:
        print(f"vigil: {path} exists; pass --force to replace it (the old file is kept "
              f"as {_backup_name(path)})", file=sys.stderr)
        return 1
    if path.exists():
        backup = _backup_name(path)
        shutil.copy2(path, backup)
        print(f"kept the old {path} as {backup}")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = config_mod.packaged_text()
    if args.detect:
        logs.configure_command()
        findings = detect(Plugins())
        for found in findings.items:
            print(f"found {found.name}: {found.note}")
        if not findings.items:
            print("found nothing to configure beyond the system check")
        else:
            text += "\n" + findings.toml()
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}; check it with: vigil config validate -c {path}")
    return 0


def _backup_name(path: Path) -> Path:
    """FILE.bak, or the first free FILE.bak.N: an earlier backup is never overwritten."""
    candidate, n = path.with_name(f"{path.name}.bak"), 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.bak.{n}")
    return candidate
