"""The send API's asyncio HTTP/1.1 server (simulator.aioserver), on a real socket: the bounds
of the threaded server it replaced (a connection cap, deadlines, a bounded head) and the
HTTP/1.1 a client relies on (keep-alive, pipelining, HTTP/1.0, HEAD, 100-continue)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from simulator import sendapi
from simulator.sendapi import DEFAULT_API_KEY, DEFAULT_SID, ApiOptions, MockApi

BUSINESS = "918800000001"
PATH = f"/v2/{DEFAULT_SID}/whatsapp/{BUSINESS}/messages"
SEND = json.dumps({"messaging_object": {"messaging_product": "whatsapp", "to": "919812345678",
                                        "type": "text", "text": {"body": "hi"}}}).encode()


@pytest.fixture
def api() -> Iterator[MockApi]:
    with MockApi(ApiOptions(port=0)) as running:
        yield running


def connect(api: MockApi) -> socket.socket:
    parts = urlsplit(api.base_url)
    return socket.create_connection((parts.hostname, parts.port), timeout=20)


def request(body: bytes = SEND, *, method: str = "POST", path: str = PATH,
            version: str = "HTTP/1.1", extra: str = "") -> bytes:
    return (f"{method} {path} {version}\r\nHost: x\r\napi-key: {DEFAULT_API_KEY}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            .encode() + body)


def answers(sock: socket.socket, count: int) -> list[tuple[bytes, bytes]]:
    """`count` whole answers (head, body) read from a kept-alive connection."""
    data = b""
    found: list[tuple[bytes, bytes]] = []
    while len(found) < count:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end]
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            if head.startswith(b"HTTP/1.1 100 "):
                data = data[end + 4:]
                found.append((head, b""))
                continue
            if len(data) >= end + 4 + length:
                found.append((head, data[end + 4:end + 4 + length]))
                data = data[end + 4 + length:]
                continue
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return found


def until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def test_pipelined_requests_are_answered_in_order_on_one_connection(api: MockApi) -> None:
    with connect(api) as sock:
        sock.sendall(request() * 3 + request(method="GET", path="/", body=b""))
        got = answers(sock, 4)
    assert [head.split(b" ")[1] for head, _ in got] == [b"202", b"202", b"202", b"200"]
    ids = [json.loads(body)["id"] for _, body in got[:3]]
    assert len(set(ids)) == 3
    assert [m.message_id for m in api.sent] == ids  # recorded in the order they came
    assert json.loads(got[3][1])["sent"] == 3


def test_http_1_0_closes_after_its_answer_and_head_sends_no_body(api: MockApi) -> None:
    with connect(api) as sock:
        sock.sendall(request(version="HTTP/1.0"))
        data = until_closed(sock)
    assert data.startswith(b"HTTP/1.1 202 ") and b"Connection: close" in data
    with connect(api) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = until_closed(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: " in head and body == b""


def test_expect_100_continue_is_answered_before_the_body_is_sent(api: MockApi) -> None:
    with connect(api) as sock:
        whole = request(extra="Expect: 100-continue\r\n")
        head, body = whole.split(b"\r\n\r\n", 1)
        sock.sendall(head + b"\r\n\r\n")
        interim = answers(sock, 1)[0][0]
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(body)
        assert answers(sock, 1)[0][0].startswith(b"HTTP/1.1 202 ")


def test_a_wrong_key_with_expect_100_gets_its_401_instead_of_a_continue(api: MockApi) -> None:
    with connect(api) as sock:
        sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\napi-key: wrong\r\nContent-Length: "
                     f"5000\r\nExpect: 100-continue\r\n\r\n".encode())
        data = until_closed(sock)  # closed: the 5,000 bytes are never read
    assert data.startswith(b"HTTP/1.1 401 ") and b"100 Continue" not in data


@pytest.mark.parametrize("raw", [b"NONSENSE\r\n\r\n", b"GET / SPDY/3\r\n\r\n",
                                 b"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
                                 b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 101 + b"\r\n"])
def test_a_malformed_head_is_a_400_and_the_connection_closes(api: MockApi, raw: bytes) -> None:
    with connect(api) as sock:
        sock.sendall(raw)
        data = until_closed(sock)
    assert data.startswith(b"HTTP/1.1 400 "), data[:100]
    assert json.loads(data.partition(b"\r\n\r\n")[2])["code"] == "WA400"


def test_a_head_past_64_kib_is_a_431_without_waiting_for_its_end(api: MockApi) -> None:
    with connect(api) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nX-Long: " + b"a" * (70 * 1024))
        data = until_closed(sock)
    assert data.startswith(b"HTTP/1.1 431 ")


def test_chunked_uploads_are_refused_with_411(api: MockApi) -> None:
    with connect(api) as sock:
        sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\napi-key: {DEFAULT_API_KEY}\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n".encode())
        data = until_closed(sock)
    assert data.startswith(b"HTTP/1.1 411 ")


def test_a_connection_past_the_cap_gets_a_503_and_stop_hangs_up_on_the_others(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sendapi, "MAX_CONNECTIONS", 1)
    api = MockApi(ApiOptions(port=0)).start()
    try:
        held = connect(api)
        held.sendall(request(method="GET", path="/", body=b""))
        assert answers(held, 1)[0][0].startswith(b"HTTP/1.1 200 ")  # it holds the one slot
        with connect(api) as extra:
            data = until_closed(extra)
        assert data.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in data
    finally:
        api.stop()
    assert held.recv(100) == b""  # stop() closed the kept-alive connection
    held.close()


def test_a_silent_connection_is_closed_after_the_idle_timeout(
        monkeypatch: pytest.MonkeyPatch, api: MockApi) -> None:
    monkeypatch.setattr(sendapi, "_IDLE_TIMEOUT", 0.2)
    with connect(api) as sock:
        sock.sendall(request(method="GET", path="/", body=b""))
        assert answers(sock, 1)[0][0].startswith(b"HTTP/1.1 200 ")
        assert sock.recv(100) == b""  # nothing more sent: the server hangs up


def test_answers_wait_while_statuses_are_backlogged_and_keep_their_order(
        monkeypatch: pytest.MonkeyPatch, api: MockApi) -> None:
    """The back-pressure path: each answer is held (as when statuses are due and not on
    their way), later pipelined requests wait their turn and nothing is lost."""
    held: list[int] = []

    async def later() -> None:
        held.append(1)

    monkeypatch.setattr(api, "hold_back", later)
    with connect(api) as sock:
        sock.sendall(request() * 5)
        got = answers(sock, 5)
    assert [head.split(b" ")[1] for head, _ in got] == [b"202"] * 5
    assert len(held) == 5
    assert [json.loads(body)["id"] for _, body in got] == [m.message_id for m in api.sent]


def test_held_answers_go_when_the_status_queue_is_short_again_or_the_hold_ends() -> None:
    """hold_back: None while few statuses wait; past STATUS_BACKLOG a future that a status
    leaving the queue settles (no polling), and that settles on its own after STATUS_HOLD
    (a webhook that hangs only slows the sends)."""
    import asyncio

    api = MockApi(ApiOptions(port=0))

    async def check() -> None:
        assert api.hold_back() is None
        api._waiting = sendapi.STATUS_BACKLOG + 1
        held = api.hold_back()
        assert isinstance(held, asyncio.Future) and not held.done()
        api._release_held()  # still too many waiting: it stays held
        await asyncio.sleep(0)
        assert not held.done()
        api._waiting -= 1
        api._release_held()
        assert held.done()
        api._waiting = sendapi.STATUS_BACKLOG + 1
        hung = api.hold_back()
        assert hung is not None
        await asyncio.wait_for(hung, 30)  # nobody releases it: STATUS_HOLD's timer does

    asyncio.run(check())


def test_a_client_that_half_closes_after_its_request_still_gets_the_answer(
        api: MockApi) -> None:
    with connect(api) as sock:
        sock.sendall(request())
        sock.shutdown(socket.SHUT_WR)  # all it will send: the answer must still come
        data = until_closed(sock)
    assert data.startswith(b"HTTP/1.1 202 "), data[:80]


def test_a_half_close_while_the_answer_is_held_still_gets_it(
        monkeypatch: pytest.MonkeyPatch, api: MockApi) -> None:
    import asyncio

    released = asyncio.Event()

    async def later() -> None:
        await released.wait()

    monkeypatch.setattr(api, "hold_back", lambda: later())
    with connect(api) as sock:
        sock.sendall(request())
        sock.shutdown(socket.SHUT_WR)
        assert api._loop is not None
        for _ in range(2000):  # the send is recorded (and its answer held) before the eof
            if api.sent:
                break
            threading.Event().wait(0.01)
        api._loop.call_soon_threadsafe(released.set)
        data = until_closed(sock)
    assert data.startswith(b"HTTP/1.1 202 "), data[:80]


def test_a_bug_in_handling_is_a_500_and_one_line_on_stderr_not_a_hung_request(
        monkeypatch: pytest.MonkeyPatch, api: MockApi,
        capfd: pytest.CaptureFixture[str]) -> None:
    def broken(*_: object) -> tuple[int, dict[str, object]]:
        raise KeyError("\x1b[31mred")

    monkeypatch.setattr(api, "handle", broken)
    for _ in range(2):
        with connect(api) as sock:
            sock.sendall(request())
            data = until_closed(sock)
        assert data.startswith(b"HTTP/1.1 500 "), data[:80]
    err = capfd.readouterr().err
    assert err.count("the send API failed on a request (KeyError") == 1, err
    assert "\x1b" not in err and "Traceback" not in err


def test_the_collector_tuning_of_wasim_api_is_put_back() -> None:
    """`wasim api` freezes what is loaded and collects the oldest generation less often;
    run in someone else's process (a test's CliRunner), it leaves the collector as it was."""
    import gc

    from simulator.aioserver import tune_collector

    before = gc.get_threshold()
    restore = tune_collector()
    try:
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[2] == 1000
    finally:
        restore()
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0


@pytest.mark.parametrize("raw", [
    "POST / HTTP/1.1\r\nContent-Length: \u00b2\r\n\r\n".encode("latin-1"),
    f"POST /v2/{DEFAULT_SID}/whatsapp/{chr(0xb2) * 12}/messages HTTP/1.1\r\napi-key: "
    f"{DEFAULT_API_KEY}\r\nContent-Length: {len(SEND)}\r\n\r\n".encode("latin-1") + SEND,
], ids=["content-length", "business-number"])
def test_superscript_digits_from_a_client_are_a_400_not_a_traceback(
        api: MockApi, raw: bytes, capfd: pytest.CaptureFixture[str]) -> None:
    with connect(api) as sock:
        sock.sendall(raw)
        data = answers(sock, 1)[0][0]
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert "Traceback" not in capfd.readouterr().err


def test_an_http_1_0_request_refused_from_its_head_alone_still_closes(api: MockApi) -> None:
    with connect(api) as sock:
        sock.sendall(f"GET /v2/{DEFAULT_SID}/whatsapp HTTP/1.0\r\napi-key: wrong\r\n\r\n"
                     .encode())
        data = until_closed(sock)  # HTTP/1.0 keeps no connection open unless asked
    assert data.startswith(b"HTTP/1.1 401 ") and b"Connection: close" in data
