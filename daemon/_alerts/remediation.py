"""Remediation fed back into the backlog: a problem healing cannot fix (a service given
up on, a check FAILING for long, a check CRIT that no restart would help) becomes an item
in the operators' Markdown backlog, with acceptance criteria derived from the check; its
recovery is noted in the item, which is never deleted. The file is the record: each item
carries a fingerprint, so a restart finds it and never adds it twice."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from vigil._alerts import backlogfile as backlog
from vigil._alerts.backlogfile import Item
from vigil._config.sections import RemediationSpec
from vigil._engine.checktable import CheckRuntime, CheckTable
from vigil._heal.healer import Healer
from vigil._kit.atomic import replace_file
from vigil._kit.digest import sha256_hex
from vigil._kit.durations import format_duration
from vigil._kit.redact import redact
from vigil._store.records import HealRecord, State

log = structlog.get_logger("vigil.remediation")

#: How often the triggers are looked at.
EVERY = 1.0
#: A backlog that cannot be written is said this often while it lasts.
COMPLAIN_EVERY = 60.0


@dataclass
class Problem:
    subject: str  # "check db" or "service pg"
    item: Item


@functools.lru_cache(maxsize=4096)
def fingerprint(subject: str) -> str:
    return sha256_hex(subject, 12)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M UTC")


class Remediator:
    """Told a notice for each item (``notify(subject, item_id, item, recovered)``), so
    that alert sinks hear of it too."""

    def __init__(self, checks: CheckTable, healer: Healer,
                 notify: Callable[[str, str, Item, bool], None]) -> None:
        self.checks = checks
        self.healer = healer
        self.notify = notify
        self.spec: RemediationSpec | None = None
        #: The open items in the file, by fingerprint, as last read or written.
        self._open: set[str] = set()
        #: The problems found already in the file (a restart, another vigil): said once.
        self._known: set[str] = set()
        self._looked = self._complained = 0.0

    def install(self, spec: RemediationSpec | None) -> None:
        self.spec = spec
        if spec is None:
            return
        with contextlib.suppress(OSError):
            self._open = backlog.open_items(Path(spec.path).read_text(encoding="utf-8"))

    # -- triggers --------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Add an item for each new problem, note each recovery (the main loop calls
        this; it looks once a second)."""
        spec = self.spec
        if spec is None or now - self._looked < EVERY:
            return
        self._looked = now
        problems = {fingerprint(p.subject): p for p in self._problems(spec, now)}
        for fp in problems.keys() & self._open - self._known:
            self._said_known(fp, problems[fp].subject, spec)
        added = [fp for fp in problems if fp not in self._open]
        waiting = self._open - problems.keys()
        subjects = self._subjects() if waiting else {}
        # An item whose subject is gone from the config is done too.
        recovered = {fp: subjects.get(fp, (fp, True))[0] for fp in waiting
                     if subjects.get(fp, (fp, True))[1]}
        if not added and not recovered:
            return
        try:
            self._write(spec, {fp: problems[fp] for fp in added}, recovered, now)
        except OSError as exc:
            if now - self._complained >= COMPLAIN_EVERY:
                self._complained = now
                log.error("remediation.failed", path=spec.path, error=str(exc),
                          hint="tried again each second; said again in a minute")

    def _problems(self, spec: RemediationSpec, now: float) -> Iterator[Problem]:
        if "gave_up" in spec.when:
            for name, srv in self.healer.services.items():
                if srv.given_up:
                    yield self._service_problem(name, srv.history, srv.last or {}, now)
        for name, rt in self.checks.enabled().items():
            if not spec.covers(name) or rt.latest is None:
                continue
            result = rt.latest[0]
            # A CRIT result may come before the check is FAILING (fall): it fails from now.
            failing_since = rt.machine.since if rt.machine.state is State.FAILING else now
            crit = ("crit" in spec.when and result.status.name == "CRIT"
                    and not result.healable)
            long = (spec.failing_for is not None and rt.machine.state is State.FAILING
                    and now - failing_since >= spec.failing_for)
            if crit or long:
                yield self._check_problem(rt, result.summary, failing_since, crit)

    def _check_problem(self, rt: CheckRuntime, summary: str, since: float,
                       crit: bool) -> Problem:
        name = rt.spec.name
        what = "is CRIT" if crit else "has been FAILING for " + format_duration(
            round(time.time() - since))
        options = rt.spec.check.options
        where = [f"`vigil history {name}`", f"`vigil logs --check {name}`"]
        if path := getattr(options, "path", None) or getattr(options, "root", None):
            where.append(str(path))
        match = getattr(options, "match", None)
        if rt.spec.type == "events" and match:
            kinds = " ".join(str(v) for v in match.values())
            acceptance = f"check `{name}` passes for 7 days with 0 {kinds} events"
        else:
            acceptance = f"check `{name}` OK for 24 h"
        item = Item(fingerprint(f"check {name}"), f"check `{name}` {what}",
                    datetime.now(UTC).date().isoformat(),
                    f"{redact(summary)} (failing since {_when(since)})", acceptance,
                    ", ".join(where))
        return Problem(f"check {name}", item)

    def _service_problem(self, name: str, heals: list[float], last: HealRecord,
                         now: float) -> Problem:
        guards = sorted(c for c, rt in self.checks.enabled().items() if rt.spec.service == name)
        item = Item(fingerprint(f"service {name}"), f"vigil gave up healing service `{name}`",
                    datetime.now(UTC).date().isoformat(),
                    f"{len(heals)} heals did not hold; the last: "
                    f"{redact(str(last.get('reason') or last.get('outcome', 'unknown')))}",
                    f"`vigil heal {name}` succeeds and its checks ({', '.join(guards)}) "
                    "stay OK for 24 h",
                    f"`vigil status`, `vigil logs`, `vigil history {guards[0]}`" if guards
                    else "`vigil status`, `vigil logs`")
        return Problem(f"service {name}", item)

    def _subjects(self) -> dict[str, tuple[str, bool]]:
        """Every check and service by fingerprint: its subject, and whether it is well."""
        found = {fingerprint(f"service {name}"): (f"service {name}", not srv.given_up)
                 for name, srv in self.healer.services.items()}
        for name, rt in self.checks.runtimes.items():
            well = (rt.machine.state is State.OK and rt.latest is not None
                    and rt.latest[0].status.passing)
            found[fingerprint(f"check {name}")] = (f"check {name}", well)
        return found

    def _said_known(self, fp: str, subject: str, spec: RemediationSpec) -> None:
        """A problem already in the backlog: not written again, said once."""
        if fp not in self._known:
            self._known.add(fp)
            log.info("remediation.known", subject=subject, path=spec.path,
                     reason="already open in the backlog: not written again")

    # -- the file --------------------------------------------------------------------

    def _write(self, spec: RemediationSpec, added: dict[str, Problem],
               recovered: dict[str, str], now: float) -> None:
        path = Path(spec.path)
        with _locked(path):
            try:
                text = path.read_text(encoding="utf-8")
                mode = path.stat().st_mode & 0o777
            except FileNotFoundError:
                text, mode = "# Backlog\n", 0o644
            on_file = backlog.open_items(text)
            news: list[tuple[str, str, Item, bool]] = []
            for fp, problem in added.items():
                if fp in on_file:  # another vigil, or this one before a restart, wrote it
                    self._said_known(fp, problem.subject, spec)
                    continue
                item_id = backlog.next_id(text, spec.id_prefix)
                text = backlog.add(text, item_id, problem.item)
                news.append((problem.subject, item_id, problem.item, False))
            for fp, subject in recovered.items():
                if fp in on_file:
                    note = f"Recovered: {_when(now)}, {subject} is well again (noted by vigil)"
                    text = backlog.note_recovery(text, fp, note)
                    news.append((subject, backlog.item_id(text, fp), Item(fp, note, "", "", "",
                                                                        ""), True))
            replace_file(path, text.encode("utf-8"), mode)
            self._open = backlog.open_items(text)
        for subject, item_id, item, was_recovered in news:
            if was_recovered:
                log.info("remediation.updated", id=item_id, subject=subject, path=spec.path,
                         note=item.title)
            else:
                log.warning("remediation.added", id=item_id, subject=subject, title=item.title,
                            path=spec.path, acceptance=item.acceptance)
            self.notify(subject, item_id, item, was_recovered)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock beside the backlog (the backlog itself is replaced by a rename,
    so its own inode cannot carry the lock)."""
    lock = path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
