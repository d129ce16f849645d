"""Check type ``load``: a small load test of an HTTP endpoint or an MCP server's tool
(the seed's ``rehydrate_memory`` call): ``requests`` calls, ``concurrency`` at a time;
success rate, requests per second, mean and p50/p95/p99 response times, errors by kind.

It loads a real service, so it is bounded: at most ``concurrency`` calls in flight and
``requests`` in all, 5 minutes at least between two runs (its interval, its fast
interval, and whoever asks) unless ``allow_frequent``, and vigil does not run it while
its service is being healed or is under maintenance. The calls get ``CALLS_SHARE`` of its
``timeout``: one still unanswered then is a ``timeout`` error, and the test ends with its
figures before the core's timeout would take them."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vigil import (
    Check,
    ConfigError,
    Duration,
    RegisterCheck,
    Result,
    Status,
    above,
    hookimpl,
    plural,
    redact,
    worst,
)

#: The share of the check's ``timeout`` its calls may take; the rest is the core's margin.
CALLS_SHARE = 0.9


@dataclass
class LoadOptions:
    #: An HTTP endpoint (with ``method``, ``headers``, ``body``)...
    url: str | None = None
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    #: ...or an MCP server's endpoint and the tool to call.
    mcp_url: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    requests: int = 20
    concurrency: int = 4
    p95_warn: Duration | None = None
    p95_crit: Duration | None = None
    #: Success rates (%) under which the check is WARN (any failure, by default) or CRIT.
    success_warn: float | None = 100.0
    success_crit: float | None = 90.0
    allow_frequent: bool = False

    def __post_init__(self) -> None:
        if (self.url is None) == (self.mcp_url is None):
            raise ConfigError("url", "set url (HTTP) or mcp_url (an MCP server), one of them")
        if self.mcp_url is not None and not self.tool:
            raise ConfigError("tool", "an MCP load test calls a tool: name it")
        for key in ("requests", "concurrency"):
            if getattr(self, key) < 1:
                raise ConfigError(key, "must be at least 1")
        self.concurrency = min(self.concurrency, self.requests)


@dataclass
class Call:
    """One request: how long it took (ms), and what went wrong ("" when nothing)."""

    took_ms: float
    error: str = ""


class Load(Check):
    Options = LoadOptions
    options: LoadOptions
    min_interval: ClassVar[float] = 300.0
    metrics = ("requests", "success_rate_pct", "requests_per_s", "latency_mean_ms",
               "latency_p*_ms", "errors{*}")

    def run(self) -> Result:
        opts = self.options
        began = time.perf_counter()
        calls = self._mcp() if opts.mcp_url else self._http(began + CALLS_SHARE * self.timeout)
        elapsed = time.perf_counter() - began
        return judge(calls, elapsed, opts, redact(opts.url or opts.mcp_url or ""))

    def _http(self, deadline: float) -> list[Call]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.options.concurrency) as pool:
            return list(pool.map(lambda _: self._one_http(deadline),
                                 range(self.options.requests)))

    def _one_http(self, deadline: float) -> Call:
        """One request, answered by ``deadline`` (time.perf_counter()) or a timeout."""
        # urllib costs the daemon ~2 MB: imported only when a load check runs.
        import urllib.error
        import urllib.request

        opts = self.options
        data = opts.body.encode() if opts.body is not None else None
        request = urllib.request.Request(opts.url or "", data=data, method=opts.method,
                                         headers=opts.headers)
        began = time.perf_counter()
        if began >= deadline:  # its turn came after the test's time was up
            return Call(0.0, "timeout")
        try:
            with urllib.request.urlopen(request, timeout=deadline - began) as reply:
                reply.read()
            error = ""
        except urllib.error.HTTPError as exc:
            error = f"http_{exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            error = _kind(getattr(exc, "reason", exc))
        return Call((time.perf_counter() - began) * 1000, error)

    def _mcp(self) -> list[Call]:
        import anyio

        calls: list[Call] = []
        try:
            anyio.run(self._mcp_sessions, calls)
        except Exception as exc:  # a session that never opened: every call it owed failed
            calls += [Call(0.0, _kind(exc))] * (self.options.requests - len(calls))
        return calls

    async def _mcp_sessions(self, calls: list[Call]) -> None:
        import anyio

        opts = self.options
        shares = [opts.requests // opts.concurrency + (i < opts.requests % opts.concurrency)
                  for i in range(opts.concurrency)]
        with anyio.fail_after(CALLS_SHARE * self.timeout):
            async with anyio.create_task_group() as group:
                for share in shares:
                    group.start_soon(self._mcp_session, share, calls)

    async def _mcp_session(self, share: int, calls: list[Call]) -> None:
        from mcp import ClientSession
        from mcp.client.streamable_http import streamable_http_client

        opts = self.options
        async with streamable_http_client(opts.mcp_url or "") as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            for _ in range(share):
                began = time.perf_counter()
                try:
                    reply = await session.call_tool(opts.tool or "", opts.arguments)
                    error = "tool_error" if getattr(reply, "is_error", False) else ""
                except Exception as exc:
                    error = _kind(exc)
                calls.append(Call((time.perf_counter() - began) * 1000, error))


def judge(calls: list[Call], elapsed: float, opts: LoadOptions, target: str) -> Result:
    """The figures of a load test, and its status against the thresholds."""
    good = sorted(c.took_ms for c in calls if not c.error)
    success = 100.0 * len(good) / len(calls) if calls else 0.0
    errors = Counter(c.error for c in calls if c.error)
    metrics: dict[str, float] = {
        "requests": float(len(calls)), "success_rate_pct": round(success, 2),
        "requests_per_s": round(len(calls) / elapsed, 2) if elapsed else 0.0}
    if good:
        metrics["latency_mean_ms"] = round(sum(good) / len(good), 2)
        for q in (50, 95, 99):
            metrics[f"latency_p{q}_ms"] = round(_percentile(good, q), 2)
    for kind, count in errors.items():
        metrics[f'errors{{kind="{kind}"}}'] = float(count)
    p95 = metrics.get("latency_p95_ms")
    statuses = [_below(success, opts.success_warn, opts.success_crit)]
    if p95 is not None:
        statuses.append(above(p95, _ms(opts.p95_warn), _ms(opts.p95_crit)))
    summary = (f"{plural(len(calls), 'request')} to {target}: {success:.1f}% succeeded, "
               f"{metrics['requests_per_s']:g}/s")
    if p95 is not None:
        summary += f", p50 {metrics['latency_p50_ms']:.0f} ms, p95 {p95:.0f} ms"
    if errors:
        summary += "; errors: " + ", ".join(f"{k} x{n}" for k, n in errors.most_common())
    limit = _ms(opts.p95_warn or opts.p95_crit)
    return Result(worst(statuses), summary, metrics,
                  thresholds={"latency_p95_ms": limit} if limit else {})


def _percentile(ordered: list[float], q: float) -> float:
    """The nearest-rank percentile of sorted values."""
    return ordered[max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))]


def _ms(duration: float | None) -> float | None:
    return None if duration is None else duration * 1000


def _below(value: float, warn: float | None, crit: float | None) -> Status:
    """A success rate's status: bad under its thresholds (None turns one off)."""
    if crit is not None and value < crit:
        return Status.CRIT
    return Status.WARN if warn is not None and value < warn else Status.OK


def _kind(error: object) -> str:
    """An error's kind, for the ``errors`` metric: timeout, refused, or its type. What a
    library wraps (the MCP SDK's task group, httpx's ConnectError over the socket's
    ConnectionRefusedError) is looked through."""
    for found in _within(error):
        text = f"{type(found).__name__} {found}".lower()
        if isinstance(found, TimeoutError) or "timed out" in text or "timeout" in text:
            return "timeout"
        if isinstance(found, ConnectionRefusedError) or "refused" in text:
            return "refused"
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return type(error).__name__


def _within(error: object, depth: int = 0) -> Iterator[object]:
    """The error, what an exception group holds, and what each was raised from."""
    yield error
    if not isinstance(error, BaseException) or depth > 10:
        return
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _within(inner, depth + 1)
    cause = error.__cause__ or error.__context__
    if cause is not None:
        yield from _within(cause, depth + 1)


@hookimpl
def vigil_check_types(register: RegisterCheck) -> None:
    register("load", Load)
