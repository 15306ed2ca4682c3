"""A threaded HTTP server with a bounded number of connections, for wasim's local servers
(the receiver and the send API): a flood of connections gets a 503, not a thread each."""

from __future__ import annotations

import contextlib
import errno
import socket
import sys
import threading
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

    def __init__(self, host: str, port: int, handler: type[BaseHTTPRequestHandler]) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__((host, port), handler)

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
