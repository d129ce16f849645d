"""Check type ``backlog``: the work in progress of a backlog file (a Markdown table, as
the seed's projects keep ``000_backlog.md``, or JSON, or CSV): how many items are in
progress, which have been for too long, and for how long on average."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Literal

from vigil import Check, RegisterCheck, Result, Status, above, hookimpl

#: How many stale items a summary names; the details list them all.
NAMED = 5


@dataclass
class BacklogOptions:
    path: str
    #: "auto": from the file's extension (.md, .json, .csv).
    format: Literal["auto", "markdown", "json", "csv"] = "auto"
    id_column: str = "ID"
    title_column: str = "Title"
    status_column: str = "Status"
    started_column: str = "Started"
    in_progress: list[str] = field(default_factory=lambda: ["in-progress", "doing"])
    stale_days: float = 7
    stale_warn: int | None = 1
    stale_crit: int | None = None


def markdown_rows(text: str) -> list[dict[str, str]]:
    """The rows of the first table in ``text``, as dicts by header."""
    rows: list[dict[str, str]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("|"):
            if header is not None:
                break  # the table ended
            continue
        cells = [c.strip() for c in stripped.strip("|").split("|")]
        if header is None:
            header = cells
        elif not all(set(c) <= set(":- ") for c in cells):  # not the |---| line
            rows.append(dict(zip(header, cells, strict=False)))
    return rows


def read_items(path: Path, fmt: str) -> list[dict[str, Any]]:
    text = path.read_text(encoding="utf-8")
    if fmt == "auto":
        fmt = {".json": "json", ".csv": "csv"}.get(path.suffix.lower(), "markdown")
    if fmt == "json":
        data = json.loads(text)
        items = data.get("items", []) if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise ValueError("expected a list of items (or {\"items\": [...]})")
        return [i for i in items if isinstance(i, dict)]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    return markdown_rows(text)


def parse_day(value: Any) -> date | None:
    text = str(value or "").strip()
    if not text:
        return None
    try:
        return datetime.fromisoformat(text[:10] if len(text) == 10 else text).date()
    except ValueError:
        return None


class Backlog(Check):
    Options = BacklogOptions
    options: BacklogOptions
    #: What it finds is for people to act on: /readyz fails on it only with
    #: ``readiness = true``.
    readiness = False
    metrics = ("items", "items_in_progress", "items_stale", "avg_days_in_progress", "oldest_days")

    def run(self) -> Result:
        opts = self.options
        try:
            items = read_items(Path(opts.path).expanduser(), opts.format)
        except (OSError, ValueError) as exc:
            return Result(Status.UNKNOWN, f"cannot read the backlog {opts.path}: "
                          f"{getattr(exc, 'strerror', None) or exc}", healable=False)
        today = datetime.now(UTC).date()
        wanted = {s.lower() for s in opts.in_progress}
        doing, undated = [], []
        for item in items:
            if str(item.get(opts.status_column, "")).strip().lower() not in wanted:
                continue
            started = parse_day(item.get(opts.started_column))
            name = f"{item.get(opts.id_column, '?')} {item.get(opts.title_column, '')}".strip()
            if started is None:
                undated.append(name)
            else:
                doing.append((name, (today - started).days))
        stale = sorted(((n, d) for n, d in doing if d >= opts.stale_days), key=lambda x: -x[1])
        ages = [d for _, d in doing]
        metrics = {"items": len(items), "items_in_progress": len(doing) + len(undated),
                   "items_stale": len(stale),
                   "avg_days_in_progress": round(sum(ages) / len(ages), 2) if ages else 0.0,
                   "oldest_days": max(ages, default=0)}
        summary = (f"{metrics['items_in_progress']} in progress, {len(stale)} stale "
                   f"(>= {opts.stale_days:g} days), average {metrics['avg_days_in_progress']:g} "
                   "days")
        if stale:
            summary += ": " + ", ".join(f"{n} ({d} days)" for n, d in stale[:NAMED])
        if undated:
            summary += f"; {len(undated)} without a {opts.started_column} date"
        return Result(above(len(stale), opts.stale_warn, opts.stale_crit), summary,
                      metrics=metrics, details={"stale": [n for n, _ in stale],
                                                "undated": undated}, healable=False)


@hookimpl
def vigil_check_types(register: RegisterCheck) -> None:
    register("backlog", Backlog)
