"""The status page as rendered, in-process: its size with many checks, and its words."""

from __future__ import annotations

from typing import Any, cast

from vigil._store.records import CheckEntry, HealState, Held, LastResult, ServiceEntry, State
from vigil._web.statusdata import HealLine, Seen


def check_entry(**changes: Any) -> CheckEntry:
    entry: CheckEntry = {
        "type": "postgres", "enabled": True, "service": "db", "interval_s": 10.0,
        "state": State.OK, "failures": 0, "successes": 1, "since": 1.8e9, "last": None,
        "counts": {"runs": 1}}
    return cast(CheckEntry, {**entry, **changes})


def service_entry(**changes: Any) -> ServiceEntry:
    entry: ServiceEntry = {
        "state": HealState.READY, "history": [], "given_up": False, "not_before": 0.0,
        "streak": 0, "held_since": None, "last": None, "healing": False,
        "manager": "systemd", "describe": "systemd unit postgresql", "watching": True,
        "heals": {}, "restarts": 3, "within": 600.0, "manager_state": {}}
    return cast(ServiceEntry, {**entry, **changes})


def test_the_page_of_200_checks_stays_under_a_megabyte() -> None:
    from vigil._web.statuspage import render

    summary = "127.0.0.1:5432 answered in 0.4 ms; 12 connections of 100, replication lag 0 s"
    metrics = {f"metric_{i}_ms": 1.5 * i for i in range(7)}
    last: LastResult = {"status": "OK", "summary": summary, "metrics": metrics,
                        "duration_ms": 0.4, "at": "2026-12-02T07:00:00+00:00"}
    checks = {f"check-{i:03}": check_entry(last=last) for i in range(200)}
    # Every beat with its own summary: the worst case for the embedded data.
    seen: dict[str, Seen] = {
        name: {"beats": [{"at": 1.8e9 + i, "status": "OK", "duration_ms": 0.4 + i / 7,
                          "summary": f"{summary} #{i}"} for i in range(60)],
               "uptime": {"24h": 0.9999, "7d": 0.999, "30d": 0.99}, "anomalies": []}
        for name in checks}
    services = {"db": service_entry()}
    page = render(checks, services, seen, {}).encode()
    assert page.count(b'class="check ') == 200
    assert len(page) < 1_000_000, f"{len(page) / 1e6:.2f} MB"


def test_the_page_names_metrics_and_budgets_in_words() -> None:
    from vigil._web.statuspage import figure, metric_label, render

    assert metric_label('events{signature="QA"}') == "events (signature QA)"
    assert metric_label('role_requests{role="planner",host="a"}') == \
        "role_requests (role planner, host a)"
    assert [figure(v) for v in (0.754883, 12.345, 3.0, 1234.5, 250.25)] == [
        "0.755", "12.3", "3", "1,234", "250.2"]
    services = {"db": service_entry(state=HealState.GAVE_UP, history=[1.0, 2.0],
                                    given_up=True)}
    heals: dict[str, list[HealLine]] = {"db": [{"at": 2.0, "outcome": "failed", "recovery_s": None,
                     "reason": "start command failed"},
                    {"at": 1.0, "outcome": "succeeded", "recovery_s": 0.42, "reason": None}]}
    heals["db"].insert(0, {"at": 3.0, "outcome": "deploy.healthy", "recovery_s": 6.1,
                           "reason": "deploy"})
    html = render({}, services, {}, heals)
    assert "deployed, healthy in 6.1 s" in html
    assert "restarts used: 2 of 3 in 10m" in html
    assert "heal failed (start command failed)" in html and "healed in 0.4 s" in html
    assert "heal.succeeded" not in html.split("<script>")[0]


def test_a_check_and_a_service_under_maintenance_say_so() -> None:
    from vigil._web.statuspage import render

    held: Held = {"target": "db", "until": None, "reason": "upgrade to 16",
                  "by": "vigil maintenance"}
    checks = {"db": check_entry(state=State.MAINTENANCE, maintenance=held)}
    html = render(checks, {"db": service_entry(maintenance=held)}, {}, {})
    assert html.count("Under maintenance until ended (by vigil maintenance): upgrade to 16") == 2
    assert 'data-count="MAINTENANCE">1</span> in maintenance' in html
