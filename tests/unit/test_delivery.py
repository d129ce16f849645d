"""A sink's sender against the outbox in a real state database, its clock given by the
test: first sends, retries and their backoff, reminders, Alertmanager's re-sends, and
resolutions the sink needs or does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vigil import Alert, AlertSink, Silence, SinkError
from vigil._alerts.delivery import Sender
from vigil._alerts.outbox import Outbox
from vigil._config.sections import AlertSpec
from vigil._store.database import set_aside


class Recording(AlertSink):
    """Takes what it is sent, or refuses while ``down``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, int]] = []
        self.down = False

    def send(self, alert: Alert) -> None:
        if self.down:
            raise SinkError("HTTP 503 Service Unavailable: try later")
        self.sent.append((alert.status, alert.reminder))


class KeepAlive(Recording):
    resend_every = 60.0
    resend_resolved_for = 300.0


class Clocked(Sender):
    """A sender whose every cycle happens at the time the test gives it."""

    def cycle(self, now: float) -> None:
        self.clock = lambda: now
        super().cycle(now)


def sender(tmp_path: Path, sink: Recording, silences: list[Silence] | None = None,
           **keys: Any) -> tuple[Sender, Outbox]:
    outbox = Outbox(tmp_path / "state.db")
    spec = AlertSpec(type="test", name="s", sink=sink, **keys)
    held = silences if silences is not None else []
    return Clocked(spec, outbox, lambda: held, "h"), outbox


def alert(at: float) -> Alert:
    return Alert(check="db", status="firing", reason="failing", severity="critical",
                 summary="down", host="h", starts_at=at)


def test_a_refused_alert_is_retried_with_backoff_then_sent_once(tmp_path) -> None:
    sink = Recording("s", None)
    send, outbox = sender(tmp_path, sink)
    outbox.open("s", alert(1000.0))
    sink.down = True
    retries = []
    now = 1000.0
    for _ in range(7):
        send.cycle(now)
        row = outbox.rows()[0]
        retries.append(row.next_try - now)
        assert row.error == "HTTP 503 Service Unavailable: try later"
        now = row.next_try
    assert retries == [1, 2, 4, 8, 16, 30, 30]
    send.cycle(now - 0.5)
    assert outbox.rows()[0].attempts == 7, "nothing is tried before its time"
    sink.down = False
    send.cycle(now)
    send.cycle(now + 3600)
    assert sink.sent == [("firing", 0)]
    assert outbox.rows()[0].sent == now and not outbox.rows()[0].pending


def test_reminders_follow_repeat_and_a_resolution_ends_the_alert(tmp_path) -> None:
    sink = Recording("s", None)
    send, outbox = sender(tmp_path, sink, repeat=3600.0)
    first = alert(1000.0)
    outbox.open("s", first)
    send.cycle(1000.0)
    send.cycle(4599.0)
    send.cycle(4600.0)
    send.cycle(8200.0)
    assert sink.sent == [("firing", 0), ("firing", 1), ("firing", 2)]
    first.status, first.ends_at = "resolved", 8300.0
    outbox.resolve("s", first, 8300.0)
    send.cycle(8300.0)
    send.cycle(8301.0)
    assert sink.sent[-1] == ("resolved", 0) and outbox.rows() == []


def test_alertmanager_style_sinks_hear_firing_and_resolved_alerts_again(tmp_path) -> None:
    sink = KeepAlive("s", None)
    send, outbox = sender(tmp_path, sink)
    first = alert(1000.0)
    outbox.open("s", first)
    for now in (1000.0, 1030.0, 1060.0, 1120.0):
        send.cycle(now)
    assert sink.sent == [("firing", 0)] * 3
    first.status, first.ends_at = "resolved", 1150.0
    outbox.resolve("s", first, 1150.0)
    for now in (1150.0, 1210.0, 1270.0, 1449.0):
        send.cycle(now)
    assert [s for s, _ in sink.sent].count("resolved") == 4
    send.cycle(1451.0)
    assert outbox.rows() == [], "re-sent for resend_resolved_for, then done"


def test_a_resolution_is_sent_only_for_an_alert_the_sink_was_told(tmp_path) -> None:
    sink = Recording("s", None)
    send, outbox = sender(tmp_path, sink)
    held = alert(1000.0)
    outbox.open("s", held)
    held.status, held.ends_at = "resolved", 1001.0
    outbox.resolve("s", held, 1001.0)
    send.cycle(1002.0)
    assert sink.sent == [] and outbox.rows() == []

    # A firing alert sent while its check recovered: the resolution is owed.
    told = alert(2000.0)
    outbox.open("s", told)
    row = outbox.rows()[0]
    told.status, told.ends_at = "resolved", 2001.0
    outbox.resolve("s", told, 2001.0)
    outbox.delivered(row, 2001.5)  # the send that was under way
    send.cycle(2002.0)
    assert sink.sent == [("resolved", 0)]


def test_the_outbox_follows_a_database_set_aside_and_made_anew(tmp_path) -> None:
    outbox = Outbox(tmp_path / "state.db")
    outbox.open("s", alert(1000.0))
    set_aside(tmp_path / "state.db", "damaged", with_journal=True)  # as the writer does
    assert outbox.rows() == [], "a new database at the path, not the one set aside"
    outbox.open("s", alert(2000.0))
    assert [row.opened for row in Outbox(tmp_path / "state.db").rows()] == [2000.0]


def test_a_new_episode_drops_the_old_resolution_that_would_resolve_it(tmp_path) -> None:
    sink = KeepAlive("s", None)
    send, outbox = sender(tmp_path, sink)
    first = alert(1000.0)
    outbox.open("s", first)
    send.cycle(1000.0)
    first.status, first.ends_at = "resolved", 1010.0
    outbox.resolve("s", first, 1010.0)
    send.cycle(1010.0)
    assert sink.sent == [("firing", 0), ("resolved", 0)]
    outbox.open("s", alert(1020.0))  # the same labels fire again
    for now in range(1020, 1400, 30):
        send.cycle(float(now))
    assert {status for status, _ in sink.sent[2:]} == {"firing"}, sink.sent
    assert [(r.status, r.opened) for r in outbox.rows()] == [("firing", 1020.0)]


def test_a_silence_holds_news_back_but_keeps_a_sent_alert_alive(tmp_path) -> None:
    sink = KeepAlive("s", None)
    held: list[Silence] = []
    send, outbox = sender(tmp_path, sink, held)
    outbox.open("s", alert(1000.0))
    send.cycle(1000.0)
    held.append(Silence("d*", 5000.0, "swap", 1001.0))
    outbox.open("s", Alert(check="dx", status="firing", reason="failing",
                           severity="critical", summary="down", host="h", starts_at=1002.0))
    for now in (1002.0, 1070.0, 1140.0):
        send.cycle(now)
    # db was told of before the silence: re-sent each minute; dx is news: held back.
    assert sink.sent == [("firing", 0)] * 3
    assert [r.check for r in outbox.rows() if r.pending] == ["dx"]
