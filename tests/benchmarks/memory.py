"""Resident memory of ``vigil run`` on the shipped config.toml (its HTTP surface on),
beside supervisord running one program, in the same run, on the same interpreter
(Debian's python3, supervisord's own): vigil installed as the README installs it, into
a fresh venv. Once vigil answers, /metrics, /status and /api/v1/checks are each fetched
once, as a user's Prometheus and browser would, and both are sampled for --seconds
more. Then again with ``rich`` and ``greenlet`` installed into vigil's venv: structlog
imports them on its own import whenever they are installed, and the daemon never uses
them.

    .venv/bin/python -m tests.benchmarks.memory [--seconds 20] [-c CONFIG]

Target (README, Benchmarks): vigil's peak RSS, from its start through --seconds after
the scrapes, at most 1.00x supervisord's peak over the same time; at most 1.10x with
rich and greenlet installed beside vigil.

supervisord comes from Debian's `supervisor` package (apt-get install supervisor). The
two run on one interpreter so that they differ only in the program: an interpreter
built with a shared libpython alone adds about 1 MB."""

from __future__ import annotations

import argparse
import http.client
import signal
import subprocess
import tempfile
import time
import tomllib
from pathlib import Path

import psutil

from tests.benchmarks import anchor, announce, verdict
from tests.helpers import answers, free_port

ROOT = Path(__file__).resolve().parents[2]
#: What a user's Prometheus and browser fetch first.
SCRAPED = ("/metrics", "/status", "/api/v1/checks")
#: What structlog imports on its own import when it is installed.
EXTRAS = ("rich", "greenlet")


def start_supervisord(folder: Path) -> subprocess.Popen[bytes]:
    supervisord = anchor("supervisord", "supervisor")
    conf = folder / "supervisord.conf"
    conf.write_text(
        f"[supervisord]\nnodaemon=true\nlogfile={folder}/supervisord.log\n"
        f"pidfile={folder}/supervisord.pid\n"
        f"[program:idle]\ncommand=/bin/sleep infinity\nstdout_logfile={folder}/idle.log\n")
    return subprocess.Popen([supervisord, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def pip(venv: Path, *packages: str) -> None:
    subprocess.run([str(venv / "bin" / "pip"), "install", "-qq",
                    "--disable-pip-version-check", *packages], check=True, timeout=600)


def vigil_on(interpreter: str, folder: Path) -> Path:
    """A new venv on ``interpreter`` with vigil installed as the README installs it."""
    venv = folder / "venv"
    subprocess.run([interpreter, "-m", "venv", str(venv)], check=True, timeout=120)
    pip(venv, str(ROOT))
    return venv


def interpreter_of(program: str) -> str:
    with open(program, "rb") as script:
        return script.readline()[2:].decode().strip()


def serving(config: Path, folder: Path) -> tuple[Path, int]:
    """The config copied into ``folder`` (its state beside it), its HTTP address moved to
    a free port so that a busy 8787 cannot fail the run; the copy and the port."""
    text = config.read_text()
    address = tomllib.loads(text).get("daemon", {}).get("http", "")
    if not address:
        raise SystemExit(f"{config} has no [daemon] http: there is nothing to scrape")
    port = free_port()
    copy = folder / "config.toml"
    copy.write_text(text.replace(f'"{address}"', f'"127.0.0.1:{port}"', 1))
    return copy, port


def scrape(port: int) -> None:
    for path in SCRAPED:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", path)
        answer = conn.getresponse()
        answer.read()
        conn.close()
        if answer.status != 200:
            raise SystemExit(f"GET {path}: {answer.status}")


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


def measure(vigil: Path, config: Path, folder: Path, seconds: float) -> tuple[float, float]:
    """vigil and supervisord started together, vigil scraped once it answers: the peak
    RSS of each in MB, from the start through ``seconds`` after the scrapes."""
    folder.mkdir()
    config, port = serving(config, folder)
    with (folder / "vigil.out").open("wb") as log:
        procs = [subprocess.Popen([str(vigil), "run", "-c", str(config)], stdout=log,
                                  stderr=subprocess.STDOUT, cwd=folder),
                 start_supervisord(folder)]
    peaks = [0, 0]
    usage = []
    try:
        watched = [psutil.Process(p.pid) for p in procs]
        began, scraped = time.monotonic(), 0.0
        while not scraped or time.monotonic() < scraped + seconds:
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"vigil or supervisord exited at once: see {folder}")
            peaks = [max(peak, w.memory_info().rss) for peak, w in zip(peaks, watched,
                                                                       strict=True)]
            if not scraped and answers(port):
                scrape(port)
                scraped = time.monotonic()
            elif not scraped and time.monotonic() - began > 60:
                raise SystemExit(f"vigil did not answer on port {port} within 60 s")
            time.sleep(0.25)
        usage = [breakdown(p.pid) for p in procs]
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(15)
    vigil_mb, super_mb = (peak / 1048576 for peak in peaks)
    print(f"  vigil peak {vigil_mb:.1f} MB, supervisord peak {super_mb:.1f} MB: "
          f"{vigil_mb / super_mb:.2f}x")
    for label, held in zip(("vigil", "supervisord"), usage, strict=True):
        print(f"    {label}: {describe(held)}")
    return vigil_mb, super_mb


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("-c", "--config", default=str(ROOT / "config.toml"))
    args = parser.parse_args()
    announce(__doc__)
    config = Path(args.config).resolve()
    with tempfile.TemporaryDirectory(prefix="vigil-memory-") as name:
        folder = Path(name)
        python = interpreter_of(anchor("supervisord", "supervisor"))
        venv = vigil_on(python, folder)
        vigil = venv / "bin" / "vigil"
        print(f"vigil and supervisord on {python}; vigil run -c {config}, scraped once at "
              f"{', '.join(SCRAPED)}, then {args.seconds:g} s")
        print("vigil as the README installs it:")
        plain = measure(vigil, config, folder / "plain", args.seconds)
        pip(venv, *EXTRAS)
        print(f"vigil with {' and '.join(EXTRAS)} installed beside it:")
        extras = measure(vigil, config, folder / "extras", args.seconds)
    return verdict([
        (plain[0] <= plain[1], f"vigil/supervisord peak RSS {plain[0] / plain[1]:.2f}x "
                               f"({plain[0]:.1f} MB against {plain[1]:.1f} MB; "
                               "target <= 1.00x)"),
        (extras[0] <= 1.10 * extras[1],
         f"with {' and '.join(EXTRAS)} installed: {extras[0] / extras[1]:.2f}x "
         f"({extras[0]:.1f} MB against {extras[1]:.1f} MB; target <= 1.10x)"),
    ])


if __name__ == "__main__":
    raise SystemExit(main())
