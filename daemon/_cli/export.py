"""``vigil export prometheus``: what a Prometheus server needs to watch many hosts'
agents: a scrape config for their ``/metrics`` and alerting rules on vigil's metrics
(a check FAILING, healing given up, heals failing, an agent down), and the config's
objectives as recording and alerting rules (Sloth's names), so that a fleet's Prometheus
counts what each agent counts."""

from __future__ import annotations

import argparse
import json
import re
import sys

from vigil._config.sections import SloSpec
from vigil._kit.durations import format_duration
from vigil._slo.burn import CONDITIONS, WINDOWS

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


def rules(for_s: float, slos: dict[str, SloSpec]) -> str:
    lines = ["groups:", f"  - name: {JOB}", "    rules:"]
    for name, expr, severity, summary, description in RULES:
        lines += [f"      - alert: {name}", f"        expr: {_quoted(expr)}",
                  f"        for: {format_duration(for_s) if for_s else '0s'}",
                  "        labels:", f"          severity: {severity}",
                  "        annotations:", f"          summary: {_quoted(summary)}",
                  f"          description: {_quoted(description)}"]
    for spec in slos.values():
        lines += _slo_rules(spec)
    return "\n".join(lines) + "\n"


def _selector(spec: SloSpec, extra: str = "") -> str:
    # A PromQL string holds the regex: its backslashes are doubled once more.
    names = "|".join(re.escape(name) for name in spec.covers).replace("\\", "\\\\")
    return f'{{check=~"{names}"{extra}}}'


def _error_ratio(spec: SloSpec, window: str) -> str | None:
    """The share of bad runs over ``window`` per agent; None for an SLI only the agent
    counts (events, time slices)."""
    def rate(metric: str, extra: str = "") -> str:
        return f"sum by (instance) (rate({metric}{_selector(spec, extra)}[{window}]))"

    total = rate("vigil_check_runs_total")
    if spec.sli == "availability" and spec.budgeting == "occurrences":
        bad = rate("vigil_check_runs_total", ', status=~"CRIT|UNKNOWN"')
        return f"{bad} / {total}"
    if spec.sli == "latency" and spec.threshold is not None:
        within = rate("vigil_check_runs_within_total", f', le="{spec.threshold:g}"')
        return f"({total} - {within}) / {total}"
    return None


def _slo_rules(spec: SloSpec) -> list[str]:
    """An objective's group: the error ratio over each burn window, the period's from
    the 5-minute one (as Sloth does), the objective's metadata, and the page and ticket
    alerts of the workbook's table, scaled to its window."""
    if _error_ratio(spec, "5m") is None:
        return [f"  # {spec.name} ({spec.sli}, {spec.budgeting}) is counted by the agent "
                "only: alert on its vigil_slo_burn_rate"]
    group = [f"  - name: {JOB}-slo-{spec.name}", "    rules:"]
    label = f"          slo: {_quoted(spec.name)}"
    days = f"{spec.window / 86400:g}d"
    records = {f"slo:sli_error:ratio_rate{w}": _error_ratio(spec, w) for w in WINDOWS}
    ratio5m = f'slo:sli_error:ratio_rate5m{{slo="{spec.name}"}}'
    # The period's ratio from the 5-minute one, unless a burn window is the period.
    records.setdefault(f"slo:sli_error:ratio_rate{days}",
                       f"sum_over_time({ratio5m}[{days}]) / count_over_time({ratio5m}[{days}])")
    records.update({
        "slo:objective:ratio": f"vector({spec.target})",
        "slo:error_budget:ratio": f"vector({spec.budget:.12g})",
        "slo:time_period:days": f"vector({spec.window / 86400:g})",
        "slo:period_error_budget_remaining:ratio":
            f'1 - slo:sli_error:ratio_rate{days}{{slo="{spec.name}"}} / {spec.budget:.12g}'})
    for record, expr in records.items():
        group += [f"      - record: {record}", f"        expr: {_quoted(str(expr))}",
                  "        labels:", label]
    for severity in ("page", "ticket"):
        either = " or ".join(
            f'(slo:sli_error:ratio_rate{c.long}{{slo="{spec.name}"}} > {limit:.6g} and '
            f'slo:sli_error:ratio_rate{c.short}{{slo="{spec.name}"}} > {limit:.6g})'
            for c in CONDITIONS if c.severity == severity
            for limit in [c.factor(spec.window) * spec.budget])
        group += ["      - alert: VigilErrorBudgetBurn", f"        expr: {_quoted(either)}",
                  "        labels:", label, f"          severity: {severity}",
                  "        annotations:",
                  "          summary: " + _quoted(f"{spec.name} is burning its error budget "
                                                  "on {{ $labels.instance }}"),
                  "          description: " + _quoted(
                      f"The objective is {spec.target * 100:g}% over {days}; `vigil slo "
                      f"{spec.name}` there shows the burn rates.")]
    return group


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


def cmd_export(args: argparse.Namespace, default_target: str | None,
               slos: dict[str, SloSpec], token_set: bool) -> int:
    """``token_set``: this config's agent wants a token (``http_token``) on /metrics."""
    if args.what == "rules":
        print(rules(args.for_s, slos), end="")
        return 0
    if token_set and not args.token_file:
        print("vigil: warning: this config sets http_token, so its /metrics answers 401 "
              "without it: give Prometheus the token with --token-file FILE (a file that "
              "holds it)", file=sys.stderr)
    targets = args.target or ([default_target] if default_target else [])
    if not targets:
        print("vigil: name the agents to scrape with --target HOST:PORT (this config "
              "has no http address)", file=sys.stderr)
        return 2
    print(config(targets, args.rules, args.token_file, args.interval), end="")
    return 0
