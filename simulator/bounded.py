"""A threaded HTTP server with a bounded number of connections, for wasim's local servers
(the receiver and the send API): a flood of connections gets a 503, not a thread each, and
the bodies all connections hold at once have a byte budget of their own."""

from __future__ import annotations

import contextlib
import errno
import io
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class BoundedServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with at most `max_connections` open at once, quiet about clients
    that hang up, and able to close every open connection (which ends its handler thread)."""

    daemon_threads = True  # a hung client must never keep the process alive
    # socketserver's default backlog of 5 overflows under a burst of concurrent deliveries,
    # and the kernel then retries the connection a full second later.
    request_queue_size = 1024
    max_connections = 128
    # Bytes of request bodies all connections may hold at once (reserved before a body is
    # read, at its declared length). 128 slow uploads of 16 MiB each would be 2 GiB.
    max_buffered = 64 << 20

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        self.buffered = 0  # bytes reserved by the bodies being read or handled now
        super().__init__((host, port), handler)

    def reserve(self, size: int) -> bool:
        """Reserve `size` bytes of the body budget; False (nothing reserved) when it is spent.

        A body alone larger than the budget is never reserved; keep max_buffered at or above
        the largest body a server accepts.
        """
        with self._connections_lock:
            if self.buffered + size > self.max_buffered:
                return False
            self.buffered += size
            return True

    def release(self, size: int) -> None:
        """Give back what reserve() took."""
        with self._connections_lock:
            self.buffered -= size

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on a thread of its own, or answer 503 when all are taken."""
        with self._connections_lock:
            full = len(self._connections) >= self.max_connections
            if not full:
                self._connections.add(request)
        if full:
            # No thread for it: a flood of connections must not grow the process without
            # bound. A short, complete answer, so a well-behaved client knows to come back.
            with contextlib.suppress(OSError):
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Retry-After: 1\r\nConnection: close\r\n\r\n")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Print a traceback, unless the client just hung up (a stopped run, a killed
        process): that is not an error of ours."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        if isinstance(error, OSError) and error.errno == errno.EBADF:
            return  # closed by our own close_connections (gevent says so, under Locust)
        super().handle_error(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection, then close it."""
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut every open connection down, which ends its handler thread."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # Its handler may have closed it in the meantime; that is the outcome we want.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class DeadlineReader(io.RawIOBase):
    """A socket read under a deadline: each read waits `idle` seconds at most, and none
    starts once `deadline()` (a time.monotonic() value) has passed, so a body that trickles
    in cannot hold its connection (and what it reserved) for ever."""

    def __init__(self, connection: socket.socket, deadline: Callable[[], float],
                 idle: float) -> None:
        self.connection = connection
        self.deadline = deadline
        self.idle = idle

    def readable(self) -> bool:
        """Always: it is a socket's read side."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read what has arrived, waiting no longer than the idle time or the deadline."""
        remaining = self.deadline() - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request took too long to arrive")
        self.connection.settimeout(min(self.idle, remaining))
        return self.connection.recv_into(buffer)
