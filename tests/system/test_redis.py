"""The redis check type against a real redis-server started by the tests."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import time
from pathlib import Path

from tests.helpers import (
    answers,
    assert_never_healed_nor_shown,
    free_port,
    redis_argv,
    run_vigil,
    saved_pid,
)
from tests.private_systemd import PrivateSystemd, unit
from vigil import Status
from vigil._api.check import Check
from vigil._config import loader as config

PASSWORD = "r3dis-Secret"


def client(port: int, password: str | None = None):
    import redis

    return redis.Redis(host="127.0.0.1", port=port, password=password)


def build(body: str, tmp_path: Path) -> Check:
    # A loaded CI host can take over the 10 ms PING default; only the latency test keeps it.
    if "ping_warn_ms" not in body:
        body += "ping_warn_ms = 1000\n"
    path = tmp_path / "c.toml"
    path.write_text('[daemon]\nstate_dir = "state"\n[checks.r]\ntype = "redis"\n' + body)
    return config.load(str(path)).checks["r"].check


def test_hit_rate_over_the_interval_is_exact(redis_server, tmp_path) -> None:
    port = free_port()
    redis_server(port)
    r = client(port)
    r.set("a", 1)
    for _ in range(10):
        r.get("missing")  # lifetime: 0 hits, 10 misses
    check = build(f'url = "redis://127.0.0.1:{port}/0"\n', tmp_path)
    first = check.run()
    assert first.metrics["hit_rate_pct"] == 0
    assert "hit rate 0.0% since the server started" in first.summary
    for _ in range(3):
        r.get("a")
    r.get("missing")
    second = check.run()
    assert second.metrics["hit_rate_pct"] == 75.0  # 3 hits, 1 miss in the interval
    assert "hit rate 75.0% in the last interval" in second.summary
    assert second.status is Status.OK and "below target" not in second.summary
    for key in ["a"] * 2 + ["missing"] * 3:
        r.get(key)
    middling = check.run()  # under the 50% target, above the 30% warning: said, not WARN
    assert middling.status is Status.OK
    assert "hit rate 40.0% in the last interval (below target)" in middling.summary
    for _ in range(4):
        r.get("missing")
    third = check.run()
    assert third.metrics["hit_rate_pct"] == 0 and third.status is Status.WARN
    quiet = check.run()
    assert "no reads in the last interval" in quiet.summary and quiet.status is Status.OK
    m = second.metrics
    assert m["keys"] == 1 and m["connected_clients"] >= 2 and m["ping_ms"] > 0
    assert m["is_master"] == 1 and m["used_memory_bytes"] > 0


def test_a_restart_between_runs_falls_back_to_lifetime(redis_server, tmp_path) -> None:
    port = free_port()
    proc = redis_server(port)
    r = client(port)
    r.set("a", 1)
    for _ in range(5):
        r.get("a")
    check = build(f'url = "redis://127.0.0.1:{port}/0"\n', tmp_path)
    check.run()
    proc.terminate()
    proc.wait()
    redis_server(port)
    r = client(port)
    r.set("b", 1)
    r.get("b")
    r.get("nope")
    result = check.run()
    assert result.metrics["hit_rate_pct"] == 50.0
    assert "since the server started (it restarted)" in result.summary


def test_a_slow_ping_is_warn(redis_server, tmp_path) -> None:
    port = free_port()
    redis_server(port)
    url = f'url = "redis://127.0.0.1:{port}/0"\n'
    slow = build(url + "ping_warn_ms = 0.001\n", tmp_path).run()
    assert slow.status is Status.WARN and slow.healable
    assert "PING" in slow.summary and slow.metrics["ping_ms"] > 0.001
    assert build(url, tmp_path).run().status is Status.OK


def test_evictions_under_maxmemory_are_reported(redis_server, tmp_path) -> None:
    port = free_port()
    # Large enough that an empty server (about 1 MB) is well below the 80% warning.
    redis_server(port, "--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru")
    check = build(f'url = "redis://127.0.0.1:{port}/0"\n', tmp_path)
    assert check.run().status is Status.OK
    r = client(port)
    pipe = r.pipeline(transaction=False)
    for i in range(4000):
        pipe.set(f"key:{i}", "x" * 2048)
    pipe.execute()
    result = check.run()
    assert result.metrics["evicted_keys"] > 0
    assert result.status in (Status.WARN, Status.CRIT) and "evicted keys" in result.summary
    assert 50 < result.metrics["memory_pct"] <= 110
    # The next interval has no new evictions.
    assert check.run().metrics["evicted_keys"] == 0


def test_rejected_connections_in_the_interval_are_warn(redis_server, tmp_path) -> None:
    port = free_port()
    redis_server(port, "--maxclients", "2")
    check = build(f'url = "redis://127.0.0.1:{port}/0"\n', tmp_path)
    assert check.run().status is Status.OK
    with contextlib.ExitStack() as held:
        replies = []
        for _ in range(4):  # more than maxclients, whatever the check itself still holds
            sock = held.enter_context(socket.create_connection(("127.0.0.1", port), 5))
            sock.sendall(b"PING\r\n")
            replies.append(sock.recv(100))
    refused = sum(r.startswith(b"-ERR max number of clients") for r in replies)
    assert refused >= 2, replies
    result = check.run()
    assert result.status is Status.WARN and result.metrics["rejected_connections"] == refused
    assert f"{refused} rejected connections in the last interval" in result.summary
    assert check.run().metrics["rejected_connections"] == 0


def test_failed_background_save_is_crit_and_not_healable(redis_server, tmp_path) -> None:
    port = free_port()
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    redis_server(port, "--enable-protected-configs", "yes")
    r = client(port)
    r.config_set("dir", str(doomed))
    shutil.rmtree(doomed)  # where the RDB file should go is gone
    r.set("a", 1)
    r.bgsave()
    deadline = time.monotonic() + 10
    while r.info("persistence")["rdb_bgsave_in_progress"] and time.monotonic() < deadline:
        time.sleep(0.05)
    result = build(f'url = "redis://127.0.0.1:{port}/0"\n', tmp_path).run()
    assert result.status is Status.CRIT and not result.healable
    assert result.summary.startswith("the last background save failed")


def test_loading_is_warn_within_the_start_timeout(redis_server, tmp_path) -> None:
    port = free_port()
    proc = redis_server(port, "--enable-debug-command", "local")
    r = client(port)
    r.execute_command("DEBUG", "POPULATE", "20000")
    r.save()
    proc.terminate()
    proc.wait()
    # Load slowly, answering LOADING meanwhile.
    redis_server(port, "--dbfilename", "dump.rdb", "--key-load-delay", "300",
                 "--loading-process-events-interval-bytes", "1024", wait=False)
    deadline = time.monotonic() + 10
    while not answers(port) and time.monotonic() < deadline:
        time.sleep(0.02)
    patient = build(f'url = "redis://127.0.0.1:{port}/0"\n', tmp_path)
    result = patient.run()
    assert result.status is Status.WARN and "loading its dataset" in result.summary
    impatient = build(f'url = "redis://127.0.0.1:{port}/0"\nstart_timeout = "100ms"\n',
                      tmp_path)
    impatient.run()
    time.sleep(0.2)
    assert impatient.run().status is Status.CRIT


def test_wrong_password_is_never_healed_nor_shown(redis_server, write_config, daemon,
                                                  tmp_path) -> None:
    port = free_port()
    redis_server(port, "--requirepass", PASSWORD)
    wrong = "Wr0ngRedisPass"
    good = build(f'url = "redis://:{PASSWORD}@127.0.0.1:{port}/0"\n', tmp_path).run()
    assert good.status is Status.OK and PASSWORD not in good.summary
    path = write_config(f"""
        [daemon]
        state_dir = "state"
        [services.cache]
        manager = "command"
        start = {json.dumps(redis_argv(port, tmp_path, "--requirepass", PASSWORD))}
        [checks.cache]
        type = "redis"
        url = "redis://default:{wrong}@127.0.0.1:{port}/0"
        service = "cache"
        interval = "300ms"
        fall = 2
    """)
    d = daemon(path).start()
    assert_never_healed_nor_shown(d, path, "cache", "cache", [wrong, PASSWORD])
    d.stop()


def test_password_from_the_environment(redis_server, tmp_path, monkeypatch) -> None:
    port = free_port()
    redis_server(port, "--requirepass", PASSWORD)
    monkeypatch.setenv("REDISCLI_AUTH", PASSWORD)
    assert build(f'url = "redis://127.0.0.1:{port}/0"\n', tmp_path).run().status is Status.OK


def test_killed_redis_is_crit_then_healed_by_the_command_manager(write_config, daemon,
                                                                 tmp_path) -> None:
    port = free_port()
    assert build(f'url = "redis://127.0.0.1:{port}/0"\n', tmp_path).run().status is Status.CRIT
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "state"
        [services.cache]
        manager = "command"
        start = {json.dumps(redis_argv(port, tmp_path))}
        [checks.cache]
        type = "redis"
        url = "redis://127.0.0.1:{port}/0"
        service = "cache"
        interval = "500ms"
        fall = 2
    """)).start()
    d.wait_for("heal.succeeded", service="cache", timeout=15)
    os.kill(saved_pid(tmp_path / "state", "cache"), signal.SIGKILL)
    crit = d.wait_for("check.result", check="cache", status="CRIT", timeout=10)
    assert "cannot reach Redis" in crit[-1]["summary"]
    d.wait_for("heal.succeeded", count=2, service="cache", timeout=15)
    d.stop()


def test_killed_redis_is_healed_by_a_real_systemd(systemd: PrivateSystemd, write_config,
                                                  daemon, tmp_path) -> None:
    port = free_port()
    argv = " ".join(f"'{a}'" if a == "" else a for a in redis_argv(port, tmp_path))
    systemd.write_unit("vigil-redis.service", unit(argv))
    systemd.run("systemctl", "start", "vigil-redis.service")
    d = daemon(write_config(f"""
        [daemon]
        state_dir = "{tmp_path}/state"
        [services.cache]
        manager = "systemd"
        unit = "vigil-redis.service"
        [checks.cache]
        type = "redis"
        url = "redis://127.0.0.1:{port}/0"
        service = "cache"
        interval = "1s"
        fall = 2
    """), prefix=systemd.prefix()).start()
    d.wait_for("check.result", check="cache", status="OK", timeout=10)
    systemd.run("systemctl", "kill", "-s", "KILL", "--kill-whom=main", "vigil-redis.service")
    succeeded = d.wait_for("heal.succeeded", service="cache", timeout=20)[0]
    assert succeeded["command"] == "systemctl start vigil-redis.service"
    assert succeeded["recovery_s"] < 5
    d.stop()
    systemd.run("systemctl", "stop", "vigil-redis.service")


def test_init_detect_finds_redis(redis_server, tmp_path) -> None:
    port = free_port()
    redis_server(port)
    target = tmp_path / "detected.toml"
    done = run_vigil("init", "--detect", str(target))
    assert done.returncode == 0, done.stderr
    assert f"found redis_{port}: redis-server listening on port {port}" in done.stdout
    check = run_vigil("check", f"redis_{port}", "-c", str(target))
    # It keeps the 10 ms PING default, which a loaded CI host can exceed: WARN, not CRIT.
    assert check.returncode in (0, 1), check.stdout
    assert check.stdout.startswith((f"redis_{port} OK - master", f"redis_{port} WARN - master"))
    if Path("/etc/redis/redis.conf").exists():  # Debian's own redis-server, not started
        assert 'unit = "redis-server"' in target.read_text()


def test_a_replica_reports_its_link_to_the_master(redis_server, tmp_path) -> None:
    master_port, replica_port = free_port(), free_port()
    master = redis_server(master_port)
    redis_server(replica_port, "--replicaof", "127.0.0.1", str(master_port))
    check = build(f'url = "redis://127.0.0.1:{replica_port}/0"\n', tmp_path)
    deadline = time.monotonic() + 10
    result = check.run()
    while result.metrics.get("master_link_up") != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
        result = check.run()
    assert result.status is Status.OK and result.metrics["is_master"] == 0
    assert "link to master up" in result.summary and result.summary.startswith("slave")
    master.kill()
    master.wait()
    while check.run().metrics.get("master_link_up") != 0 and time.monotonic() < deadline + 10:
        time.sleep(0.1)
    down = check.run()
    assert down.status is Status.CRIT and "link to master DOWN" in down.summary
