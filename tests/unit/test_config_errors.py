"""Config mistakes, each named by file, key and line, and said in words."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import FIXTURES
from vigil._api.errors import ConfigError
from vigil._config import loader as config

HEAD = '[daemon]\nstate_dir = "state"\n'
ALERTABLE = "[checks.a]\ntype = 'system'\n"


CASES = [
    ("bad toml", HEAD + "[checks.a\ntype = 'system'\n", "", 3, "not valid TOML"),
    ("unknown section", HEAD + "[chekcs.a]\ntype = 'system'\n", "chekcs", 3, "unknown section"),
    ("unknown daemon key", HEAD + "log_lvl = 'info'\n", "daemon.log_lvl", 3, "unknown key"),
    ("bad log level", HEAD + "log_level = 'loud'\n", "daemon.log_level", 3, "one of"),
    ("bad log_results", HEAD + "log_results = 'some'\n", "daemon.log_results", 3,
     "one of changes, all"),
    ("raw history too short", HEAD + "history_keep_results = '1m'\n",
     "daemon.history_keep_results", 3, "at least 15m"),
    ("history tiers out of order", HEAD + "history_keep_5m = '2d'\nhistory_keep = '1d'\n",
     "daemon.history_keep", 4, "at least history_keep_5m (2d)"),
    ("plugins not a list", HEAD + "plugins = 'x'\n", "daemon.plugins", 3, "expected a list"),
    ("a list's bad item", HEAD + "[services.db]\nmanager = 'systemd'\nunit = 'pg'\n"
     "depends_on = ['cache', 2]\n", "services.db.depends_on[1]", 6,
     "expected a string, got integer 2"),
    ("a plugin option's bad item", HEAD + "[checks.a]\ntype = 'tcp'\nport = 1\n"
     "[checks.b]\ntype = 'exec'\ncommand = ['check_dummy', 0]\n", "checks.b.command[1]", 8,
     "expected a string, got integer 0"),
    ("bad duration", HEAD + "[checks.a]\ntype = 'system'\ninterval = 'ten seconds'\n",
     "checks.a.interval", 5, "bad duration"),
    ("negative duration", HEAD + "[checks.a]\ntype = 'system'\ntimeout = -5\n",
     "checks.a.timeout", 5, "negative"),
    ("zero interval", HEAD + "[checks.a]\ntype = 'system'\ninterval = 0\n",
     "checks.a.interval", 5, "greater than zero"),
    ("zero interval in defaults", HEAD + "[defaults]\ninterval = '0s'\n[checks.a]\ntype='system'\n",
     "defaults.interval", 4, "greater than zero"),
    ("fall not an integer", HEAD + "[checks.a]\ntype = 'system'\nfall = 'three'\n",
     "checks.a.fall", 5, "expected an integer"),
    ("rise is a boolean", HEAD + "[checks.a]\ntype = 'system'\nrise = true\n",
     "checks.a.rise", 5, "expected an integer"),
    ("enabled not a boolean", HEAD + "[checks.a]\ntype = 'system'\nenabled = 'yes'\n",
     "checks.a.enabled", 5, "true or false"),
    ("missing type", HEAD + "[checks.a]\ninterval = '5s'\n", "checks.a.type", 3, "required"),
    ("unknown type", HEAD + "[checks.a]\ntype = 'postgress'\n", "checks.a.type", 4,
     "unknown check type 'postgress'"),
    ("undeclared service", HEAD + "[checks.a]\ntype = 'system'\nservice = 'db'\n",
     "checks.a.service", 5, "no service named 'db'"),
    ("unknown check option", HEAD + "[checks.a]\ntype = 'tcp'\nport = 80\nprot = 81\n",
     "checks.a.prot", 6, "unknown option"),
    ("derived option set by hand", HEAD + "[checks.a]\ntype = 'mcp'\nport_list = [3000]\n",
     "checks.a.port_list", 5, "unknown option"),
    ("missing required option", HEAD + "[checks.a]\ntype = 'tcp'\n", "checks.a.port", 3,
     "required"),
    ("option of wrong type", HEAD + "[checks.a]\ntype = 'tcp'\nport = '80'\n",
     "checks.a.port", 5, "expected an integer"),
    ("option out of range", HEAD + "[checks.a]\ntype = 'tcp'\nport = 70000\n",
     "checks.a.port", 5, "between 1 and 65535"),
    ("check section not a table", HEAD + "[checks]\na = 5\n", "checks.a", 4,
     "expected a table"),
    ("unknown manager", HEAD + "[services.db]\nmanager = 'upstart'\n",
     "services.db.manager", 4, "unknown manager"),
    ("http open to other hosts without a token", HEAD + "http = '0.0.0.0:8787'\n",
     "daemon.http", 3, "0.0.0.0 is reachable from other hosts: set http_token"),
    ("a one-character token on an open address",
     HEAD + "http = '0.0.0.0:8787'\nhttp_token = 'x'\n", "daemon.http_token", 4,
     "a token of at least 16 characters guards it"),
    ("a token of whitespace", HEAD + "http_token = '   '\n", "daemon.http_token", 3,
     "a token has no spaces or line breaks in it"),
    ("a token that no header can carry", HEAD + "http_token = 'tökén-of-sixteen-chars'\n",
     "daemon.http_token", 3, "a token is printable ASCII"),
    ("http not host:port", HEAD + "http = '8787'\n", "daemon.http", 3,
     'expected "host:port"'),
    ("http token file missing", HEAD + "http_token_file = 'nope.token'\n",
     "daemon.http_token_file", 3, "cannot read"),
    ("{port} without ports", HEAD + "[services.mcp]\nmanager = 'command'\n"
     "start = ['server', '--port', '{port}']\n", "services.mcp.start", 5,
     "has a {port} placeholder, but the service has no ports"),
    ("unknown service key", HEAD + "[services.db]\nmanager = 'systemd'\nunti = 'pg'\n",
     "services.db.unti", 5, "unknown option (known: env_file, port_variable, unit, user)"),
    ("missing dependency", HEAD + "[services.a]\nmanager = 'systemd'\ndepends_on = ['b']\n",
     "services.a.depends_on", 5, "no service named 'b'"),
    ("dependency cycle", HEAD + "[services.a]\nmanager='systemd'\ndepends_on=['b']\n"
     "[services.b]\nmanager='systemd'\ndepends_on=['a']\n", "services.a.depends_on", 5,
     "dependency cycle: a -> b -> a"),
    ("exec program missing", HEAD + "[checks.a]\ntype = 'exec'\ncommand = ['check_nothing_here']\n",
     "checks.a.command", 5, "not found"),
    ("bad regex", HEAD + "[checks.a]\ntype = 'process'\nmatch = '(['\n", "checks.a.match", 5,
     "regular expression"),
    ("plugin module missing", HEAD + "plugins = ['no_such_plugin_mod']\n[checks.a]\ntype='x'\n",
     "checks.a.type", 5, "no_such_plugin_mod"),
    ("unknown alert sink", HEAD + ALERTABLE + "[alerts.x]\ntype = 'pagerduty'\n",
     "alerts.x.type", 6, "unknown alert sink type 'pagerduty' (known: alertmanager, command"),
    ("alert sink option missing", HEAD + ALERTABLE + "[alerts.x]\ntype = 'webhook'\n",
     "alerts.x.url", 5, "required"),
    ("unknown alert event", HEAD + ALERTABLE + "[alerts.x]\ntype = 'slack'\nurl = 'u'\n"
     "on = ['failed']\n", "alerts.x.on", 8, "unknown event 'failed' (known: failing, "),
    ("alert on WARN", HEAD + ALERTABLE + "[alerts.x]\ntype = 'slack'\nurl = 'u'\n"
     "min_status = 'WARN'\n", "alerts.x.min_status", 8, "a WARN result passes"),
    ("alert glob matching nothing", HEAD + ALERTABLE + "[alerts.x]\ntype = 'slack'\n"
     "url = 'u'\nchecks = ['db*']\n", "alerts.x.checks", 8, "matches no configured check"),
    ("alert for an unknown service", HEAD + ALERTABLE + "[alerts.x]\ntype = 'slack'\n"
     "url = 'u'\nservices = ['pg']\n", "alerts.x.services", 8, "no service named 'pg'"),
    ("alert command empty", HEAD + ALERTABLE + "[alerts.x]\ntype = 'command'\ncommand = []\n",
     "alerts.x.command", 7, "must name a program"),
    ("remediation into a JSON file", HEAD + "[remediation]\npath = 'backlog.json'\n",
     "remediation.path", 4, "a Markdown backlog: a .md file, got 'backlog.json'"),
    ("unknown remediation trigger", HEAD + "[remediation]\npath = 'b.md'\n"
     "when = ['failing:soon']\n", "remediation.when", 5, "'failing:soon': bad duration"),
    ("remediation trigger misspelt", HEAD + "[remediation]\npath = 'b.md'\n"
     "when = ['gaveup']\n", "remediation.when", 5, "unknown trigger 'gaveup'"),
    ("events rate without ok_field", HEAD + "[checks.v]\ntype = 'events'\npath = 'e.jsonl'\n"
     "failure_rate_warn_pct = 10\n", "checks.v.ok_field", 3, "is required for failure rates"),
    ("docs without root", HEAD + "[checks.d]\ntype = 'docs'\n", "checks.d.root", 3,
     "required"),
    ("backlog format unknown", HEAD + "[checks.b]\ntype = 'backlog'\npath = 'b.md'\n"
     "format = 'xlsx'\n", "checks.b.format", 6, "must be one of"),
    ("alert repeat not a duration", HEAD + ALERTABLE + "[alerts.x]\ntype = 'slack'\n"
     "url = 'u'\nrepeat = 'often'\n", "alerts.x.repeat", 8, "bad duration"),
]


@pytest.mark.parametrize(("body", "key", "line", "words"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_config_error_names_file_key_and_line(tmp_path: Path, body: str, key: str, line: int,
                                              words: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ConfigError) as caught:
        config.load(str(path))
    matching = [i for i in caught.value.issues if i.key == key]
    assert matching, f"no issue for {key!r}: {caught.value.issues}"
    issue = matching[0]
    assert issue.file == str(path)
    assert issue.line == line, str(issue)
    assert words in issue.message
    assert str(issue).startswith(f"{path}:{line}: ")


def test_a_plugin_whose_options_or_constructor_raise_is_blamed_at_the_checks_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(FIXTURES)
    path = tmp_path / "c.toml"
    path.write_text(HEAD + 'plugins = ["misbehaving"]\n'
                    "[checks.a]\ntype = 'picky'\nn = -1\n[checks.b]\ntype = 'fragile'\n")
    with pytest.raises(ConfigError) as caught:
        config.load(str(path))
    said = [str(issue) for issue in caught.value.issues]
    assert said == [
        f"{path}:4: checks.a: PickyOptions rejected these options: ValueError: n must be "
        ">= 0 (plugin 'misbehaving')",
        f"{path}:7: checks.b: Fragile failed to set up: KeyError: 'setting' (plugin "
        "'misbehaving')"]


def test_a_plugin_can_report_several_problems_at_once(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "window.py").write_text(
        "from dataclasses import dataclass\n"
        "from vigil import Check, ConfigError, hookimpl\n\n"
        "@dataclass\nclass WindowOptions:\n    low: int\n    high: int\n\n"
        "    def __post_init__(self) -> None:\n"
        "        problems = []\n"
        "        if self.low < 0:\n            problems.append(('low', 'must be >= 0'))\n"
        "        if self.high <= self.low:\n"
        "            problems.append(('high', 'must be above low'))\n"
        "        if problems:\n            raise ConfigError(problems=problems)\n\n"
        "class Window(Check):\n    Options = WindowOptions\n\n"
        "@hookimpl\ndef vigil_check_types(register):\n    register('window', Window)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "c.toml"
    path.write_text(HEAD + 'plugins = ["window"]\n'
                    "[checks.w]\ntype = 'window'\nlow = -1\nhigh = -5\n")
    with pytest.raises(ConfigError) as caught:
        config.load(str(path))
    assert [str(issue) for issue in caught.value.issues] == [
        f"{path}:6: checks.w.low: must be >= 0", f"{path}:7: checks.w.high: must be above low"]
    one = ConfigError("port", "must be between 1 and 65535")
    assert one.problems == [("port", "must be between 1 and 65535")] and one.key == "port"


def test_a_scheduled_window_opens_on_its_cron_and_lasts_its_duration(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(HEAD + "[services.db]\nmanager = 'systemd'\nunit = 'pg'\n"
                    "[maintenance.vacuum]\nschedule = '30 3 * * *'\nduration = '20m'\n"
                    "services = ['db']\ntimezone = 'Europe/Paris'\nreason = 'nightly vacuum'\n")
    spec = config.load(str(path)).schedules["vacuum"]
    opens = datetime(2026, 12, 2, 3, 30, tzinfo=ZoneInfo("Europe/Paris")).timestamp()
    assert spec.opened(opens - 1) is None
    assert spec.opened(opens) == opens and spec.opened(opens + 1199) == opens
    assert spec.opened(opens + 1200) is None, "twenty minutes, then closed"
    assert spec.opened(opens + 86400 + 60) == opens + 86400, "again the next night"


@pytest.mark.parametrize(("schedule", "first"), [
    # From Tuesday 2026-12-08, Paris: weekday 0 and 7 are Sunday, as in cron.
    ("0 4 * * 0", datetime(2026, 12, 13, 4)), ("0 4 * * 7", datetime(2026, 12, 13, 4)),
    ("0 4 * * 1", datetime(2026, 12, 14, 4)), ("0 4 * * sat", datetime(2026, 12, 12, 4)),
    ("0 4 * * 1-5", datetime(2026, 12, 9, 4)), ("0 4 * * 5/2", datetime(2026, 12, 11, 4)),
    # A day of the month and a weekday: either (the 1st, or any Friday), not both.
    ("0 4 1 * 5", datetime(2026, 12, 11, 4)), ("0 4 9 * 6", datetime(2026, 12, 9, 4)),
])
def test_a_schedule_reads_its_fields_as_cron_does(tmp_path: Path, schedule: str,
                                                  first: datetime) -> None:
    path = tmp_path / "c.toml"
    path.write_text(HEAD + "[services.db]\nmanager = 'systemd'\nunit = 'pg'\n"
                    f"[maintenance.backup]\nschedule = '{schedule}'\nduration = '1h'\n"
                    "services = ['db']\ntimezone = 'Europe/Paris'\n")
    spec = config.load(str(path)).schedules["backup"]
    paris = ZoneInfo("Europe/Paris")
    tuesday = datetime(2026, 12, 8, 12, tzinfo=paris).timestamp()
    assert spec.next_start(tuesday) == first.replace(tzinfo=paris).timestamp(), schedule


@pytest.mark.parametrize(("body", "key", "words"), [
    ("schedule = '30 3 * * 8'\nduration = '1h'\nservices = ['db']\n", "schedule",
     "weekday '8': 0-7 (0 and 7 are Sunday)"),
    ("schedule = '* * * * *'\nduration = '30m'\nservices = ['db']\n", "duration",
     "30m is as long as the 1m between this schedule's starts, or longer"),
    ("schedule = '0 2 * * *'\nduration = '2d'\nservices = ['db']\n", "duration",
     "2d is as long as the 1d between this schedule's starts"),
    ("schedule = '30 3 * *'\nduration = '1h'\nservices = ['db']\n", "schedule",
     "expected five cron fields"),
    ("schedule = '30 25 * * *'\nduration = '1h'\nservices = ['db']\n", "schedule",
     "'30 25 * * *': Error validating expression '25'"),
    ("schedule = '30 3 * * *'\nduration = '1h'\nservices = ['db']\ntimezone = 'Mars/Base'\n",
     "timezone", "unknown time zone 'Mars/Base'"),
    ("schedule = '30 3 * * *'\nduration = '0s'\nservices = ['db']\n", "duration",
     "must be greater than zero"),
    ("schedule = '30 3 * * *'\nduration = '1h'\nchecks = ['nope*']\n", "checks",
     "'nope*' matches no check"),
    ("schedule = '30 3 * * *'\nduration = '1h'\nservices = ['dv']\n", "services",
     "no service named 'dv'"),
    ("schedule = '30 3 * * *'\nduration = '1h'\n", "", "name what it covers"),
    ("schedule = '30 3 * * *'\nservices = ['db']\n", "duration", "is required"),
])
def test_a_bad_scheduled_window_is_named_at_its_key(tmp_path: Path, body: str, key: str,
                                                    words: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(HEAD + "[services.db]\nmanager = 'systemd'\nunit = 'pg'\n"
                    "[maintenance.w]\n" + body)
    with pytest.raises(ConfigError) as caught:
        config.load(str(path))
    issue = next(i for i in caught.value.issues if i.key.startswith("maintenance.w"))
    assert issue.key == ".".join(filter(None, ["maintenance.w", key])), issue
    assert words in issue.message, issue
