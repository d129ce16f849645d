"""HTTP requests for sinks, with a timeout, whose every failure is a SinkError that
says what the other side answered (and never the URL, which may hold a token)."""

from __future__ import annotations

import json
from typing import Any

from vigil._api.alert import SinkError
from vigil._kit.redact import redact

#: Bytes of an error answer kept for the alert.failed event.
ANSWER_KEPT = 300


def request(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None,
            timeout: float = 10.0) -> str:
    """Send ``body`` (bytes as they are, None as nothing, anything else as JSON) to
    ``url``; the answer's text. Raises SinkError for a refused connection, a timeout or
    a status outside 2xx."""
    # Here, not at the top: urllib.request brings http.client and email, which a
    # daemon without an HTTP sink need not hold in memory.
    import urllib.error
    import urllib.request

    kind = {}
    data = None
    if isinstance(body, bytes):
        data, kind = body, {"Content-Type": "text/plain; charset=utf-8"}
    elif body is not None:
        data, kind = json.dumps(body).encode(), {"Content-Type": "application/json"}
    sent = urllib.request.Request(url, data=data, method=method,
                                  headers={**kind, **(headers or {})})
    try:
        with urllib.request.urlopen(sent, timeout=timeout) as answer:
            return str(answer.read(1 << 20).decode("utf-8", "replace"))
    except urllib.error.HTTPError as exc:
        text = exc.read(ANSWER_KEPT).decode("utf-8", "replace").strip()
        raise SinkError(redact(f"HTTP {exc.code} {exc.reason}: {text}".rstrip(": "))) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SinkError(redact(f"cannot reach the sink: {reason}")) from None


def post(url: str, body: Any, headers: dict[str, str] | None = None,
         timeout: float = 10.0) -> str:
    """POST ``body`` (bytes as they are, anything else as JSON) to ``url``; the
    answer's text. Raises SinkError for a refused connection, a timeout or a status
    outside 2xx."""
    return request("POST", url, body, headers, timeout)
