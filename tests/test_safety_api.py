"""`wasim api` against hostile clients: the key is checked before a body is read or parsed,
bodies are capped one by one and all together, and nothing a client sends is a traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from simulator import sendapi
from simulator.sendapi import DEFAULT_API_KEY, DEFAULT_SID, ApiOptions, MockApi
from tests.helpers.limited import CHILD  # wasim under RLIMIT_AS

ROOT = Path(__file__).resolve().parent.parent
BUSINESS = "918800000001"
SHOPPER = "919812345678"
KEY = {"api-key": DEFAULT_API_KEY}
FORM = {"to": SHOPPER, "from": BUSINESS, "type": "text", "channel": "whatsapp", "body": "hi"}


@pytest.fixture
def api() -> Iterator[MockApi]:
    """The mock on a free port, one business number, no status callbacks."""
    with MockApi(ApiOptions(port=0, business_numbers=(BUSINESS,))) as running:
        yield running


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the V1 bodies the mock parsed (a wrong key must never get that far)."""
    sizes: list[int] = []
    real = sendapi.parse_v1_body

    def spy(body: bytes, content_type: str) -> dict[str, str]:
        sizes.append(len(body))
        return real(body, content_type)

    monkeypatch.setattr(sendapi, "parse_v1_body", spy)
    return sizes


def head_only(url: str, path: str, headers: dict[str, str], length: int) -> bytes:
    """Send a request's head announcing `length` body bytes, none of them; the answer."""
    parts = urlsplit(url)
    lines = [f"POST {path} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {length}",
             *(f"{k}: {v}" for k, v in headers.items()), "", ""]
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        sock.sendall("\r\n".join(lines).encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer


BIG = 16 * 1024 * 1024 - 1

# --- the key before the body ---------------------------------------------------------------


@pytest.mark.parametrize("path, headers", [
    (f"/v2/{DEFAULT_SID}/whatsapp/{BUSINESS}/messages", {"api-key": "wrong"}),
    (f"/v2/{DEFAULT_SID}/whatsapp/{BUSINESS}/messages", {}),
    (f"/v2/{DEFAULT_SID}/whatsapp/{BUSINESS}/media", {"api-key": "wrong"}),
    (f"/v1/{DEFAULT_SID}/messages", {"api-key": "wrong"}),
    (f"/v1/{DEFAULT_SID}/messages?api-key=wrong", {}),
    ("/v1/WRONGSID/messages", {}),
    ("/v1/WRONGSID/messages", KEY),
    (f"/v2/WRONGSID/whatsapp/{BUSINESS}/messages", KEY),
])
def test_a_wrong_key_or_sid_is_401_before_any_of_the_body_is_read(
        api: MockApi, path: str, headers: dict[str, str]) -> None:
    # 16 MB announced, not one byte sent: the answer can only come from the head.
    answer = head_only(api.base_url, path, headers, BIG)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert b"RBC001" in answer and b"Connection: close" in answer


@pytest.mark.parametrize("content_type, encode", [
    ("application/x-www-form-urlencoded",
     lambda key, pad: f"api-key={key}&body={pad}&to={SHOPPER}".encode()),
    ("application/json", lambda key, pad: json.dumps({"api-key": key, "body": pad}).encode()),
    ("multipart/form-data; boundary=b",
     lambda key, pad: (f'--b\r\nContent-Disposition: form-data; name="api-key"\r\n\r\n{key}'
                       f'\r\n--b\r\nContent-Disposition: form-data; name="body"\r\n\r\n{pad}'
                       "\r\n--b--\r\n").encode()),
])
def test_a_v1_form_with_a_wrong_key_field_is_401_and_never_parsed(
        api: MockApi, parsed: list[int], content_type: str,
        encode: Callable[[str, str], bytes]) -> None:
    body = encode("wrong", "x" * 1_000_000)
    answer = httpx.post(api.v1_url(), content=body, headers={"Content-Type": content_type})
    assert (answer.status_code, answer.json()["code"]) == (401, "RBC001")
    assert parsed == [] and api.sent == []
    # The same body with the right key is parsed and sent: the scan finds every spelling.
    answer = httpx.post(api.v1_url(), content=encode(DEFAULT_API_KEY, "x"),
                        headers={"Content-Type": content_type})
    assert parsed != [] and answer.status_code != 401, answer.text


def test_a_key_named_only_inside_another_value_is_found_but_still_refused(
        api: MockApi) -> None:
    # The scan may find a key where the parser would not; the parsed fields still decide.
    body = json.dumps({"note": {"api-key": DEFAULT_API_KEY}, **FORM}).encode()
    answer = httpx.post(api.v1_url(), content=body, headers={"Content-Type": "application/json"})
    assert (answer.status_code, answer.json()["code"]) == (401, "RBC001")


def test_a_form_encoded_key_is_decoded_before_it_is_compared() -> None:
    with MockApi(ApiOptions(port=0, api_key="Ab+c/d=")) as running:
        body = f"api-key=Ab%2Bc%2Fd%3D&to={SHOPPER}&from={BUSINESS}&type=text&body=hi"
        answer = httpx.post(running.v1_url(), content=body,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert answer.status_code == 202, answer.text


def test_keys_are_compared_in_constant_time(api: MockApi,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = sendapi.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(sendapi.hmac, "compare_digest", spy)
    answer = httpx.post(api.v2_url(BUSINESS), json={}, headers={"api-key": "guess"})
    assert answer.status_code == 401
    # Both the SID and the key were compared, through compare_digest, never with ==.
    assert (b"guess", DEFAULT_API_KEY.encode()) in compared
    assert (DEFAULT_SID.encode(), DEFAULT_SID.encode()) in compared


# --- bodies: one at a time and all together -------------------------------------------------


def test_a_body_over_max_body_is_413_unread() -> None:
    with MockApi(ApiOptions(port=0, max_body=1000)) as running:
        answer = head_only(running.base_url, f"/v2/{DEFAULT_SID}/whatsapp/{BUSINESS}/messages",
                           KEY, 1001)
        assert answer.startswith(b"HTTP/1.1 413 ")


def test_uploads_past_the_shared_budget_are_503_until_one_ends(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sendapi, "MAX_BUFFERED", 1000)
    with MockApi(ApiOptions(port=0, max_body=1000, business_numbers=(BUSINESS,))) as running:
        server = running._server
        assert server is not None and server.max_buffered == 1000
        parts = urlsplit(running.base_url)
        slow = socket.create_connection((parts.hostname, parts.port), timeout=20)
        path = f"/v2/{DEFAULT_SID}/whatsapp/{BUSINESS}/messages"
        slow.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 800\r\n"
                     f"api-key: {DEFAULT_API_KEY}\r\n\r\n".encode() + b"{")
        reserved = threading.Event()
        for _ in range(2000):  # the slow upload's head is read on its own thread
            if server.buffered == 800:
                reserved.set()
                break
            threading.Event().wait(0.01)
        assert reserved.is_set()
        # 800 of 1000 bytes are held by the trickling upload: 300 more do not fit.
        answer = httpx.post(running.v2_url(BUSINESS), content=b"x" * 300, headers=KEY)
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
        assert httpx.post(running.v2_url(BUSINESS), content=b"x" * 150,
                          headers=KEY).status_code == 400  # fits: read, and judged
        slow.close()
        for _ in range(2000):
            if server.buffered == 0:
                break
            threading.Event().wait(0.01)
        assert server.buffered == 0
        answer = httpx.post(running.v2_url(BUSINESS), json={
            "messaging_object": {"messaging_product": "whatsapp", "to": SHOPPER,
                                 "type": "text", "text": {"body": "hi"}}}, headers=KEY)
        assert answer.status_code == 202, answer.text


def test_a_trickling_body_is_cut_off_at_the_request_deadline(
        api: MockApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sendapi, "_REQUEST_DEADLINE", 0.3)
    parts = urlsplit(api.base_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=20) as sock:
        sock.sendall(f"POST /v2/{DEFAULT_SID}/whatsapp/{BUSINESS}/messages HTTP/1.1\r\n"
                     f"Host: x\r\nContent-Length: 100\r\napi-key: {DEFAULT_API_KEY}\r\n\r\n{{"
                     .encode())
        # The server closes the connection (recv gives b"") instead of waiting for ever.
        assert sock.recv(100) == b""
    assert api._server is not None and api._server.buffered == 0


# --- malformed bodies are 400s ---------------------------------------------------------------


def nested_multipart(depth: int) -> bytes:
    body = b"x"
    for level in range(depth):
        boundary = f"b{level}".encode()
        body = (b"--" + boundary + b"\r\nContent-Type: multipart/mixed; boundary=b"
                + str(level - 1).encode() + b"\r\n\r\n" + body + b"\r\n--" + boundary + b"--")
    return body


def test_a_2000_level_nested_multipart_is_a_400_not_a_recursion_error(
        api: MockApi, capfd: pytest.CaptureFixture[str]) -> None:
    body = nested_multipart(2000)
    answer = httpx.post(api.v1_url(), content=body, timeout=60,
                        headers={**KEY, "Content-Type": "multipart/form-data; boundary=b1999"})
    assert (answer.status_code, answer.json()["code"]) == (400, "WA400"), answer.text
    assert "nested too deeply" in answer.text
    assert "RecursionError" not in capfd.readouterr().err


@pytest.mark.parametrize("body", [b"{" * 100_000, b"[" * 100_000, b'{"a":' * 50_000,
                                  b"%ff%fe=%80", b"\x00\xff" * 1000])
def test_malformed_v1_bodies_are_a_400_with_the_right_key(api: MockApi, body: bytes,
                                                          capfd: pytest.CaptureFixture[str]
                                                          ) -> None:
    answer = httpx.post(api.v1_url(), content=body, headers=KEY)
    assert answer.status_code == 400, answer.text
    assert "Traceback" not in capfd.readouterr().err


# --- a process under a memory limit -------------------------------------------------------------

# Under RLIMIT_AS, set once wasim is imported: its own size plus HEADROOM. Each handler
# thread reserves its stack (8 MB of address space) and, unless MALLOC_ARENA_MAX says
# otherwise, a 64 MB malloc arena: one arena here, and room for the stacks of 8 uploads.
HEADROOM = (100 + 8 * 8 + 16) << 20


def test_wasim_api_stays_within_100_mb_against_wrong_keys_and_big_forms() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(HEADROOM), "api", "--port", "0"], cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT), "MALLOC_ARENA_MAX": "1"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        url = process.stderr.readline().split("listening on ", 1)[1].split()[0]
        v1 = f"{url}/v1/{DEFAULT_SID}/messages"
        form = b"api-key=wrong&body=" + b"x" * (BIG - 100)
        multipart = (b'--b\r\nContent-Disposition: form-data; name="api-key"\r\n\r\nwrong\r\n'
                     b'--b\r\nContent-Disposition: form-data; name="media"; filename="a"\r\n\r\n'
                     + b"y" * (BIG - 200) + b"\r\n--b--\r\n")
        statuses: list[int] = []

        def send(body: bytes, content_type: str) -> None:
            with httpx.Client(trust_env=False, timeout=60) as client:
                statuses.append(client.post(v1, content=body,
                                            headers={"Content-Type": content_type}).status_code)

        threads = [threading.Thread(target=send, args=(form if i % 2 else multipart,
                                                       "multipart/form-data; boundary=b"
                                                       if i % 2 == 0 else "text/plain"))
                   for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(set(statuses)) in ([401], [401, 503]), statuses
        # And it still serves.
        answer = httpx.post(v1, data=FORM, headers=KEY, timeout=30)
        assert answer.status_code == 202, answer.text
    finally:
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=60)
    assert "MemoryError" not in errors and "Traceback" not in errors, errors[-2000:]




def test_the_receiver_shares_the_same_budget_across_connections(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator import receiver as receiver_module
    from simulator.receiver import Receiver, ReceiverOptions

    monkeypatch.setattr(receiver_module, "MAX_BUFFERED", 1000)
    with Receiver(ReceiverOptions(port=0, max_body=1000)) as running:
        server = running._server
        assert server is not None and server.max_buffered == 1000
        parts = urlsplit(running.url)
        slow = socket.create_connection((parts.hostname, parts.port), timeout=20)
        slow.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 800\r\n\r\n{")
        for _ in range(2000):
            if server.buffered == 800:
                break
            threading.Event().wait(0.01)
        assert server.buffered == 800
        assert httpx.post(running.url, content=b"x" * 300).status_code == 503
        assert httpx.post(running.url, content=b"{}").status_code == 200  # fits
        slow.close()
        for _ in range(2000):
            if server.buffered == 0:
                break
            threading.Event().wait(0.01)
        assert server.buffered == 0
        assert httpx.post(running.url, content=b"x" * 300).status_code == 200
