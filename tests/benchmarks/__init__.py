"""Benchmarks, outside the default test run (each is run as
``.venv/bin/python -m tests.benchmarks.NAME``). Three compare vigil with its anchor in
the same run, and exit before measuring when the anchor is missing: ``recovery`` and
``scale`` beside Monit, ``memory`` beside supervisord. The others give absolute figures
against a target of their own, with no anchor: ``history``, ``kills``, ``http``,
``statuspage``, ``events`` (beside a quiet vigil of its own), ``soak``, ``slo`` and
``baselines``; ``anomalies`` is a smoke test on data of its own making.

Each states its target before it measures (its docstring's paragraph that begins
"Target", printed first by :func:`announce`) and exits 1 when it misses any part of it
(:func:`verdict`), so that a figure is never read against a target chosen after it."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import free_port


def announce(doc: str | None) -> None:
    """Print the target, the docstring's paragraph that begins "Target", before
    anything is measured; a benchmark without one stops here."""
    paragraphs = [" ".join(part.split()) for part in (doc or "").split("\n\n")]
    stated = [part for part in paragraphs if part.startswith("Target")]
    if not stated:
        sys.exit("this benchmark states no target in its docstring")
    print(stated[0], flush=True)


def verdict(judged: list[tuple[bool, str]]) -> int:
    """Print each part of the target, with its figure, as met or MISSED; the exit
    status: 1 when any part was missed."""
    for met, what in judged:
        print(f"{'met' if met else 'MISSED'}: {what}")
    return 0 if judged and all(met for met, _ in judged) else 1


def anchor(program: str, package: str) -> str:
    """The path of an anchor program, or exit saying which Debian package has it."""
    path = shutil.which(program)
    if not path:
        sys.exit(f"{program} is not installed: apt-get install {package}")
    return path


def listener() -> socket.socket:
    """A loopback port that accepts connections and closes them: what TCP checks hit."""
    server = socket.create_server(("127.0.0.1", 0))
    server.listen(1024)

    def accept() -> None:
        while True:
            conn, _ = server.accept()
            conn.close()

    threading.Thread(target=accept, daemon=True).start()
    return server


@contextlib.contextmanager
def vigil_serving(checks: int, interval: str) -> Iterator[int]:
    """`vigil run` with ``checks`` TCP checks at ``interval`` against a listener, and its
    HTTP surface on a free port, which it yields; stopped with SIGTERM after."""
    target, port = listener(), free_port()
    sections = "".join(f'[checks.c{i:03}]\ntype = "tcp"\nport = {target.getsockname()[1]}\n'
                       f'interval = "{interval}"\n' for i in range(checks))
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "vigil.toml"
        config.write_text(f'[daemon]\nstate_dir = "{folder}/state"\nlog_file = "{folder}/log"\n'
                          f'http = "127.0.0.1:{port}"\n{sections}')
        vigil = subprocess.Popen([str(Path(sys.executable).with_name("vigil")), "run", "-c",
                                  str(config)], stdout=subprocess.DEVNULL)
        try:
            yield port
        finally:
            vigil.send_signal(signal.SIGTERM)
            vigil.wait(15)
