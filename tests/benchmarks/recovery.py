"""Time from a service's death to its answering again, under a real (private) systemd.

    .venv/bin/python -m tests.benchmarks.recovery [--kills 10]

A unit with Restart=no (so only the watcher can bring it back) serves HTTP on a free
loopback port and writes its PID to a file. It is SIGKILLed --kills times; each time
the script measures how long until the port answers again: with vigil watching it
(interval 1s, fall 2: its unit watcher hears the death at once), then with Monit, its
anchor, twice. First as vigil is set up, a port test at the same settings (`set daemon
1`, `check host` with `if failed port ... for 2 cycles`); then as Monit is best used
for this, watching the process through its pidfile (`set daemon 1`, `check process ...
with pidfile`, `if does not exist then restart`), which needs one cycle, not two.
Without Debian's `monit` it stops before measuring anything. It prints the median and
p95 of each beside the bound interval x fall + the service's own start time, and
vigil's median against each Monit's. Not part of the test suite.

Target (README, Benchmarks): vigil's median at most 0.2x the better Monit's median
(Monit at its best); and within the bound interval x fall + the service's start time,
plus 0.5 s."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from tests.benchmarks import anchor, announce, verdict
from tests.helpers import answers, free_port
from tests.private_systemd import PrivateSystemd

UNIT = "bench-web.service"


def wait(predicate, timeout: float) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise TimeoutError("gave up waiting")
        time.sleep(0.005)
    return time.monotonic() - start


def start_time(systemd: PrivateSystemd, port: int, rounds: int = 5) -> float:
    times = []
    for _ in range(rounds):
        systemd.run("systemctl", "stop", UNIT)
        began = time.monotonic()
        systemd.run("systemctl", "start", UNIT)
        times.append(time.monotonic() - began + wait(lambda: answers(port), 10))
    return statistics.median(times)


def kills(systemd: PrivateSystemd, port: int, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        wait(lambda: answers(port), 30)
        time.sleep(1.5)  # let the watcher see it healthy again
        systemd.run("systemctl", "kill", "-s", "KILL", "--kill-whom=main", UNIT)
        began = time.monotonic()
        wait(lambda: not answers(port), 5)
        samples.append(time.monotonic() - began + wait(lambda: answers(port), 30))
    return samples


def report(name: str, samples: list[float], bound: float) -> float:
    """Print the samples' figures; their median."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    print(f"{name:<21} kills={len(samples)}  median={statistics.median(samples):.2f}s  "
          f"p95={p95:.2f}s  min={ordered[0]:.2f}s  max={ordered[-1]:.2f}s  "
          f"(bound {bound:.2f}s)", flush=True)
    return statistics.median(samples)


def watch(systemd: PrivateSystemd, argv: list[str], folder: Path, port: int,
          count: int) -> list[float]:
    log = (folder / f"{Path(argv[0]).name}.out").open("wb")
    proc = subprocess.Popen([*systemd.prefix(), *argv], stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(2)
        return kills(systemd, port, count)
    finally:
        # nsenter does not forward signals: signal the watcher itself, its child.
        for child in psutil.Process(proc.pid).children():
            child.send_signal(signal.SIGTERM)
        proc.wait(15)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args()
    announce(__doc__)
    monit = anchor("monit", "monit")
    folder = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    port = free_port()
    systemd = PrivateSystemd().boot()
    try:
        pidfile = folder / "web.pid"
        # The shell writes its own PID, which the server keeps through exec, for Monit's
        # pidfile (systemd makes "$$$$" the shell's "$$").
        serve = f"exec {sys.executable} -m http.server {port} --bind 127.0.0.1"
        systemd.write_unit(UNIT, f"""
            [Unit]
            DefaultDependencies=no
            StartLimitIntervalSec=0
            [Service]
            ExecStart=/bin/sh -c 'echo $$$$ > {pidfile}; {serve}'
            Restart=no
        """)
        own = start_time(systemd, port)
        bound = 1.0 * 2 + own
        print(f"service start time (systemctl start -> answering): {own:.3f}s")
        config = folder / "vigil.toml"
        config.write_text(f'[daemon]\nstate_dir = "{folder}/state"\n'
                          f'log_file = "{folder}/vigil.log"\n'
                          f'[services.web]\nmanager = "systemd"\nunit = "{UNIT}"\n'
                          'restarts = 1000\nbackoff = "0s"\n'
                          f'[checks.web]\ntype = "tcp"\nport = {port}\nservice = "web"\n'
                          'interval = "1s"\nfall = 2\nrise = 1\ntimeout = "1s"\n')
        vigil = str(Path(sys.executable).with_name("vigil"))
        vigil_median = report("vigil", watch(systemd, [vigil, "run", "-c", str(config)],
                                             folder, port, args.kills), bound)
        monit_settings = {
            "check host": f"check host web with address 127.0.0.1\n"
                          f"  if failed port {port} type tcp for 2 cycles then exec "
                          f'"/bin/systemctl start {UNIT}"\n'
                          "     repeat every 1 cycles\n",
            "check process": f"check process web with pidfile {pidfile}\n"
                             f'  start program = "/bin/systemctl start {UNIT}"\n'
                             "  if does not exist then restart\n",
        }
        monit_medians = {}
        for name, check in monit_settings.items():
            place = folder / name.replace(" ", "-")
            place.mkdir()
            rc = place / "monitrc"
            rc.write_text(f"set daemon 1\nset logfile {place}/monit.log\n"
                          f"set pidfile {place}/monit.pid\nset idfile {place}/monit.id\n"
                          f"set statefile {place}/monit.state\n{check}")
            os.chmod(rc, 0o600)
            monit_medians[name] = report(f"monit ({name})", watch(
                systemd, [monit, "-I", "-c", str(rc)], folder, port, args.kills), bound)
        for name, median in monit_medians.items():
            print(f"vigil/monit ({name}) median: {vigil_median / median:.2f}x")
        best = min(monit_medians, key=lambda name: monit_medians[name])
        ratio = vigil_median / monit_medians[best]
        judged = [
            (ratio <= 0.2, f"vigil/monit median against Monit at its best ({best}, "
                           f"{monit_medians[best]:.2f}s): {ratio:.2f}x (target <= 0.2x)"),
            (vigil_median <= bound + 0.5, f"vigil median {vigil_median:.2f}s (target <= "
                                          f"{bound + 0.5:.2f}s, the bound plus 0.5 s)"),
        ]
    finally:
        systemd.poweroff()
        shutil.rmtree(folder, ignore_errors=True)
    return verdict(judged)


if __name__ == "__main__":
    sys.exit(main())
