"""``vigil logs``: read the JSON log back, from a file or the journal, filtered, pretty
or raw, followed live."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Generator, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from vigil._kit.visible import visible

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_COLOURS = {"warning": "\033[33m", "error": "\033[31m", "critical": "\033[31m"}
_HEAD = ("timestamp", "level", "event", "check", "status", "summary")


#: What a source yields where the lines already written end and live ones begin.
CAUGHT_UP = ""


def file_lines(path: Path, follow: bool, poll: float = 0.2) -> Generator[str, None, None]:
    """Every line of the file, CAUGHT_UP, then (with ``follow``) new lines as they come,
    as ``tail -F`` follows: from the top of a new file when logrotate moves the old one
    away, and from the top again when ``copytruncate`` empties it."""
    f = path.open("rb")
    try:
        yield from (raw.decode(errors="replace") for raw in f)
        yield CAUGHT_UP
        while follow:
            raw = f.readline()
            if raw:
                yield raw.decode(errors="replace")
                continue
            time.sleep(poll)
            try:
                if os.stat(path).st_ino != os.fstat(f.fileno()).st_ino:
                    f.close()
                    f = path.open("rb")
                elif os.fstat(f.fileno()).st_size < f.tell():
                    f.seek(0)
            except FileNotFoundError:
                continue
    finally:
        f.close()


class JournalError(Exception):
    """journalctl could not read the journal (no permission, no such journal)."""


def journal(unit: str, user: bool, backlog: int | None,
            follow: bool) -> Generator[str, None, None]:
    """The daemon's lines as journald keeps them, for a unit logging to stdout: the last
    ``backlog`` lines (None: all), CAUGHT_UP, then (with ``follow``) new ones."""
    base = ["journalctl", "--user-unit" if user else "--unit", unit, "--output=cat",
            "--quiet", "--no-pager"]
    with tempfile.TemporaryDirectory(prefix="vigil-logs-") as folder:
        # The first read leaves its last entry's cursor here; following starts after it.
        cursor = f"--cursor-file={Path(folder) / 'cursor'}"
        seen = 0
        for line in _journalctl([*base, f"--lines={backlog or 'all'}", cursor]):
            seen += 1
            yield line
        if not seen and not follow:
            scope = "--user" if user else "--system"
            raise JournalError(f"the journal holds no lines from {unit} ({scope[2:]}); "
                               f"is vigil installed there (vigil service install {scope})?")
        yield CAUGHT_UP
        if follow:
            yield from _journalctl([*base, "--lines=all", "--follow", cursor])


def _journalctl(argv: list[str]) -> Iterator[str]:
    # Streamed, not collected: a long journal costs the reader nothing. Closing the
    # generator (Ctrl-C while following) stops journalctl with it.
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, errors="replace")
    assert child.stdout is not None and child.stderr is not None
    try:
        yield from child.stdout
        # With --cursor-file, an empty journal exits 1 without a word (--quiet): that is
        # no lines, not a failure. A real failure says why on stderr.
        why = child.stderr.read(4096).strip()
        if child.wait() != 0 and why:
            raise JournalError(f"cannot read the journal: {why}")
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
        child.stderr.close()


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
    head = visible(head)  # a check's words, on a terminal
    rest = " ".join(f"{k}={json.dumps(v)}" for k, v in record.items()
                    if k not in _HEAD and k != "metrics")
    text = f"{head}  {rest}" if rest else head
    if colour and lvl in _COLOURS:
        return f"{_COLOURS[lvl]}{text}\033[0m"
    return text


def show(source: Iterable[str], out: TextIO, *, tail: int, check: str | None,
         level: str | None, raw: bool) -> None:
    """The last ``tail`` lines that pass the filters, then every new one that does."""
    colour = out.isatty()
    backlog: deque[str] | None = deque(maxlen=tail)
    for line in source:
        if line == CAUGHT_UP:
            _write(out, backlog or ())
            backlog = None
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut by a crash, or not ours
        if not isinstance(record, dict) or not keep(record, check, level):
            continue
        text = line.rstrip("\n") if raw else pretty(record, colour)
        if backlog is not None:
            backlog.append(text)
        else:
            _write(out, [text])
    _write(out, backlog or ())


def _write(out: TextIO, texts: Iterable[str]) -> None:
    for text in texts:
        out.write(text + "\n")
    out.flush()
