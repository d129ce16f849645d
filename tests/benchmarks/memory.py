"""Resident memory of ``vigil run`` on the default config.toml, beside supervisord
running one program, both idle, sampled over the same window.
Target (DESIGN.md, issue 11): vigil under supervisord.

    .venv/bin/python -m tests.benchmarks.memory [--seconds 20] [-c CONFIG] [--same-python]

supervisord comes from Debian's `supervisor` package (apt-get install supervisor).
``--same-python`` installs vigil into a throwaway venv on supervisord's own interpreter
(what the README's first line does on a fresh Debian), so that the two differ only in
the program: an interpreter built with a shared libpython alone adds about 1 MB."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from tests.benchmarks import anchor

ROOT = Path(__file__).resolve().parents[2]


def start_supervisord(folder: Path) -> subprocess.Popen[bytes]:
    supervisord = anchor("supervisord", "supervisor")
    conf = folder / "supervisord.conf"
    conf.write_text(
        f"[supervisord]\nnodaemon=true\nlogfile={folder}/supervisord.log\n"
        f"pidfile={folder}/supervisord.pid\n"
        f"[program:idle]\ncommand=/bin/sleep infinity\nstdout_logfile={folder}/idle.log\n")
    return subprocess.Popen([supervisord, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def vigil_on(interpreter: str, folder: Path) -> str:
    """vigil installed, as the README installs it, into a new venv on ``interpreter``."""
    venv = folder / "venv"
    subprocess.run([interpreter, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                    str(ROOT)], check=True, timeout=600)
    return str(venv / "bin" / "vigil")


def interpreter_of(program: str) -> str:
    with open(program, "rb") as script:
        return script.readline()[2:].decode().strip()


def breakdown(pid: int) -> dict[str, int]:
    """Resident kB per mapping: anonymous memory and heap together, each file by name."""
    usage: dict[str, int] = {}
    name = ""
    with open(f"/proc/{pid}/smaps") as smaps:
        for line in smaps:
            fields = line.split()
            if not fields[0].endswith(":"):
                name = fields[5] if len(fields) > 5 and not fields[5].startswith("[") else "anon"
            elif fields[0] == "Rss:":
                usage[name] = usage.get(name, 0) + int(fields[1])
    return usage


def describe(usage: dict[str, int]) -> str:
    files = sorted(((kb, Path(name).name) for name, kb in usage.items() if name != "anon"),
                   reverse=True)
    return (f"anonymous+heap {usage.get('anon', 0) / 1024:.1f} MB; files "
            + ", ".join(f"{name} {kb / 1024:.1f}" for kb, name in files[:5]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("-c", "--config", default=str(ROOT / "config.toml"))
    parser.add_argument("--same-python", action="store_true",
                        help="run vigil on supervisord's interpreter, from a throwaway venv")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile() as log:
        supervisord_python = interpreter_of(anchor("supervisord", "supervisor"))
        vigil = (vigil_on(supervisord_python, Path(folder)) if args.same_python
                 else str(Path(sys.executable).with_name("vigil")))
        vigil_python = interpreter_of(vigil)
        procs = [subprocess.Popen([vigil, "run", "-c", args.config], stdout=log,
                                  stderr=subprocess.STDOUT, cwd=ROOT),
                 start_supervisord(Path(folder))]
        samples: dict[int, list[int]] = {p.pid: [] for p in procs}
        usage = {}
        try:
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline and all(p.poll() is None for p in procs):
                for proc in procs:
                    samples[proc.pid].append(psutil.Process(proc.pid).memory_info().rss)
                time.sleep(0.5)
            usage = {p.pid: breakdown(p.pid) for p in procs if p.poll() is None}
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(15)
    vigil_mb, super_mb = ([s / 1048576 for s in samples[p.pid]] for p in procs)
    if len(vigil_mb) < 2:
        print("vigil or supervisord exited at once; run them by hand to see why")
        return 1
    print(f"vigil on {vigil_python}, supervisord on {supervisord_python}")
    print(f"vigil run -c {args.config}: RSS at start {vigil_mb[0]:.1f} MB, after "
          f"{args.seconds:g}s {vigil_mb[-1]:.1f} MB, peak {max(vigil_mb):.1f} MB")
    print(f"supervisord with one program: {super_mb[-1]:.1f} MB, peak {max(super_mb):.1f} MB")
    print(f"vigil/supervisord peak: {max(vigil_mb) / max(super_mb):.2f}x (bar 1.10x, aim < 1)")
    for label, proc in zip(("vigil", "supervisord"), procs, strict=True):
        print(f"  {label}: {describe(usage.get(proc.pid, {}))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
