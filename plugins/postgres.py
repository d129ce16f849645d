"""Check type ``postgres``: reachability as pg_isready tells it, latency, connections,
size, required extensions and SQL probes, through psycopg 3 (``vigil-daemon[postgres]``).

Failures a restart cannot fix (bad credentials, a missing database or extension) are
reported with ``healable=False``, so vigil never restarts a healthy server for them."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil import (
    Check,
    ConfigError,
    Detected,
    Duration,
    RegisterCheck,
    Result,
    StartGrace,
    Status,
    above,
    hookimpl,
    listeners_named,
    redact,
    require_module,
    worst,
)

# SQLSTATEs of failures no restart can fix.
AUTH_FAILED = {"28P01", "28000"}
NO_DATABASE = "3D000"
CANNOT_CONNECT_NOW = "57P03"  # starting up, shutting down, in recovery

INFO_SQL = """
SELECT current_setting('server_version'), current_setting('server_version_num')::int,
       (SELECT count(*) FROM pg_stat_activity), current_setting('max_connections')::int,
       pg_database_size(current_database()), pg_is_in_recovery(), current_database()
"""


@dataclass
class Probe:
    """A named SQL probe: ``queries.users = { sql = "SELECT count(*) FROM users" }``."""

    sql: str
    warn_ms: float | None = None
    crit_ms: float | None = None


@dataclass
class PostgresOptions:
    #: A libpq URI or key=value string; the keys below and PG* variables fill the rest.
    dsn: str = ""
    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    user: str | None = None
    password: str | None = None
    connect_timeout: Duration = Duration(5)
    require_extensions: list[str] = field(default_factory=list)
    queries: dict[str, Probe] = field(default_factory=dict)
    #: SELECT 1 latency: the seed's target 50 ms, baseline 100 ms (WARN), critical 500 ms.
    target_ms: float = 50.0
    warn_ms: float = 100.0
    crit_ms: float = 500.0
    conn_warn_pct: float = 80.0
    conn_crit_pct: float = 95.0
    #: How long a server that rejects connections (starting up) is WARN, not CRIT.
    start_timeout: Duration = Duration(30)
    #: Only ask whether the server accepts connections (pg_isready), without logging in.
    ping_only: bool = False


class Postgres(Check):
    Options = PostgresOptions
    options: PostgresOptions
    metrics = ("connect_ms", "query_ms", "server_version_num", "connections", "max_connections",
               "connections_pct", "database_size_bytes", "in_recovery", "query_*_ms",
               "query_*_value")

    def __init__(self, name: str, options: PostgresOptions, timeout: float = 10.0) -> None:
        super().__init__(name, options, timeout)
        conninfo = require_module("psycopg.conninfo", "psycopg[binary]")
        overrides = {k: getattr(options, k) for k in ("host", "port", "dbname", "user",
                                                      "password") if getattr(options, k)}
        try:
            self.conninfo = conninfo.make_conninfo(
                options.dsn, **overrides, connect_timeout=max(1, round(options.connect_timeout)))
            params = conninfo.conninfo_to_dict(self.conninfo)
        except Exception as exc:
            raise ConfigError("dsn", f"not a valid connection string: {redact(str(exc))}") \
                from None
        host = str(params.get("host") or os.environ.get("PGHOST") or "localhost")
        port = params.get("port") or os.environ.get("PGPORT") or 5432
        self.where = f"{host}:{port}" if not host.startswith("/") else f"{host} port {port}"
        self._starting = StartGrace()

    def run(self) -> Result:
        from psycopg import pq

        ping = pq.PGconn.ping(self.conninfo.encode())
        if ping == pq.Ping.NO_RESPONSE:
            return Result(Status.CRIT, f"no response from PostgreSQL at {self.where}")
        if ping == pq.Ping.NO_ATTEMPT:
            return Result(Status.CRIT, "bad connection parameters (pg_isready: no attempt)",
                          healable=False)
        if ping == pq.Ping.REJECT:
            return self._rejecting("rejecting connections")
        self._starting.reset()
        if self.options.ping_only:
            return Result(Status.OK, f"accepting connections at {self.where}")
        return self._inspect()

    def _rejecting(self, why: str) -> Result:
        status, waited = self._starting.judge(self.options.start_timeout)
        summary = f"{why} at {self.where} for {waited:.0f}s (starting up, shutting down " \
                  "or in recovery)"
        return Result(status, summary, {"rejecting_s": round(waited, 1)})

    def _inspect(self) -> Result:
        import psycopg

        began = time.perf_counter()
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True)
        except psycopg.OperationalError as exc:
            return self._connect_failed(exc)
        connect_ms = (time.perf_counter() - began) * 1000
        with conn:
            metrics, parts, statuses = self._measure(conn, connect_ms)
            missing = self._missing_extensions(conn)
            probes = [self._probe(conn, name, probe, metrics)
                      for name, probe in self.options.queries.items()]
        if missing:
            return Result(Status.CRIT, missing, metrics, healable=False)
        failed = [p for p in probes if p]
        status = worst(statuses + [s for s, _ in failed])
        parts += [text for _, text in failed]
        return Result(status, ", ".join(parts), metrics)

    def _connect_failed(self, exc: Exception) -> Result:
        state = getattr(exc, "sqlstate", None)
        message = redact(str(exc).strip().splitlines()[-1] if str(exc).strip() else repr(exc))
        if state == CANNOT_CONNECT_NOW:
            return self._rejecting("rejecting connections")
        if state in AUTH_FAILED or "authentication failed" in message:
            return Result(Status.CRIT, f"authentication failed at {self.where}: {message}",
                          healable=False)
        if state == NO_DATABASE or "does not exist" in message:
            return Result(Status.CRIT, f"{message} at {self.where}", healable=False)
        return Result(Status.CRIT, f"cannot connect to {self.where}: {message}")

    def _measure(self, conn: Any, connect_ms: float) -> tuple[dict[str, float], list[str],
                                                              list[Status]]:
        opts = self.options
        began = time.perf_counter()
        conn.execute("SELECT 1").fetchone()
        query_ms = (time.perf_counter() - began) * 1000
        version, version_num, connections, max_conn, size, recovery, db = conn.execute(
            INFO_SQL).fetchone()
        used_pct = 100.0 * connections / max_conn
        metrics = {
            "connect_ms": round(connect_ms, 3), "query_ms": round(query_ms, 3),
            "server_version_num": float(version_num), "connections": float(connections),
            "max_connections": float(max_conn), "connections_pct": round(used_pct, 1),
            "database_size_bytes": float(size), "in_recovery": float(recovery),
        }
        statuses = [above(query_ms, opts.warn_ms, opts.crit_ms),
                    above(used_pct, opts.conn_warn_pct, opts.conn_crit_pct)]
        pace = "" if query_ms <= opts.target_ms else f" (target {opts.target_ms:g} ms)"
        parts = [f"accepting connections: PostgreSQL {version} at {self.where}, db {db}"
                 + (" (standby)" if recovery else ""),
                 f"SELECT 1 in {query_ms:.1f} ms{pace}",
                 f"{connections}/{max_conn} connections", f"{size / 1048576:.1f} MB"]
        return metrics, parts, statuses

    def _missing_extensions(self, conn: Any) -> str:
        if not self.options.require_extensions:
            return ""
        installed = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
        available = {r[0] for r in conn.execute("SELECT name FROM pg_available_extensions")}
        problems = []
        for ext in self.options.require_extensions:
            if ext in installed:
                continue
            if ext in available:
                problems.append(f"extension {ext} is missing: run CREATE EXTENSION {ext};")
            else:
                hint = " (the pgvector package)" if ext == "vector" else ""
                problems.append(f"extension {ext} is not available on the server: install "
                                f"it{hint}, then CREATE EXTENSION {ext};")
        return "; ".join(problems)

    def _probe(self, conn: Any, name: str, probe: Probe,
               metrics: dict[str, float]) -> tuple[Status, str] | None:
        import psycopg

        began = time.perf_counter()
        try:
            row = conn.execute(probe.sql).fetchone()
        except psycopg.Error as exc:
            return Status.CRIT, f"query {name} failed: {redact(str(exc).strip())}"
        took = (time.perf_counter() - began) * 1000
        metrics[f"query_{name}_ms"] = round(took, 3)
        if row and isinstance(row[0], int | float) and not isinstance(row[0], bool):
            metrics[f"query_{name}_value"] = float(row[0])
        status = above(took, probe.warn_ms, probe.crit_ms)
        return (status, f"query {name} took {took:.1f} ms") if status is not Status.OK else None


@hookimpl
def vigil_check_types(register: RegisterCheck) -> None:
    register("postgres", Postgres)


@hookimpl
def vigil_detect(add: Detected) -> None:
    # vigil cannot know the credentials: detected checks only ask pg_isready's question.
    ports = set()
    for conf in sorted(Path("/etc/postgresql").glob("*/*/postgresql.conf")):
        version, cluster = conf.parent.parent.name, conf.parent.name
        match = re.search(r"^\s*port\s*=\s*(\d+)", conf.read_text(errors="replace"), re.M)
        port = int(match.group(1)) if match else 5432
        ports.add(port)
        add(f"postgres_{version}_{cluster}",
            {"type": "postgres", "dsn": f"postgresql://localhost:{port}/postgres",
             "ping_only": True},
            {"manager": "systemd", "unit": f"postgresql@{version}-{cluster}"},
            note=f"Debian cluster {version}/{cluster} ({conf.parent}), port {port}")
    for address, port, pid in listeners_named({"postgres", "postmaster"}):
        if port not in ports:
            ports.add(port)
            host = "localhost" if address in ("0.0.0.0", "::") else address
            add(f"postgres_{port}", {"type": "postgres", "ping_only": True,
                                     "dsn": f"postgresql://{host}:{port}/postgres"},
                note=f"PostgreSQL listening on {address}:{port} (PID {pid})")
    for socket in sorted([*Path("/var/run/postgresql").glob(".s.PGSQL.*"),
                          *Path("/tmp").glob(".s.PGSQL.*")]):
        port = int(socket.suffix.lstrip(".")) if socket.suffix[1:].isdigit() else 0
        if port and port not in ports:
            ports.add(port)
            add(f"postgres_{port}", {"type": "postgres", "ping_only": True,
                                     "dsn": f"postgresql:///postgres?host={socket.parent}"
                                            f"&port={port}"},
                note=f"PostgreSQL socket {socket}")
    for folder in ("/opt/homebrew/opt", "/usr/local/opt"):
        for formula in sorted(Path(folder).glob("postgresql*")):
            add(formula.name.replace("@", "_"),
                {"type": "postgres", "dsn": "postgresql://localhost:5432/postgres",
                 "ping_only": True},
                {"manager": "brew", "formula": formula.name},
                note=f"Homebrew formula {formula.name}")
