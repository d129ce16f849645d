"""The alerter's decisions in-process: which checks, reasons and statuses open an
alert, and what resolves it."""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tests.helpers import FIXTURES, wait_until
from vigil import Result, Status
from vigil._alerts.alerter import Alerter
from vigil._alerts.outbox import Outbox
from vigil._config import loader as _config
from vigil._config.sections import AlertSpec
from vigil._engine.checktable import CheckTable
from vigil._engine.runner import Outcome, Runner
from vigil._heal.healer import Healer
from vigil._store.maintenance import Window
from vigil._store.store import Store


def test_rules_pick_checks_reasons_statuses_and_resolutions() -> None:
    spec = AlertSpec(type="webhook", checks=["db*"], services=["pg"])
    assert spec.matches("db_port", "pg") and not spec.matches("db_port", None)
    assert not spec.matches("cache", "pg")
    assert spec.opens_on("gave_up", "CRIT") and spec.opens_on("failing", "UNKNOWN")
    only = AlertSpec(type="webhook", on=["gave_up"], min_status="CRIT")
    assert only.opens_on("gave_up", "CRIT") and not only.opens_on("heal_failed", "CRIT")
    assert not only.opens_on("gave_up", "UNKNOWN"), "min_status CRIT leaves UNKNOWN out"
    assert not only.resolves, "without recovered in on, no resolution"
    assert spec.resolves and not AlertSpec(type="webhook", send_resolved=False).resolves


class World:
    """A check table, a healer and an alerter over one config, in this process: results
    are handed to the table as a run would hand them, and the alerter decides when the
    test says (its own thread is never started, nor are the senders: nothing is sent)."""

    def __init__(self, tmp_path: Path, body: str) -> None:
        config = tmp_path / "config.toml"
        config.write_text('[daemon]\nstate_dir = "s"\nplugins = ["misbehaving"]\n'
                          + textwrap.dedent(body))
        self.cfg = _config.load(str(config))
        self.stopping = threading.Event()
        self.store = Store(tmp_path / "s", None)
        self.store.load()
        self.table: CheckTable
        self.healer = Healer(lambda s: self.table.failing(s), lambda s: ["guard"])
        self.healer.install(self.cfg.services, {}, tmp_path)
        self.table = CheckTable(Runner(self.stopping), self.healer, self.stopping, self.store)
        self.table.install(self.cfg, {})
        self.table.scheduler.start({})
        self.alerter = Alerter(self.table, self.healer, Outbox(tmp_path / "s" / "state.db"),
                               self.table.events)
        self.alerter.install(self.cfg.alerts)

    def result(self, check: str, status: Status, healable: bool = True) -> None:
        self.table._finish(self.table.runtimes[check],
                           Outcome(Result(status, f"told {status.name}", healable=healable),
                                   1.0))

    def decide(self) -> dict[tuple[str, str], str]:
        """Decide now: the open alerts, (sink, check) -> reason."""
        self.alerter.evaluate(time.time())
        return {key: alert.reason for key, alert in self.alerter.open.items()}

    def close(self) -> None:
        self.stopping.set()
        self.table.scheduler.shutdown()
        self.alerter.close()
        self.store.close()


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], World]]:
    monkeypatch.syspath_prepend(FIXTURES)
    made: list[World] = []

    def make(body: str) -> World:
        made.append(World(tmp_path, body))
        return made[-1]

    yield make
    for each in made:
        each.close()


SINKS = """
[checks.db]
type = "fixed"
fall = 1
[checks.web]
type = "fixed"
fall = 2
[alerts.all]
type = "webhook"
url = "http://127.0.0.1:9/"
[alerts.databases]
type = "webhook"
url = "http://127.0.0.1:9/"
checks = ["db*"]
min_status = "CRIT"
"""


def test_a_confirmed_failure_opens_one_alert_per_sink_that_takes_it(world) -> None:
    w = world(SINKS)
    w.result("db", Status.CRIT)
    w.result("web", Status.CRIT)  # fall = 2: not FAILING yet
    assert w.decide() == {("all", "db"): "failing", ("databases", "db"): "failing"}
    w.result("web", Status.UNKNOWN)
    # UNKNOWN is below the databases sink's min_status, and web is not one of its checks.
    assert w.decide() == {("all", "db"): "failing", ("databases", "db"): "failing",
                          ("all", "web"): "failing"}
    assert w.decide() == {("all", "db"): "failing", ("databases", "db"): "failing",
                          ("all", "web"): "failing"}, "a second look opens nothing twice"


def test_a_pass_resolves_and_the_resolution_waits_in_the_outbox(world) -> None:
    w = world(SINKS)
    w.result("db", Status.CRIT)
    assert ("all", "db") in w.decide()
    w.result("db", Status.WARN)  # WARN passes, but one pass is not rise (2)
    assert ("all", "db") in w.decide()
    w.result("db", Status.OK)
    assert w.decide() == {}
    rows = {(row.sink, row.check): (row.status, row.pending) for row in w.alerter.outbox.rows()}
    assert rows == {("all", "db"): ("resolved", True), ("databases", "db"): ("resolved", True)}


def test_a_guarded_check_alerts_once_healing_failed_not_before(world, tmp_path) -> None:
    flag = tmp_path / "flag"
    w = world(f"""
        [services.app]
        manager = "flag"
        status_file = "{tmp_path / 'elsewhere'}"
        start_timeout = "200ms"
        backoff = "1h"
        [checks.app]
        type = "fixed"
        status_file = "{flag}"
        fall = 1
        service = "app"
        [alerts.team]
        type = "webhook"
        url = "http://127.0.0.1:9/"
        """)
    w.result("app", Status.CRIT)
    # The heal started by that result runs now: while it does, healing may still help.
    assert w.decide() == {}
    wait_until(lambda: not [t for t in threading.enumerate() if t.name == "heal:app"], 5,
               "the heal to fail (no check passes: the flag it sets is another file)")
    last = w.healer.services["app"].last
    assert last is not None and last["outcome"] == "heal.failed"
    assert w.decide() == {("team", "app"): "heal_failed"}
    alert = w.alerter.open[("team", "app")]
    assert alert.service == "app" and alert.healing.startswith("heal 1 of 3 failed at ")


def test_a_check_a_restart_cannot_help_alerts_without_waiting_for_a_heal(world, tmp_path
                                                                        ) -> None:
    w = world(f"""
        [services.app]
        manager = "flag"
        status_file = "{tmp_path / 'flag'}"
        [checks.app]
        type = "fixed"
        fall = 1
        service = "app"
        [alerts.team]
        type = "webhook"
        url = "http://127.0.0.1:9/"
        """)
    w.result("app", Status.CRIT, healable=False)
    assert w.decide() == {("team", "app"): "failing"}


def test_past_max_open_alerts_are_dropped_and_said(world) -> None:
    w = world("""
        [checks.a]
        type = "fixed"
        fall = 1
        [checks.b]
        type = "fixed"
        fall = 1
        [alerts.team]
        type = "webhook"
        url = "http://127.0.0.1:9/"
        max_open = 1
        """)
    w.result("a", Status.CRIT)
    w.result("b", Status.CRIT)
    with capture_logs() as logs:
        assert w.decide() == {("team", "a"): "failing"}
    dropped = [e for e in logs if e["event"] == "alert.dropped"]
    assert dropped and dropped[0]["dropped"] == 1 and dropped[0]["open"] == 1


def test_a_check_under_maintenance_opens_nothing_and_its_news_is_held(world) -> None:
    w = world(SINKS)
    w.table.maintenance.update([Window("db*", time.time() + 60, "upgrade", time.time(),
                                       "vigil maintenance")], time.time())
    w.result("db", Status.CRIT)
    assert w.decide() == {}, "worked on: nothing opens"
    held = w.alerter._silence_list()
    assert [(s.pattern, s.reason) for s in held] == [("db", "maintenance: upgrade")]
    w.table.maintenance.update([], time.time())
    assert w.decide() == {("all", "db"): "failing", ("databases", "db"): "failing"}
