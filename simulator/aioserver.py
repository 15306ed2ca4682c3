"""A bounded HTTP/1.1 server on an asyncio loop, for the send API: one thread for every
connection and for the status callbacks, so a burst of sends and their statuses never fight
over the GIL (benchmarks/sendapi.py: the threaded server lost half its time handing the GIL
between a thread per connection and the status loop, and p99 reached 30 ms).

The bounds are the threaded BoundedServer's (simulator/bounded.py): at most
`max_connections` open (past it a short 503), a byte budget for the bodies all connections
hold at once, a deadline for each request's head and body, an idle timeout between requests,
a bounded head. What a request means is the application's: `App.early` may answer from the
head alone (a wrong key: the body is never read), `App.answer` answers the whole request.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import gc
import json
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from http import HTTPStatus
from typing import Any, Protocol, cast

from simulator.inputs import is_ascii_digits
from simulator.terminal import visible

MAX_HEAD = 64 * 1024  # request line and headers together, as http.server's line limit
MAX_HEADERS = 100  # http.client's limit, which BaseHTTPRequestHandler enforced
_WRITE_HIGH = 256 * 1024  # answers a client has not read yet, past which reading pauses


@dataclass(frozen=True)
class Head:
    """A request's line and headers, before its body."""

    method: str
    target: str
    headers: Mapping[str, str]  # the last of a repeated name wins, its case as sent
    length: int  # Content-Length (0 without one)
    keep_alive: bool


@dataclass(frozen=True)
class Answer:
    """What goes back: a status, a body, and whether the connection closes after it."""

    status: int
    body: bytes
    content_type: str = "application/json"
    close: bool = False
    retry_after: bool = False


class App(Protocol):
    """What the server asks of the application."""

    def limit(self) -> int:
        """The largest body accepted (a longer one is refused unread)."""

    def early(self, head: Head) -> Answer | None:
        """An answer from the head alone (the body is then never read), or None."""

    def answer(self, head: Head, body: bytes) -> Answer:
        """The answer to a whole request; never raises for what a client sends."""

    def hold(self) -> Awaitable[None] | None:
        """Something to wait for before the answer goes (back-pressure), or None."""


class AsyncServer:
    """Serves `app` on a bound socket from the running loop; start() and close() there."""

    server_name = "wasim-api"

    def __init__(self, sock: socket.socket, app: App, *, max_connections: int,
                 max_buffered: int, idle_timeout: Callable[[], float],
                 request_deadline: Callable[[], float]) -> None:
        self.sock = sock
        self.app = app
        self.max_connections = max_connections
        self.max_buffered = max_buffered
        self.idle_timeout = idle_timeout  # read at each use, so a test can shorten them
        self.request_deadline = request_deadline
        self.buffered = 0  # bytes reserved by the bodies being read or handled now
        self.connections: set[_Connection] = set()
        self._server: asyncio.Server | None = None
        self._date = (0, b"")
        self._failures: set[str] = set()  # kinds of application errors already reported
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Accept connections on the socket."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), sock=self.sock, backlog=1024)
        self._sweeper = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        """Close the connections whose idle time or request deadline has passed.

        One sweep a fraction of a second for every connection, instead of a timer set and
        cancelled at every request: those timers (a heap of cancelled handles, compared in
        Python) cost a tenth of a send under load (benchmarks/sendapi.py, profiled).
        """
        loop = asyncio.get_running_loop()
        while True:
            # A quarter of the shortest limit, at most half a second: a limit is kept to
            # within that much.
            await asyncio.sleep(min(0.5, self.idle_timeout() / 4, self.request_deadline() / 4))
            now = loop.time()
            for connection in [c for c in self.connections if c.expired(now)]:
                connection.expire()

    async def close(self) -> None:
        """Stop accepting and close every connection."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.abort()
        if self._server is not None:
            with contextlib.suppress(Exception):  # closing is best effort at shutdown
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def reserve(self, size: int) -> bool:
        """Reserve `size` bytes of the body budget; False (nothing reserved) when spent."""
        if self.buffered + size > self.max_buffered:
            return False
        self.buffered += size
        return True

    def release(self, size: int) -> None:
        """Give back what reserve() took."""
        self.buffered -= size

    def failed(self, error: Exception) -> None:
        """The application raised on a request (a bug): say so once per kind, on stderr."""
        kind = type(error).__name__
        if kind not in self._failures:
            self._failures.add(kind)
            text = visible(str(error))[:200]  # it may quote what the client sent
            print(f"wasim: the send API failed on a request ({kind}: {text}); it answered "
                  "500. Please report it.", file=sys.stderr)

    def date(self) -> bytes:
        """The Date header's value, formatted once a second."""
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, email.utils.formatdate(now, usegmt=True).encode())
        return self._date[1]

    def encode(self, answer: Answer, *, send_body: bool) -> bytes:
        """The answer's bytes: status line, headers and body, written at once."""
        try:
            reason = HTTPStatus(answer.status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {answer.status} {reason}".encode(),
                 b"Server: " + self.server_name.encode(), b"Date: " + self.date(),
                 b"Content-Type: " + answer.content_type.encode(),
                 b"Content-Length: " + str(len(answer.body)).encode()]
        if answer.retry_after:
            lines.append(b"Retry-After: 1")
        if answer.close:
            lines.append(b"Connection: close")
        return b"\r\n".join(lines) + b"\r\n\r\n" + (answer.body if send_body else b"")


class _Connection(asyncio.Protocol):
    """One client connection: requests read in order, answered in order."""

    def __init__(self, server: AsyncServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.head: Head | None = None  # the request whose body is being read
        self.reserved = 0
        self.busy = False  # an answer is waiting (hold): later requests wait their turn
        self.closing = False
        self.deadline = 0.0  # loop time by which the current request must have arrived
        self.expires = 0.0  # loop time after which the sweep closes it (unless busy)

    # --- the connection's life ------------------------------------------------------------

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)  # TCP (uvloop's is no asyncio subclass)
        self.transport = transport
        server = self.server
        if len(server.connections) >= server.max_connections:
            # No room: a short, complete answer, so a well-behaved client comes back later.
            transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                            b"Retry-After: 1\r\nConnection: close\r\n\r\n")
            self.closing = True
            transport.close()
            return
        server.connections.add(self)
        with contextlib.suppress(OSError):
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=_WRITE_HIGH)
        self._wait_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self._release()
        self.closing = True

    def pause_writing(self) -> None:
        # A client that sends without reading its answers: stop reading it too.
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.transport is not None and not self.closing:
            self.transport.resume_reading()

    def abort(self) -> None:
        """Close now, dropping what is unsent."""
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def _close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def _release(self) -> None:
        if self.reserved:
            self.server.release(self.reserved)
            self.reserved = 0

    # --- time limits (kept by the server's sweep) ------------------------------------------

    def _loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def expired(self, now: float) -> bool:
        """Whether the sweep at loop time `now` must close it."""
        return not self.busy and not self.closing and now >= self.expires

    def expire(self) -> None:
        """A silent connection, or a request that took too long to arrive: close it."""
        self._close()

    def _wait_idle(self) -> None:
        """Between requests: closed after the idle timeout unless one starts."""
        self.expires = self._loop().time() + self.server.idle_timeout()

    def _arriving(self) -> None:
        """Data came: the next silence may last the idle time, never past the deadline."""
        now = self._loop().time()
        if not self.deadline:
            self.deadline = now + self.server.request_deadline()
        if now >= self.deadline:
            self._close()
            return
        self.expires = min(now + self.server.idle_timeout(), self.deadline)

    # --- reading --------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.buffer += data
        if not self.busy:
            self._arriving()
            self._advance()

    def _advance(self) -> None:
        """Handle every whole request in the buffer, in order, until one must wait."""
        while not self.closing and not self.busy:
            if self.head is None:
                if not self._read_head():
                    return
                continue
            head = self.head
            if len(self.buffer) < head.length:
                return
            body = bytes(self.buffer[:head.length])
            del self.buffer[:head.length]
            self.head = None
            self._respond(head, body)

    def _read_head(self) -> bool:
        """Parse a head from the buffer; False when more bytes are needed (or it closed)."""
        if not self.buffer:
            return False
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > MAX_HEAD:
                self._refuse(431, "the request's headers are too long")
            return False
        if end > MAX_HEAD:
            self._refuse(431, "the request's headers are too long")
            return False
        raw = bytes(self.buffer[:end])
        del self.buffer[:end + 4]
        head = _parse_head(raw)
        if isinstance(head, str):
            self._refuse(400, head)
            return False
        if any(k.lower() == "transfer-encoding" for k in head.headers):
            # Every client in send-api.md sends a length; chunked uploads are not worth the
            # code here, and a clear answer beats a hang.
            self._refuse(411, "Send a Content-Length.")
            return False
        limit = self.server.app.limit()
        if head.length < 0 or head.length > limit:
            status = 413 if head.length > limit else 400
            self._refuse(status, f"the body must be 0 to {limit} bytes")
            return False
        early = self.server.app.early(head)
        if early is not None:  # refused from the head: the body is never read
            closes = bool(head.length) or not head.keep_alive
            self._send(_closing(early) if closes else early, head)
            if closes:
                return False
            self._next_request()
            return True
        if not self.server.reserve(head.length):
            self._send(Answer(503, _error(503, "too many bodies being uploaded at once; "
                                               "retry"), close=True, retry_after=True), head)
            return False
        self.reserved = head.length
        if head.length and (header(head.headers, "expect") or "").lower() == "100-continue":
            self._write(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.head = head
        return True

    def _refuse(self, status: int, message: str) -> None:
        self._send(Answer(status, _error(status, message), close=True), None)

    # --- answering ------------------------------------------------------------------------

    def _respond(self, head: Head, body: bytes) -> None:
        try:
            answer = self.server.app.answer(head, body)
        except Exception as exc:  # a bug of ours: the client gets a 500, not a hung request
            answer = Answer(500, _error(500, f"the server failed: {type(exc).__name__}"),
                            close=True)
            self.server.failed(exc)
        finally:
            self._release()
        if not head.keep_alive and not answer.close:
            answer = _closing(answer)
        held = self.server.app.hold()
        if held is None:
            self._send(answer, head)
            self._next_request()
            return
        # Back-pressure: this answer (and every later request) waits; reading pauses, so
        # a client's half-close is read (and the connection closed) only after the answer.
        self.busy = True
        if self.transport is not None:
            self.transport.pause_reading()
        task = self._loop().create_task(self._later(held, answer, head))
        task.add_done_callback(_quiet)

    async def _later(self, held: Awaitable[None], answer: Answer, head: Head) -> None:
        try:
            await held
        finally:
            self.busy = False
            if not self.closing:
                self._send(answer, head)
                self._next_request()
                if self.transport is not None and not self.closing:
                    self.transport.resume_reading()
                    self._advance()

    def _next_request(self) -> None:
        if self.closing:
            return
        self.deadline = 0.0
        if self.buffer:
            self._arriving()
        else:
            self._wait_idle()

    def _send(self, answer: Answer, head: Head | None) -> None:
        send_body = head is None or head.method != "HEAD"
        self._write(self.server.encode(answer, send_body=send_body))
        if answer.close:
            self._close()

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


def _closing(answer: Answer) -> Answer:
    return replace(answer, close=True)


def _error(status: int, message: str) -> bytes:
    return json.dumps({"code": f"WA{status}", "message": message, "error": {}}).encode()


def _quiet(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a connection that died mid-answer is not an error


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever its name's case (`api-key`, `Api-Key`); None if absent."""
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _parse_head(raw: bytes) -> Head | str:
    """The head's parts, or what is wrong with it (for a 400)."""
    try:
        text = raw.decode("iso-8859-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        return "the request's head is not text"
    lines = text.split("\r\n")
    words = lines[0].split()
    if len(words) != 3 or not words[2].startswith("HTTP/1."):
        return f"bad request line {lines[0][:80]!r}"
    method, target, version = words
    if len(lines) - 1 > MAX_HEADERS:
        return f"more than {MAX_HEADERS} headers"
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            return f"bad header line {line[:80]!r}"
        headers[name] = value.strip()
    length_text = header(headers, "content-length") or "0"
    length = int(length_text) if is_ascii_digits(length_text) else -1  # not '²': int() refuses
    connection = (header(headers, "connection") or "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" \
        else "keep-alive" in connection
    return Head(method, target, headers, length, keep_alive)


def tune_collector() -> Callable[[], None]:
    """Make the cycle collector cheap for a process that serves for long and keeps records;
    returns what puts it back (for a caller in someone else's process: a test's).

    Freeze what is loaded so far (modules, Faker's data: tens of thousands of objects that
    live as long as the process) out of every later collection, and collect the oldest
    generation a hundred times less often. A full collection scans every record the server
    keeps (10,000 messages and statuses) and stalled every answer for tens of milliseconds
    a few times a second under load (benchmarks/sendapi.py's p99). The records are freed
    by their reference counts when dropped; a full collection still runs, only less often.
    """
    thresholds = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(thresholds[0], thresholds[1], 1000)

    def restore() -> None:
        gc.set_threshold(*thresholds)
        gc.unfreeze()

    return restore


__all__ = ["MAX_HEAD", "MAX_HEADERS", "Answer", "App", "AsyncServer", "Head", "header",
           "tune_collector"]
