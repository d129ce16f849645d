"""Each sink's sender: a thread that sends what the outbox holds for it, retries with
backoff while the sink is down, sends reminders (``repeat``) and, for a sink that asks
(Alertmanager), re-sends what is firing and what just resolved. A slow or broken sink
holds up only its own thread."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable

import structlog

from vigil._alerts.outbox import Outbox, Row
from vigil._api.alert import Silence, SinkError
from vigil._config.sections import AlertSpec
from vigil._kit.redact import redact
from vigil._store.database import Unreadable

log = structlog.get_logger("vigil.alerts")

#: How often a sender looks at the outbox without being nudged.
TICK = 1.0
#: After the state database failed it, a sender tries again this much later.
COMPLAIN_EVERY = 60.0


class Sender:
    def __init__(self, spec: AlertSpec, outbox: Outbox,
                 silences: Callable[[], list[Silence]], host: str) -> None:
        self.spec = spec
        self.outbox = outbox
        self.silences = silences
        self.host = host
        #: The silences the sink was last told of, and whether it holds silenced
        #: alerts back itself (None until it was asked).
        self._mirrored: list[Silence] | None = None
        self._sink_silences = False
        self._mirror_failing = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The time after a send: when it was delivered, or when to try again from.
        self.clock: Callable[[], float] = time.time
        #: Deliveries since the daemon started, by how they went, for /metrics; and
        #: whether the last attempt got through (True before any).
        self.counts = {"sent": 0, "failed": 0}
        self.up = True

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name=f"alerts:{self.spec.name}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop, waiting for a send under way (so that its successor does not send the
        same alert again)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.spec.timeout + 1)

    def nudge(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.cycle(self.clock())
            except (sqlite3.Error, OSError, Unreadable) as exc:
                log.error("alert.failed", sink=self.spec.name, error=f"cannot use the state "
                                                                    f"database: {exc}")
                self._wake.wait(COMPLAIN_EVERY)  # the next try, and complaint, in a while
            self._wake.wait(TICK)

    def cycle(self, now: float) -> None:
        sink, name = self.spec.sink, self.spec.name
        silences = [s for s in self.silences() if s.until > now]
        self._mirror(silences)
        if self.spec.repeat:
            self.outbox.remind(name, self.spec.repeat, now)
        self.outbox.finish(name, now, sink.resend_resolved_for if sink.resend_every else 0.0)
        for row in self.outbox.due(name, now, sink.resend_every):
            if self._stop.is_set():
                return
            # A silence holds back news, never a keep-alive: a firing alert no longer
            # re-sent would be resolved by the sink, and its receiver told so.
            if (row.status == "firing" and row.pending and not self._sink_silences
                    and any(s.covers(row.check, now) for s in silences)):
                continue
            if row.status == "resolved" and row.sent is None:
                self.outbox.withdraw(row)  # it never fired there: nothing to resolve
                continue
            self._send(row)

    def _mirror(self, silences: list[Silence]) -> None:
        """Tell a sink that keeps silences of its own (Alertmanager) about vigil's, when
        they changed; until it took them, vigil holds silenced alerts back itself."""
        if silences == self._mirrored:
            return
        try:
            self._sink_silences = self.spec.sink.mirror_silences(silences, self.host)
        except Exception as exc:
            error = str(exc) if isinstance(exc, SinkError) else f"{type(exc).__name__}: {exc}"
            if not self._mirror_failing:  # said once; asked again each cycle
                log.warning("alert.failed", sink=self.spec.name, type=self.spec.type,
                            error=redact(f"cannot set the sink's silences: {error}"))
            self._mirror_failing, self._sink_silences, self._mirrored = True, False, None
            return
        self._mirror_failing, self._mirrored = False, silences

    def _send(self, row: Row) -> None:
        fields = {"sink": self.spec.name, "type": self.spec.type, "check": row.check,
                  "status": row.status}
        try:
            self.spec.sink.send(row.alert)
        except Exception as exc:
            # A SinkError is the sink's answer; anything else is a bug in the sink's
            # plugin, reported the same way and retried the same way.
            error = str(exc) if isinstance(exc, SinkError) else f"{type(exc).__name__}: {exc}"
            now = self.clock()
            self.counts["failed"] += 1
            self.up = False
            retry = self.outbox.failed(row, now, redact(error))
            log.warning("alert.failed", **fields, error=redact(error),
                        attempts=row.attempts + 1, retry_in_s=round(retry - now, 1))
            return
        self.outbox.delivered(row, self.clock())
        self.counts["sent"] += 1
        self.up = True
        # A re-send (Alertmanager's keep-alive) is routine; a notification is news.
        level = log.info if row.pending else log.debug
        level("alert.sent", **fields, reminder=row.alert.reminder, attempts=row.attempts + 1,
            resend=not row.pending)
