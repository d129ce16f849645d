"""Check type ``redis``: a Redis cache's latency, hit rate over the last interval,
memory against maxmemory, evictions, rejected clients, persistence and replication,
through redis-py (``vigil-daemon[redis]``)."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
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


@dataclass
class RedisOptions:
    #: redis:// or rediss://; a password in it, or in $REDISCLI_AUTH, is never logged.
    url: str = "redis://127.0.0.1:6379/0"
    hit_rate_warn_pct: float = 30.0
    #: The seed's target: reported when the hit rate is below it, without a WARN.
    hit_rate_target_pct: float = 50.0
    memory_warn_pct: float = 80.0
    memory_crit_pct: float = 90.0
    ping_warn_ms: float = 10.0
    #: How long a Redis that answers LOADING is WARN, not CRIT.
    start_timeout: Duration = Duration(30)

    def __post_init__(self) -> None:
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError("url", "must start with redis://, rediss:// or unix://")


@dataclass
class Counters:
    """INFO counters of one run, to diff against the next."""

    run_id: str
    hits: int
    misses: int
    evicted: int
    rejected: int


class Redis(Check):
    Options = RedisOptions
    options: RedisOptions
    metrics = ("ping_ms", "used_memory_bytes", "evicted_keys", "rejected_connections",
               "connected_clients", "keys", "is_master", "hit_rate_pct", "memory_pct",
               "master_link_up")

    def __init__(self, name: str, options: RedisOptions, timeout: float = 10.0) -> None:
        super().__init__(name, options, timeout)
        redis = require_module("redis", "redis>=5")
        # A password in the URL wins; else $REDISCLI_AUTH, which redis-cli reads too.
        password = os.environ.get("REDISCLI_AUTH")
        extra = {"password": password} if password and "@" not in options.url else {}
        self.client = redis.Redis.from_url(options.url, socket_timeout=timeout,
                                           socket_connect_timeout=timeout, **extra)
        self.where = redact(options.url)
        self._last: Counters | None = None
        self._starting = StartGrace()

    def run(self) -> Result:
        import redis

        try:
            began = time.perf_counter()
            self.client.ping()
            ping_ms = (time.perf_counter() - began) * 1000
            info = self.client.info("all")
        except redis.BusyLoadingError:
            return self._loading()
        except (redis.AuthenticationError, redis.ResponseError) as exc:
            # A server without the password answers NOAUTH, a wrong one WRONGPASS.
            auth = isinstance(exc, redis.AuthenticationError) or any(
                word in str(exc) for word in ("NOAUTH", "WRONGPASS"))
            said = redact(str(exc))
            if auth:
                return Result(Status.CRIT, f"authentication failed at {self.where}: {said}",
                              healable=False)
            return Result(Status.CRIT, f"{self.where} answered an error: {said}")
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            return Result(Status.CRIT, f"cannot reach Redis at {self.where}: {redact(str(exc))}")
        self._starting.reset()
        return self._judge(info, ping_ms)

    def _loading(self) -> Result:
        status, waited = self._starting.judge(self.options.start_timeout)
        return Result(status, f"Redis at {self.where} is loading its dataset ({waited:.0f}s)",
                      {"loading_s": round(waited, 1)})

    def _judge(self, info: dict[str, Any], ping_ms: float) -> Result:
        opts = self.options
        now = Counters(info["run_id"], info["keyspace_hits"], info["keyspace_misses"],
                       info["evicted_keys"], info["rejected_connections"])
        before, self._last = self._last, now
        # A first run or a restarted server (counters reset) has no interval to diff.
        restarted = before is not None and (before.run_id != now.run_id or now.hits < before.hits)
        base = Counters("", 0, 0, 0, 0) if before is None or restarted else before
        hits, misses = now.hits - base.hits, now.misses - base.misses
        evicted, rejected = now.evicted - base.evicted, now.rejected - base.rejected
        span = "since the server started" if base.run_id == "" else "in the last interval"
        if restarted:
            span += " (it restarted)"
        used, maxmemory = info["used_memory"], info.get("maxmemory", 0)
        metrics = {"ping_ms": round(ping_ms, 3), "used_memory_bytes": float(used),
                   "evicted_keys": float(evicted), "rejected_connections": float(rejected),
                   "connected_clients": float(info["connected_clients"]),
                   "keys": float(sum(v.get("keys", 0) for k, v in info.items()
                                     if re.fullmatch(r"db\d+", k) and isinstance(v, dict))),
                   "is_master": float(info.get("role") == "master")}
        statuses = [above(ping_ms, opts.ping_warn_ms, None)]
        parts = [f"{info.get('role', '?')} {info.get('redis_version', '')} at {self.where}",
                 f"PING {ping_ms:.1f} ms"]
        if hits + misses:
            rate = 100.0 * hits / (hits + misses)
            metrics["hit_rate_pct"] = round(rate, 2)
            low = rate < opts.hit_rate_warn_pct
            statuses.append(Status.WARN if low else Status.OK)
            note = " (below target)" if rate < opts.hit_rate_target_pct else ""
            parts.append(f"hit rate {rate:.1f}% {span}{note}")
        else:
            parts.append(f"no reads {span}")
        if maxmemory:
            pct = 100.0 * used / maxmemory
            metrics["memory_pct"] = round(pct, 2)
            statuses.append(above(pct, opts.memory_warn_pct, opts.memory_crit_pct))
            parts.append(f"memory {pct:.0f}% of maxmemory")
        if evicted or rejected:
            statuses.append(Status.WARN)
            parts.append(f"{evicted} evicted keys, {rejected} rejected connections {span}")
        if info.get("role") == "slave":
            up = info.get("master_link_status") == "up"
            metrics["master_link_up"] = float(up)
            statuses.append(Status.OK if up else Status.CRIT)
            parts.append(f"link to master {'up' if up else 'DOWN'}")
        if info.get("rdb_last_bgsave_status") == "err":
            # A full disk or a permission problem: restarting Redis fixes neither.
            return Result(Status.CRIT, "the last background save failed: "
                                       + ", ".join(parts), metrics, healable=False)
        return Result(worst(statuses), ", ".join(parts), metrics)


@hookimpl
def vigil_check_types(register: RegisterCheck) -> None:
    register("redis", Redis)


@hookimpl
def vigil_detect(add: Detected) -> None:
    seen = set()
    conf = Path("/etc/redis/redis.conf")
    if conf.exists():
        match = re.search(r"^\s*port\s+(\d+)", conf.read_text(errors="replace"), re.M)
        port = int(match.group(1)) if match else 6379
        seen.add(port)
        add("redis", {"type": "redis", "url": f"redis://127.0.0.1:{port}/0"},
            {"manager": "systemd", "unit": "redis-server"},
            note=f"Debian's redis-server ({conf}), port {port}")
    for _address, port, pid in listeners_named({"redis-server"}):
        if port not in seen:
            seen.add(port)
            add(f"redis_{port}", {"type": "redis", "url": f"redis://127.0.0.1:{port}/0"},
                note=f"redis-server listening on port {port} (PID {pid})")
    for folder in ("/opt/homebrew/opt/redis", "/usr/local/opt/redis"):
        if Path(folder).exists() and 6379 not in seen:
            add("redis", {"type": "redis"}, {"manager": "brew", "formula": "redis"},
                note=f"Homebrew formula redis ({folder})")
