"""Objectives in a real daemon: a real HTTP server that goes down burns an objective's
error budget, the page reaches a webhook sink and a real Alertmanager, and resolves when
the server is back; /metrics and /api/v1/slos say the same as `vigil slo`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tests.helpers import (
    alertmanager,
    free_port,
    run_times,
    run_vigil,
    wait_until,
    write_history,
)
from vigil._config.loader import load
from vigil._slo.objectives import Objectives
from vigil._store.history import Retention


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


def pages(bodies: list[dict[str, Any]], slo: str = "web_availability") -> list[str]:
    return [a["status"] for body in bodies for a in body["alerts"]
            if a["labels"].get("severity") == "page" and a["labels"].get("slo") == slo]


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
            [slos.web_latency]
            check = "web"
            objective = "90%"
            sli = "latency"
            threshold = "2500ms"
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
        alert = next(a for body in receiver.at("/am") for a in body["alerts"]
                     if a["labels"]["severity"] == "page"
                     and a["labels"]["slo"] == "web_availability")
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
        # A refused connection is quick, but no run within 2.5 s that failed counts.
        assert 'vigil_check_runs_within_total{check="web",le="2.5"} 0.0' in text
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/api/v1/slos", timeout=5) as got:
            api = {s["name"]: s for s in json.load(got)["slos"]}
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/status", timeout=5) as got:
            page = got.read().decode()
        assert 'id="slo-web_availability"' in page and 'class="status sl-page"' in page
        assert "<dt>Objectives</dt><dd>web_availability, web_latency</dd>" in page
        assert api["web_availability"]["status"] == "page"
        # Every run failed: none was good for latency either, however quick.
        assert api["web_latency"]["good"] == 0 < api["web_latency"]["total"]

        with web_server(port):
            wait_until(lambda: "resolved" in pages(receiver.at("/am")), 90,
                       "Alertmanager to route the page's resolution")
            wait_until(lambda: "resolved" in pages(receiver.at("/direct")), 10,
                       "the webhook sink's resolution")
        assert pages(receiver.at("/direct")) == ["firing", "resolved"]
        assert d.events("alert.resolved", sink="direct", reason="burn")


def test_exported_slo_rules_page_in_promtool_where_vigil_pages(write_config, tmp_path) -> None:
    """Two hours of one run a second, all passing, then an hour with half of them CRIT:
    promtool's Prometheus pages (and opens a ticket) at the end, and not before; vigil,
    counting the same runs from its history, pages too."""
    promtool = shutil.which("promtool")
    assert promtool, "install the Debian package prometheus (it has promtool)"
    config = write_config("""
        [checks.c0]
        type = "tcp"
        port = 9
        [slos.db]
        check = "c0"
        objective = "99.9%"
    """)
    exported = run_vigil("export", "prometheus", "rules", "-c", str(config))
    assert exported.returncode == 0, exported.stderr
    rules = tmp_path / "rules.yml"
    rules.write_text(exported.stdout)
    checked = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True,
                             text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def series(status: str, values: str) -> dict[str, str]:
        return {"series": f'vigil_check_runs_total{{check="c0",status="{status}",'
                          f'instance="agent"}}', "values": values}

    def burn(severity: str) -> dict[str, Any]:
        return {"exp_labels": {"slo": "db", "severity": severity, "instance": "agent"},
                "exp_annotations": {
                    "summary": "db is burning its error budget on agent",
                    "description": "The objective is 99.9% over 30d; `vigil slo db` there "
                                   "shows the burn rates."}}

    test = {"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [series("OK", "0+60x120 7200+30x60"),
                         series("CRIT", "0+0x120 0+30x60"),
                         series("WARN", "0+0x180"), series("UNKNOWN", "0+0x180")],
        "alert_rule_test": [
            {"eval_time": "2h", "alertname": "VigilErrorBudgetBurn", "exp_alerts": []},
            {"eval_time": "3h", "alertname": "VigilErrorBudgetBurn",
             "exp_alerts": [burn("page"), burn("ticket")]}]}]}
    tests = tmp_path / "tests.yml"
    tests.write_text(json.dumps(test))  # JSON is YAML
    tested = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True,
                            text=True, timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr

    # The same runs, through vigil's own history.
    now = 1_700_000_000 // 3600 * 3600
    times = run_times(1, 3 / 24, now)
    conn = write_history(tmp_path / "state", 1, times,
                         lambda n, at: 2 if at >= now - 3600 and n % 2 else 0, now)
    [report] = Objectives(load(str(config)).slos, Retention(3600, 2 * 86400, 30 * 86400)
                          ).evaluate(conn, now)
    assert report.status == "page"
    assert [f"{c.severity} {c.long}/{c.short}" for c in report.firing] == [
        "page 1h/5m", "page 6h/30m", "ticket 1d/2h", "ticket 3d/6h"]


def test_vigil_slo_without_objectives_says_so_and_json_gives_an_empty_list(
        write_config) -> None:
    config = write_config('[daemon]\nstate_dir = "state"\n[checks.db]\ntype = "tcp"\n'
                          'port = 9\n')
    done = run_vigil("slo", "--json", "-c", str(config))
    assert (done.returncode, json.loads(done.stdout)) == (0, {"slos": []}), done.stderr
    text = run_vigil("slo", "-c", str(config))
    assert text.returncode == 0 and text.stdout.startswith("no objectives in "), text.stderr
