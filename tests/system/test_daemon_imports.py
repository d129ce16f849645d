"""What the running daemon imports, once its HTTP surface has served /metrics, the status
page and the API: not the packages structlog would bring whenever they are installed
(rich, greenlet), which vigil never uses, and not the objectives' modules when there
are no objectives (tests/benchmarks/memory.py measures what such modules cost)."""

from __future__ import annotations

import importlib.util
import re
import sys

import pytest

from tests.helpers import Daemon, call, free_port, with_daemon_keys

#: Installed in the test environment (import-linter brings rich, Playwright greenlet).
UNUSED = ("rich", "greenlet")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The modules a daemon with no objectives loaded (as ``python -v`` reports them: an
    import that failed is not one) by the time it had served each page once."""
    folder = tmp_path_factory.mktemp("imports")
    port = free_port()
    config = folder / "config.toml"
    config.write_text(with_daemon_keys(
        '[checks.ticks]\ntype = "exec"\ncommand = ["true"]\ninterval = "1s"\n',
        state_dir=f'"{folder}/state"', http=f'"127.0.0.1:{port}"', log_results='"all"'))
    # The daemon's stderr gets every import as it happens: a daemon made here, since those
    # lines are not the JSON that the daemon fixture holds a daemon's output to.
    daemon = Daemon(config, folder / "daemon.log",
                    command=[sys.executable, "-v", "-m", "vigil"])
    try:
        daemon.start()
        for path in ("/metrics", "/status", "/api/v1/checks"):
            assert call(port, path)[0] == 200, path
        daemon.wait_for("check.result", count=2, check="ticks")
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    modules = {match[1] for line in daemon.stderr.read_text().splitlines()
               if (match := re.match(r"import '([^']+)' # ", line))}
    assert {"structlog", "prometheus_client", "vigil._web.statuspage"} <= modules
    return modules


def test_structlog_brings_neither_rich_nor_greenlet(imported: set[str]) -> None:
    missing = [name for name in UNUSED if importlib.util.find_spec(name) is None]
    assert not missing, f"install {missing} beside vigil: the test is about their presence"
    assert not {m for m in imported if m.split(".")[0] in UNUSED}


def test_no_objectives_no_objectives_modules(imported: set[str]) -> None:
    # The status page drew no objectives' panel, and imported nothing to draw one (the
    # daemon always holds the small watch, which starts no thread without objectives).
    assert {m for m in imported if m.startswith("vigil._slo")} <= {"vigil._slo",
                                                                   "vigil._slo.watch"}
