"""Unit tests of the small pure pieces: durations, state machine, perfdata, redaction."""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from vigil import Check, Duration, Status, parse_duration, redact
from vigil._config.options import parse_options, unsupported
from vigil._config.plugins import _class_problem
from vigil._engine.statemachine import CheckState
from vigil._kit.durations import format_duration
from vigil._kit.perfdata import format_perfdata, parse_perfdata, split_plugin_output
from vigil._kit.redact import redact_value
from vigil._store.records import State


@pytest.mark.parametrize(("text", "seconds"), [
    ("250ms", 0.25), ("10s", 10), ("5m", 300), ("1h", 3600), ("2d", 172800), (7, 7),
    (1.5, 1.5), ("3", 3), (" 1.5 s ", 1.5),
])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["ten", "5 minutes", "1y", "", True, None, [1], "-3s", -1])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration_round_trips() -> None:
    for seconds in (0.25, 10, 90, 300, 7200):
        assert parse_duration(format_duration(seconds)) == seconds


def run(machine: CheckState, statuses: str) -> list[tuple[State, State]]:
    codes = {"o": Status.OK, "w": Status.WARN, "c": Status.CRIT, "u": Status.UNKNOWN}
    return [t for s in statuses if (t := machine.observe(codes[s]))]


def test_state_machine_fall_and_rise() -> None:
    m = CheckState(fall=3, rise=2)
    assert run(m, "o") == [(State.PENDING, State.OK)]
    assert run(m, "cc") == [] and m.state is State.OK
    assert run(m, "c") == [(State.OK, State.FAILING)]
    assert run(m, "oc") == [] and m.state is State.FAILING  # a lone pass does not rise
    assert run(m, "oo") == [(State.FAILING, State.OK)]


def test_warn_passes_and_unknown_fails() -> None:
    m = CheckState(fall=2, rise=1)
    assert run(m, "ww") == [(State.PENDING, State.OK)]
    assert run(m, "uu") == [(State.OK, State.FAILING)]


def test_pending_goes_failing_after_fall_failures() -> None:
    m = CheckState(fall=2, rise=2)
    assert run(m, "c") == [] and m.state is State.PENDING
    assert run(m, "c") == [(State.PENDING, State.FAILING)]


def test_state_survives_a_round_trip() -> None:
    m = CheckState(fall=3, rise=2)
    run(m, "occ")
    again = CheckState(fall=3, rise=2)
    again.restore(m.to_dict())
    assert run(again, "c") == [(State.OK, State.FAILING)]


def test_a_state_knows_since_when_across_a_restore() -> None:
    m = CheckState(fall=1, rise=1)
    assert m.observe(Status.CRIT, at=1000.0) == (State.PENDING, State.FAILING)
    assert m.observe(Status.CRIT, at=2000.0) is None and m.since == 1000.0
    again = CheckState(fall=1, rise=1)
    again.restore(m.to_dict())
    assert again.since == 1000.0, "a restart does not start the failure over"
    legacy = CheckState(fall=1, rise=1)
    legacy.restore({"state": "FAILING"})  # type: ignore[typeddict-item]  # an old row
    assert abs(legacy.since - time.time()) < 5, "unknown: counted from the restore"


def test_perfdata_round_trip() -> None:
    metrics = {"latency_ms": 12.5, "hit_rate_pct": 50.0, "used_bytes": 1024.0, "count": 3.0,
               "odd name_s": 1.0}
    text = format_perfdata(metrics)
    assert "latency=12.5ms" in text and "'odd name'=1s" in text
    assert parse_perfdata(text) == {"latency_ms": 12.5, "hit_rate_pct": 50.0,
                                    "used_bytes": 1024.0, "count": 3.0, "odd_name_s": 1.0}


@pytest.mark.parametrize(("metric", "item"), [
    # Every kind of name the built-in plugins give their metrics.
    ("latency_ms", "latency=1ms"), ("mcp_total_ms", "mcp_total=1ms"),
    ("success_rate_pct", "success_rate=1%"), ("database_size_bytes", "database_size=1B"),
    ("uptime_s", "uptime=1s"), ("disk_root_full_in_seconds", "disk_root_full_in=1s"),
    ("requests_per_s", "requests_per_s=1"), ("load1_per_core", "load1_per_core=1"),
    ("oldest_days", "oldest_days=1"), ("status_code", "status_code=1"), ("count", "count=1"),
    ('latency_p95_ms{signature="QA"}', """'latency_p95{signature="QA"}'=1ms"""),
    ('failure_rate_pct{signature="QA"}', """'failure_rate{signature="QA"}'=1%"""),
    ('errors{kind="refused"}', """'errors{kind="refused"}'=1"""),
])
def test_each_built_in_metric_name_has_its_nagios_unit(metric: str, item: str) -> None:
    assert format_perfdata({metric: 1.0}) == item


def test_plugin_output_with_long_output_perfdata() -> None:
    summary, metrics, raw = split_plugin_output(
        "DISK OK - free space: / 3326 MB (56%); | /=2643MB;3000;4000;0;5000\n"
        "more text | /boot=68MB;88;93;0;98\n")
    assert summary == "DISK OK - free space: / 3326 MB (56%);"
    assert metrics == {"root_bytes": 2643 * 1024**2, "boot_bytes": 68 * 1024**2}
    assert raw == "/=2643MB;3000;4000;0;5000 /boot=68MB;88;93;0;98"


def test_a_plugins_perfdata_is_kept_as_written_and_metric_names_stay_unique() -> None:
    _, metrics, raw = split_plugin_output(
        "OK | '/'=5MB;8;9;0;10 'my label'=3s;;;0 my_label=4 'it''s'=1%;50;90\n")
    assert raw == "'/'=5MB;8;9;0;10 'my label'=3s;;;0 my_label=4 'it''s'=1%;50;90"
    assert metrics == {"root_bytes": 5 * 1024**2, "my_label_s": 3.0, "my_label": 4.0,
                       "it_s_pct": 1.0}
    _, metrics, _ = split_plugin_output("OK | 'a b'=1 a_b=2 'a-b'=3")
    assert metrics == {"a_b": 1.0, "a_b_2": 2.0, "a_b_3": 3.0}


def test_metrics_that_differ_only_by_unit_get_their_own_labels() -> None:
    text = format_perfdata({"connections": 6.0, "connections_pct": 6.0, "query_ms": 1.5})
    assert text == "connections=6 connections_pct=6% query=1.5ms"


@pytest.mark.parametrize(("text", "secret"), [
    ("postgresql://app:s3cret@db:5432/x", "s3cret"),
    ("redis://:hunter2@127.0.0.1:6379/0", "hunter2"),
    ("host=db password=s3cret dbname=x", "s3cret"),
    ("token: abc.def.ghi", "abc.def.ghi"),
    ("PASSWORD='quoted pass'", "quoted pass"),
    ("GET /cb?access_token=tok123&x=1", "tok123"),
    ("db_password=pw1 host=db", "pw1"),
    ("PGPASSWORD=pw2 psql -h db", "pw2"),
    ("client_secret=cs3", "cs3"),
    ("Authorization: Bearer eyJhbGciOi.abc", "eyJhbGciOi.abc"),
    ("X-Api-Key: k-123", "k-123"),
    ("api-key=k456", "k456"),
    ("x-auth-token: t789", "t789"),
    ("postgres://u:p@ss@h/db", "p@ss"),
    ("run --password svcpw2 --token svctok4 now", "svcpw2"),
    ("run --password svcpw2 --token svctok4 now", "svctok4"),
    ('{"password": "hp1secret"}', "hp1secret"),
    ('{"token":"s3cretC"}', "s3cretC"),
    ("private_key=pk1", "pk1"),
    ("Cookie: session=ck1; theme=dark", "ck1"),
    ("sent Bearer eyJabc.def", "eyJabc.def"),
])
def test_redaction(text: str, secret: str) -> None:
    assert secret not in redact(text)
    assert "***" in redact(text)


def test_redaction_keeps_quotes_and_what_is_not_a_secret() -> None:
    assert redact('{"password": "x1"}') == '{"password": "***"}'
    assert redact("print('started token=abc', flush=True)") == (
        "print('started token=***', flush=True)")
    assert redact("Cookie: session=ck1; theme=dark").endswith("; theme=dark")


def test_a_perfdata_label_that_quotes_a_secret_names_no_metric_after_it() -> None:
    _, metrics, perfdata = split_plugin_output("OK | 'token=perf1secret'=5 load=1")
    assert metrics == {"token": 5.0, "load": 1.0} and "perf1secret" not in perfdata


def test_redaction_leaves_words_that_only_look_like_keys() -> None:
    text = "author: Ann, tokens left=3, authority ok"
    assert redact(text) == text
    assert redact("Authorization: Bearer abc") == "Authorization: Bearer ***"


def test_redact_value_masks_secret_keys_in_nested_data() -> None:
    data = {"dsn": "postgresql://u:pw@h/d", "nested": [{"password": "x1"}], "port": 5}
    assert redact_value(data) == {"dsn": "postgresql://u:***@h/d",
                                  "nested": [{"password": "***"}], "port": 5}


@dataclass
class _Opts:
    name: str
    mode: Literal["fast", "slow"] = "fast"
    every: Duration = Duration(5)
    ports: list[int] = field(default_factory=list)
    limit: float | None = None


def test_options_are_typed_and_checked() -> None:
    opts, errors = parse_options(_Opts, {"name": "x", "every": "2m", "ports": [1, 2],
                                         "limit": 3})
    assert errors == [] and opts.every == 120 and opts.limit == 3.0
    _, errors = parse_options(_Opts, {"mode": "medium", "ports": [1, "2"], "limit": "no"})
    assert dict(errors).keys() == {"mode", "ports[1]", "limit", "name"}
    assert dict(errors)["ports[1]"] == "expected an integer, got string '2'"


def test_a_path_option_is_taken_relative_to_the_config_file(tmp_path: Path) -> None:
    @dataclass
    class Where:
        folder: Path
        extra: list[Path] = field(default_factory=list)

    opts, errors = parse_options(Where, {"folder": "dumps", "extra": ["/srv/a", "~/b"]},
                                 tmp_path)
    assert errors == []
    assert opts.folder == tmp_path / "dumps"
    assert opts.extra == [Path("/srv/a"), Path.home() / "b"]
    _, errors = parse_options(Where, {"folder": 3}, tmp_path)
    assert errors == [("folder", "expected a path, got integer 3")]


class Colour:
    pass


@dataclass
class Unreadable:
    name: str
    colour: Colour
    tags: set[str] = field(default_factory=set)


def test_an_option_type_vigil_cannot_read_fails_the_plugin_not_the_user() -> None:
    problem = unsupported(Unreadable)
    assert problem is not None and problem.startswith(
        "Unreadable.colour is typed Colour, which vigil cannot read from a config file "
        "(it reads str, int, float, bool, Duration, Path,")
    assert unsupported(_Opts) is None

    class Painted(Check):
        Options = Unreadable

    assert _class_problem(Painted, Check) == problem


def test_plugin_libraries_are_imported_only_when_used(tmp_path) -> None:
    code = ("import sys; from vigil._config import loader as config; config.load(sys.argv[1]); "
            "print(sorted(m for m in ('psycopg', 'redis', 'mcp') if m in sys.modules))")
    plain = tmp_path / "plain.toml"
    plain.write_text('[checks.s]\ntype = "system"\n')
    used = tmp_path / "used.toml"
    used.write_text('[checks.db]\ntype = "postgres"\ndsn = "postgresql://localhost/x"\n')
    run = [sys.executable, "-c", code]
    assert subprocess.run([*run, str(plain)], capture_output=True, text=True,
                          check=True).stdout.strip() == "[]"
    assert subprocess.run([*run, str(used)], capture_output=True, text=True,
                          check=True).stdout.strip() == "['psycopg']"


def test_require_module_names_what_to_install() -> None:
    from vigil import ConfigError, require_module

    assert require_module("json", "none").dumps([]) == "[]"
    with pytest.raises(ConfigError) as caught:
        require_module("no_such_library_here", "no-such-library>=1", key="protocol")
    assert caught.value.key == "protocol"
    assert caught.value.message == ("needs no_such_library_here: "
                                    "pip install 'no-such-library>=1'")


def test_a_plain_install_brings_the_clients_of_the_seed_stack() -> None:
    # `pip install vigil-daemon` alone must check PostgreSQL, Redis and an MCP server.
    from importlib.metadata import requires

    from packaging.requirements import Requirement

    plain = {Requirement(r).name for r in requires("vigil-daemon") or []
             if "extra ==" not in r}
    assert {"psycopg", "redis", "mcp"} <= plain


def test_a_check_whose_library_is_missing_is_a_config_error(tmp_path) -> None:
    used = tmp_path / "used.toml"
    used.write_text('[checks.db]\ntype = "postgres"\ndsn = "postgresql://localhost/x"\n')
    # None in sys.modules makes the import fail, as if psycopg were not installed.
    code = ("import sys; sys.modules['psycopg'] = None\n"
            "from vigil import ConfigError\n"
            "from vigil._config import loader as config\n"
            "try:\n    config.load(sys.argv[1])\n"
            "except ConfigError as exc:\n    print(exc.issues[0])")
    done = subprocess.run([sys.executable, "-c", code, str(used)], capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == (f"{used}:2: checks.db.type: needs psycopg.conninfo: "
                                   "pip install 'psycopg[binary]'")


def test_freed_memory_is_handed_back_where_libc_can() -> None:
    from vigil._kit import memory

    # glibc (Debian, Ubuntu...) has malloc_trim and mallopt; musl and macOS have neither.
    glibc = platform.libc_ver()[0] == "glibc"
    assert memory.trim() is glibc
    assert memory.limit_arenas(16) is glibc  # glibc's own cap on two cores: no change here
