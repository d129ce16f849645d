"""Check type ``load``: a small load test of an HTTP endpoint or an MCP server's tool
(the seed's ``rehydrate_memory`` call): ``requests`` calls, ``concurrency`` at a time;
success rate, requests per second, mean and p50/p95/p99 response times, errors by kind.

It loads a real service, so it is bounded: at most ``concurrency`` calls in flight and
``requests`` in all, 5 minutes at least between two runs (its interval, its fast
interval, and whoever asks) unless ``allow_frequent``, and vigil does not run it while
its service is being healed or is under maintenance."""

from __future__ import annotations

import time
from collections import Counter
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
        # The calls end a little before the core's timeout ends the run: a test whose
        # calls hang says so in its figures (errors{kind="timeout"}), not as a run that
        # timed out with none.
        deadline = began + self.timeout - min(1.0, self.timeout / 10)
        calls = self._mcp(deadline) if opts.mcp_url else self._http(deadline)
        elapsed = time.perf_counter() - began
        return judge(calls, elapsed, opts, redact(opts.url or opts.mcp_url or ""))

    def _http(self, deadline: float) -> list[Call]:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.options.concurrency) as pool:
            return list(pool.map(lambda _: self._one_http(deadline),
                                 range(self.options.requests)))

    def _one_http(self, deadline: float) -> Call:
        # urllib costs the daemon ~2 MB: imported only when a load check runs.
        import urllib.error
        import urllib.request

        opts = self.options
        data = opts.body.encode() if opts.body is not None else None
        request = urllib.request.Request(opts.url or "", data=data, method=opts.method,
                                         headers=opts.headers)
        began = time.perf_counter()
        if began >= deadline:  # its turn came too late: it would have timed out
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

    def _mcp(self, deadline: float) -> list[Call]:
        import anyio

        calls: list[Call] = []
        try:
            anyio.run(self._mcp_sessions, calls, deadline)
        except Exception as exc:  # a session that never opened: every call it owed failed
            calls += [Call(0.0, _kind(exc))] * (self.options.requests - len(calls))
        return calls

    async def _mcp_sessions(self, calls: list[Call], deadline: float) -> None:
        import anyio

        opts = self.options
        shares = [opts.requests // opts.concurrency + (i < opts.requests % opts.concurrency)
                  for i in range(opts.concurrency)]
        with anyio.fail_after(max(0.0, deadline - time.perf_counter())):
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
    """An error's kind, for the ``errors`` metric: timeout, refused, or its type. What
    the MCP SDK raises hides the cause (its task group's exception group, around an
    HTTP client's error raised from the socket's): the kind is found among what the
    error groups and was raised from, and the type named is the first that is no
    group."""
    chain = list(_causes(error)) if isinstance(error, BaseException) else [error]
    for found in chain:
        text = f"{type(found).__name__} {found}".lower()
        if "timed out" in text or "timeout" in text:
            return "timeout"
        if "refused" in text:
            return "refused"
    return type(next((e for e in chain if not isinstance(e, BaseExceptionGroup)),
                     error)).__name__


def _causes(error: BaseException) -> list[BaseException]:
    """The error, then what it groups and what it was raised from, nearest first."""
    found: list[BaseException] = []
    todo = [error]
    while todo:
        current = todo.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        if isinstance(current, BaseExceptionGroup):
            todo += current.exceptions
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return found


@hookimpl
def vigil_check_types(register: RegisterCheck) -> None:
    register("load", Load)
