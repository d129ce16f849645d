"""``vigil logs``: read the JSON log back, from a file or the journal, filtered, pretty
or raw, followed live."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from daemon import proc

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_COLOURS = {"warning": "\033[33m", "error": "\033[31m", "critical": "\033[31m"}
_HEAD = ("timestamp", "level", "event", "check", "status", "summary")


def lines(path: Path, tail: int, follow: bool, poll: float = 0.2) -> Iterator[str]:
    """The last ``tail`` lines, then (with ``follow``) new ones as they come, reopening
    the file when logrotate replaces it."""
    f = path.open(encoding="utf-8", errors="replace")
    try:
        yield from deque(f, maxlen=tail)
        while follow:
            line = f.readline()
            if line:
                yield line
                continue
            time.sleep(poll)
            try:
                if os.stat(path).st_ino != os.fstat(f.fileno()).st_ino:
                    f.close()
                    f = path.open(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                continue
    finally:
        f.close()


class JournalError(Exception):
    """journalctl could not read the journal (no permission, no such journal)."""


def journal(unit: str, user: bool, tail: int, follow: bool) -> Iterator[str]:
    """The daemon's lines as journald keeps them, for a unit logging to stdout."""
    argv = ["journalctl", "--user-unit" if user else "--unit", unit, "--output=cat",
            "--quiet", "--no-pager", f"--lines={tail}"]
    if not follow:
        done = proc.run(argv, timeout=30, max_output=(tail + 1) * 8192, keep_tail=True)
        if done.returncode != 0:
            raise JournalError("cannot read the journal: "
                               + (done.stderr.strip() or f"journalctl exited {done.returncode}"))
        if not done.stdout.strip():
            scope = "--user" if user else "--system"
            raise JournalError(f"the journal holds no lines from {unit} ({scope[2:]}); "
                               f"is vigil installed there (vigil service install {scope})?")
        yield from done.stdout.splitlines(keepends=True)
        return
    # Following has no natural end; the reader stops it, and journalctl goes with it.
    child = subprocess.Popen([*argv, "--follow"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, text=True, errors="replace")
    try:
        assert child.stdout is not None
        yield from child.stdout
        if child.wait() != 0:
            raise JournalError(f"cannot read the journal: journalctl exited {child.returncode}")
    finally:
        child.kill()
        child.wait()


def keep(record: dict[str, Any], check: str | None, level: str | None) -> bool:
    if check and record.get("check") != check:
        return False
    return not level or LEVELS.get(record.get("level", "info"), 20) >= LEVELS[level]


def pretty(record: dict[str, Any], colour: bool) -> str:
    stamp = str(record.get("timestamp", ""))[11:23]
    lvl = str(record.get("level", ""))
    head = f"{stamp} {lvl:<7} {record.get('event', '')}"
    if "check" in record:
        head += f" [{record['check']}]"
    if "status" in record:
        head += f" {record['status']}"
    if record.get("summary"):
        head += f" - {record['summary']}"
    rest = " ".join(f"{k}={json.dumps(v)}" for k, v in record.items()
                    if k not in _HEAD and k != "metrics")
    text = f"{head}  {rest}" if rest else head
    if colour and lvl in _COLOURS:
        return f"{_COLOURS[lvl]}{text}\033[0m"
    return text


def show(source: Iterable[str], out: TextIO, *, check: str | None, level: str | None,
         raw: bool) -> None:
    colour = out.isatty()
    for line in source:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash, or not ours
        if not isinstance(record, dict) or not keep(record, check, level):
            continue
        out.write((line.rstrip("\n") if raw else pretty(record, colour)) + "\n")
        out.flush()
