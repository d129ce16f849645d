"""Check type ``mcp``: an MCP memory server's /health and /metrics against the seed's
thresholds, found on whichever port of its range it answers, with an optional real MCP
round trip through the official SDK (``vigil-daemon[mcp]``)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vigil import (
    Check,
    ConfigError,
    Detected,
    RegisterCheck,
    Result,
    Status,
    describe_ports,
    hookimpl,
    parse_ports,
    port_holders,
    require_module,
    worst,
)

#: The most of a /health or /metrics body read: a server that sends more is cut.
MAX_BODY = 1024 * 1024


@dataclass
class McpOptions:
    host: str = "127.0.0.1"
    #: Where the server may be, preferred first: "3000-3010" or [3000, 3005].
    ports: str | list[int] = "3000-3010"
    health_path: str = "/health"
    #: "" skips the metrics page.
    metrics_path: str = "/metrics"
    mcp_path: str = "/mcp"
    error_rate_warn_pct: float = 10.0
    response_warn_ms: float = 100.0
    hit_rate_warn_pct: float = 30.0
    #: Field names, for servers that name them differently.
    error_rate_field: str = "error_rate_percent"
    response_field: str = "avg_response_time_ms"
    hit_rate_field: str = "cache_hit_rate_percent"
    roles_field: str = "usage_by_role"
    #: A real MCP session: initialize, ping, and optionally tools/list and one tool call.
    protocol: bool = False
    list_tools: bool = False
    call_tool: str = ""
    tool_arguments: dict[str, Any] = field(default_factory=dict)
    #: ``ports`` as a list, derived below.
    port_list: list[int] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        try:
            self.port_list = parse_ports(self.ports)
        except ValueError as exc:
            raise ConfigError("ports", str(exc)) from None


class Mcp(Check):
    Options = McpOptions
    options: McpOptions

    def __init__(self, name: str, options: McpOptions, timeout: float = 10.0) -> None:
        super().__init__(name, options, timeout)
        if options.protocol:
            require_module("mcp", "mcp>=2", key="protocol")
        self.port: int | None = None  # where it answered last; tried first next time

    def run(self) -> Result:
        opts = self.options
        found = self._find()
        if found is None:
            taken = port_holders(opts.port_list)
            who = "; ".join(f"{p} held by {h}" for p, h in taken.items())
            where = f"{opts.host}:{describe_ports(opts.port_list)}"
            return Result(Status.CRIT, f"no MCP server answers on {where}"
                                       + (f" ({who})" if who else ""))
        port, health, health_ms = found
        data = dict(health)
        if opts.metrics_path:
            data |= self._get(port, opts.metrics_path)[0] or {}
        metrics = {"port": float(port), "health_ms": round(health_ms, 3),
                   **_numbers(data, skip={opts.roles_field})}
        for role, count in (data.get(opts.roles_field) or {}).items():
            if isinstance(count, int | float):
                metrics[f'role_requests{{role="{role}"}}'] = float(count)
        statuses, notes = self._judge(data)
        where = f"{opts.host}:{port}" + ("" if port == opts.port_list[0] else
                                         f" (moved from {opts.port_list[0]})")
        if opts.protocol:
            problem = self._round_trip(port, metrics)
            if problem:
                return Result(Status.CRIT, f"MCP at {where}/{opts.mcp_path.lstrip('/')} "
                                           f"failed while /health is fine: {problem}", metrics)
            notes.append(f"MCP round trip in {metrics['mcp_total_ms']:.0f} ms")
        status = worst(statuses)
        head = "degraded" if status is not Status.OK else "healthy"
        return Result(status, f"{head} at {where}: " + ", ".join(notes), metrics,
                      {"port": port})

    def _judge(self, data: dict[str, Any]) -> tuple[list[Status], list[str]]:
        opts = self.options
        rules: list[tuple[str, str, str, Callable[[float], bool]]] = [
            (opts.error_rate_field, "error rate", "%", lambda v: v > opts.error_rate_warn_pct),
            (opts.response_field, "avg response", " ms", lambda v: v > opts.response_warn_ms),
            (opts.hit_rate_field, "cache hit rate", "%", lambda v: v < opts.hit_rate_warn_pct)]
        statuses, notes = [Status.OK], []
        for key, label, unit, bad in rules:
            value = data.get(key)
            if isinstance(value, int | float):
                statuses.append(Status.WARN if bad(value) else Status.OK)
                notes.append(f"{label} {value:g}{unit}" + (" (!)" if bad(value) else ""))
        return statuses, notes

    def _find(self) -> tuple[int, dict[str, Any], float] | None:
        """The first port of the range where /health answers with a JSON object."""
        ports = self.options.port_list
        order = ([self.port] if self.port in ports else []) + ports
        per_port = max(0.2, min(1.0, self.timeout / (len(ports) + 1)))
        for port in dict.fromkeys(order):
            data, took = self._get(port, self.options.health_path, per_port)
            if data is not None:
                self.port = port
                return port, data, took
        return None

    def _get(self, port: int, path: str,
             timeout: float | None = None) -> tuple[dict[str, Any] | None, float]:
        # Imported here, as in the http check: the daemon pays for urllib only when used.
        import urllib.error
        import urllib.request

        url = f"http://{self.options.host}:{port}{path}"
        began = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=timeout or self.timeout) as resp:
                data = json.loads(resp.read(MAX_BODY))
        except (urllib.error.URLError, OSError, ValueError):
            return None, 0.0
        took = (time.perf_counter() - began) * 1000
        return (data if isinstance(data, dict) else None), took

    def _round_trip(self, port: int, metrics: dict[str, float]) -> str | None:
        import anyio

        url = f"http://{self.options.host}:{port}{self.options.mcp_path}"
        try:
            anyio.run(self._session, url, metrics)
        except Exception as exc:
            return _one_line(exc)
        return None

    async def _session(self, url: str, metrics: dict[str, float]) -> None:
        import anyio
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        opts = self.options
        began = time.perf_counter()
        with anyio.fail_after(self.timeout * 0.9):
            async with streamable_http_client(url) as (read, write), \
                    ClientSession(read, write) as session:
                for step, call in (("initialize", session.initialize),
                                   ("ping", session.send_ping)):
                    _, metrics[f"mcp_{step}_ms"] = await _timed(call)
                if opts.list_tools or opts.call_tool:
                    tools = await session.list_tools()
                    metrics["mcp_tools"] = float(len(tools.tools))
                if opts.call_tool:
                    reply, metrics["mcp_call_ms"] = await _timed(
                        session.call_tool, opts.call_tool, opts.tool_arguments)
                    if getattr(reply, "is_error", False):
                        raise RuntimeError(f"tool {opts.call_tool} returned an error")
        metrics["mcp_total_ms"] = round((time.perf_counter() - began) * 1000, 3)


async def _timed(call: Any, *args: Any) -> tuple[Any, float]:
    """What ``call(*args)`` returned, and how many milliseconds it took."""
    began = time.perf_counter()
    reply = await call(*args)
    return reply, round((time.perf_counter() - began) * 1000, 3)


def _numbers(data: dict[str, Any], skip: set[str]) -> dict[str, float]:
    return {key: float(value) for key, value in data.items()
            if key not in skip and isinstance(value, int | float) and not isinstance(value, bool)}


def _one_line(exc: BaseException) -> str:
    # anyio wraps task failures in exception groups; the first leaf says what happened.
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@hookimpl
def vigil_check_types(register: RegisterCheck) -> None:
    register("mcp", Mcp)


@hookimpl
def vigil_detect(add: Detected) -> None:
    probe = Mcp("mcp_memory", McpOptions(metrics_path=""), timeout=3.0)
    found = probe._find()
    if found:
        add("mcp_memory", {"type": "mcp", "ports": "3000-3010"},
            note=f"an MCP server's /health answers on 127.0.0.1:{found[0]}")
