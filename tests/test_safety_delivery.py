"""A hostile target against wasim's sending side, and hostile senders against the receiver.

Every server here is a real socket on 127.0.0.1 port 0 that misbehaves on purpose: answers
that never end, a Content-Length of 100 GB, a gzip bomb, a token endpoint that streams
forever. In-process apps raise, hang, stay silent or stream forever (tests/apps/hostile_apps).
No test asserts a duration: timeouts only bound the hostile side, and memory is measured by
running wasim under a resource limit it would break if it buffered what it was sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.delivery import (
    RESPONSE_BODY_LIMIT,
    Auth,
    AuthFailure,
    Deliverer,
    DeliveryOptions,
    Event,
    Target,
    TokenCache,
    url_target,
)
from simulator.errors import WasimError
from simulator.history import from_record, to_record
from simulator.receiver import Receiver, ReceiverOptions
from tests.apps import hostile_apps

ROOT = Path(__file__).parents[1]
BODY = b'{"meta_object":{"value":{"messages":[{"from":"919812345678","id":"wamid.X",' \
       b'"button":{"text":"Shop now"}}]}}}'
CHUNK = b"x" * 65536

Answer = Callable[[socket.socket], None]


# --- a hostile HTTP server --------------------------------------------------------------------

class HostileServer:
    """A raw HTTP/1.1 server on 127.0.0.1 port 0 that answers every request with `answer`.

    `hung_up` is set when the client closed the connection while an answer was being sent:
    the proof that wasim stopped listening rather than reading on.
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.hung_up = threading.Event()
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        """Where to send: http://127.0.0.1:PORT/."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        for connection in self._connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            connection.close()
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(None)
            self._connections.append(connection)
            threading.Thread(target=self._one, args=(connection,), daemon=True).start()

    def _one(self, connection: socket.socket) -> None:
        head = b""
        try:
            while b"\r\n\r\n" not in head:
                data = connection.recv(65536)
                if not data:
                    return
                head += data
            self.requests.append(head)
            self.answer(connection)
        except OSError:  # the client hung up on us, which is what these tests want
            self.hung_up.set()


def endless_chunked(connection: socket.socket) -> None:
    """200 with a chunked body that never ends."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n")
    piece = b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
    while True:
        connection.sendall(piece)


def huge_length(connection: socket.socket) -> None:
    """200 claiming 100 GB, and sending them as fast as it can."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n")
    while True:
        connection.sendall(CHUNK)


def huge_length_slow(connection: socket.socket) -> None:
    """200 claiming 100 GB, then a byte now and then: each read is quick, the body endless."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n")
    for _ in range(6000):  # bounded, so a broken wasim cannot keep this thread forever
        connection.sendall(b"x")
        time.sleep(0.02)


def gzip_bomb(connection: socket.socket) -> None:
    """200 with 200 MB of zeros in about 200 kB of gzip."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                       + b"Content-Length: %d\r\n\r\n" % len(BOMB) + BOMB)


def _gzip(data_size: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    return b"".join(packer.compress(block) for _ in range(data_size >> 20)) + packer.flush()


BOMB = _gzip(200 << 20)


def answer_json(body: bytes) -> Answer:
    """200 with `body` as JSON."""
    def answer(connection: socket.socket) -> None:
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                           + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    return answer


def silent(connection: socket.socket) -> None:
    """Reads the request and never answers (until the test ends)."""
    time.sleep(120)


@pytest.fixture
def hostile() -> Iterator[Callable[[Answer], HostileServer]]:
    """Start hostile servers; every one is stopped after the test."""
    with contextlib.ExitStack() as stack:
        yield lambda answer: stack.enter_context(HostileServer(answer))


async def deliver_to(url: str, **options: Any) -> Any:
    """One delivery of BODY to `url`, its result."""
    async with Deliverer(DeliveryOptions(target=url_target(url), **options)) as deliverer:
        return await deliverer.deliver(Event.from_body(BODY))


# --- answers are read to 64 KiB at most, within --timeout -------------------------------------

@pytest.mark.anyio
async def test_an_endless_chunked_answer_is_kept_to_64_kib_and_marked_truncated(
        hostile: Callable[[Answer], HostileServer]) -> None:
    server = hostile(endless_chunked)
    result = await deliver_to(server.url, timeout=30)
    attempt = result.attempts[0]
    assert (attempt.status, attempt.delivered, attempt.response_truncated) == (200, True, True)
    assert attempt.response_body == "x" * RESPONSE_BODY_LIMIT
    assert server.hung_up.wait(30), "wasim kept reading after it had what it keeps"


@pytest.mark.anyio
async def test_a_huge_content_length_is_read_only_as_far_as_the_history_keeps(
        hostile: Callable[[Answer], HostileServer]) -> None:
    server = hostile(huge_length)
    attempt = (await deliver_to(server.url, timeout=30)).attempts[0]
    assert (attempt.status, attempt.response_truncated) == (200, True)
    assert len(attempt.response_body) == RESPONSE_BODY_LIMIT
    assert server.hung_up.wait(30)


@pytest.mark.anyio
async def test_a_body_that_trickles_forever_ends_at_the_timeout_for_the_whole_attempt(
        hostile: Callable[[Answer], HostileServer]) -> None:
    # Every byte comes well within the timeout, so only a deadline on the whole exchange
    # (not httpx's per-read timeout) can end this attempt.
    server = hostile(huge_length_slow)
    attempt = (await deliver_to(server.url, timeout=0.5)).attempts[0]
    assert (attempt.error_kind, attempt.delivered) == ("timeout", False)
    assert "0.5 s" in (attempt.error or "")


@pytest.mark.anyio
async def test_a_gzip_bomb_is_inflated_no_further_than_64_kib(
        hostile: Callable[[Answer], HostileServer]) -> None:
    server = hostile(gzip_bomb)
    attempt = (await deliver_to(server.url, timeout=30)).attempts[0]
    assert (attempt.status, attempt.response_truncated) == (200, True)
    assert attempt.response_body == "\0" * RESPONSE_BODY_LIMIT


@pytest.mark.anyio
async def test_a_gzip_answer_that_fits_is_recorded_inflated_and_whole(
        hostile: Callable[[Answer], HostileServer]) -> None:
    body = zlib.compress(b'{"ok":true}')
    server = hostile(lambda c: c.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: deflate\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(body) + body))
    attempt = (await deliver_to(server.url, timeout=30)).attempts[0]
    assert (attempt.response_body, attempt.response_truncated) == ('{"ok":true}', False)


def endless_header(connection: socket.socket) -> None:
    """A status line, then one header line that never ends."""
    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Endless: ")
    while True:
        connection.sendall(b"a" * 65536)


def endless_informational(connection: socket.socket) -> None:
    """100 Continue, again and again, never a final answer."""
    while True:
        connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n" * 1000)


@pytest.mark.anyio
async def test_a_header_that_never_ends_is_a_protocol_error(
        hostile: Callable[[Answer], HostileServer]) -> None:
    server = hostile(endless_header)
    attempt = (await deliver_to(server.url, timeout=30)).attempts[0]
    assert (attempt.error_kind, attempt.status) == ("protocol", None)
    assert server.hung_up.wait(30)


@pytest.mark.anyio
async def test_endless_informational_answers_end_at_the_timeout(
        hostile: Callable[[Answer], HostileServer]) -> None:
    server = hostile(endless_informational)
    attempt = (await deliver_to(server.url, timeout=0.5)).attempts[0]
    assert (attempt.error_kind, attempt.status) == ("timeout", None)


# --- the token endpoint -----------------------------------------------------------------------

def token_auth(url: str) -> Auth:
    return Auth(token_url=url + "token", client_id="brand", client_secret="s3cr3t")


@pytest.mark.anyio
async def test_an_endless_token_answer_is_an_auth_failure_not_a_memory_hog(
        hostile: Callable[[Answer], HostileServer]) -> None:
    server = hostile(endless_chunked)
    attempt = (await deliver_to(server.url, auth=token_auth(server.url),
                                timeout=30)).attempts[0]
    assert attempt.error_kind == "auth"
    assert "more than 64 KiB" in (attempt.error or "")
    assert server.hung_up.wait(30)


@pytest.mark.anyio
async def test_a_token_endpoint_that_never_answers_ends_at_the_timeout(
        hostile: Callable[[Answer], HostileServer]) -> None:
    server = hostile(huge_length_slow)
    attempt = (await deliver_to(server.url, auth=token_auth(server.url),
                                timeout=0.5)).attempts[0]
    assert attempt.error_kind == "auth"
    assert "no answer within 0.5 s" in (attempt.error or "")


@pytest.mark.parametrize(("answer", "fragment"), [
    (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
    (b'{"access_token":"t","expires_in":' + b"9" * 5000 + b"}", "cannot be read"),
    (b'{"access_token":"t","expires_in":' + b"9" * 4000 + b"}", "not seconds"),
    (b'{"access_token":"t","expires_in":1e999}', "expires_in inf, not seconds"),
    (b'{"access_token":"t","expires_in":NaN}', "not seconds"),
    (b'{"access_token":"t","expires_in":-5}', "not seconds"),
    (b'{"access_token":"t","expires_in":true}', "not seconds"),
    (b'{"access_token":"t","expires_in":[[[]]]}', "expires_in list, not seconds"),
    (b'{"access_token":"tok\\r\\nX-Evil: 1"}', "characters a header cannot carry"),
    (b'{"access_token":["t"]}', "no access_token"),
    (b'"just a string"', "did not answer JSON with an access_token"),
    (b"\xff\xfe not text", "did not answer JSON with an access_token"),
], ids=["deep", "5000-digits", "4000-digits", "inf", "nan", "negative", "bool", "list",
        "crlf-token", "token-list", "string", "not-utf8"])
@pytest.mark.anyio
async def test_a_hostile_token_answer_is_a_one_line_auth_failure(answer: bytes,
                                                                 fragment: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=answer)

    cache = TokenCache(token_auth("http://127.0.0.1:9/"), time.time)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(AuthFailure, match=fragment) as caught:
            await cache.get(client, 5)
    assert "\n" not in str(caught.value) and "X-Evil" not in str(caught.value)


# --- in-process apps --------------------------------------------------------------------------

def app_options(kind: str, app: Any, timeout: float = 30) -> DeliveryOptions:
    return DeliveryOptions(target=Target(kind, "http://app.wasim.local/webhook",  # type: ignore[arg-type]
                                         f"hostile_apps:{getattr(app, '__name__', 'app')}",
                                         app), timeout=timeout)


async def deliver_into(kind: str, app: Any, timeout: float = 30) -> Any:
    # fail_after only turns a hang into a failure; the app's own bound is `timeout`.
    with anyio.fail_after(60):
        async with Deliverer(app_options(kind, app, timeout)) as deliverer:
            return (await deliverer.deliver(Event.from_body(BODY))).attempts[0]


@pytest.mark.parametrize(("kind", "app", "fragment"), [
    ("wsgi", hostile_apps.wsgi_raises, "RuntimeError: wsgi handler bug"),
    ("wsgi", hostile_apps.wsgi_exits, "SystemExit: 3"),
    ("wsgi", hostile_apps.wsgi_bad_status, "'OK then' is not like '200 OK'"),
    ("asgi", hostile_apps.asgi_exits, "SystemExit: 3"),
    ("asgi", hostile_apps.asgi_bad_messages, "status 'two hundred' is not an HTTP status"),
    ("asgi", hostile_apps.asgi_raises_cancelled, "CancelledError: not yours"),
])
@pytest.mark.anyio
async def test_an_app_that_raises_answers_500_with_its_traceback_kept(
        kind: str, app: Any, fragment: str) -> None:
    attempt = await deliver_into(kind, app)
    assert (attempt.status, attempt.delivered, attempt.outcome) == (500, False, "failed")
    assert attempt.error.startswith("the app raised before answering: ")
    assert fragment in attempt.error
    assert attempt.app_error.startswith("Traceback") and fragment in attempt.app_error


@pytest.mark.anyio
async def test_an_asgi_app_that_returns_without_answering_is_a_500_saying_so() -> None:
    attempt = await deliver_into("asgi", hostile_apps.asgi_silent)
    assert (attempt.status, attempt.delivered) == (500, False)
    assert attempt.error == "the app returned without sending a response"
    assert attempt.app_error is None


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
@pytest.mark.anyio
async def test_an_app_with_an_endless_body_is_cut_at_64_kib(kind: str) -> None:
    app = hostile_apps.asgi_endless if kind == "asgi" else hostile_apps.wsgi_endless
    attempt = await deliver_into(kind, app)
    assert (attempt.status, attempt.delivered, attempt.response_truncated) == (200, True, True)
    assert attempt.response_body == "z" * RESPONSE_BODY_LIMIT


@pytest.mark.anyio
async def test_an_asgi_body_that_never_finishes_ends_at_the_timeout() -> None:
    attempt = await deliver_into("asgi", hostile_apps.asgi_trickles_nothing, timeout=0.3)
    assert (attempt.error_kind, attempt.status) == ("timeout", None)


@pytest.mark.anyio
async def test_a_sleeping_wsgi_app_ends_at_the_timeout() -> None:
    attempt = await deliver_into("wsgi", hostile_apps.wsgi_sleeps, timeout=0.3)
    assert (attempt.error_kind, attempt.status) == ("timeout", None)


@pytest.mark.anyio
async def test_an_app_raising_mid_body_is_a_broken_answer_not_a_delivery() -> None:
    attempt = await deliver_into("asgi", hostile_apps.asgi_raises_mid_body)
    assert (attempt.status, attempt.delivered, attempt.error_kind) == (200, False, "protocol")
    assert "while sending its body: ValueError: lost the rest" in attempt.error
    assert "ValueError: lost the rest" in attempt.app_error


@pytest.mark.anyio
async def test_a_startup_that_never_finishes_is_a_one_line_error() -> None:
    with pytest.raises(WasimError, match=r"startup did not finish within 0\.3 s"):
        await deliver_into("asgi", hostile_apps.asgi_stuck_startup, timeout=0.3)


def test_the_apps_traceback_survives_the_history_round_trip() -> None:
    attempt = anyio.run(deliver_into, "wsgi", hostile_apps.wsgi_raises)
    record = json.loads(json.dumps(to_record(attempt)))
    assert from_record(record).app_error == attempt.app_error
    with pytest.raises(TypeError, match="app_error"):
        from_record(record | {"app_error": ["not", "text"]})
    assert "app_error" not in to_record(anyio.run(deliver_into, "asgi",
                                                  hostile_apps.asgi_endless))


def test_fire_into_a_raising_app_records_a_500_and_the_traceback(tmp_path: Path,
                                                                 monkeypatch: Any) -> None:
    monkeypatch.chdir(ROOT)
    history = tmp_path / "history.jsonl"
    result = CliRunner().invoke(cli, ["fire", "--seed", "1", "--app",
                                      "wsgi:tests.apps.hostile_apps:wsgi_raises",
                                      "--history", str(history)])
    assert result.exit_code == 1, result.output
    assert "500 FAILED" in result.stdout and "Traceback" not in result.output
    record = json.loads(history.read_text().splitlines()[-1])
    assert record["status"] == 500 and "wsgi handler bug" in record["app_error"]


def test_the_plugin_delivers_into_a_raising_app_without_raising() -> None:
    from simulator.testing import Simulator

    wasim = Simulator(5)
    delivery = wasim.deliver(wasim.tap("Shop now"), app=hostile_apps.wsgi_raises)
    assert delivery.status == 500 and not delivery.delivered
    assert "wsgi handler bug" in (delivery.last.app_error or "")


def test_the_delivery_detail_shows_the_apps_traceback() -> None:
    from simulator.tui.screens.detail import DetailScreen
    from simulator.tui.session import SendRecord

    attempt = anyio.run(deliver_into, "wsgi", hostile_apps.wsgi_raises)
    record = SendRecord("d1", attempt.event, "tap", 0.0, attempts=[attempt])
    text = DetailScreen(record, lambda when: "12:00:00")._content().plain
    assert "The app raised" in text and "RuntimeError: wsgi handler bug" in text
    assert 'hostile_apps.py", line' in text


# --- processes: exit, and memory under a resource limit ---------------------------------------

def wasim(*args: str, limit: int | None = None, timeout: float = 120,
          cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run `python -m simulator ARGS` (this tree's code), optionally under a memory limit."""
    env = os.environ | {"PYTHONPATH": str(ROOT), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "simulator", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env,
                          preexec_fn=None if limit is None else limited(limit))


# RLIMIT_DATA, not RLIMIT_AS: DATA counts private writable memory (the heap and anonymous
# mappings, where a buffered body would go), while AS also counts shared libraries, file
# mappings and glibc's 64 MB per-thread arena reservations, which vary with the machine and
# say nothing about memory used. Measured here (see the report): `fire --help` needs 10 MB of
# DATA, a normal `fire` 33-40 MB; the unbounded reader took 0.9-1.1 GB within 4 s.
MEMORY_LIMIT = 200 << 20


def limited(size: int) -> Callable[[], None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (size, size))
    return limit


def test_the_memory_limit_is_real_a_process_that_buffers_breaks_it() -> None:
    # The control: without it, the tests below could pass on a kernel that ignored the limit.
    result = subprocess.run([sys.executable, "-c", "b = bytearray(300 << 20)"],
                            capture_output=True, text=True, preexec_fn=limited(MEMORY_LIMIT),
                            timeout=60)
    assert result.returncode != 0 and "MemoryError" in result.stderr


@pytest.mark.parametrize("answer", [endless_chunked, huge_length, gzip_bomb])
def test_fire_stays_under_200_mb_against_an_endless_or_gigantic_answer(
        hostile: Callable[[Answer], HostileServer], tmp_path: Path, answer: Answer) -> None:
    server = hostile(answer)
    history = tmp_path / "history.jsonl"
    result = wasim("fire", "--seed", "1", "--url", server.url, "--timeout", "30",
                   "--history", str(history), limit=MEMORY_LIMIT)
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    assert result.returncode == 0, result.stderr  # delivered, with the answer truncated
    record = json.loads(history.read_text())
    assert record["response_truncated"] is True
    assert len(record["response_body"]) == RESPONSE_BODY_LIMIT


def test_fire_stays_under_200_mb_against_an_endless_token_answer(
        hostile: Callable[[Answer], HostileServer]) -> None:
    server = hostile(endless_chunked)
    result = wasim("fire", "--seed", "1", "--url", server.url, "--token-url",
                   server.url + "token", "--client-id", "brand", "--client-secret", "s3cr3t",
                   "--timeout", "30", "--no-history", limit=MEMORY_LIMIT)
    assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
    assert result.returncode == 1 and "more than 64 KiB" in result.stdout


def test_fire_into_an_endless_app_stays_under_200_mb() -> None:
    for app in ("wsgi:tests.apps.hostile_apps:wsgi_endless",
                "asgi:tests.apps.hostile_apps:asgi_endless"):
        result = wasim("fire", "--seed", "1", "--app", app, "--timeout", "30", "--no-history",
                       limit=MEMORY_LIMIT)
        assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr
        assert result.returncode == 0, result.stderr


def test_a_sleeping_wsgi_app_does_not_keep_the_process_alive_past_the_timeout() -> None:
    # The app sleeps an hour; the run must end (the subprocess timeout is only a guard).
    result = wasim("fire", "--seed", "1", "--app", "wsgi:tests.apps.hostile_apps:wsgi_sleeps",
                   "--timeout", "0.5", "--no-history", timeout=300)
    assert result.returncode == 1 and "no answer within 0.5 s" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("app", ["wsgi:tests.apps.hostile_apps:wsgi_exits",
                                 "asgi:tests.apps.hostile_apps:asgi_exits",
                                 "asgi:tests.apps.hostile_apps:asgi_silent"])
def test_fire_into_an_app_that_exits_or_stays_silent_reports_a_500(app: str) -> None:
    result = wasim("fire", "--seed", "1", "--app", app, "--no-history")
    assert result.returncode == 1 and "500 FAILED" in result.stdout, result.stderr
    assert "Traceback" not in result.stderr and "AssertionError" not in result.stderr


# --- the receiver -----------------------------------------------------------------------------

def raw_request(url: str, head: bytes, body_chunks: Iterable[bytes] = ()) -> bytes:
    """Send a request head and body chunks (until the server stops taking them); the answer."""
    parsed = httpx.URL(url)
    with socket.create_connection((parsed.host, parsed.port), timeout=30) as connection:
        with contextlib.suppress(OSError):  # the server may stop reading, then hang up
            connection.sendall(head)
            for chunk in body_chunks:
                connection.sendall(chunk)
        answer = b""
        with contextlib.suppress(OSError):
            while data := connection.recv(65536):
                answer += data
        return answer


def endless(chunk: bytes, count: int = 1_000_000) -> Iterator[bytes]:
    """`chunk`, `count` times (a million 64 KiB chunks is 64 GB: endless, for these tests)."""
    for _ in range(count):
        yield chunk


def test_a_body_over_the_limit_is_refused_413_before_any_of_it_is_read() -> None:
    with Receiver(ReceiverOptions(port=0, max_body=1000)) as receiver:
        # Not a byte of the 100 GB is sent: the answer can only come from the header.
        answer = raw_request(receiver.url, b"POST / HTTP/1.1\r\nHost: x\r\n"
                                           b"Content-Length: 100000000000\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert receiver.received == 0


def test_a_chunked_body_over_the_limit_is_refused_413() -> None:
    piece = b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
    with Receiver(ReceiverOptions(port=0, max_body=200_000)) as receiver:
        answer = raw_request(receiver.url, b"POST / HTTP/1.1\r\nHost: x\r\n"
                                           b"Transfer-Encoding: chunked\r\n\r\n",
                             # 1 MB: little enough for the server to drain it all after its
                             # answer, so closing cannot reset the answer away.
                             endless(piece, 16))
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert receiver.received == 0


def test_kept_arrivals_stay_within_the_count_and_the_byte_budget() -> None:
    with Receiver(ReceiverOptions(port=0, keep=5, keep_bytes=3000, max_body=1000)) as receiver, \
            httpx.Client(trust_env=False, timeout=10) as client:
        for number in range(10):
            client.post(receiver.url, content=str(number).encode() * 1000)
        kept = receiver.arrivals
        assert receiver.received == 10
        assert [a.number for a in kept] == [8, 9, 10]  # 3 bodies of 1000 bytes fit in 3000
        for _ in range(10):
            client.post(receiver.url, content=b"{}")
        assert len(receiver.arrivals) == 5 and receiver.received == 20


def test_a_slow_loris_is_cut_off_at_the_request_deadline(monkeypatch: Any) -> None:
    from simulator import receiver as receiver_module

    monkeypatch.setattr(receiver_module, "_REQUEST_DEADLINE", 0.5)
    with Receiver(ReceiverOptions(port=0)) as receiver:
        parsed = httpx.URL(receiver.url)
        with socket.create_connection((parsed.host, parsed.port), timeout=30) as connection:
            connection.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
            closed = False
            for _ in range(3000):  # a header byte every 20 ms: each one well inside the idle time
                try:
                    connection.sendall(b"X")
                except OSError:
                    closed = True
                    break
                time.sleep(0.02)
                connection.setblocking(False)
                try:
                    closed = connection.recv(1) == b""
                except BlockingIOError:
                    pass
                except OSError:
                    closed = True
                connection.setblocking(True)
                if closed:
                    break
        assert closed, "the server kept a request that never finished arriving"
        assert receiver.received == 0


def test_connections_past_the_cap_are_answered_503(monkeypatch: Any) -> None:
    from simulator import receiver as receiver_module

    monkeypatch.setattr(receiver_module, "MAX_CONNECTIONS", 2)
    with Receiver(ReceiverOptions(port=0)) as receiver:
        parsed = httpx.URL(receiver.url)
        idle = [socket.create_connection((parsed.host, parsed.port)) for _ in range(2)]
        try:
            answer = raw_request(receiver.url, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert answer.startswith(b"HTTP/1.1 503 ")
        finally:
            for connection in idle:
                connection.close()


def test_the_receiver_stays_under_200_mb_against_gigantic_bodies() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "receive", "--port", "0"], cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True, preexec_fn=limited(MEMORY_LIMIT))
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        url = line.split("listening on ", 1)[1].split()[0]
        # 100 GB announced and sent until the server stops taking it.
        answer = raw_request(url, b"POST / HTTP/1.1\r\nHost: x\r\n"
                                  b"Content-Length: 100000000000\r\n\r\n", endless(CHUNK))
        assert answer.startswith(b"HTTP/1.1 413 ") or answer == b""
        piece = b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
        raw_request(url, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                    endless(piece))
        # Many bodies just under the limit: 300 MB sent, the ring keeps at most 64 MB of them.
        with httpx.Client(trust_env=False, timeout=30) as client:
            big = b"y" * (1024 * 1024)
            for _ in range(300):
                assert client.post(url, content=big).status_code == 200
            health = client.get(url).json()
        assert health["arrivals"] == 300
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    assert "MemoryError" not in errors and "Traceback" not in errors


def test_run_into_a_raising_app_reports_each_500_without_a_traceback(monkeypatch: Any) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, ["run", "scenarios/idempotency-check.yaml", "--app",
                                      "wsgi:tests.apps.hostile_apps:wsgi_raises", "--fast",
                                      "--no-history"])
    assert result.exit_code == 1, result.output
    assert "expected 200, got 500" in result.output and "Traceback" not in result.output
