"""Edit a Markdown backlog as a person would: a row added to its table and a block of
details added at its end for each remediation item, a line noting the recovery added
to that block later; every other byte of the file stays as it was. Each item carries
a marker with its fingerprint, so that vigil finds its own items again after a restart."""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKER = re.compile(r"<!-- vigil:remediation (?P<fp>[0-9a-f]+) (?P<state>open|recovered) -->")
NEW_TABLE = "| ID | Title | Status | Started |\n|----|-------|--------|---------|\n"


@dataclass
class Item:
    fingerprint: str
    title: str
    started: str
    problem: str
    acceptance: str
    where: str


def open_items(text: str) -> set[str]:
    """The fingerprints of vigil's items not yet noted as recovered."""
    return {m["fp"] for m in MARKER.finditer(text) if m["state"] == "open"}


def item_id(text: str, fingerprint: str) -> str:
    """The id of the item whose marker holds ``fingerprint`` (from its heading)."""
    start = text.find(f"<!-- vigil:remediation {fingerprint} ")
    heading = text.rfind("### ", 0, start)
    return text[heading + 4:start].split(":", 1)[0].strip() if heading >= 0 else fingerprint


def next_id(text: str, prefix: str) -> str:
    numbers = [int(n) for n in re.findall(rf"(?<![\w-]){re.escape(prefix)}(\d+)\b", text)]
    return f"{prefix}{max(numbers, default=0) + 1}"


def _newline(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def add(text: str, item_id: str, item: Item) -> str:
    """``text`` with the item's row added after the first table's last row (a table is
    made at the end when there is none) and its details block added at the end."""
    nl = _newline(text)
    lines = text.splitlines(keepends=True)
    header, last = None, None
    for index, line in enumerate(lines):
        if line.lstrip().startswith("|"):
            if header is None:
                header = [c.strip().lower() for c in line.strip().strip("|").split("|")]
            last = index
        elif header is not None:
            break
    values = {"id": item_id, "title": item.title, "status": "todo", "started": item.started}
    if header is None:
        if text and not text.endswith(("\n", "\r")):
            text += nl
        text += nl + NEW_TABLE.replace("\n", nl)
        lines = text.splitlines(keepends=True)
        header, last = ["id", "title", "status", "started"], len(lines) - 1
    assert last is not None
    row = "| " + " | ".join(_cell(values.get(column, "")) for column in header) + " |" + nl
    if not lines[last].endswith(("\n", "\r")):
        lines[last] += nl
    lines.insert(last + 1, row)
    text = "".join(lines)
    if not text.endswith(("\n", "\r")):
        text += nl
    block = [f"### {item_id}: {item.title}",
             f"<!-- vigil:remediation {item.fingerprint} open -->",
             f"- Problem: {item.problem}",
             f"- Acceptance criteria: {item.acceptance}",
             f"- Where to look: {item.where}"]
    return text + nl + nl.join(block) + nl


def note_recovery(text: str, fingerprint: str, note: str) -> str:
    """``text`` with the item's marker set to recovered and ``note`` added as the last
    line of its block."""
    marker = f"<!-- vigil:remediation {fingerprint} open -->"
    start = text.find(marker)
    if start < 0:
        return text
    nl = _newline(text)
    lines = text[start:].splitlines(keepends=True)
    end = 1
    while end < len(lines) and lines[end].startswith("- "):
        end += 1
    block_end = start + sum(len(line) for line in lines[:end])
    before = text[:block_end]
    if not before.endswith(("\n", "\r")):
        before += nl
    updated = before + f"- {note}{nl}" + text[block_end:]
    return updated.replace(marker, marker.replace(" open ", " recovered "), 1)
