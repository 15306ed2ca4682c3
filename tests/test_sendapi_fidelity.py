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


# --- whom a V2 message goes to: `to`, or Meta's `recipient` (a BSUID) -------------------------

BSUID = "IN.1410018717833190"


def v2(meta_recipient: dict[str, Any]) -> dict[str, Any]:
    return {"messaging_object": {"messaging_product": "whatsapp", "recipient_type": "individual",
                                 **meta_recipient, "type": "text", "text": {"body": "Hi"}}}


def test_pywas_recipient_field_is_accepted_with_or_without_to() -> None:
    pytest.importorskip("pywa")
    from pywa._helpers import resolve_recipient

    pywa_fields, _ = resolve_recipient(BSUID)  # what pywa 4.5 sends for a BSUID user
    assert pywa_fields["recipient"] == BSUID and pywa_fields["to"] is None
    with MockApi(ApiOptions(port=0)) as api:
        answers = [httpx.post(api.v2_url(BUSINESS), json=v2(dict(body)), headers=KEY)
                   for body in ({"to": None, "recipient": BSUID}, {"recipient": BSUID},
                                {"to": SHOPPER, "recipient": BSUID})]
        assert [a.status_code for a in answers] == [202, 202, 202]
        assert [(m.to, m.to_kind) for m in api.sent] == [
            (BSUID, "bsuid"), (BSUID, "bsuid"), (SHOPPER, "number")]
        bad = httpx.post(api.v2_url(BUSINESS), json=v2({"recipient": "919812345678"}),
                         headers=KEY)
    assert bad.status_code == 400
    assert bad.json()["code"] == "WA400" and "messaging_object.recipient" in bad.json()["error"]


# --- one business number, one API version ------------------------------------------------------


def test_a_number_that_sent_through_v1_is_refused_on_v2_with_wa_401_and_the_other_way() -> None:
    other = "918800000002"
    with MockApi(ApiOptions(port=0)) as api:
        form = {"to": SHOPPER, "from": BUSINESS, "type": "text", "body": "hi"}
        assert httpx.post(api.v1_url(), data=form, headers=KEY).status_code == 202
        refused = httpx.post(api.v2_url(BUSINESS), json=v2({"to": SHOPPER}), headers=KEY)
        assert refused.status_code == 401
        assert refused.json()["code"] == "WA-401"
        assert "different Version of our WA API" in refused.json()["message"]
        assert httpx.post(api.v2_url(other), json=v2({"to": SHOPPER}),
                          headers=KEY).status_code == 202
        back = httpx.post(api.v1_url(), data={**form, "from": other}, headers=KEY)
        assert back.status_code == 401 and back.json()["code"] == "WA-401"
        assert httpx.post(api.v1_url(), data=form, headers=KEY).status_code == 202
        assert [m.version for m in api.sent] == ["v1", "v2", "v1"]


def test_a_refused_first_request_binds_no_version() -> None:
    with MockApi(ApiOptions(port=0)) as api:
        form = {"to": SHOPPER, "from": BUSINESS, "type": "text"}  # no body: 400
        assert httpx.post(api.v1_url(), data=form, headers=KEY).status_code == 400
        assert httpx.post(api.v2_url(BUSINESS), json=v2({"to": SHOPPER}),
                          headers=KEY).status_code == 202


# --- ids in the answers, and in a tap on a V1 message -----------------------------------------


def test_the_v1_answer_id_is_bare_by_default_and_suffixed_on_request() -> None:
    form = {"to": SHOPPER, "from": BUSINESS, "type": "text", "body": "hi"}
    with MockApi(ApiOptions(port=0)) as api:
        bare = httpx.post(api.v1_url(), data=form, headers=KEY).json()
    with MockApi(ApiOptions(port=0, v1_id="suffixed")) as api:
        suffixed = httpx.post(api.v1_url(), data=form, headers=KEY).json()
        [sent] = api.sent
    assert ":" not in bare["id"] and bare["data"][0]["message_id"] == f"{bare['id']}:0"
    # Suffixed: the id a V1 status callback carries, so a client keying statuses on it matches.
    assert suffixed["id"] == suffixed["data"][0]["message_id"] == sent.recipient_id
    assert suffixed["id"].endswith(":0")


def test_the_v2_answer_carries_kaleyras_id_where_published_clients_read_it() -> None:
    with MockApi(ApiOptions(port=0)) as api:
        answer = httpx.post(api.v2_url(BUSINESS), json=v2({"to": SHOPPER}), headers=KEY).json()
        [sent] = api.sent
    assert answer["code"] == "WA202" and answer["message"] == "Request Accepted."
    assert answer["data"]["message_id"] == answer["id"] == sent.message_id


def test_a_tap_on_a_v1_message_validates_and_names_the_sends_per_recipient_id() -> None:
    from simulator.render import CallbackTemplate, find_template, render_tap
    from simulator.sendapi import reply_tap
    from simulator.taps import TapFactory, TapOptions
    from simulator.validate import validate_callback

    form = {"to": SHOPPER, "from": BUSINESS, "type": "template", "template_name": "offer",
            "payload1": "BUY", "payload2": "LATER"}
    with MockApi(ApiOptions(port=0)) as api:
        answer = httpx.post(api.v1_url(), data=form, headers=KEY).json()
        [sent] = api.sent
    tap = reply_tap(TapFactory(TapOptions(seed=3)), sent, "LATER")
    document = json.loads(render_tap(CallbackTemplate(find_template("button_tap")), tap))
    # A V1 message's reply_to is the send's data[].message_id (send-api.md 5.6).
    assert document["extra_info"]["reply_to"] == answer["data"][0]["message_id"]
    assert validate_callback(document) == []
    document["extra_info"]["reply_to"] += "x"
    assert [p.path for p in validate_callback(document)] == ["$.extra_info.reply_to"]


def test_the_guides_complete_v2_example_is_accepted_as_written() -> None:
    import re
    from pathlib import Path

    guide = Path(__file__).parent.parent / "docs" / "guides" / "send-api.md"
    block = re.search(r"```json\n(.*?)```", guide.read_text(), re.S)
    assert block is not None
    with MockApi(ApiOptions(port=0)) as api:
        answer = httpx.post(api.v2_url("+918068177179"), content=block.group(1), headers=KEY)
        assert answer.status_code == 202, answer.text
        [sent] = api.sent
    assert sent.type == "interactive" and [b.payload for b in sent.buttons] == ["TRACK", "AGENT"]
    assert sent.context_id and sent.ref == "order-42"
