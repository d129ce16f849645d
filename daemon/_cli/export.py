"""``vigil export prometheus``: what a Prometheus server needs to watch many hosts'
agents: a scrape config for their ``/metrics`` and alerting rules on vigil's metrics
(a check FAILING, healing given up, heals failing, an agent down)."""

from __future__ import annotations

import argparse
import json
import sys

from vigil._kit.durations import format_duration

JOB = "vigil"

#: (name, expression, severity, summary, description); ``for`` is the caller's.
RULES = [
    ("VigilCheckFailing", 'vigil_check_state{state="FAILING"} == 1 unless on(instance, check) '
     'vigil_check_maintenance == 1', "warning",
     "{{ $labels.check }} is FAILING on {{ $labels.instance }}",
     "vigil confirmed the check failing (fall results in a row); its own alerts say what "
     "healing tried."),
    ("VigilHealingGaveUp", "vigil_service_given_up == 1", "critical",
     "vigil gave up healing {{ $labels.service }} on {{ $labels.instance }}",
     "The restart budget is spent; run `vigil heal {{ $labels.service }}` there once fixed."),
    ("VigilHealsFailing", 'increase(vigil_heals_total{outcome="failed"}[15m]) > 0', "warning",
     "heals of {{ $labels.service }} fail on {{ $labels.instance }}",
     "At least one heal failed in the last 15 minutes."),
    ("VigilAlertSinkDown", "vigil_alert_sink_up == 0", "warning",
     "vigil on {{ $labels.instance }} cannot deliver to its alert sink {{ $labels.sink }}",
     "Its alerts wait in the outbox and are retried; `vigil alerts` there shows the "
     "sink's answer."),
    ("VigilAgentDown", f'up{{job="{JOB}"}} == 0', "critical",
     "the vigil agent on {{ $labels.instance }} does not answer",
     "Prometheus cannot scrape it: nothing on that host is watched or healed."),
]


def _quoted(text: str) -> str:
    # A JSON string is a YAML string: quoting done right, whatever the text holds.
    return json.dumps(text)


def rules(for_s: float) -> str:
    lines = ["groups:", f"  - name: {JOB}", "    rules:"]
    for name, expr, severity, summary, description in RULES:
        lines += [f"      - alert: {name}", f"        expr: {_quoted(expr)}",
                  f"        for: {format_duration(for_s) if for_s else '0s'}",
                  "        labels:", f"          severity: {severity}",
                  "        annotations:", f"          summary: {_quoted(summary)}",
                  f"          description: {_quoted(description)}"]
    return "\n".join(lines) + "\n"


def config(targets: list[str], rules_file: str, token_file: str | None,
           interval: float) -> str:
    lines = ["global:", f"  scrape_interval: {format_duration(interval)}",
             f"  evaluation_interval: {format_duration(interval)}",
             "rule_files:", f"  - {_quoted(rules_file)}", "scrape_configs:",
             f"  - job_name: {JOB}"]
    if token_file:
        lines += ["    authorization:", f"      credentials_file: {_quoted(token_file)}"]
    lines += ["    static_configs:", "      - targets:"]
    lines += [f"          - {_quoted(target)}" for target in targets]
    return "\n".join(lines) + "\n"


def cmd_export(args: argparse.Namespace, default_target: str | None) -> int:
    if args.what == "rules":
        print(rules(args.for_s), end="")
        return 0
    targets = args.target or ([default_target] if default_target else [])
    if not targets:
        print("vigil: name the agents to scrape with --target HOST:PORT (this config "
              "has no http address)", file=sys.stderr)
        return 2
    print(config(targets, args.rules, args.token_file, args.interval), end="")
    return 0
