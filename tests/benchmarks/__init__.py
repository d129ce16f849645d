"""Benchmarks, outside the default test run. Three compare vigil with its anchor in the
same run, and exit before measuring when the anchor is missing: ``recovery`` and
``scale`` beside Monit, ``memory`` beside supervisord. The others give absolute figures
against a target of their own, with no anchor: ``history``, ``kills``, ``http``,
``statuspage``, ``events`` (beside a quiet vigil of its own) and ``soak``."""

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
