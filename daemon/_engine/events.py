"""The live event stream behind ``GET /api/v1/events``: results, state changes and heals,
handed to every listener's own bounded queue. A listener too slow to keep up loses its
oldest events (and is told how many), never the daemon's time."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import Any

#: Events a listener may fall behind by before the oldest are dropped.
BACKLOG = 1000
#: An event's fields, as its log line says them (``event`` names it in a listener's
#: queue): each event has its own.
Fields = dict[str, Any]


class Listener:
    def __init__(self) -> None:
        self.queue: collections.deque[Fields] = collections.deque(maxlen=BACKLOG)
        self.dropped = 0
        self.ready = threading.Condition()

    def take(self, timeout: float) -> list[Fields]:
        """The events queued so far, waiting up to ``timeout`` for the first."""
        with self.ready:
            if not self.queue:
                self.ready.wait(timeout)
            events = list(self.queue)
            self.queue.clear()
            if self.dropped:
                events.insert(0, {"event": "stream.dropped", "dropped": self.dropped})
                self.dropped = 0
        return events


class EventHub:
    """Publish once, deliver to each listener; publishing never blocks on a listener."""

    def __init__(self) -> None:
        self._listeners: set[Listener] = set()
        self._subscribers: list[Callable[[str, Fields], None]] = []
        self._lock = threading.Lock()

    @property
    def listening(self) -> bool:
        """Whether anyone listens: publishers skip building events nobody reads."""
        return bool(self._listeners)

    def listen(self) -> Listener:
        listener = Listener()
        with self._lock:
            self._listeners.add(listener)
        return listener

    def subscribe(self, callback: Callable[[str, Fields], None]) -> None:
        """Call ``callback(event, fields)`` in the publishing thread, for every event
        but results nobody listens to: it must be quick (the alerts take note, then
        act in their own thread)."""
        self._subscribers.append(callback)

    def forget(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.discard(listener)

    def publish(self, event: str, **fields: Any) -> None:
        for callback in self._subscribers:
            callback(event, fields)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            with listener.ready:
                if len(listener.queue) == BACKLOG:
                    listener.dropped += 1
                listener.queue.append({"event": event, **fields})
                listener.ready.notify()
