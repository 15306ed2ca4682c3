"""wasim's raw HTTP/1.1 client: kept-alive connections that read answers in bounded memory,
the shared header prefix, signing and connecting. Below `load` (its fast client) and the send
API's status sender, which both send many small requests to one target."""

from __future__ import annotations

import asyncio
import errno
import re
import socket
import ssl
from collections.abc import Callable
from typing import Any, NamedTuple

import httpx

from simulator.delivery import (
    DeliveryOptions,
    callback_headers,
)
from simulator.meta import signature_for

# --- the fast client -------------------------------------------------------------------------

# What a hostile target may make the client hold: the status line and headers (with any
# interim 1xx answers before them), one chunk-size line, and the body bytes it keeps. The
# rest of a body is counted and dropped as it arrives, so an endless or gigantic answer costs
# time (bounded by --timeout), never memory.
HEAD_CAP = 64 * 1024
LINE_CAP = 4 * 1024
BODY_CAP = 64 * 1024  # what the history would record of an answer; load records none

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\r\n]*)?")
# The headers that say where an answer ends, found in the lowered header block at once:
# several times cheaper than splitting every line, and this runs once per request.
_FRAMING = re.compile(rb"\r\n(content-length|transfer-encoding|connection)[ \t]*:([^\r\n]*)")


class _Failure(Exception):
    """A request that got no HTTP answer: refused, reset, timed out or garbled."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Answer(NamedTuple):
    status: int
    body: bytes  # the first BODY_CAP bytes
    close: bool  # the connection cannot carry another request


# A target answers with the same head again and again (a server's Date changes once a
# second): reading it once per distinct head, not once per answer, is a fifth of the client's
# Python time. Bounded: past the cap it starts again.
_HEADS: dict[bytes, tuple[bool, int, bool, str, int]] = {}
_HEADS_CAP = 256


class _AnswerReader:
    """Reads the answers on one connection, one at a time, in bounded memory.

    Raises ValueError on anything that is not HTTP/1.x: the connection is then unusable.
    """

    def __init__(self) -> None:
        self.buffer = bytearray()
        self._start()

    def _start(self) -> None:
        self.state = "head"  # head, length, chunk-size, chunk, chunk-end, trailer, until-close
        self.status = 0
        self.close = False
        self.body = bytearray()
        self.remaining = 0  # body (or chunk) bytes still to come
        self.head_bytes = 0  # head bytes seen for this answer, interim answers included

    def feed(self, data: bytes) -> _Answer | None:
        """Take bytes from the connection; the answer once it is complete, else None."""
        if self.state == "head" and not self.buffer and not self.head_bytes:
            answer = self._whole(data)
            if answer is not None:
                return answer
        self.buffer += data
        answer = self._advance()
        if answer is not None and self.buffer:
            # Bytes past the answer came before any request asked for them: whatever
            # follows could not be told apart from the next answer, so the connection ends.
            answer = answer._replace(close=True)
            self.buffer.clear()
        return answer

    def _whole(self, data: bytes) -> _Answer | None:
        """The usual case read straight from `data`: one whole answer with its whole body.

        None for anything else (more to come, an interim answer, bytes past the answer),
        which the general path then reads from the start.
        """
        end = data.find(b"\r\n\r\n")
        if end < 0 or end + 4 > HEAD_CAP:
            return None
        head = data[:end]
        known = _HEADS.get(head)
        if known is None:
            bodiless = self._read_head(head)
            if len(_HEADS) >= _HEADS_CAP:
                _HEADS.clear()  # a target whose heads all differ gets no cache, not memory
            _HEADS[head] = (bodiless, self.status, self.close, self.state, self.remaining)
        else:
            bodiless, self.status, self.close, self.state, self.remaining = known
        body = data[end + 4:]
        if (bodiless and self.state == "head" and not body and self.status >= 200) \
                or (self.state == "length" and self.remaining == len(body)):
            self.state, self.remaining = "head", 0
            return _Answer(self.status, body[:BODY_CAP], self.close)
        self._start()
        return None

    def finish(self) -> _Answer | None:
        """The answer the server's clean close completes, if its body ran until the close."""
        if self.state == "until-close":
            return self._done(close=True)
        return None

    def _done(self, close: bool = False) -> _Answer:
        answer = _Answer(self.status, bytes(self.body), self.close or close)
        self._start()
        return answer

    def _keep(self, size: int) -> None:
        """Move `size` body bytes out of the buffer, keeping the first BODY_CAP."""
        room = BODY_CAP - len(self.body)
        if room > 0:
            self.body += self.buffer[:min(size, room)]
        del self.buffer[:size]

    def _advance(self) -> _Answer | None:
        buffer = self.buffer
        while True:
            state = self.state
            if state == "head":
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    if self.head_bytes + len(buffer) > HEAD_CAP:
                        raise ValueError(f"headers longer than {HEAD_CAP // 1024} KiB")
                    return None
                self.head_bytes += end + 4
                if self.head_bytes > HEAD_CAP:
                    raise ValueError(f"headers longer than {HEAD_CAP // 1024} KiB")
                head = bytes(buffer[:end])
                del buffer[:end + 4]
                if self._read_head(head):
                    return self._done()
            elif state == "length":
                size = min(self.remaining, len(buffer))
                self._keep(size)
                self.remaining -= size
                if self.remaining:
                    return None
                return self._done()
            elif state == "chunk-size":
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > LINE_CAP:
                        raise ValueError("a chunk-size line that never ends")
                    return None
                digits = bytes(buffer[:end]).split(b";", 1)[0].strip()
                if not digits or len(digits) > 15 or digits.strip(b"0123456789abcdefABCDEF"):
                    raise ValueError(f"bad chunk size {bytes(buffer[:min(end, 20)])!r}")
                del buffer[:end + 2]
                self.remaining = int(digits, 16)
                self.state = "chunk" if self.remaining else "trailer"
            elif state == "chunk":
                size = min(self.remaining, len(buffer))
                self._keep(size)
                self.remaining -= size
                if self.remaining:
                    return None
                self.state = "chunk-end"
            elif state == "chunk-end":
                if len(buffer) < 2:
                    return None
                if buffer[:2] != b"\r\n":
                    raise ValueError("a chunk longer than its size")
                del buffer[:2]
                self.state = "chunk-size"
            elif state == "trailer":
                end = buffer.find(b"\r\n")
                if end < 0:
                    if self.head_bytes + len(buffer) > HEAD_CAP:
                        raise ValueError(f"trailers longer than {HEAD_CAP // 1024} KiB")
                    return None
                del buffer[:end + 2]
                if end == 0:
                    return self._done()
                self.head_bytes += end + 2
                if self.head_bytes > HEAD_CAP:
                    raise ValueError(f"trailers longer than {HEAD_CAP // 1024} KiB")
            else:  # until-close: everything up to the server's close is the body
                self._keep(len(buffer))
                return None

    def _read_head(self, head: bytes) -> bool:
        """Take a status line and headers; True when the answer has no body."""
        line_end = head.find(b"\r\n")
        match = _STATUS_LINE.fullmatch(head if line_end < 0 else head[:line_end])
        if match is None:
            raise ValueError(f"not an HTTP/1.x status line: {head[:40]!r}")
        status = int(match.group(2))
        if status == 101:
            raise ValueError("101 Switching Protocols, which nothing asked for")
        if status < 200:
            return False  # an interim answer (100 Continue, 103...): the real one follows
        lengths, codings, connections = [], [], []
        for name, value in _FRAMING.findall(head.lower()):
            if name == b"content-length":
                lengths.append(value.strip())
            elif name == b"transfer-encoding":
                codings.append(value.strip())
            else:
                connections.append(value)
        length: int | None = None
        for text in lengths:
            if not text.isdigit() or len(text) > 18:
                raise ValueError(f"a bad Content-Length {text[:20]!r}")
            if length is not None and length != int(text):
                raise ValueError("two different Content-Lengths")
            length = int(text)
        close = match.group(1) == b"0"  # HTTP/1.0 closes unless it says keep-alive
        if connections:
            tokens = {token.strip() for token in b",".join(connections).split(b",")}
            close = b"close" in tokens or (close and b"keep-alive" not in tokens)
        self.status, self.close = status, close
        if status in (204, 304):
            return True
        if codings:
            if codings[-1].rsplit(b",", 1)[-1].strip() == b"chunked":
                self.state = "chunk-size"
                return False
            length = None  # another coding last: the body runs until the close
        if length is None:
            # No length given: the body runs until the server closes (RFC 9112 6.3).
            self.state, self.close = "until-close", True
            return False
        if length:
            self.state, self.remaining = "length", length
            return False
        return True


class _Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection, one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.reader = _AnswerReader()
        self.waiter: asyncio.Future[_Answer] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            # Bytes no request asked for (or after the request gave up): the next answer
            # could not be told apart from them, so this connection carries no more.
            self.close()
            return
        try:
            answer = self.reader.feed(data)
        except ValueError as exc:
            self.waiter = None
            waiter.set_exception(_Failure("protocol", f"garbled answer: {exc}"))
            self.close()
            return
        if answer is not None:
            self.waiter = None
            waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        self.waiter = None
        answer = self.reader.finish() if exc is None else None
        if answer is not None:
            waiter.set_result(answer)
        elif exc is None:
            waiter.set_exception(_Failure("reset", "the connection was closed mid-request"))
        else:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            waiter.set_exception(_Failure("reset", f"the connection was reset mid-request "
                                                   f"({reason})"))

    def send(self, data: bytes) -> asyncio.Future[_Answer]:
        """Write a request; the future resolves to its answer."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        """Close the connection."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()



class _Head:
    """The headers every callback shares (all but its signature), as bytes for each client.

    The same header set as every other face (delivery.callback_headers); rebuilt when the
    bearer token changes.
    """

    def __init__(self, delivery: DeliveryOptions, url: httpx.URL) -> None:
        self.delivery = delivery
        self.url = url
        self.set_token(None)

    def set_token(self, token: str | None) -> None:
        """Rebuild the shared headers around `token`."""
        # .raw keeps the names as written (multi_items() lowercases them), as fire sends them.
        self.headers = [(name.decode("latin-1"), value.decode("latin-1"))
                        for name, value in callback_headers(self.delivery, token).raw]
        url = self.url
        self.prefix = (f"{self.delivery.method} {url.raw_path.decode()} HTTP/1.1\r\n"
                       f"Host: {url.netloc.decode()}\r\n"
                       + "".join(f"{k}: {v}\r\n" for k, v in self.headers)
                       + "Content-Length: ").encode("latin-1")
        self.raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]


def _signer(delivery: DeliveryOptions) -> Callable[[bytes], bytes | None] | None:
    """The X-Hub-Signature-256 value of each body under `delivery`, or None: nothing to sign."""
    secret, mode = delivery.app_secret, delivery.signature
    if secret is None or mode == "missing":
        return None

    def sign(body: bytes) -> bytes | None:
        value = signature_for(secret, body, mode)
        return None if value is None else value.encode("ascii")

    return sign


# Errors of this machine, not of the target: out of sockets or memory.
_LOCAL_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


async def _connect(loop: asyncio.AbstractEventLoop, host: str, port: int, timeout: float,
                   tls: ssl.SSLContext | None = None,
                   server_name: str | None = None) -> _Connection:
    """A new connection (TLS over it with `tls`), or a _Failure saying why there is none."""
    try:
        _, connection = await asyncio.wait_for(
            loop.create_connection(_Connection, host, port, ssl=tls,
                                   server_hostname=server_name if tls else None), timeout)
    except TimeoutError:
        raise _Failure("connect", f"no connection within {timeout:g} s") from None
    except ssl.SSLError as exc:  # before OSError: a failed handshake is no refused port
        raise _Failure("tls", f"TLS handshake failed: {exc.reason or exc}") from None
    except OSError as exc:
        if exc.errno in _LOCAL_ERRORS:
            raise _Failure("socket", f"cannot open a connection: {exc.strerror}") from None
        # Refused, or refused on every address a name resolves to (asyncio then joins
        # the errors and sets no errno): nothing is listening.
        raise _Failure("connect", "connection refused") from None
    return connection


def _expire(future: asyncio.Future[Any], timeout: float) -> None:
    if not future.done():
        future.set_exception(_Failure("timeout", f"no answer within {timeout:g} s"))


