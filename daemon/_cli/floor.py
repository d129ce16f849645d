"""A check that loads its service (``min_interval``), run outside the daemon (`vigil
wait` with none running, `vigil check`): its last run, by whoever made it, from the
state database, and its own run kept there, so that its floor holds across them all."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from datetime import UTC, datetime

from vigil._cli.status import NoState, write_database
from vigil._config.sections import CheckSpec, Config
from vigil._engine.runner import Outcome
from vigil._store import database, maintenance
from vigil._store.maintenance import Window
from vigil._store.records import CheckEntry, LastResult


def saved(cfg: Config) -> tuple[list[Window], dict[str, CheckEntry]]:
    """The maintenance windows open now and the checks as saved, from the state database
    (none without it)."""
    with contextlib.suppress(sqlite3.Error, ValueError):
        conn = database.connect_readonly(cfg.daemon.state_dir)
        if conn is not None:
            with contextlib.closing(conn):
                return ([w for w in maintenance.windows(conn) if w.open(time.time())],
                        database.read_state(conn)["checks"])
    return [], {}


def note(cfg: Config, name: str, outcome: Outcome) -> None:
    """A run of a check that loads its service, kept: the next `vigil wait`, `vigil
    check` or daemon holds to its floor from it. Kept only in a state database that is
    there already: a one-off check makes no state folder."""
    if not (cfg.daemon.state_dir / database.DB).exists():
        return
    result = outcome.result
    last: LastResult = {
        "status": result.status.name, "summary": result.summary,
        "metrics": dict(result.metrics), "details": dict(result.details),
        "healable": result.healable, "duration_ms": round(outcome.duration_ms, 2),
        "at": datetime.now(UTC).isoformat()}
    with contextlib.suppress(NoState):
        write_database(cfg.daemon.state_dir, lambda conn: database.note_last(conn, name, last))


def last_run(spec: CheckSpec, saved: dict[str, CheckEntry]) -> LastResult | None:
    """The saved last result of a check with a floor (None for any other check)."""
    entry = saved.get(spec.name)
    return entry.get("last") if spec.floor and entry else None


def began(last: LastResult) -> float:
    """When (time.monotonic()) the run that gave ``last`` began, about."""
    ago = time.time() - datetime.fromisoformat(last["at"]).timestamp()
    return time.monotonic() - max(0.0, ago)
