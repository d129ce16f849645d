"""The records the parts hand each other, in the shape the state database keeps and the
API shows them: a check's entry, a service's, a heal's outcome, and the history's rows.
They are typed dicts, so the JSON on disk and on the wire is the record itself; the
states are string enums, so a log line, the API and a saved row read as they always did.
"""

from __future__ import annotations

import enum
from typing import Any, NotRequired, TypedDict


class State(enum.StrEnum):
    """A check's state: its results counted against ``fall`` and ``rise``."""

    PENDING = "PENDING"
    OK = "OK"
    FAILING = "FAILING"
    #: Under a maintenance window: its results are kept, nothing is healed or alerted.
    #: Only ever shown: the state machine goes on counting beneath it.
    MAINTENANCE = "MAINTENANCE"


class HealState(enum.StrEnum):
    """Where a service stands with the healer, as ``State`` says it for a check."""

    READY = "ready"              # healed when a guarding check is FAILING
    HEALING = "healing"          # a heal runs now
    BACKING_OFF = "backing off"  # healed lately: the next heal waits for the backoff
    GAVE_UP = "gave up"          # the restart budget is spent; checks go on, heals do not


class Verdict(enum.StrEnum):
    """How one heal ended; the value is the event that said so."""

    SUCCEEDED = "heal.succeeded"
    FAILED = "heal.failed"
    BUSY = "busy"  # another heal of the service was running: nothing was done


class LastResult(TypedDict):
    """A check's latest result as saved: the ``Result``'s fields, how long it took and
    when it came."""

    status: str
    summary: str
    metrics: dict[str, float]
    details: NotRequired[dict[str, Any]]
    healable: NotRequired[bool]
    perfdata: NotRequired[str]
    duration_ms: float
    #: ISO 8601, UTC.
    at: str


class Held(TypedDict):
    """The maintenance window a check or service is under, as the page and API show it."""

    target: str
    #: time.time(); None: until ended.
    until: float | None
    reason: str
    by: str


class MachineState(TypedDict):
    """A check's state machine as saved (``CheckState``)."""

    state: State
    failures: int
    successes: int
    #: When the check entered its state (time.time()).
    since: float


class CheckEntry(MachineState):
    """What is saved and shown of one check."""

    type: str
    enabled: bool
    service: str | None
    interval_s: float
    last: LastResult | None
    #: Runs, problems ("timeout", "error", "skipped", "missed") and "status.NAME".
    counts: dict[str, int]
    #: Share of passing runs over 24 hours, where history is kept (status, the API).
    uptime_24h: NotRequired[float | None]
    #: The maintenance window it is under, while it is.
    maintenance: NotRequired[Held]


class HealRecord(TypedDict, total=False):
    """A heal's outcome as saved, logged and answered: ``outcome`` is the event that
    said it; the rest are that event's fields, as many as the heal came to know."""

    outcome: str
    at: float
    service: str
    manager: str
    action: str
    reason: str
    recovery_s: float
    elapsed_s: float
    command: str
    exit_code: int | None
    output: str
    port: int
    service_state: dict[str, str]


class ServiceEntry(TypedDict):
    """What is saved and shown of one service."""

    state: HealState
    #: Wall-clock times of the heals inside the budget's window.
    history: list[float]
    given_up: bool
    not_before: float
    streak: int
    held_since: float | None
    last: HealRecord | None
    healing: bool
    manager: str
    describe: str
    watching: bool
    #: Heals so far by outcome ("succeeded", "failed").
    heals: dict[str, int]
    restarts: int
    within: float
    #: What the manager keeps of the service (its PID, its port): the manager's own.
    manager_state: dict[str, Any]
    #: The maintenance window it is under, while it is.
    maintenance: NotRequired[Held]


class DaemonInfo(TypedDict, total=False):
    """Who the daemon is (``pid`` with ``create_time`` tells it from a later process
    given the same PID) and what it runs with: saved with the state, and in the runtime
    folder where commands find it."""

    pid: int
    create_time: float
    #: ISO 8601, UTC: when it started, and when it last saved its state.
    started: str
    updated: str
    config: str
    state_dir: str
    log_file: str


class Saved(TypedDict):
    """The state the daemon starts from."""

    checks: dict[str, CheckEntry]
    services: dict[str, ServiceEntry]


class Snapshot(TypedDict):
    """What ``vigil status --json`` shows."""

    schema: int
    daemon: DaemonInfo
    checks: dict[str, CheckEntry]
    services: dict[str, ServiceEntry]


class ResultRow(TypedDict):
    at: float
    status: str
    duration_ms: float
    metrics: dict[str, float]
    summary: str | None


class KeptResult(ResultRow):
    """A result as the history keeps it (`vigil history`, the API)."""

    #: It came under a maintenance window: kept, but out of the uptime and objectives.
    maintenance: bool


class Newest(ResultRow):
    """A check's newest result, with when its summary was last said."""

    summary_at: float


#: A state change; ``from`` is a keyword, hence the functional form.
TransitionRow = TypedDict("TransitionRow", {
    "at": float, "from": str, "to": str, "status": str, "summary": str | None})

#: A rolled-up bucket: runs by status, the duration's and each metric's min/avg/max.
class RollupRow(TypedDict):
    start: int
    step: int
    runs: int
    OK: int
    WARN: int
    CRIT: int
    UNKNOWN: int
    dur_min_ms: float
    dur_avg_ms: float
    dur_max_ms: float
    metrics: dict[str, list[float]]


class CheckHistory(TypedDict):
    """One check's history over a window (`vigil history`, the API)."""

    check: str
    since: float
    uptime: dict[str, float | None]
    rollups: list[RollupRow]
    results: list[KeptResult]
    transitions: list[TransitionRow]


class AnomalyRow(TypedDict):
    """An anomaly of a check's series, as ``vigil history --anomalies`` lists it."""

    series: str
    start: float
    #: None while it lasts.
    end: float | None
    score: float
    value: float
    usual: float
