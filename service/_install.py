"""Install vigil itself as a systemd unit or a macOS LaunchAgent."""

from __future__ import annotations

import getpass
import os
import plistlib
import string
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from vigil._kit import atomic, proc
from vigil.service.launchd import Launchd, LaunchdOptions
from vigil.service.systemd import Systemd, SystemdOptions

UNIT = "vigil.service"
LABEL = "dev.vigil.agent"

# Hardening a system unit can afford while vigil still reads /proc, disks and sockets,
# runs systemctl, and starts the programs of `command` services.
SYSTEM_HARDENING = """\
NoNewPrivileges=yes
ProtectSystem=full
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native"""
# A user manager cannot set up mount namespaces for its units.
USER_HARDENING = """\
NoNewPrivileges=yes
RestrictRealtime=yes
LockPersonality=yes"""


@dataclass
class Report:
    ok: bool
    lines: list[str]


def _run(argv: list[str]) -> proc.CommandResult:
    return proc.run_command(argv, timeout=60, keep_tail=True)


def _write_if_changed(path: Path, content: bytes) -> bool:
    """Atomically replace ``path``; False when it already held exactly this."""
    if path.exists() and path.read_bytes() == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.replace_file(path, content)
    return True


def _quote(arg: str) -> str:
    # systemd's ExecStart= splits on spaces unless quoted; % starts a specifier.
    arg = arg.replace("%", "%%")
    return f'"{arg}"' if any(c in arg for c in ' "\\') else arg


class SystemdInstaller:
    def __init__(self, user: bool, config: str, python: str = sys.executable,
                 watchdog: float = 30.0, unit_dir: Path | None = None) -> None:
        self.user = user
        self.config = config
        self.python = python
        self.watchdog = watchdog
        if unit_dir is None:
            base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
            unit_dir = Path(base) / "systemd" / "user" if user else Path("/etc/systemd/system")
        self.path = unit_dir / UNIT
        # vigil's own unit, seen through the systemd manager: the systemctl argv.
        self.unit = Systemd(UNIT, SystemdOptions(unit=UNIT, user=user))

    def render(self) -> str:
        template = string.Template(
            (resources.files("vigil.service") / UNIT).read_text(encoding="utf-8"))
        return template.substitute(
            python=_quote(self.python), config=_quote(self.config),
            watchdog=f"{self.watchdog:g}s", workdir=_quote(str(Path(self.config).parent)),
            hardening=USER_HARDENING if self.user else SYSTEM_HARDENING,
            wanted_by="default.target" if self.user else "multi-user.target",
        )

    def install(self) -> Report:
        lines = []
        changed = _write_if_changed(self.path, self.render().encode())
        lines.append(f"{'wrote' if changed else 'unchanged'} {self.path}")
        steps = [self.unit.systemctl("daemon-reload")] if changed else []
        steps.append(self.unit.systemctl("enable", UNIT))
        steps.append(self.unit.systemctl("restart" if changed else "start", UNIT))
        for argv in steps:
            done = _run(argv)
            if done.returncode != 0:
                lines.append(f"{' '.join(argv)} failed ({done.returncode}): "
                             f"{(done.stderr or done.stdout).strip()[-500:]}")
                return Report(False, lines)
        lines.append(f"vigil is {self.state()} under systemd ({'user' if self.user else 'system'})")
        if self.user and (hint := self.linger_hint()):
            lines.append(hint)
        return Report(True, lines)

    def linger_hint(self) -> str | None:
        user = getpass.getuser()
        done = _run(["loginctl", "show-user", user, "-p", "Linger", "--value"])
        if done.stdout.strip() == "no":
            return (f"note: lingering is off, so vigil stops when {user} logs out; "
                    f"keep it running with: loginctl enable-linger {user}")
        return None

    def uninstall(self) -> Report:
        lines = []
        if self.path.exists():
            _run(self.unit.systemctl("disable", "--now", UNIT))
            self.path.unlink()
            _run(self.unit.systemctl("daemon-reload"))
            lines.append(f"removed {self.path}")
        else:
            lines.append(f"not installed: no {self.path}")
        _run(self.unit.systemctl("reset-failed", UNIT))
        return Report(True, lines)

    def state(self) -> str:
        return _run(self.unit.systemctl("is-active", UNIT)).stdout.strip() or "unknown"

    def status(self) -> Report:
        if not self.path.exists():
            return Report(False, [f"not installed (no {self.path})"])
        enabled = _run(self.unit.systemctl("is-enabled", UNIT)).stdout.strip()
        state = self.state()
        return Report(state == "active", [f"installed: {self.path}", f"enabled: {enabled}",
                                          f"state: {state}"])


class LaunchdInstaller:
    """A LaunchAgent (or, with ``system``, a LaunchDaemon), loaded with the modern
    ``bootstrap``/``bootout`` verbs. Not run on a real Mac by the test suite: its tests
    check the exact launchctl argv and the plist (with plistutil)."""

    def __init__(self, user: bool, config: str, python: str = sys.executable,
                 home: Path | None = None) -> None:
        self.user = user
        self.config = config
        self.python = python
        home = home or Path.home()
        self.logs = self.log_dir(user, home)
        self.path = (home / "Library" / "LaunchAgents" if user
                     else Path("/Library/LaunchDaemons")) / f"{LABEL}.plist"
        # vigil's own job, seen through the launchd manager: its domain, target and state.
        self.job = Launchd(LABEL, LaunchdOptions(label=LABEL, plist=str(self.path),
                                                 domain="gui" if user else "system"))
        self.domain, self.target = self.job.domain, self.job.target

    @staticmethod
    def log_dir(user: bool, home: Path | None = None) -> Path:
        """Where launchd writes vigil's stdout and stderr (`vigil logs` reads it there)."""
        return (home or Path.home()) / "Library" / "Logs" / "vigil" if user else Path(
            "/Library/Logs/vigil")

    def render(self) -> bytes:
        return plistlib.dumps({
            "Label": LABEL,
            "ProgramArguments": [self.python, "-m", "vigil", "run", "-c", self.config],
            "WorkingDirectory": str(Path(self.config).parent),
            "EnvironmentVariables": {"PYTHONUNBUFFERED": "1"},
            "RunAtLoad": True,
            "KeepAlive": True,
            "ThrottleInterval": 10,
            "ProcessType": "Background",
            "StandardOutPath": str(self.logs / "vigil.log"),
            "StandardErrorPath": str(self.logs / "vigil.err.log"),
        })

    def install(self) -> Report:
        self.logs.mkdir(parents=True, exist_ok=True)
        changed = _write_if_changed(self.path, self.render())
        lines = [f"{'wrote' if changed else 'unchanged'} {self.path}"]
        if self.job.loaded():
            if not changed:
                lines.append(f"{LABEL} is loaded")
                return Report(True, lines)
            _run(["launchctl", "bootout", self.target])
        done = _run(["launchctl", "bootstrap", self.domain, str(self.path)])
        if done.returncode != 0:
            lines.append(f"launchctl bootstrap failed ({done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-500:]}")
            return Report(False, lines)
        lines.append(f"loaded {self.target}; logs in {self.logs}")
        return Report(True, lines)

    def uninstall(self) -> Report:
        lines = []
        if self.job.loaded():
            _run(["launchctl", "bootout", self.target])
            lines.append(f"unloaded {self.target}")
        if self.path.exists():
            self.path.unlink()
            lines.append(f"removed {self.path}")
        return Report(True, lines or [f"not installed: no {self.path}"])

    def status(self) -> Report:
        if not self.path.exists():
            return Report(False, [f"not installed (no {self.path})"])
        running = self.job.is_running() is True
        return Report(running, [f"installed: {self.path}",
                                f"state: {'running' if running else 'not running'}"])
