"""The send API as the reference describes it, where clients and frameworks notice: V1 status
callbacks are plain GETs, `recipient` (a BSUID) is accepted, a business number is bound to one
API version, the V1 answer's id style, and the V2 answer's ids a published client reads."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from simulator.sendapi import DEFAULT_API_KEY, ApiOptions, MockApi

BUSINESS = "918800000001"
SHOPPER = "919812345678"
KEY = {"api-key": DEFAULT_API_KEY}


class _JsonParsingApp(BaseHTTPRequestHandler):
    """Like an Express app behind bodyParser.json(): a request declaring a JSON body that is
    not JSON, or a GET carrying any body, is answered 400; a plain GET is read from its query."""

    def do_GET(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        declared = (self.headers.get("Content-Type") or "").startswith("application/json")
        bad = bool(body) or self.headers.get("Transfer-Encoding") is not None
        if declared and body:
            try:
                json.loads(body)
            except ValueError:
                bad = True
        self.server.seen.append((self.path, bad))  # type: ignore[attr-defined]
        self.send_response(400 if bad else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def strict_app() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JsonParsingApp)
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_v1_status_callbacks_are_gets_without_a_body_a_json_parser_accepts(
        strict_app: ThreadingHTTPServer) -> None:
    callback = f"http://127.0.0.1:{strict_app.server_address[1]}/status?database_id=42"
    with MockApi(ApiOptions(port=0)) as api:
        form = {"to": SHOPPER, "from": BUSINESS, "type": "text", "body": "hi",
                "callback_url": callback}
        assert httpx.post(api.v1_url(), data=form, headers=KEY).status_code == 202
        statuses = api.wait_for_statuses(3)
    assert [s.status for s in statuses] == ["sent", "delivered", "read"]
    assert all(s.delivered for s in statuses), [s.describe() for s in statuses]
    seen = strict_app.seen  # type: ignore[attr-defined]
    assert [bad for _, bad in seen] == [False] * 3
    assert [dict(parse_qsl(urlsplit(p).query))["status"] for p, _ in seen] == \
        ["sent", "delivered", "read"]


def test_the_strict_app_refuses_a_get_with_a_json_body(strict_app: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{strict_app.server_address[1]}/status?id=x"
    refused = httpx.request("GET", url, content=url.encode(),
                            headers={"Content-Type": "application/json"})
    assert refused.status_code == 400  # so the test above can fail
