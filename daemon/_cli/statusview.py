"""``vigil status`` as text: what the state database says about each check and service."""

from __future__ import annotations

from datetime import UTC, datetime

from vigil._kit.redact import redact
from vigil._store.records import CheckEntry, HealRecord, ServiceEntry, Snapshot


def render(state: Snapshot) -> str:
    text = _table(_check_rows(state.get("checks", {})))
    if services := state.get("services"):
        text += "\n" + _table(_service_rows(services))
    return text


def _check_rows(checks: dict[str, CheckEntry]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("CHECK", "STATE", "STATUS", "AGE", "UP 24H", "SERVICE",
                                    "SUMMARY")]
    now = datetime.now(UTC)
    # .get throughout: the rows may have been saved by an older vigil.
    for name, entry in sorted(checks.items()):
        last = entry.get("last")
        age = "-"
        if last:
            age = f"{(now - datetime.fromisoformat(last['at'])).total_seconds():.0f}s"
        state = entry.get("state", "?") if entry.get("enabled", True) else "DISABLED"
        up = entry.get("uptime_24h")
        rows.append((name, state, last["status"] if last else "-", age,
                     "-" if up is None else f"{up * 100:.2f}%",
                     entry.get("service") or "-", redact(last["summary"] if last else "")))
    return rows


def _service_rows(services: dict[str, ServiceEntry]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = [("SERVICE", "MANAGER", "HEALS", "HEALING", "WATCHED", "PORT",
                                    "LAST HEAL")]
    for name, entry in sorted(services.items()):
        last: HealRecord = entry.get("last") or {}
        state = "GAVE UP" if entry.get("given_up") else ("yes" if entry.get("healing") else "-")
        outcome = last.get("outcome", "-").removeprefix("heal.")
        if last.get("reason") and outcome != "succeeded":
            outcome += f": {last['reason']}"
        port = (entry.get("manager_state") or {}).get("port")
        rows.append((name, entry.get("describe", entry.get("manager", "?")),
                     f"{len(entry.get('history', []))} of {entry.get('restarts', '?')}", state,
                     "yes" if entry.get("watching") else "no (polled)", str(port or "-"),
                     redact(outcome)))
    return rows


def _table(rows: list[tuple[str, ...]]) -> str:
    """Columns padded to fit; the last one runs free."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False))
                   + "  " + row[-1] + "\n" for row in rows)
