"""Objectives in a real daemon: a real HTTP server that goes down burns an objective's
error budget, the page reaches a webhook sink and a real Alertmanager, and resolves when
the server is back; /metrics and /api/v1/slos say the same as `vigil slo`."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.helpers import alertmanager, free_port, run_vigil, wait_until


@contextmanager
def web_server(port: int) -> Iterator[None]:
    """Python's own HTTP server on ``port``, stopped when the block ends."""
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        server.terminate()
        server.wait(10)


def pages(bodies: list[dict[str, Any]]) -> list[str]:
    return [a["status"] for body in bodies for a in body["alerts"]
            if a["labels"].get("severity") == "page"]


def test_a_burning_objective_pages_through_alertmanager_and_resolves(
        write_config, daemon, receiver, tmp_path) -> None:
    port, http = free_port(), free_port()
    # 94% over 30 days: a page needs more than 86.4% of the runs failing over the last
    # hour and 5 minutes (14.4x the 6% budget), and resolves under 36% (6x, 6h/30m).
    with alertmanager(tmp_path, receiver.url("/am")) as am:
        config = write_config(f"""
            [daemon]
            state_dir = "state"
            slo_interval = "1s"
            http = "127.0.0.1:{http}"
            [checks.web]
            type = "http"
            url = "http://127.0.0.1:{port}/"
            interval = "300ms"
            [slos.web_availability]
            check = "web"
            objective = "94%"
            [alerts.team]
            type = "alertmanager"
            url = "http://127.0.0.1:{am}"
            on = ["burn"]
            [alerts.direct]
            type = "webhook"
            url = "{receiver.url('/direct')}"
            on = ["burn"]
        """)
        d = daemon(config).start()
        wait_until(lambda: pages(receiver.at("/am")), 30, "Alertmanager to route the page")
        wait_until(lambda: pages(receiver.at("/direct")), 10, "the webhook sink's page")
        alert = next(a for a in receiver.at("/am")[0]["alerts"]
                     if a["labels"]["severity"] == "page")
        assert {k: alert["labels"][k] for k in ("alertname", "slo", "reason")} == {
            "alertname": "VigilErrorBudgetBurn", "slo": "web_availability", "reason": "burn"}
        assert "web_availability is burning its error budget" in alert["annotations"]["summary"]
        assert alert["annotations"]["budget_remaining"].endswith("%")
        assert "1h " in alert["annotations"]["burn_rates"]
        [burning] = d.wait_for("slo.burning", slo="web_availability")
        assert burning["status"] == "page" and burning["burn_rate"]["5m"] > 14.4

        done = run_vigil("slo", "--json", "-c", str(config))
        assert done.returncode == 2, done.stderr
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=5) as got:
            text = got.read().decode()
        assert 'vigil_slo_objective{slo="web_availability"} 0.94' in text
        assert 'vigil_slo_burn_rate{slo="web_availability",window="5m"}' in text
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/api/v1/slos", timeout=5) as got:
            [api] = json.load(got)["slos"]
        assert api["name"] == "web_availability" and api["status"] == "page"

        with web_server(port):
            wait_until(lambda: "resolved" in pages(receiver.at("/am")), 90,
                       "Alertmanager to route the page's resolution")
            wait_until(lambda: "resolved" in pages(receiver.at("/direct")), 10,
                       "the webhook sink's resolution")
        assert pages(receiver.at("/direct")) == ["firing", "resolved"]
        assert d.events("alert.resolved", sink="direct", reason="burn")
