"""Resident memory of ``vigil run`` on the default config.toml, beside supervisord
running one program, both idle, sampled over the same window.
Target (DESIGN.md, issue 11): vigil under supervisord.

    .venv/bin/python -m tests.benchmarks.memory [--seconds 20] [-c CONFIG]

supervisord comes from Debian's `supervisor` package (apt-get install supervisor)."""

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("-c", "--config", default=str(ROOT / "config.toml"))
    args = parser.parse_args()
    vigil = str(Path(sys.executable).with_name("vigil"))
    with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryFile() as log:
        procs = [subprocess.Popen([vigil, "run", "-c", args.config], stdout=log,
                                  stderr=subprocess.STDOUT, cwd=ROOT),
                 start_supervisord(Path(folder))]
        samples: dict[int, list[int]] = {p.pid: [] for p in procs}
        try:
            deadline = time.monotonic() + args.seconds
            while time.monotonic() < deadline and all(p.poll() is None for p in procs):
                for proc in procs:
                    samples[proc.pid].append(psutil.Process(proc.pid).memory_info().rss)
                time.sleep(0.5)
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                proc.wait(15)
    vigil_mb, super_mb = ([s / 1048576 for s in samples[p.pid]] for p in procs)
    if len(vigil_mb) < 2:
        print("vigil or supervisord exited at once; run them by hand to see why")
        return 1
    print(f"vigil run -c {args.config}: RSS at start {vigil_mb[0]:.1f} MB, after "
          f"{args.seconds:g}s {vigil_mb[-1]:.1f} MB, peak {max(vigil_mb):.1f} MB")
    print(f"supervisord with one program: {super_mb[-1]:.1f} MB, peak {max(super_mb):.1f} MB")
    print(f"vigil/supervisord peak: {max(vigil_mb) / max(super_mb):.2f}x (target < 1)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
