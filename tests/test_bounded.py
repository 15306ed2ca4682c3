"""The receiver's bounded threaded server: a connection past the cap is answered 503 at once,
and closing the connections ends their handler threads. (The send API's asyncio server has
the same bounds: tests/test_aioserver.py.)"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

from simulator.bounded import BoundedServer
from simulator.receiver import _Server as ReceiverServer


class _Ok(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[BoundedServer]:
    server = BoundedServer("127.0.0.1", 0, _Ok)
    server.max_connections = 1
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.close_connections()
    server.server_close()


def _connect(server: BoundedServer) -> socket.socket:
    connection = socket.create_connection(server.server_address[:2], timeout=5)
    return connection


def _served(connection: socket.socket) -> bytes:
    """One whole answer (no body) on a kept-alive connection."""
    connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = b""
    while not answer.endswith(b"\r\n\r\n"):
        answer += connection.recv(1)
    return answer


def test_a_connection_past_the_cap_gets_a_503_and_is_closed(server: BoundedServer) -> None:
    held = _connect(server)
    assert _served(held).startswith(b"HTTP/1.1 200 ")  # served: it holds the one slot
    with _connect(server) as extra:
        answer = b""
        while chunk := extra.recv(1000):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in answer
    held.close()


def test_closing_the_connections_hangs_up_on_kept_alive_clients(server: BoundedServer) -> None:
    held = _connect(server)
    assert _served(held).startswith(b"HTTP/1.1 200 ")
    server.close_connections()
    assert held.recv(100) == b""  # the server's side shut down: end of stream
    held.close()


def test_the_receiver_is_a_bounded_server() -> None:
    assert issubclass(ReceiverServer, BoundedServer)
