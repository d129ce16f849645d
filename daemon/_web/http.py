"""The HTTP server: the standard library's threaded server on a thread of its own, made
safe to expose. A connection waits for its request head on one shared thread
(``heads``: a trickling, stalled or idle client holds no slot; a head not whole within
10 s is answered 408, a connection that sends nothing is closed). A request whose head
came gets a thread and a slot: at most MAX_CONNECTIONS at once, PER_CLIENT from one
address; past those, PROBE_RESERVE more serve only the probes (more are refused with
429). Between requests a kept-alive connection goes back to wait. Event streams have a
budget of their own, the oldest giving way to a new one when it is spent. A body must
come within IDLE_S (else 408), header lines of 64 KiB and 100 headers at most
(http.server's own limits), a body of MAX_BODY. Every request the parser rejects is
answered with a 4xx; nothing is ever served from disk."""

from __future__ import annotations

import collections
import contextlib
import http.server
import io
import json
import re
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import structlog

from vigil._engine.events import EventHub
from vigil._kit.redact import redact, redact_value
from vigil._web.api import Reply, Stream, WebApi
from vigil._web.heads import Heads, Replay

log = structlog.get_logger("vigil.http")

MAX_CONNECTIONS = 64
#: Connections one address may hold of MAX_CONNECTIONS.
PER_CLIENT = 48
#: Slots kept for the probes, so that slow clients holding every other one (a body that
#: trickles) never fail a health check.
PROBE_RESERVE = 8
PROBES = frozenset({"/livez", "/readyz", "/health"})
#: Event streams (status page tabs) held open at once, apart from the connections: a
#: probe never waits behind streams.
MAX_STREAMS = 64
#: Answers to wrong tokens waiting out their delay at once, apart from the connections: a
#: flood of guesses holds none of the slots the right token needs.
MAX_PENALTIES = 128
IDLE_S = 10.0
#: The socket's own timeout, past IDLE_S: a request that stalls is cut off with a 408 at
#: its deadline (which the serving loop looks at every half second), before the socket
#: would give up on it without a word.
SOCKET_TIMEOUT_S = IDLE_S + 2.0
MAX_BODY = 64 * 1024
#: The longest request line, as http.server itself reads it.
MAX_LINE = 65536
#: How long, and how much, a closing connection's unread input is drained.
LINGER_S = 0.5
MAX_LINGER_BYTES = 1 << 20
#: A comment line on an idle event stream, so proxies and clients see it is alive.
KEEPALIVE_S = 15.0
#: A query's value in a request line: masked in the debug log, whatever its name.
_QUERY_VALUE = re.compile(r"([?&][^=&\s]*=)[^&\s]*")
#: What the request parser says that the client did wrong, said as a client error.
CLIENT_ERRORS = {501: 405, 505: 400}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], api: WebApi) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.heads: Heads | None = None  # made once the address is had
        super().__init__(address, Handler)
        self.api = api
        self.stopping = threading.Event()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._reserve = threading.BoundedSemaphore(PROBE_RESERVE)
        #: Connections on a probe's slot; the address of each on a connection's slot, and
        #: how many each address holds.
        self.probing: set[socket.socket] = set()
        self._clients: dict[socket.socket, str] = {}
        self._per_client: collections.Counter[str] = collections.Counter()
        self._streams = threading.BoundedSemaphore(MAX_STREAMS)
        self._penalties = threading.BoundedSemaphore(MAX_PENALTIES)
        #: Connections whose wrong token's answer waits: they hold a penalty's slot.
        self._penalized: set[socket.socket] = set()
        #: Connections that became event streams, oldest first: they hold a stream's
        #: slot instead.
        self._streaming: dict[socket.socket, None] = {}
        #: What the head waiter read of each request handed on, for its handler; each
        #: connection's address; the kept-alive ones that go back to wait.
        self.prefix: dict[socket.socket, bytes] = {}
        self._addresses: dict[socket.socket, tuple[str, int]] = {}
        self.requeue: set[socket.socket] = set()
        self.heads = Heads(self._dispatch)
        #: Connections whose request is still being read, with the time it must be in by.
        self.reading: dict[socket.socket, float] = {}
        #: Connections cut off for reading too slowly: answered 408, nothing more.
        self.cut: set[socket.socket] = set()
        self._reading_lock = threading.Lock()

    def become_stream(self, conn: socket.socket) -> bool:
        """Move ``conn`` from the connections' budget to the streams'. When every stream
        slot is taken, the oldest stream is ended for it (a tab long closed, or a client
        that holds streams it never reads; a live page reconnects by itself); False when
        none is freed in time."""
        if conn in self.probing:
            return False
        if not self._streams.acquire(blocking=False):
            with self._reading_lock:
                oldest = next(iter(self._streaming), None)
            if oldest is not None:
                with contextlib.suppress(OSError):
                    oldest.shutdown(socket.SHUT_RDWR)
            if not self._streams.acquire(timeout=2.0):
                return False
        with self._reading_lock:
            self._streaming[conn] = None
            self._forget_client(conn)
        self._slots.release()
        return True

    def penalize(self, conn: socket.socket) -> bool:
        """Move ``conn``, whose answer waits out a wrong token's delay, from the
        connections' budget to the penalties'; False when that is spent too (or the
        connection holds a probe's slot): it is then answered 429 at once."""
        if conn in self.probing or not self._penalties.acquire(blocking=False):
            return False
        with self._reading_lock:
            self._penalized.add(conn)
            self._forget_client(conn)
        self._slots.release()
        return True

    def _forget_client(self, conn: socket.socket) -> None:
        """(With the lock held.) ``conn`` no longer holds a connection's slot."""
        client = self._clients.pop(conn, None)
        if client is not None:
            self._per_client[client] -= 1
            if self._per_client[client] <= 0:
                del self._per_client[client]

    def read_by(self, conn: socket.socket, deadline: float | None) -> None:
        """The request on ``conn`` must be read by ``deadline`` (None: it has been)."""
        with self._reading_lock:
            if deadline is None:
                self.reading.pop(conn, None)
            else:
                self.reading[conn] = deadline

    def service_actions(self) -> None:
        """(Between polls of the serving loop.) Cut off requests past their deadline: the
        socket timeout alone restarts with every byte a slow client sends."""
        now = time.monotonic()
        with self._reading_lock:
            late = [conn for conn, deadline in self.reading.items() if deadline < now]
            for conn in late:
                del self.reading[conn]
                self.cut.add(conn)
        for conn in late:
            with contextlib.suppress(OSError):
                conn.sendall(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
                # The handler's read ends; what it read of the request is not answered.
                conn.shutdown(socket.SHUT_RD)

    def process_request(self, request: Any, client_address: Any) -> None:
        """(The serving loop's, at each accept.) The connection waits for its head."""
        assert self.heads is not None
        self.heads.wait(request, client_address)

    def _dispatch(self, conn: socket.socket, address: tuple[str, int], head: bytes) -> None:
        """(The head waiter's.) A request head came whole: a slot and a thread for it,
        a probe's slot when it is a probe and the others are taken, else 429 at once (a
        flood of requests must not become a flood of threads)."""
        client = str(address[0])
        with self._reading_lock:
            mine = self._per_client[client] < PER_CLIENT and self._slots.acquire(
                blocking=False)
            if mine:
                self._per_client[client] += 1
                self._clients[conn] = client
        if not mine:
            if _path(head) not in PROBES or not self._reserve.acquire(blocking=False):
                with contextlib.suppress(OSError):
                    conn.sendall(b"HTTP/1.1 429 Too Many Requests\r\n"
                                 b"Content-Length: 0\r\nConnection: close\r\n"
                                 b"Retry-After: 1\r\n\r\n")
                self.close_request(conn)
                return
            self.probing.add(conn)
        self.prefix[conn] = head
        self._addresses[conn] = address
        super().process_request(conn, address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._reading_lock:
                self.cut.discard(request)
                streamed = self._streaming.pop(request, False) is None
                probe = request in self.probing
                self.probing.discard(request)
                penalized = request in self._penalized
                self._penalized.discard(request)
                self._forget_client(request)
            if probe:
                self._reserve.release()
            elif streamed:
                self._streams.release()
            elif penalized:
                self._penalties.release()
            else:
                self._slots.release()

    def shutdown_request(self, request: Any) -> None:
        """A kept-alive connection between requests goes back to wait for its next head.
        Else a lingering close: what the client still sends is read and dropped for a
        moment, since closing on unread data resets the connection, and a reset can
        destroy the answer (a 431 for a huge header) before the client reads it."""
        address = self._addresses.pop(request, None)
        self.prefix.pop(request, None)
        if request in self.requeue:
            self.requeue.discard(request)
            if address is not None and self.heads is not None and not self.stopping.is_set():
                self.heads.wait(request, address)
                return
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_WR)
            request.settimeout(LINGER_S)
            drained = 0
            while drained < MAX_LINGER_BYTES and (chunk := request.recv(65536)):
                drained += len(chunk)
        self.close_request(request)

    def server_close(self) -> None:
        if self.heads is not None:
            self.heads.close()
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that vanished mid-answer, mostly: a line in the log, no traceback.
        log.debug("http.dropped", client=str(client_address[0]))


class Handler(http.server.BaseHTTPRequestHandler):
    server: Server
    raw_requestline: bytes
    #: socket.makefile's, buffered (rbufsize): it can peek.
    rfile: io.BufferedReader
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S
    # Headers and body go out in two writes: with Nagle's algorithm the second waits for
    # the client's delayed ACK of the first, 40 ms on every keep-alive request.
    disable_nagle_algorithm = True

    def version_string(self) -> str:
        return "vigil"

    def setup(self) -> None:
        super().setup()
        # What the head waiter read comes first, then the socket.
        prefix = self.server.prefix.pop(self.connection, b"")
        self.rfile = io.BufferedReader(Replay(prefix, self.connection), 65536)

    def handle_one_request(self) -> None:
        # The head is here (the head waiter saw to it); the body has IDLE_S.
        self.server.read_by(self.connection, time.monotonic() + IDLE_S)
        try:
            super().handle_one_request()
        finally:
            self.server.read_by(self.connection, None)
        if not self.close_connection and not self._pipelined():
            # Kept alive, with nothing more sent yet: it waits for its next request on the
            # head waiter's thread, not on this one and its slot.
            self.server.requeue.add(self.connection)
            self.close_connection = True

    def _pipelined(self) -> bool:
        """Whether the next request has begun to come already (a look, never a wait)."""
        self.connection.setblocking(False)
        try:
            return bool(self.rfile.peek(1))
        except (BlockingIOError, OSError):
            return False
        finally:
            with contextlib.suppress(OSError):
                self.connection.settimeout(self.timeout)

    def parse_request(self) -> bool:
        # Empty lines before the request line are ignored (RFC 9112, 2.2), not taken
        # for a request of no words, which the parser would drop without an answer.
        for _ in range(3):
            if self.raw_requestline.strip():
                break
            self.raw_requestline = self.rfile.readline(MAX_LINE + 1)
        if len(self.raw_requestline) > MAX_LINE:
            self.send_error(414)
            return False
        return super().parse_request()

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        problem = self._drain_body()
        self.server.read_by(self.connection, None)  # all in: the answer may take its time
        if self.connection in self.server.cut:
            # Cut off (408) before all of it came: what did come is not acted on.
            self.close_connection = True
            return
        if problem is not None:
            self._send(problem)
            return
        url = urlsplit(self.path)
        if not url.path.startswith("/"):
            self._send(Reply(400, b"bad request target\n"))
            return
        hosts = self.headers.get_all("Host") or []
        if len(hosts) > 1 or len(self.headers.get_all("Authorization") or []) > 1:
            # Which one would count is the reader's guess: a proxy's and ours may differ.
            self.close_connection = True
            self._send(Reply(400, b"one Host and one Authorization header at most\n"))
            return
        if not hosts and self.request_version != "HTTP/1.0":
            self.close_connection = True
            self._send(Reply(400, b"HTTP/1.1 needs a Host header\n"))
            return
        if self.connection in self.server.probing:
            # A slot kept for the probes: one request, and only a probe's.
            self.close_connection = True
            if url.path not in PROBES:
                self._send(Reply(429, b"busy: only the probes are answered now\n",
                                 headers={"Retry-After": "1"}))
                return
        headers = {name.title(): value for name, value in self.headers.items()}
        if url.netloc:  # an absolute-form target: its authority is the host asked for
            headers["Host"] = url.netloc
        try:
            reply = self.server.api.answer("GET" if method == "HEAD" else method, url.path,
                                           url.query, headers)
        except Exception as exc:  # a bug of ours: said in the log, not to the client
            log.error("http.error", path=url.path, error=f"{type(exc).__name__}: {exc}")
            reply = Reply(500, b"internal error; see vigil's log\n")
        if isinstance(reply, Stream):
            self._stream(reply.hub)
        else:
            if reply.delay:
                if not self.server.penalize(self.connection):
                    reply = Reply(429, b"too many wrong tokens at once: try again\n",
                                  headers={"Retry-After": "1"})
                else:
                    # One request on this connection: its slot is a penalty's now.
                    self.close_connection = True
                    time.sleep(reply.delay)
            self._send(reply, head=method == "HEAD")

    def _drain_body(self) -> Reply | None:
        """Read the body and drop it (no endpoint takes one; JSON is tolerated); a reply
        when it is too big, of unknown length, or not JSON."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            return Reply(411, b"send a Content-Length, not a chunked body\n")
        lengths = self.headers.get_all("Content-Length") or ["0"]
        length = lengths[0].strip()
        # One length, in ASCII digits (str.isdigit takes ٣ and ³): a request smuggled
        # past a proxy that read another length is refused.
        if len(lengths) > 1 or not (length.isascii() and length.isdigit()):
            self.close_connection = True
            return Reply(400, b"bad Content-Length: one, in digits\n")
        if int(length) > MAX_BODY:
            self.close_connection = True
            return Reply(413, f"a body of at most {MAX_BODY} bytes\n".encode())
        body = self.rfile.read(int(length))
        if body.strip():
            try:
                json.loads(body)
            except (ValueError, RecursionError):
                return Reply(400, b"a body, when there is one, must be JSON (nested at "
                                  b"most a few hundred deep)\n")
        return None

    def _send(self, reply: Reply, head: bool = False) -> None:
        if self.connection in self.server.cut:  # answered 408 already
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        if "Cross-Origin-Resource-Policy" not in reply.headers:
            # No other site's page may embed what vigil answers (a badge may say so).
            self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(reply.body)

    def _stream(self, hub: EventHub) -> None:
        """Server-Sent Events until the client leaves or the daemon stops."""
        self.close_connection = True
        if not self.server.become_stream(self.connection):
            self._send(Reply(429, f"at most {MAX_STREAMS} event streams at once\n".encode(),
                             headers={"Retry-After": "5"}))
            return
        listener = hub.listen()
        try:
            self.send_response(200)
            for name, value in (("Content-Type", "text/event-stream"),
                                ("Cache-Control", "no-cache"), ("Connection", "close")):
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(b": vigil events\n\n")
            self.wfile.flush()
            while not self.server.stopping.is_set():
                events = listener.take(KEEPALIVE_S)
                for event in events:
                    data = json.dumps(redact_value(event), separators=(",", ":"))
                    self.wfile.write(f"event: {event['event']}\ndata: {data}\n\n".encode())
                if not events:
                    self.wfile.write(b": keep-alive\n\n")
                self.wfile.flush()
        except OSError:
            pass  # the client left
        finally:
            hub.forget(listener)

    def send_error(self, code: int, message: str | None = None,
                   explain: str | None = None) -> None:
        """The request parser's rejections (bad request line, header too long, unknown
        method, HTTP/2.0...): each is the client's doing, so each is a 4xx, plain."""
        code = CLIENT_ERRORS.get(code, code if code < 500 else 400)
        self.close_connection = True
        # The parser leaves an unreadable request at HTTP/0.9, which has no status line:
        # answer in the HTTP vigil speaks, so that the client sees the 4xx.
        self.request_version = "HTTP/1.1"
        body = (json.dumps({"error": message or http.HTTPStatus(code).phrase}) + "\n").encode()
        self._send(Reply(code, body, "application/json"), head=self.command == "HEAD")

    def log_message(self, format: str, *args: Any) -> None:
        # Every request at debug (the default would write to stderr), its query string
        # masked as the rest of the log: a token may ride in it.
        said = _QUERY_VALUE.sub(r"\1***", format % args)
        log.debug("http.request", client=self.client_address[0], said=redact(said))


def start(address: tuple[str, int], api: WebApi) -> Server | None:
    """Serve ``api`` on ``address`` from a thread of its own; None when the address cannot
    be had (``http.unavailable``: vigil runs on without HTTP)."""
    try:
        server = Server(address, api)
    except OSError as exc:
        log.error("http.unavailable", address=f"{address[0]}:{address[1]}",
                  error=exc.strerror or str(exc),
                  hint="another program holds the port: set [daemon] http to another "
                       "port, or http = \"\" for none")
        return None
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                     name="http", daemon=True).start()
    log.info("http.listening", address=f"{address[0]}:{server.server_address[1]}")
    return server


def _path(head: bytes) -> str:
    """The path a request head asks for ("" when its first line is not a request's)."""
    words = head.lstrip(b"\r\n").split(b"\n", 1)[0].split()
    return urlsplit(words[1].decode("latin-1")).path if len(words) >= 2 else ""
