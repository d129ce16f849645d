"""The postgres check type against a real PostgreSQL cluster of the test's own."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import pytest

from tests.helpers import (
    assert_never_healed_nor_shown,
    event_time,
    free_port,
    run_in_terminal,
    run_vigil,
    vigil_command,
)
from tests.pg import PASSWORD, Cluster, is_up
from tests.private_systemd import PrivateSystemd, unit
from vigil import Status
from vigil._api.check import Check
from vigil._config import loader as config


def build(body: str, tmp_path: Path) -> Check:
    path = tmp_path / "c.toml"
    path.write_text('[daemon]\nstate_dir = "state"\n[checks.pg]\ntype = "postgres"\n' + body)
    return config.load(str(path)).checks["pg"].check


def test_up_is_ok_with_real_latencies_and_metrics(pg_cluster: Cluster, tmp_path) -> None:
    pg_cluster.start()
    result = build(f'dsn = "{pg_cluster.dsn}"\n', tmp_path).run()
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith("accepting connections: PostgreSQL 15")
    m = result.metrics
    assert 0 < m["connect_ms"] < 5000 and 0 < m["query_ms"] < 500
    assert m["server_version_num"] >= 150000 and m["max_connections"] == 100
    assert m["connections"] >= 1 and m["database_size_bytes"] > 1_000_000
    assert PASSWORD not in result.summary


def test_latency_and_connection_thresholds(pg_cluster: Cluster, tmp_path) -> None:
    pg_cluster.start()
    dsn = f'dsn = "{pg_cluster.dsn}"\n'
    slow = build(dsn + "target_ms = 0.0001\nwarn_ms = 0.0001\n", tmp_path).run()
    assert slow.status is Status.WARN and "(target 0.0001 ms)" in slow.summary
    crowded = build(dsn + "conn_warn_pct = 0.5\n", tmp_path).run()  # 1 of 100 is 1%
    assert crowded.status is Status.WARN and "/100 connections" in crowded.summary
    full = build(dsn + "conn_warn_pct = 0.1\nconn_crit_pct = 0.5\n", tmp_path).run()
    assert full.status is Status.CRIT and full.metrics["connections_pct"] >= 1


def test_host_and_port_keys_and_pg_environment(pg_cluster: Cluster, tmp_path,
                                                monkeypatch) -> None:
    pg_cluster.start()
    monkeypatch.setenv("PGPASSWORD", PASSWORD)
    monkeypatch.setenv("PGUSER", "postgres")
    check = build(f'host = "127.0.0.1"\nport = {pg_cluster.port}\ndbname = "postgres"\n',
                  tmp_path)
    assert check.run().status is Status.OK


def test_required_extensions(pg_cluster: Cluster, tmp_path) -> None:
    pg_cluster.start()
    check = build(f'dsn = "{pg_cluster.dsn}"\nrequire_extensions = ["pg_trgm"]\n', tmp_path)
    missing = check.run()
    assert missing.status is Status.CRIT and not missing.healable
    assert missing.summary == "extension pg_trgm is missing: run CREATE EXTENSION pg_trgm;"
    pg_cluster.sql("CREATE EXTENSION pg_trgm")
    assert check.run().status is Status.OK
    vector = build(f'dsn = "{pg_cluster.dsn}"\nrequire_extensions = ["pg_trgm", "vector"]\n',
                   tmp_path).run()
    assert vector.status is Status.CRIT and not vector.healable
    assert "extension vector is not available" in vector.summary
    assert "CREATE EXTENSION vector;" in vector.summary


def test_query_probes_and_latency_thresholds(pg_cluster: Cluster, tmp_path) -> None:
    pg_cluster.start()
    check = build(f'dsn = "{pg_cluster.dsn}"\n'
                  '[checks.pg.queries.answer]\nsql = "SELECT 42"\n'
                  '[checks.pg.queries.slow]\nsql = "SELECT pg_sleep(0.2)"\nwarn_ms = 100\n',
                  tmp_path)
    result = check.run()
    assert result.metrics["query_answer_value"] == 42
    assert result.metrics["query_slow_ms"] >= 200
    assert result.status is Status.WARN and "query slow took" in result.summary
    broken = build(f'dsn = "{pg_cluster.dsn}"\n[checks.pg.queries.bad]\n'
                   'sql = "SELECT * FROM no_such_table"\n', tmp_path).run()
    assert broken.status is Status.CRIT and "query bad failed" in broken.summary
    strict = build(f'dsn = "{pg_cluster.dsn}"\nwarn_ms = 0\n', tmp_path).run()
    assert strict.status is Status.WARN


def test_down_is_crit_and_healable(tmp_path) -> None:
    result = build(f'dsn = "postgresql://u:pw@127.0.0.1:{free_port()}/x"\n', tmp_path).run()
    assert result.status is Status.CRIT and result.healable
    assert result.summary.startswith("no response from PostgreSQL at 127.0.0.1:")


def test_missing_database_is_not_healable(pg_cluster: Cluster, tmp_path) -> None:
    pg_cluster.start()
    dsn = pg_cluster.dsn.rsplit("/", 1)[0] + "/nosuchdb"
    result = build(f'dsn = "{dsn}"\n', tmp_path).run()
    assert result.status is Status.CRIT and not result.healable
    assert 'database "nosuchdb" does not exist' in result.summary


def test_a_server_rejecting_connections_is_warn_within_its_start_timeout(pg_cluster: Cluster,
                                                                        tmp_path) -> None:
    # A standby with hot_standby off stays in recovery and rejects every connection.
    (pg_cluster.data / "standby.signal").touch()
    with (pg_cluster.data / "postgresql.conf").open("a") as conf:
        conf.write("hot_standby = off\n")
    pg_cluster.start()
    patient = build(f'dsn = "{pg_cluster.dsn}"\nstart_timeout = "1h"\n', tmp_path)
    result = patient.run()
    assert result.status is Status.WARN and result.healable
    assert "rejecting connections" in result.summary
    impatient = build(f'dsn = "{pg_cluster.dsn}"\nstart_timeout = "100ms"\n', tmp_path)
    impatient.run()
    time.sleep(0.2)
    assert impatient.run().status is Status.CRIT


def pg_config(tmp_path: Path, cluster: Cluster, dsn: str, extra: str = "") -> str:
    return f"""
        [daemon]
        state_dir = "{tmp_path}/state"
        [services.pg]
        manager = "command"
        start = {json.dumps(cluster.pg_ctl("-w", "start"))}
        stop = {json.dumps(cluster.pg_ctl("-w", "stop"))}
        start_timeout = "20s"
        restarts = 2
        backoff = "200ms"
        [checks.pg]
        type = "postgres"
        dsn = "{dsn}"
        service = "pg"
        interval = "1s"
        fall = 2
        {extra}
    """


def test_wrong_password_is_never_healed_nor_shown(pg_cluster: Cluster, write_config,
                                                  daemon, tmp_path) -> None:
    pg_cluster.start()
    wrong = "Wr0ngPassw0rd"
    path = write_config(pg_config(tmp_path, pg_cluster, pg_cluster.dsn.replace(PASSWORD, wrong)))
    d = daemon(path).start()
    assert_never_healed_nor_shown(d, path, "pg", "pg", [wrong, PASSWORD])
    d.stop()


def test_stopped_postgres_is_started_by_the_command_manager(pg_cluster: Cluster,
                                                           write_config, daemon,
                                                           tmp_path) -> None:
    d = daemon(write_config(pg_config(tmp_path, pg_cluster, pg_cluster.dsn))).start()
    started = d.wait_for("heal.started", service="pg", timeout=15)[0]
    assert started["action"] == "start" and started["target"].startswith("command runuser")
    waiting = d.wait_for("heal.waiting", service="pg")[0]
    assert waiting["timeout_s"] == 20 and "elapsed_s" in waiting
    d.wait_for("heal.succeeded", service="pg", timeout=30)
    d.wait_for("check.state_changed", check="pg", to="OK", timeout=10, **{"from": "FAILING"})
    assert is_up(pg_cluster)
    d.stop()


def test_a_start_that_cannot_succeed_degrades_gracefully(pg_cluster: Cluster, write_config,
                                                        daemon, tmp_path) -> None:
    (pg_cluster.data / "PG_VERSION").unlink()  # a broken data folder
    body = pg_config(tmp_path, pg_cluster, pg_cluster.dsn) + """
        [checks.other]
        type = "system"
        interval = "300ms"
    """
    d = daemon(write_config(body)).start()
    failed = d.wait_for("heal.failed", service="pg", timeout=30)[0]
    assert failed["reason"] == "start command failed" and failed["exit_code"] != 0
    assert "pg_ctl" in failed["command"] and failed["output"]
    d.wait_for("heal.gave_up", service="pg", timeout=30)
    results = d.events("check.result", check="pg")
    assert results[-1]["status"] == "CRIT"
    # The failed start can end quickly; the rhythm must hold across it and after it.
    other = d.wait_for("check.result", count=10, check="other", timeout=10)
    times = [event_time(r) for r in other]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps) < 0.6, "the other check lost its rhythm"
    d.stop()


def test_vigil_heal_shows_a_live_progress_line_in_a_terminal(pg_cluster: Cluster,
                                                             write_config, tmp_path) -> None:
    path = write_config(pg_config(tmp_path, pg_cluster, pg_cluster.dsn))
    code, text = run_in_terminal([*vigil_command(), "heal", "pg", "-c", str(path)], 60)
    assert code == 0, text
    assert "\r\x1b[Kwaiting for pg: 0s of 20s" in text
    assert "heal.succeeded pg start check passes after" in text
    done = run_vigil("check", "pg", "-c", str(path))
    assert done.returncode == 0


def test_vigil_check_heal_starts_it_and_reports_the_second_result(pg_cluster: Cluster,
                                                                  write_config,
                                                                  tmp_path) -> None:
    path = write_config(pg_config(tmp_path, pg_cluster, pg_cluster.dsn))
    done = run_vigil("check", "pg", "--heal", "-c", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("pg OK - accepting connections")
    assert len(done.stdout.splitlines()) == 1 and "heal.succeeded pg" in done.stderr


def test_systemd_starts_a_stopped_postgres(systemd: PrivateSystemd, pg_cluster: Cluster,
                                           write_config, daemon, tmp_path) -> None:
    systemd.write_unit("vigil-pg.service", unit(
        f"{pg_cluster.bin}/postgres -D {pg_cluster.data}", "Type=notify", "User=postgres"))
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "{tmp_path}/state"
        [services.pg]
        manager = "systemd"
        unit = "vigil-pg.service"
        [checks.pg]
        type = "postgres"
        dsn = "{pg_cluster.dsn}"
        service = "pg"
        interval = "1s"
        fall = 2
    """), prefix=systemd.prefix()).start()
    succeeded = d.wait_for("heal.succeeded", service="pg", timeout=30)[0]
    assert succeeded["command"] == "systemctl start vigil-pg.service"
    assert systemd.is_active("vigil-pg.service") == "active"
    d.wait_for("check.result", check="pg", status="OK")
    d.stop()
    systemd.run("systemctl", "stop", "vigil-pg.service")


def test_init_detect_finds_postgres(pg_cluster: Cluster, tmp_path) -> None:
    pg_cluster.start()
    target = tmp_path / "detected.toml"
    done = run_vigil("init", "--detect", str(target))
    assert done.returncode == 0, done.stderr
    assert f"found postgres_{pg_cluster.port}: PostgreSQL listening on 127.0.0.1:" \
           f"{pg_cluster.port}" in done.stdout
    assert run_vigil("config", "validate", "-c", str(target)).returncode == 0
    check = run_vigil("check", f"postgres_{pg_cluster.port}", "-c", str(target))
    assert check.returncode == 0 and "accepting connections" in check.stdout
    text = target.read_text()
    clusters = sorted(Path("/etc/postgresql").glob("*/*/postgresql.conf"))
    for conf in clusters:  # this host's Debian clusters, with their systemd units
        version, name = conf.parent.parent.name, conf.parent.name
        assert f'unit = "postgresql@{version}-{name}"' in text


@pytest.mark.parametrize("bad", [f'dsn = "postgresql://app:{PASSWORD}@[::1"\n',
                                 f'dsn = "password={PASSWORD} not a = dsn = at all"\n'])
def test_bad_dsn_is_a_config_error_without_the_password(tmp_path, bad: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[daemon]\nstate_dir = "s"\n[checks.pg]\ntype = "postgres"\n' + bad)
    done = run_vigil("config", "validate", "-c", str(path))
    assert done.returncode == 1 and "checks.pg.dsn" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert PASSWORD not in done.stdout + done.stderr


def test_init_detect_finds_a_socket_in_tmp(tmp_path) -> None:
    # A cluster that listens only on a socket in /tmp, where macOS and source builds
    # put it: no TCP listener to find, only the socket file.
    from tests.pg import Cluster

    cluster = Cluster(free_port())
    try:
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.write("listen_addresses = ''\nunix_socket_directories = '/tmp'\n")
        cluster.start()
        target = tmp_path / "detected.toml"
        done = run_vigil("init", "--detect", str(target))
        assert f"found postgres_{cluster.port}: PostgreSQL socket /tmp/.s.PGSQL." \
               f"{cluster.port}" in done.stdout, done.stdout
        check = run_vigil("check", f"postgres_{cluster.port}", "-c", str(target))
        assert check.returncode == 0 and "accepting connections" in check.stdout
    finally:
        cluster.remove()
