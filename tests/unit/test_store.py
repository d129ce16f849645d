"""The state database in-process: what is queued comes back after a restart, the JSON
state file of earlier versions is migrated once, an unreadable database is set aside,
a full disk fails a write without losing what was queued, and a kill inside a commit
leaves the last committed state."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from tests.helpers import FIXTURES
from vigil import Result, Status
from vigil._config import loader as _config
from vigil._engine.checktable import CheckTable
from vigil._engine.runner import Outcome, Runner
from vigil._heal.healer import Healer
from vigil._store import batch as batch_module
from vigil._store import database, history
from vigil._store.batch import Batch, PendingResult
from vigil._store.history import CHECKPOINT_EVERY, Retention
from vigil._store.records import CheckEntry, ServiceEntry, State
from vigil._store.store import Store

KEEP = Retention(3600, 2 * 86400, 30 * 86400)
FAILING: CheckEntry = {
    "type": "tcp", "enabled": True, "service": None, "interval_s": 10.0,
    "state": State.FAILING, "failures": 3, "successes": 0, "since": 1_700_000_000.0,
    "last": None, "counts": {"runs": 3}}


def failing(**changes: Any) -> CheckEntry:
    """FAILING with some keys changed."""
    return cast(CheckEntry, {**FAILING, **changes})


def saved(tmp_path: Path) -> Store:
    """A store that committed one FAILING check and one service, then closed."""
    store = Store(tmp_path, KEEP)
    assert store.load() == {"checks": {}, "services": {}}
    store.check("db", FAILING)
    store.services({"pg": cast(ServiceEntry, {"given_up": True, "history": [1.0]})})
    store.result("db", time.time(), 2, 1.25, {"latency_ms": 0.5}, "refused")
    store.close()
    return Store(tmp_path, KEEP)


def test_what_was_queued_comes_back_after_a_restart(tmp_path: Path) -> None:
    store = saved(tmp_path)
    assert store.load() == {"checks": {"db": FAILING},
                            "services": {"pg": {"given_up": True, "history": [1.0]}}}
    state = database.read_state_at(tmp_path)
    assert state is not None
    assert state["checks"]["db"]["state"] == "FAILING"
    assert state["checks"]["db"]["uptime_24h"] == 0.0  # its one result failed
    store.close()


def test_a_check_no_longer_configured_is_dropped_from_the_state(tmp_path: Path) -> None:
    store = saved(tmp_path)
    store.load()
    store.retain({"web"}, KEEP)
    store.check("web", failing(state="OK"))
    store.close()
    assert set(Store(tmp_path).load()["checks"]) == {"web"}


def test_a_json_state_file_is_migrated_once_and_kept_as_bak(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(json.dumps(
        {"version": 1, "checks": {"db": FAILING}, "services": {"pg": {"given_up": True}}}))
    with capture_logs() as events:
        loaded = Store(tmp_path).load()
    assert loaded["checks"] == {"db": FAILING}
    assert loaded["services"] == {"pg": {"given_up": True}}
    assert not (tmp_path / "state.json").exists()
    assert json.loads((tmp_path / "state.json.bak").read_text())["checks"]["db"] == FAILING
    assert [e["event"] for e in events] == ["state.migrated"]
    # A later state.json (an older vigil started by mistake) is not taken in again.
    (tmp_path / "state.json").write_text(json.dumps({"checks": {"other": FAILING}}))
    assert set(Store(tmp_path).load()["checks"]) == {"db"}


@pytest.mark.parametrize(("name", "content"), [
    ("state.db", b"this is not a database, and never was" * 200),
    ("state.json", b"{ torn"),
])
def test_an_unreadable_store_is_set_aside_and_vigil_starts_fresh(tmp_path: Path, name: str,
                                                                 content: bytes) -> None:
    (tmp_path / name).write_bytes(content)
    with capture_logs() as events:
        assert Store(tmp_path).load() == {"checks": {}, "services": {}}
    aside = [p for p in tmp_path.iterdir() if p.name.startswith(f"{name}.unreadable-")]
    assert len(aside) == 1 and aside[0].read_bytes() == content
    assert [e["event"] for e in events if e["log_level"] == "error"] == ["state.unreadable"]


def test_a_full_disk_fails_the_write_then_nothing_queued_is_lost(tmp_path: Path) -> None:
    store = saved(tmp_path)
    store.load()
    conn = store.writer.connect()
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    # SQLite's own "database or disk is full", as on a full file system.
    conn.execute(f"PRAGMA max_page_count = {pages}")
    with capture_logs() as events:
        for i in range(2000):
            store.result("db", time.time() + i / 1000, 0, 1.0, {}, f"fine {i}")
        store.check("db", failing(counts={"runs": 2003}))
        store.flush()
        failed = [e for e in events if e["event"] == "state.write_failed"]
        assert failed and "full" in failed[0]["error"], events
        for runs in (2004, 2005, 2006):  # still full, each try fails: said once a minute
            store.check("db", failing(counts={"runs": runs}))
            store.flush()
        assert [e["event"] for e in events].count("state.write_failed") == 1, events
        # The writer reconnects on its next try: give the new connection room.
        store.writer.connect().execute("PRAGMA max_page_count = 1073741823")
        store.flush()
    assert [e["event"] for e in events] == ["state.write_failed", "state.write_recovered"]
    store.close()
    assert Store(tmp_path).load()["checks"]["db"]["counts"] == {"runs": 2006}
    db = sqlite3.connect(tmp_path / "state.db")
    assert db.execute("SELECT count(*) FROM results").fetchone() == (2001,)


def test_a_kill_inside_a_commit_leaves_the_last_committed_state(tmp_path: Path) -> None:
    saved(tmp_path).close()
    # A process that dies by SIGKILL in the middle of its transaction: rows written,
    # COMMIT never reached.
    code = ("import os, pathlib, signal, sys\nfrom vigil._store.store import Store\n"
            "store = Store(pathlib.Path(sys.argv[1]))\nstore.load()\n"
            "real = store.writer._write\n"
            "def write(conn, batch):\n    real(conn, batch)\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n"
            "store.writer._write = write\n"
            "store.check('db', {'state': 'OK'})\nstore.check('new', {'state': 'OK'})\n"
            "store.close()\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], timeout=30, check=False)
    assert done.returncode == -signal.SIGKILL
    with capture_logs() as events:
        assert Store(tmp_path).load()["checks"] == {"db": FAILING}
    assert events == []


def test_a_repeated_summary_is_stored_once_and_read_back_in_full(tmp_path: Path) -> None:
    store = Store(tmp_path, KEEP)
    store.load()
    start = time.time()
    for i, summary in enumerate(["up", "up", "down", "down", "up"]):
        store.result("db", start + i, 0 if summary == "up" else 2, 1.0, {}, summary)
    store.close()
    db = sqlite3.connect(tmp_path / "state.db")
    stored = [row[0] for row in db.execute("SELECT summary FROM results ORDER BY at")]
    assert stored == ["up", None, "down", None, "up"]
    read = history.results(db, 1, 0)
    assert [r["summary"] for r in read] == ["up", "up", "down", "down", "up"]
    assert [r["status"] for r in read] == ["OK", "OK", "CRIT", "CRIT", "OK"]


def test_with_history_off_no_result_is_kept(tmp_path: Path) -> None:
    store = Store(tmp_path, None)
    store.load()
    store.result("db", 1_700_000_000, 0, 1.0, {}, "up")
    store.transition("db", 1_700_000_000, "PENDING", "OK", 0, "up")
    store.heal("pg", 1_700_000_000, {"outcome": "heal.succeeded"})
    store.check("db", FAILING)
    store.close()
    db = sqlite3.connect(tmp_path / "state.db")
    assert [db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("results", "transitions", "heals", "checks")] == [0, 0, 0, 1]


def test_status_shows_the_newest_result_of_a_check_saved_at_a_checkpoint(tmp_path) -> None:
    store = Store(tmp_path, KEEP)
    store.load()
    start = time.time() - 10
    saved_at = datetime.fromtimestamp(start, UTC).isoformat()
    store.check("db", failing(state="OK", last={
        "status": "OK", "summary": "up 1", "metrics": {}, "details": {"kept": True},
        "duration_ms": 1.0, "at": saved_at}))
    store.result("db", start, 0, 1.0, {}, "up 1")
    store.result("db", start + 1, 0, 2.0, {"latency_ms": 2.0}, "up 1")  # stored as NULL
    store.result("web", start + 1, 0, 2.0, {}, "fine")  # no saved entry: not shown
    store.close()
    state = database.read_state_at(tmp_path)
    assert state is not None and set(state["checks"]) == {"db"}
    last = state["checks"]["db"]["last"]
    assert last is not None
    assert last["summary"] == "up 1" and last["duration_ms"] == 2.0
    assert last["metrics"] == {"latency_ms": 2.0} and last["details"] == {"kept": True}
    assert datetime.fromisoformat(last["at"]).timestamp() == pytest.approx(start + 1, abs=0.01)

    store = Store(tmp_path, KEEP)
    store.load()
    store.result("db", start + 2, 1, 3.0, {}, "slow")
    store.result("db", start + 3, 1, 3.0, {}, "slow")
    store.close()
    last = database.read_state_at(tmp_path)["checks"]["db"]["last"]  # type: ignore[index]
    assert last is not None
    assert (last["status"], last["summary"]) == ("WARN", "slow")


@pytest.mark.parametrize("history_on", [True, False])
def test_a_healthy_unchanged_check_is_saved_at_a_checkpoint(tmp_path, monkeypatch,
                                                            history_on: bool) -> None:
    monkeypatch.syspath_prepend(FIXTURES)
    config = tmp_path / "c.toml"
    config.write_text('[daemon]\nstate_dir = "s"\nplugins = ["misbehaving"]\n'
                      f'history = {str(history_on).lower()}\n[checks.ok]\ntype = "fixed"\n')
    cfg = _config.load(str(config))
    store = Store(tmp_path / "s", KEEP if history_on else None)
    store.load()
    stopping = threading.Event()
    table = CheckTable(Runner(stopping), Healer(lambda _s: (), lambda _s: []), stopping, store)
    table.install(cfg, {})
    table.scheduler.start({})
    try:
        store._take()  # what install handed over
        rt = table.runtimes["ok"]
        for _ in range(5):
            table._finish(rt, Outcome(Result(Status.OK, "fine"), 1.0))
        saved = store._take().checks["ok"]["counts"]["runs"]
        # The first result is saved (its status is new); with history, the next four
        # are read from it instead, until the checkpoint; without, each is saved.
        assert saved == (1 if history_on else 5)
        rt.saved -= CHECKPOINT_EVERY
        table._finish(rt, Outcome(Result(Status.OK, "fine"), 1.0))
        assert store._take().checks["ok"]["counts"]["runs"] == 6
        table._finish(rt, Outcome(Result(Status.CRIT, "down"), 1.0))
        last = store._take().checks["ok"]["last"]
        assert last is not None and last["status"] == "CRIT"
        table.close()
        assert store._take().checks["ok"]["counts"]["runs"] == 7
    finally:
        table.scheduler.shutdown()


def damage_beyond_the_schema(path: Path) -> None:
    """Overwrite every page but the first (the header and the schema stay sound)."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(4096)
        f.write(b"\xff" * (size - 4096))


def test_damage_below_the_schema_is_set_aside_at_start(tmp_path: Path) -> None:
    saved(tmp_path).close()
    damage_beyond_the_schema(tmp_path / "state.db")
    with capture_logs() as events:
        assert Store(tmp_path).load() == {"checks": {}, "services": {}}
    assert [e["event"] for e in events] == ["state.unreadable"]
    assert {p.name.split("-")[0] for p in tmp_path.iterdir()} == {
        "state.db", "state.db.unreadable"}


def test_damage_the_writer_meets_is_set_aside_and_nothing_queued_is_lost(tmp_path) -> None:
    store = saved(tmp_path)
    store.load()
    store.writer.failed(sqlite3.OperationalError("a dropped connection"))
    damage_beyond_the_schema(tmp_path / "state.db")
    with capture_logs() as events:
        store.check("db", failing(counts={"runs": 9}))
        store.flush()  # meets the damage: the file is set aside, the batch kept
        store.flush()  # into a new database
    assert [e["event"] for e in events if e["log_level"] == "error"] == ["state.unreadable"]
    store.close()
    assert Store(tmp_path).load()["checks"] == {"db": failing(counts={"runs": 9})}


def test_a_reader_counts_results_not_yet_rolled_up(tmp_path: Path) -> None:
    store = Store(tmp_path, KEEP)
    store.load()
    store.check("db", FAILING)
    store.result("db", time.time(), 0, 1.0, {}, "up")
    # The writer's first commit, before it ever rolled history up.
    store.writer._commit(store._take())
    state = database.read_state_at(tmp_path)  # through a read-only connection
    assert state is not None and state["checks"]["db"]["uptime_24h"] == 1.0
    store.close()


def test_results_queued_while_writes_fail_are_bounded(monkeypatch) -> None:
    monkeypatch.setattr(batch_module, "MAX_PENDING", 3)
    older = Batch(results=[PendingResult("a", float(i), 0, 1.0, {}, "", False, {})
                           for i in range(3)])
    newer = Batch(results=[PendingResult("a", float(i), 0, 1.0, {}, "", False, {})
                           for i in range(3, 5)])
    assert newer.merge_older(older) == 2
    assert [r[1] for r in newer.results] == [2.0, 3.0, 4.0]  # the oldest went first
