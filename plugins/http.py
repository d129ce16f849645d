"""Check type ``http``: status code, latency and, optionally, fields of a JSON body."""

from __future__ import annotations

import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any

from vigil import Check, ConfigError, RegisterCheck, Result, Status, above, hookimpl, redact

MAX_BODY = 1024 * 1024


@dataclass
class HttpOptions:
    url: str
    expect_status: int = 200
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    #: Dotted paths into the JSON body and the values they must hold: {"db.ok" = true}.
    expect_json: dict[str, Any] = field(default_factory=dict)
    warn_ms: float | None = 1000.0
    crit_ms: float | None = None
    verify_tls: bool = True

    #: What is requested: ``url`` without user info, which goes into ``request_headers``
    #: as basic auth, the way curl sends it (urllib would look ``user:pw@host`` up as a
    #: host name).
    target: str = field(init=False)
    request_headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError("url", f"must start with http:// or https://, got {self.url!r}")
        self.target, self.request_headers = _with_basic_auth(self.url, self.headers)


class Http(Check):
    Options = HttpOptions
    options: HttpOptions
    metrics = ("latency_ms", "status_code")

    def run(self) -> Result:
        # urllib costs the daemon ~2 MB: import it only when an HTTP check runs.
        import urllib.error
        import urllib.request

        opts = self.options
        url = redact(opts.url)
        request = urllib.request.Request(opts.target, method=opts.method,
                                         headers=opts.request_headers)
        context = None if opts.verify_tls else ssl._create_unverified_context()
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=context) as resp:
                code, body = resp.status, resp.read(MAX_BODY)
        except urllib.error.HTTPError as exc:  # a 4xx/5xx still has a status to compare
            code, body = exc.code, exc.read(MAX_BODY)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return Result(Status.CRIT, f"{opts.method} {url} failed: {reason}")
        latency_ms = (time.perf_counter() - start) * 1000
        metrics = {"latency_ms": round(latency_ms, 3), "status_code": float(code)}
        if code != opts.expect_status:
            return Result(Status.CRIT, f"{url} returned {code}, expected {opts.expect_status}",
                          metrics)
        problems = _json_mismatches(body, opts.expect_json) if opts.expect_json else []
        if problems:
            return Result(Status.CRIT, f"{url}: " + "; ".join(problems), metrics)
        status = above(latency_ms, opts.warn_ms, opts.crit_ms)
        limit = opts.warn_ms or opts.crit_ms
        return Result(status, f"HTTP {code} from {url} in {latency_ms:.0f} ms", metrics,
                      thresholds={"latency_ms": limit} if limit else {})


def _with_basic_auth(url: str, headers: dict[str, str]) -> tuple[str, dict[str, str]]:
    """``http://user:pw@host/`` as (``http://host/``, headers with basic auth)."""
    if "@" not in url:
        return url, headers
    import base64
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, headers
    netloc = parts.netloc.rpartition("@")[2]
    credentials = f"{urllib.parse.unquote(parts.username)}:" \
                  f"{urllib.parse.unquote(parts.password or '')}"
    token = base64.b64encode(credentials.encode()).decode()
    has_auth = any(k.lower() == "authorization" for k in headers)
    return (parts._replace(netloc=netloc).geturl(),
            headers if has_auth else {**headers, "Authorization": f"Basic {token}"})


def _json_mismatches(body: bytes, expected: dict[str, Any]) -> list[str]:
    try:
        document = json.loads(body)
    except ValueError:
        return ["body is not JSON"]
    problems = []
    for path, want in expected.items():
        node: Any = document
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node != want:
            problems.append(f"{path} is {json.dumps(node)}, expected {json.dumps(want)}")
    return problems


@hookimpl
def vigil_check_types(register: RegisterCheck) -> None:
    register("http", Http)
