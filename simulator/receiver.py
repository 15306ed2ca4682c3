"""The built-in local webhook: a real HTTP server that records, checks and answers callbacks."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import random
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from simulator.bounded import BoundedServer
from simulator.errors import WasimError, named
from simulator.meta import SIGNATURE_HEADER, check_signature
from simulator.tapped import read_document
from simulator.terminal import visible
from simulator.validate import validate_callback

# The standard library's server is deliberate: no new dependency, a real socket, and plenty for
# demos and tests. It is not meant to face the internet.

SERVICE = "wasim receiver"
MAX_BODY = 1024 * 1024  # a callback is a few kB; a body over this is refused (413) unread
KEEP_BYTES = 64 * 1024 * 1024  # bodies kept in memory at most; the oldest arrivals go first
MAX_BUFFERED = 64 * 1024 * 1024  # bodies being read at once, all connections together
MAX_CONNECTIONS = 256  # open connections at once; each is a thread, and threads cost memory
_IDLE_TIMEOUT = 30.0  # seconds a kept-alive connection (or a stalled body) may sit silent
# Seconds one request may take to arrive whole (request line, headers, body): a client that
# trickles a byte at a time (slow loris) is cut off here, not kept forever.
_REQUEST_DEADLINE = 60.0
_DRAIN_BYTES = 4 * 1024 * 1024  # read and dropped after a 413, so the client sees the answer
_NO_BODY_STATUSES = (204, 304)  # HTTP forbids a body on these, so none is sent


@dataclass(frozen=True)
class ReceiverOptions:
    """How the receiver listens and answers; the fault switches make it misbehave on purpose."""

    host: str = "127.0.0.1"
    port: int = 8000
    """0 binds any free port."""
    status: int = 200
    """The status answered to every POST (--status)."""
    delay: float = 0.0
    """Seconds to wait before answering (--delay)."""
    fail_rate: float = 0.0
    """Probability 0..1 that a POST is answered 500 instead (--fail-rate)."""
    seed: int | None = None
    """Seeds the fail-rate draws, so the same seed fails the same arrivals."""
    keep: int = 10_000
    """How many arrivals to keep in memory; the oldest are dropped."""
    max_body: int = MAX_BODY
    """The largest body accepted, in bytes; a bigger one is answered 413 without reading it."""
    keep_bytes: int = KEEP_BYTES
    """How many body bytes the kept arrivals may hold together; the oldest are dropped."""
    app_secret: str | None = field(default=None, repr=False)
    """With it, every POST must carry a valid X-Hub-Signature-256; else it is answered 401."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise WasimError(f"port {self.port} is not a TCP port", field="port",
                             hint="Give a port from 1 to 65535, or 0 for any free port.")
        # A 1xx is not a final answer: the sender would wait for one that never comes.
        if not 200 <= self.status <= 599:
            raise WasimError(f"status {self.status} is not a final HTTP status", field="status",
                             hint="Give a status from 200 to 599, e.g. 200, 429 or 503.")
        if not (self.delay >= 0 and math.isfinite(self.delay)):
            raise WasimError(f"delay {self.delay} is not a number of seconds", field="delay",
                             hint="Give 0 or more seconds, e.g. 2.5.")
        if not 0 <= self.fail_rate <= 1:
            raise WasimError(f"fail rate {self.fail_rate} is not a probability",
                             field="fail_rate",
                             hint="Give a number from 0 (never fail) to 1 (always), e.g. 0.2.")
        if self.keep < 1:
            raise WasimError(f"keep {self.keep} would keep no arrivals", field="keep",
                             hint="Keep at least 1 arrival.")
        if self.max_body < 0:
            raise WasimError(f"max body {self.max_body} is negative", field="max_body",
                             hint="Give a size in bytes, e.g. 1048576 for 1 MiB.")
        if self.keep_bytes < 0:
            raise WasimError(f"keep bytes {self.keep_bytes} is negative", where="keep_bytes",
                             hint="Give a size in bytes, e.g. 67108864 for 64 MiB.")


@dataclass(frozen=True)
class Arrival:
    """One request the receiver recorded: the exact bytes, what it made of them, its answer."""

    number: int
    """1, 2, 3... in arrival order."""
    received_at: float
    """Unix time the request was read."""
    method: str
    path: str
    """Path and query, as received."""
    headers: tuple[tuple[str, str], ...]
    body: bytes
    """Exactly the bytes received (de-chunked, nothing else)."""
    status: int
    """The status the receiver answered."""
    summary: str
    """Who tapped which button on which campaign, or why that could not be told."""
    problems: tuple[str, ...]
    """Every contract problem (`simulator.validate`); empty when the callback is valid."""


class _BadRequest(Exception):
    """The request's framing is broken, so its body cannot be read."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Receiver:
    """A local webhook on a real socket: records every callback, validates it and answers."""

    def __init__(self, options: ReceiverOptions = ReceiverOptions(),
                 on_arrival: Callable[[Arrival], None] | None = None, *,
                 wait: Callable[[float], object] | None = None) -> None:
        """`wait(seconds)` sits out --delay before an answer (a test injects its own);
        by default it wakes early when the receiver stops."""
        self.options = options
        self._on_arrival = on_arrival
        # One condition guards the arrivals, the count and the random draws, so numbering,
        # fail-rate draws and recording happen in one atomic step per request.
        self._changed = threading.Condition()
        # A ring: the newest `keep` arrivals whose bodies fit in `keep_bytes` together.
        self._arrivals: deque[Arrival] = deque(maxlen=self.options.keep)
        self._kept_bytes = 0
        self._received = 0
        self._random = random.Random(self.options.seed)
        self._lifecycle = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._wait = wait or self._stopping.wait
        self._bound_port: int | None = None

    def start(self) -> Receiver:
        """Bind and serve in a daemon thread; return self (a no-op while already running)."""
        with self._lifecycle:
            if self._server is None:
                server = self._bind()
                self._thread = threading.Thread(target=server.serve_forever,
                                                kwargs={"poll_interval": 0.1},
                                                name=f"wasim-receiver-{self.port}", daemon=True)
                self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until stop() is called from elsewhere.

        KeyboardInterrupt closes the server and propagates, so the CLI reports it as usual.
        """
        with self._lifecycle:
            if self._thread is not None:
                raise RuntimeError("the receiver is already serving in a thread")
            server = self._server or self._bind()
        try:
            server.serve_forever(poll_interval=0.1)
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop serving, close the socket and every open connection; safe to call twice."""
        with self._lifecycle:
            server, self._server = self._server, None
            thread, self._thread = self._thread, None
            if server is None:
                return
            self._stopping.set()  # wakes requests sleeping out a --delay
            server.shutdown()
            server.server_close()
            # Kept-alive connections outlive the listening socket; without this a client
            # with a pooled connection would still be served after stop().
            server.close_connections()
            if thread is not None:
                thread.join()

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port actually bound (the configured one until the receiver has started)."""
        return self._bound_port if self._bound_port is not None else self.options.port

    @property
    def url(self) -> str:
        """The URL to send callbacks to, e.g. http://127.0.0.1:54321/."""
        host = self.options.host
        return f"http://[{host}]:{self.port}/" if ":" in host else f"http://{host}:{self.port}/"

    @property
    def received(self) -> int:
        """How many requests have been recorded in total, kept or since dropped."""
        with self._changed:
            return self._received

    @property
    def arrivals(self) -> list[Arrival]:
        """A copy of the arrivals kept so far, oldest first."""
        with self._changed:
            return list(self._arrivals)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Arrival]:
        """Block until `count` requests have arrived in total; return the arrivals kept."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._received >= count, timeout):
                raise TimeoutError(f"{self._received} of {count} arrivals within {timeout:g} s "
                                   f"at {self.url}")
            return list(self._arrivals)

    def _bind(self) -> _Server:
        host, port = self.options.host, self.options.port
        try:
            server = _Server(host, port, self)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise WasimError(f"port {port} on {host} is in use", field="port",
                                 hint=f"Stop whatever is using it, pick another port with "
                                      f"{named('port')}, or use {named('port')} 0 for any free "
                                      "port.") from None
            if exc.errno == errno.EACCES:
                raise WasimError(f"not allowed to listen on port {port} on {host}: "
                                 f"{exc.strerror}", field="port",
                                 hint="Ports below 1024 need privileges; pick a higher one or "
                                      f"{named('port')} 0.") from None
            raise WasimError(f"cannot listen on {host} port {port}: {exc.strerror or exc}",
                             field="host",
                             hint="Use an address of this machine, e.g. 127.0.0.1.") from None
        self._server = server
        self._bound_port = server.server_address[1]
        self._stopping.clear()
        return server

    def _record(self, method: str, path: str, headers: tuple[tuple[str, str], ...],
                body: bytes) -> tuple[Arrival, bool]:
        """Check a received body, number and keep it, tell the watcher; True if it must fail."""
        summary, problems = _read_callback(body)
        unsigned = None
        if self.options.app_secret is not None:
            given = [v for k, v in headers if k.lower() == SIGNATURE_HEADER.lower()]
            unsigned = check_signature(self.options.app_secret, given[0] if given else None,
                                       body)
            if unsigned is not None:
                problems = (unsigned, *problems)
        with self._changed:
            self._received += 1
            # Drawn for every request, so the seeded pattern does not depend on the rate.
            failed = self._random.random() < self.options.fail_rate
            arrival = Arrival(number=self._received, received_at=time.time(), method=method,
                              path=path, headers=headers, body=body,
                              status=401 if unsigned else 500 if failed
                              else self.options.status,
                              summary=summary, problems=problems)
            self._keep(arrival)
            self._changed.notify_all()
        failed = failed or unsigned is not None
        if self._on_arrival is not None:
            # The watcher is someone else's code: whatever it raises must not take the
            # server down, but it must not vanish either.
            try:
                self._on_arrival(arrival)
            except Exception as exc:
                print(visible(f"wasim receiver: on_arrival failed for arrival "
                              f"#{arrival.number}: {type(exc).__name__}: {exc}"),
                      file=sys.stderr)
        return arrival, failed

    def _keep(self, arrival: Arrival) -> None:
        """Add to the ring, dropping the oldest arrivals past the count or the byte budget."""
        if len(self._arrivals) == self._arrivals.maxlen:
            self._kept_bytes -= len(self._arrivals[0].body)
        self._arrivals.append(arrival)
        self._kept_bytes += len(arrival.body)
        # The newest arrival is always kept, whatever its size (it is under max_body).
        while self._kept_bytes > self.options.keep_bytes and len(self._arrivals) > 1:
            self._kept_bytes -= len(self._arrivals.popleft().body)

    def _health(self) -> dict[str, Any]:
        with self._changed:
            return {"service": SERVICE, "arrivals": self._received}


class _Server(BoundedServer):
    """The bounded server, knowing its Receiver."""

    def __init__(self, host: str, port: int, receiver: Receiver) -> None:
        self.receiver = receiver
        self.max_connections = MAX_CONNECTIONS  # read when built, so a test can lower it
        # Bodies being read at once (see BoundedServer.max_buffered), never below one body.
        self.max_buffered = max(MAX_BUFFERED, receiver.options.max_body)
        super().__init__(host, port, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """Answers one connection's requests: POST/PUT/PATCH are callbacks, GET is a probe."""

    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries Content-Length
    server_version = "wasim-receiver"
    timeout = _IDLE_TIMEOUT
    # Headers and body go out as two writes; with Nagle's algorithm the second waits for a
    # delayed ACK, adding ~40 ms to every answer on a kept-alive connection.
    disable_nagle_algorithm = True

    deadline = 0.0  # time.monotonic() by which the current request must have arrived
    reserved = 0  # bytes of the server's body budget the current request holds

    def setup(self) -> None:
        super().setup()
        # Every read goes through the request's deadline (see _DeadlineReader).
        self.rfile.close()
        self.rfile = io.BufferedReader(_DeadlineReader(self.connection, self))

    def handle_one_request(self) -> None:
        self.deadline = time.monotonic() + _REQUEST_DEADLINE
        self.reserved = 0  # bytes of the server's body budget this request holds
        try:
            super().handle_one_request()
        finally:
            self.server.release(self.reserved)

    def _reserve(self, size: int) -> None:
        """Take `size` bytes of the budget all connections share, or refuse the body (503)."""
        if not self.server.reserve(size):
            raise _BadRequest(503, "too many bodies being received at once; retry")
        self.reserved += size

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self._read_body_or_answer()
        if body is None:
            return
        arrival, failed = receiver._record(self.command, self.path, tuple(self.headers.items()),
                                           body)
        if receiver.options.delay:
            receiver._wait(receiver.options.delay)
        if arrival.status == 401:
            answer = {"received": False, "error": "bad signature"}
        elif failed:
            answer = {"received": False, "error": "simulated failure (--fail-rate)"}
        else:
            answer = {"received": True, "arrival": arrival.number}
        self._answer(arrival.status, json.dumps(answer).encode(), "application/json")

    do_PUT = do_POST
    do_PATCH = do_POST

    def do_GET(self) -> None:
        # A GET with a body is odd but legal: read it so the connection stays in step.
        if self._read_body_or_answer() is None:
            return
        query = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        # Meta's endpoint verification. The receiver has no token of its own to compare,
        # so it accepts any hub.verify_token.
        if query.get("hub.mode") == "subscribe" and "hub.challenge" in query:
            self._answer(200, query["hub.challenge"].encode(), "text/plain; charset=utf-8")
            return
        self._answer(200, json.dumps(self.server.receiver._health()).encode(),
                     "application/json")

    def do_HEAD(self) -> None:
        # Reachability probes (curl -I) get the health answer's headers.
        body = json.dumps(self.server.receiver._health()).encode()
        self._answer(200, body, "application/json", send_body=False)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: the CLI prints its own line per arrival."""

    def _read_body_or_answer(self) -> bytes | None:
        """The request body, or None after answering a framing error or losing the client."""
        try:
            return self._read_body()
        except _BadRequest as exc:
            self.close_connection = True
            self._answer(exc.status, json.dumps({"received": False, "error": str(exc)}).encode(),
                         "application/json")
            if exc.status == 413:
                self._drain()
        except (TimeoutError, ConnectionError):
            self.close_connection = True  # the client stalled or left mid-body: nobody to answer
        return None

    def _read_body(self) -> bytes:
        codings = [c.strip().lower() for c in self.headers.get("Transfer-Encoding", "").split(",")
                   if c.strip()]
        if codings:
            if codings[-1] != "chunked":
                raise _BadRequest(400, "Transfer-Encoding must end with chunked")
            return self._read_chunked()
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            return b""  # HTTP/1.1: no length and no chunking means no body
        try:
            length = int(length_header)
        except ValueError:
            raise _BadRequest(400, f"Content-Length {length_header!r} is not a number") from None
        if length < 0:
            raise _BadRequest(400, f"Content-Length {length} is negative")
        limit = self.server.receiver.options.max_body
        if length > limit:  # refused before a byte of it is read
            raise _BadRequest(413, f"body of {length} bytes is over the {limit} byte limit")
        self._reserve(length)
        body = self.rfile.read(length)
        if len(body) < length:
            raise _BadRequest(400, f"body ended after {len(body)} of {length} bytes")
        return body

    def _read_chunked(self) -> bytes:
        limit = self.server.receiver.options.max_body
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(65537)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BadRequest(400, f"bad chunk size line {line[:40]!r}") from None
            if size < 0:
                raise _BadRequest(400, f"bad chunk size line {line[:40]!r}")
            if size == 0:
                break
            total += size
            if total > limit:  # refused before the chunk that would pass the limit is read
                raise _BadRequest(413, f"chunked body over the {limit} byte limit")
            self._reserve(size)
            chunk = self.rfile.read(size)
            if len(chunk) < size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BadRequest(400, "chunk shorter than its size or not followed by CRLF")
            chunks.append(chunk)
        for _ in range(100):  # trailer fields: nothing in them matters here
            if self.rfile.readline(65537) in (b"\r\n", b"\n", b""):
                break
        else:
            raise _BadRequest(400, "more than 100 trailer lines")
        return b"".join(chunks)

    def _drain(self) -> None:
        """Read and drop (a bounded amount of) what the client is still sending after a 413,
        so closing does not reset the connection before the client has read the answer."""
        self.deadline = min(self.deadline, time.monotonic() + 2.0)
        left = _DRAIN_BYTES
        with contextlib.suppress(OSError):  # a timeout or a client gone: draining is over
            while left > 0:
                dropped = self.rfile.read1(min(65536, left))
                if not dropped:
                    break
                left -= len(dropped)

    def _answer(self, status: int, body: bytes, content_type: str, *,
                send_body: bool = True) -> None:
        """Send one complete response; a client that already left is not an error."""
        if status in _NO_BODY_STATUSES:
            body = b""
        try:
            # The last read may have left a nearly spent deadline as the socket's timeout.
            self.connection.settimeout(_IDLE_TIMEOUT)
            self.send_response(status)
            if status not in _NO_BODY_STATUSES:
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if send_body and body:
                self.wfile.write(body)
        except ConnectionError:
            self.close_connection = True  # e.g. the sender timed out during --delay


class _DeadlineReader(io.RawIOBase):
    """The socket, read under the handler's per-request deadline: each read may wait for
    the idle timeout at most, and none starts once the request's whole time is up."""

    def __init__(self, connection: socket.socket, handler: _Handler) -> None:
        self.connection = connection
        self.handler = handler

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.handler.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request took too long to arrive")
        self.connection.settimeout(min(_IDLE_TIMEOUT, remaining))
        return self.connection.recv_into(buffer)


def _read_callback(body: bytes) -> tuple[str, tuple[str, ...]]:
    """Summarise and validate a received body; never raises, whatever the bytes are."""
    if not body:
        return "not a callback: the body is empty", ("not JSON: the body is empty",)
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        reason = f"{exc.msg} (line {exc.lineno}, column {exc.colno})"
    except UnicodeDecodeError as exc:
        reason = f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    except ValueError as exc:  # e.g. an integer over Python's digit limit
        reason = str(exc)
    except RecursionError:
        reason = "nested too deeply to read"
    else:
        return _summarise(document), tuple(str(p) for p in validate_callback(document))
    return f"not a callback: {len(body)} bytes that are not JSON", (f"not JSON: {reason}",)


def _summarise(document: Any) -> str:
    """Who did what (as the phone shows it, the TUI's words) on which campaign, or why that
    could not be told."""
    from simulator.kinds import summarize

    tapped = read_document(document)
    if tapped.problem:
        return f"not a callback: {tapped.problem}"
    if not tapped.message:
        if tapped.status:
            return f"{_cut(summarize(document))} of a message to " \
                   f"{tapped.recipient or 'an unknown user'}"
        return "could not tell who tapped what: no messages[] in the callback"
    name, number = tapped.name, tapped.number
    who = f"{name} ({number})" if name and number else name or number or "an unknown user"
    if tapped.button:
        line = f'{who} tapped "{tapped.button}"'
    elif tapped.payload:
        line = f'{who} tapped a button with payload "{tapped.payload}"'
    elif tapped.message_type:  # as a chat line: "Ana (91...): hi", "...: [image] caption"
        line = f"{who}: {_cut(summarize(document))}"
    else:
        line = f"{who} sent a message of no known type"
    # ref1 and ref2 are the brand's own words for the campaign (e.g. "shoes campaign"): as-is.
    if tapped.campaign:
        line += f" · {tapped.campaign}"
    if tapped.more:
        line += f" (and {tapped.more} more in this callback)"
    return line


def _cut(text: str, most: int = 80) -> str:
    """A summary kept to one terminal line's share (a text can be 4,096 characters)."""
    return text if len(text) <= most else text[:most - 1] + "…"


_one_line = visible  # a payload can neither break the line nor the terminal


def describe(arrival: Arrival) -> str:
    """One terminal line for an arrival: time, number, request, summary, verdict and answer."""
    clock = time.strftime("%H:%M:%S", time.localtime(arrival.received_at))
    count = len(arrival.problems)
    if count == 0:
        verdict = "valid"
    else:
        more = "; ..." if count > 1 else ""
        verdict = f"invalid ({count} problem{'s' if count > 1 else ''}: " \
                  f"{arrival.problems[0]}{more})"
    return _one_line(f"{clock}  #{arrival.number} {arrival.method} {arrival.path}  "
                     f"{arrival.summary} · {verdict} → {arrival.status}")
