"""A private systemd, booted as PID 1 of new PID and mount namespaces, for the tests.

Outside /run the filesystem is the machine's own, so before booting we mask every unit
of sysinit.target that would change the shared machine (tmpfiles would wipe /tmp,
sysctl and binfmt reach into the kernel, sysusers edits /etc/passwd...), lay tmpfs over
the folders systemd writes (/run, /etc/systemd/system, the journal), and boot an empty
target that wants only journald's socket."""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

SYSTEMD = "/lib/systemd/systemd"
MASKED = [
    "cryptsetup.target", "integritysetup.target", "veritysetup.target",
    "dev-hugepages.mount", "dev-mqueue.mount", "sys-fs-fuse-connections.mount",
    "sys-kernel-config.mount", "sys-kernel-debug.mount", "sys-kernel-tracing.mount",
    "proc-sys-fs-binfmt_misc.automount", "kmod-static-nodes.service",
    "systemd-ask-password-console.path", "systemd-binfmt.service",
    "systemd-firstboot.service", "systemd-journal-flush.service",
    "systemd-machine-id-commit.service", "systemd-modules-load.service",
    "systemd-pcrphase-sysinit.service", "systemd-pcrphase.service",
    "systemd-random-seed.service", "systemd-repart.service", "systemd-sysctl.service",
    "systemd-sysusers.service", "systemd-tmpfiles-setup-dev.service",
    "systemd-tmpfiles-setup.service", "systemd-tmpfiles-clean.timer",
    "systemd-update-utmp.service", "systemd-remount-fs.service", "systemd-hwdb-update.service",
    "systemd-journal-catalog-update.service", "systemd-update-done.service",
    "ldconfig.service", "tmp.mount", "swap.target", "getty.target", "console-getty.service",
    "systemd-logind.service", "systemd-timesyncd.service",
]
TARGET = "vigil-test.target"

BOOT = """\
set -e
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=755 tmpfs /etc/systemd/system
[ -d /var/log/journal ] && mount -t tmpfs tmpfs /var/log/journal
mkdir -p /run/systemd/system
for unit in {masked}; do ln -s /dev/null "/run/systemd/system/$unit"; done
cat > /run/systemd/system/{target} <<'UNIT'
[Unit]
Description=vigil tests
Wants=systemd-journald.socket
UNIT
exec env container=vigil-test {systemd} --system --unit={target} --log-target=journal
"""


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends it SIGKILL when its parent dies."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def unit(exec_start: str, *service_lines: str) -> str:
    """A unit only vigil brings back (Restart=no), without a start limit, so that what a
    test sees is vigil's own budget; ``service_lines`` go into [Service] as they are."""
    return "\n".join(["[Unit]", "DefaultDependencies=no", "StartLimitIntervalSec=0",
                      "[Service]", *service_lines, f"ExecStart={exec_start}",
                      "Restart=no"]) + "\n"


class PrivateSystemd:
    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="vigil-systemd-"))
        self.unshare: subprocess.Popen[bytes] | None = None
        self.pid = 0

    def boot(self, timeout: float = 30) -> PrivateSystemd:
        for tool in ("unshare", "nsenter"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is missing: install the Debian package util-linux")
        if not os.path.exists(SYSTEMD):
            raise RuntimeError("systemd is missing: install the Debian package systemd")
        script = self.folder / "boot.sh"
        script.write_text(BOOT.format(masked=" ".join(MASKED), target=TARGET, systemd=SYSTEMD))
        self.console = (self.folder / "console.log").open("wb")
        # --kill-child and the death signal: a pytest killed outright (SIGKILL, a CI
        # timeout) takes its private systemd, and so its whole namespace, with it.
        self.unshare = subprocess.Popen(
            ["unshare", "--fork", "--kill-child", "--pid", "--mount", "--mount-proc",
             "--propagation", "private", "bash", str(script)],
            stdout=self.console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            children = psutil.Process(self.unshare.pid).children()
            if children and children[0].name() == "systemd":
                self.pid = children[0].pid
                state = self.run("systemctl", "is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return self
            if self.unshare.poll() is not None:
                break
            time.sleep(0.05)
        console = (self.folder / "console.log").read_text(errors="replace")[-2000:]
        self.poweroff()
        raise RuntimeError(f"private systemd did not boot; console:\n{console}")

    def prefix(self) -> list[str]:
        """The argv prefix that runs a command inside this systemd's namespaces."""
        return ["nsenter", "-t", str(self.pid), "-m", "-p", "--"]

    def run(self, *argv: str, check: bool = True, timeout: float = 30,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*self.prefix(), *argv], capture_output=True, text=True,
                              timeout=timeout, input=input)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {done.returncode}: "
                                 f"{done.stdout}{done.stderr}")
        return done

    def path(self, inside: str) -> Path:
        """A path inside the namespace (its /run, its /etc/systemd/system) as seen from here."""
        return Path(f"/proc/{self.pid}/root{inside}")

    def write_unit(self, name: str, body: str) -> None:
        self.path(f"/run/systemd/system/{name}").write_text(textwrap.dedent(body))
        self.run("systemctl", "daemon-reload")

    def main_pid(self, unit: str) -> int:
        out = self.run("systemctl", "show", "-p", "MainPID", "--value", unit).stdout
        return int(out.strip() or 0)

    def is_active(self, unit: str) -> str:
        return self.run("systemctl", "is-active", unit, check=False).stdout.strip()

    def poweroff(self) -> None:
        if self.unshare is None:
            return
        if self.unshare.poll() is None and self.pid:
            subprocess.run([*self.prefix(), "systemctl", "poweroff", "--no-block"],
                           capture_output=True, timeout=30)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.unshare.wait(20)
        if self.unshare.poll() is None:
            # Our own unshare process: its PID namespace dies with it.
            self.unshare.kill()
            self.unshare.wait()
        self.console.close()
        self.unshare = None
        shutil.rmtree(self.folder, ignore_errors=True)
