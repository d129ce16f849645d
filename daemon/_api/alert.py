"""An alert as a sink receives it, and the base class of sinks: what a plugin implements
to send vigil's alerts somewhere new."""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from vigil._kit.digest import sha256_hex
from vigil._kit.visible import visible

#: The ``alertname`` label of the alerts vigil sends: a failing check's, a remediation
#: item's, and an objective's burning error budget (its ``check`` is the objective).
ALERTNAME = "VigilCheckFailing"
REMEDIATION = "VigilRemediation"
BURN = "VigilErrorBudgetBurn"


class SinkError(Exception):
    """A sink could not deliver: the message is the sink's answer (an HTTP status and
    body, an exit code and output), logged with ``alert.failed``; vigil retries."""


def iso(at: float) -> str:
    """A ``time.time()`` as Alertmanager writes times: ISO 8601, UTC, ``Z``."""
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Alert:
    """One check's alert. ``status`` is "firing" or "resolved"; ``reason`` what opened
    it: "failing", "heal_failed" or "gave_up"; "remediation" for a backlog item, and
    "burn" for an objective's error budget burning (``check`` is then the objective's
    name, and ``severity`` "page" or "ticket")."""

    check: str
    status: str
    reason: str
    #: "critical" for a CRIT result, "warning" for UNKNOWN; "page" or "ticket" for a burn.
    severity: str
    summary: str
    host: str
    starts_at: float
    service: str | None = None
    #: What healing did, in a sentence ("" when no heal was tried).
    healing: str = ""
    #: Heals tried during this incident, and when (time.time()).
    attempts: list[float] = field(default_factory=list)
    ends_at: float | None = None
    #: The ``[alerts.NAME]`` section's own ``labels``.
    extra_labels: dict[str, str] = field(default_factory=dict)
    #: How many times this firing alert was sent before (``repeat`` reminders).
    reminder: int = 0
    #: More annotations: a remediation item's acceptance criteria and where to look.
    notes: dict[str, str] = field(default_factory=dict)
    #: When vigil opened the alert (time.time()): later than ``starts_at``, when the
    #: failure began, by however long healing was given first.
    opened_at: float | None = None

    @property
    def resolved(self) -> bool:
        """Whether this is the alert's resolution (its check is OK again)."""
        return self.status == "resolved"

    def lasted(self, now: float) -> float:
        """Seconds the alert has been open."""
        return now - (self.opened_at if self.opened_at is not None else self.starts_at)

    def labels(self) -> dict[str, str]:
        """Prometheus-style labels: what identifies the alert to Alertmanager."""
        if self.reason == "burn":
            labels = {"alertname": BURN, "slo": self.check, "host": self.host,
                      "severity": self.severity, "reason": self.reason}
            return {**labels, **self.extra_labels}
        name = REMEDIATION if self.reason == "remediation" else ALERTNAME
        labels = {"alertname": name, "check": self.check, "host": self.host,
                  "severity": self.severity, "reason": self.reason}
        if self.service:
            labels["service"] = self.service
        return {**labels, **self.extra_labels}

    def annotations(self) -> dict[str, str]:
        """Prometheus-style annotations: the summary, what healing did, the notes."""
        if self.reason in ("remediation", "burn"):
            notes = {"summary": f"{self.summary} (on {self.host})"}
        else:
            notes = {"summary": f"{self.check} is failing on {self.host}: {self.summary}"}
        if self.healing:
            notes["healing"] = self.healing
            notes["attempts"] = str(len(self.attempts))
        return {**notes, **self.notes}

    def fingerprint(self) -> str:
        """A short hash of the labels: the same alert, episode after episode."""
        labels = json.dumps(self.labels(), sort_keys=True).encode()
        return sha256_hex(labels, 16)

    def title(self) -> str:
        """``[FIRING] db on host1`` (or ``[RESOLVED] ...``): a message's first line."""
        what = (f"error budget of {self.check} ({self.severity})" if self.reason == "burn"
                else self.check)
        return f"[{'RESOLVED' if self.resolved else 'FIRING'}] {what} on {self.host}"

    def text(self) -> str:
        """A few lines for a human: chat sinks send this. What checks and services said
        in it shows its control characters as escapes (a terminal that prints a push
        notification would run them)."""
        lines = [self.title(), self.summary]
        if self.healing:
            lines.append(f"Healing: {self.healing}")
        lines += [f"{key.capitalize()}: {value}" for key, value in self.notes.items()]
        if self.resolved and self.ends_at is not None:
            lines.append(f"Resolved at {iso(self.ends_at)}, failing since "
                         f"{iso(self.starts_at)}")
        return "\n".join(visible(line) for line in lines if line)

    def to_dict(self) -> dict[str, Any]:
        """Every field, as JSON can carry it (the ``command`` sink's stdin)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """The alert ``to_dict`` made; keys it does not know are left out."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def env(self) -> dict[str, str]:
        """``VIGIL_ALERT_*`` variables, for the ``command`` sink."""
        values = {"status": self.status, "check": self.check, "service": self.service or "",
                  "host": self.host, "severity": self.severity, "reason": self.reason,
                  "summary": self.summary, "healing": self.healing,
                  "attempts": str(len(self.attempts)), "starts_at": iso(self.starts_at),
                  "ends_at": iso(self.ends_at) if self.ends_at is not None else "",
                  "fingerprint": self.fingerprint()}
        # The environment cannot carry a NUL: shown as an escape, or the alert would never
        # be delivered.
        return {f"VIGIL_ALERT_{key.upper()}": value.replace("\0", "\\x00")
                for key, value in values.items()}


@dataclass
class Silence:
    """``vigil silence PATTERN``: the alerts of the checks the glob matches are held
    back until ``until`` (time.time())."""

    pattern: str
    until: float
    reason: str
    created: float

    def covers(self, check: str, now: float) -> bool:
        """Whether it holds back ``check``'s alerts at ``now``."""
        return now < self.until and fnmatch.fnmatchcase(check, self.pattern)


class AlertSink:
    """Base class of alert sinks; subclasses implement :meth:`send`.

    Options come from the sink's ``[alerts.NAME]`` section, as a check type's do
    (declare an ``Options`` dataclass); ``self.timeout`` is the section's ``timeout``.
    """

    Options: ClassVar[type | None] = None
    #: Re-send a firing alert this often while it lasts, and a resolution for
    #: ``resend_resolved_for`` after it (Alertmanager forgets an alert it is not told
    #: of again); None: each is sent once (and at the section's ``repeat``).
    resend_every: float | None = None
    resend_resolved_for: float = 0.0

    def __init__(self, name: str, options: Any, timeout: float = 10.0) -> None:
        self.name = name
        self.options = options
        self.timeout = timeout

    def send(self, alert: Alert) -> None:
        """Deliver one alert (firing or resolved); raise SinkError when it was not."""
        raise NotImplementedError(f"{type(self).__name__} must implement send()")

    def mirror_silences(self, silences: list[Silence], host: str) -> bool:
        """For a sink that keeps silences of its own (Alertmanager): make the ones vigil
        made there for ``host`` match ``silences`` (all that are in effect), and return
        True; vigil then sends silenced alerts on, and the sink holds them back. The
        default returns False: vigil holds a silenced alert back itself, and keeps
        re-sending one the sink was already told of (``resend_every``), so that a
        silence never reads as a recovery. Raise SinkError when the sink cannot be
        reached; vigil tries again."""
        return False
