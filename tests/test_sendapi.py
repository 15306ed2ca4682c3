"""The local Kaleyra send API: what it accepts, how it answers, what it records and fires."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from simulator.delivery import delivery_options_from
from simulator.receiver import Receiver
from simulator.sendapi import (
    DEFAULT_API_KEY,
    DEFAULT_SID,
    ApiOptions,
    MockApi,
    parse_params,
    reply_tap,
    v1_status_url,
)
from simulator.taps import TapFactory, TapOptions
from simulator.validate import validate_callback
from simulator.wamid import decode_wamid

BUSINESS = "918800000001"
SHOPPER = "919812345678"
KEY = {"api-key": DEFAULT_API_KEY}


@pytest.fixture
def api() -> Iterator[MockApi]:
    """The mock on a free port, one business number, no status callbacks."""
    with MockApi(ApiOptions(port=0, business_numbers=(BUSINESS,))) as running:
        yield running


def v2_text(to: str = "+" + SHOPPER, body: str = "You're unsubscribed") -> dict[str, Any]:
    """A V2 text send as Kaleyra's doc writes it (preview_url as a string)."""
    return {"messaging_object": {"messaging_product": "whatsapp", "recipient_type": "individual",
                                 "to": to, "type": "text",
                                 "text": {"preview_url": "false", "body": body}},
            "extra_info": {"ref": "r0", "ref1": "campaign", "ref2": "shoes"}}


# --- V2 ---------------------------------------------------------------------------------


def test_a_v2_text_is_accepted_with_kaleyras_202_and_recorded_with_its_ids(api: MockApi) -> None:
    answer = httpx.post(api.v2_url("+" + BUSINESS), json=v2_text(), headers=KEY)
    assert answer.status_code == 202
    body = answer.json()
    assert body["code"] == "WA202" and body["message"] == "Request Accepted."
    [sent] = api.sent
    assert body["data"]["message_id"] == sent.message_id == sent.recipient_id
    assert (sent.version, sent.business, sent.to, sent.type) == ("v2", BUSINESS, SHOPPER, "text")
    assert sent.text == "You're unsubscribed" and (sent.ref, sent.ref1) == ("r0", "campaign")
    decoded = decode_wamid(sent.wamid)
    assert decoded.customer == SHOPPER and decoded.from_business
    assert len(decoded.message_id) == 18


@pytest.mark.parametrize("number", [BUSINESS, "+" + BUSINESS, "%2B" + BUSINESS])
def test_the_v2_path_number_is_accepted_with_or_without_plus(api: MockApi, number: str) -> None:
    url = f"{api.base_url}/v2/{DEFAULT_SID}/whatsapp/{number}/messages"
    assert httpx.post(url, json=v2_text(), headers={"Api-Key": DEFAULT_API_KEY}).status_code == 202


def test_a_wrong_key_is_401_rbc001_and_nothing_is_recorded(api: MockApi) -> None:
    answer = httpx.post(api.v2_url(BUSINESS), json=v2_text(), headers={"api-key": "nope"})
    assert answer.status_code == 401
    assert answer.json()["code"] == "RBC001"
    assert answer.json()["message"] == "Incorrect SID or API key."
    assert api.sent == []


def test_an_unknown_business_number_is_401_wa401(api: MockApi) -> None:
    answer = httpx.post(api.v2_url("918899999999"), json=v2_text(), headers=KEY)
    assert (answer.status_code, answer.json()["code"]) == (401, "WA401")


def test_with_no_business_numbers_any_sender_is_accepted() -> None:
    with MockApi(ApiOptions(port=0)) as api:
        assert httpx.post(api.v2_url("14155550100"), json=v2_text(),
                          headers=KEY).status_code == 202


@pytest.mark.parametrize("body", [
    b"not json", b"[]", json.dumps(v2_text()["messaging_object"]).encode(),
    json.dumps({"messaging_object": {"to": "12", "type": "text",
                                     "text": {"body": "x"}}}).encode(),
    json.dumps({"messaging_object": {"to": SHOPPER, "type": "text", "text": {}}}).encode(),
], ids=["not-json", "a-list", "no-wrapper", "bad-recipient", "no-text-body"])
def test_a_bad_v2_body_is_400_wa400(api: MockApi, body: bytes) -> None:
    answer = httpx.post(api.v2_url(BUSINESS), content=body, headers=KEY)
    assert (answer.status_code, answer.json()["code"]) == (400, "WA400")
    assert api.sent == []


@pytest.mark.parametrize(("to", "recorded", "kind"), [
    ("+" + SHOPPER, SHOPPER, "number"), (SHOPPER, SHOPPER, "number"),
    ("IN.1410018717833190", "IN.1410018717833190", "bsuid"),
    ("US.13491208655302741918", "US.13491208655302741918", "bsuid"),
    ("IN.ENT.11815799212886844830", "IN.ENT.11815799212886844830", "bsuid"),
    ("BR.aB3dE5fG7h", "BR.aB3dE5fG7h", "bsuid"),
])
def test_a_v2_recipient_may_be_a_number_or_a_bsuid_and_the_kind_is_recorded(
        api: MockApi, to: str, recorded: str, kind: str) -> None:
    answer = httpx.post(api.v2_url(BUSINESS), json=v2_text(to=to), headers=KEY)
    assert answer.status_code == 202
    [sent] = api.sent
    assert (sent.to, sent.to_kind) == (recorded, kind)
    assert decode_wamid(sent.wamid).from_business
    assert api.sent_to(to) == [sent]


@pytest.mark.parametrize("to", ["", "12", "in.123", "IN.", "IN.12 34", "IND.123", "IN.ENT.",
                                "IN.12-34", "++919812345678", "9198123456781234",
                                "919812345678\u0663", "@asha_k", "IN." + "1" * 129])
def test_any_other_recipient_is_400_wa400_naming_the_field(api: MockApi, to: str) -> None:
    v2 = httpx.post(api.v2_url(BUSINESS), json=v2_text(to=to), headers=KEY)
    v1 = httpx.post(api.v1_url(), headers=KEY, data={
        "from": BUSINESS, "to": f"{SHOPPER},{to}" if to else "", "type": "text", "body": "x"})
    for answer, field in ((v2, "messaging_object.to"), (v1, "to")):
        assert (answer.status_code, answer.json()["code"]) == (400, "WA400")
        assert "invalid number" in answer.json()["error"][field]
    assert api.sent == []


def test_a_v1_send_to_numbers_and_a_bsuid_records_each_kind(api: MockApi) -> None:
    answer = httpx.post(api.v1_url(), headers=KEY, data={
        "from": BUSINESS, "to": f"+{SHOPPER}, IN.1410018717833190", "type": "text",
        "body": "x"})
    assert answer.status_code == 202
    assert [(m.to, m.to_kind) for m in api.sent] == [(SHOPPER, "number"),
                                                     ("IN.1410018717833190", "bsuid")]
    assert [d["recipient"] for d in answer.json()["data"]] == [SHOPPER, "IN.1410018717833190"]


def test_a_status_of_a_message_to_a_bsuid_names_it_as_recipient_user_id(
        receiver: Receiver) -> None:
    webhook = delivery_options_from({"url": receiver.url}, lambda key: key)
    with MockApi(ApiOptions(port=0), webhook=webhook) as api:
        httpx.post(api.v2_url(BUSINESS), json=v2_text(to="IN.1410018717833190"), headers=KEY)
        documents = [json.loads(a.body) for a in receiver.wait_for(3)]
    for document in documents:
        [entry] = document["meta_object"]["value"]["statuses"]
        assert entry["recipient_user_id"] == "IN.1410018717833190"
        assert "recipient_id" not in entry


def quick_reply_template(payloads: list[str]) -> dict[str, Any]:
    """A V2 template with a body param and one quick-reply component per payload."""
    components: list[dict[str, Any]] = [
        {"type": "body", "parameters": [{"type": "text", "text": "Asha"}]}]
    components += [{"type": "button", "sub_type": "quick_reply", "index": str(i),
                    "parameters": [{"type": "payload", "payload": p}]}
                   for i, p in enumerate(payloads)]
    return {"messaging_object": {"messaging_product": "whatsapp", "to": SHOPPER,
                                 "type": "template",
                                 "template": {"name": "catalogue", "language": {"code": "en"},
                                              "components": components}}}


def test_a_v2_template_records_its_params_and_quick_reply_payloads(api: MockApi) -> None:
    answer = httpx.post(api.v2_url(BUSINESS), json=quick_reply_template(["BUY", "LATER"]),
                        headers=KEY)
    assert answer.status_code == 202
    [sent] = api.sent
    assert (sent.template, sent.params) == ("catalogue", ("Asha",))
    assert [b.payload for b in sent.buttons] == ["BUY", "LATER"]


def test_a_template_the_scenario_does_not_define_is_accepted_then_fails_with_132001(
        receiver: Receiver) -> None:
    webhook = delivery_options_from({"url": receiver.url}, lambda key: key)
    options = ApiOptions(port=0, templates=("summer_sale", "order_update"))
    with MockApi(options, webhook=webhook) as api:
        api.set_outcome("read", count=1)  # an outcome asked for does not save it from failing
        answer = httpx.post(api.v2_url(BUSINESS), json=quick_reply_template(["BUY"]),
                            headers=KEY)
        [document] = [json.loads(a.body) for a in receiver.wait_for(1)]
        [sent] = api.sent
    # Kaleyra accepts it (202, ids issued); Meta's refusal arrives as a FAILED status alone.
    assert answer.status_code == 202 and answer.json()["data"]["message_id"] == sent.message_id
    assert (sent.template, sent.error) == ("catalogue", 132001)
    assert document["status"] == "failed" and document["message_id"] == sent.wamid
    [error] = document["meta_object"]["value"]["statuses"][0]["errors"]
    assert error == {"code": 132001, "title": "Template name does not exist in the translation",
                     "message": "Template name does not exist in the translation",
                     "error_data": {"details": "The template does not exist in the specified "
                                    "language or the template has not been approved."}}
    assert "fails 132001" in sent.describe()


def test_a_v1_template_the_scenario_does_not_define_gets_a_failed_get_with_132001(
        get_recorder: ThreadingHTTPServer) -> None:
    callback = f"http://127.0.0.1:{get_recorder.server_address[1]}/status"
    with MockApi(ApiOptions(port=0, templates=("order_update",))) as api:
        unknown = httpx.post(api.v1_url(), headers=KEY, data={
            "channel": "whatsapp", "from": BUSINESS, "to": SHOPPER, "type": "template",
            "template_name": "catalogue", "callback_url": callback})
        known = httpx.post(api.v1_url(), headers=KEY, data={
            "channel": "whatsapp", "from": BUSINESS, "to": SHOPPER, "type": "template",
            "template_name": "order_update", "callback_url": callback})
        api.wait_for_statuses(4)  # 1 failed + sent, delivered, read
    assert (unknown.status_code, known.status_code) == (202, 202)
    assert [(m.template, m.error) for m in api.sent] == [("catalogue", 132001),
                                                        ("order_update", 0)]
    paths: list[str] = get_recorder.paths  # type: ignore[attr-defined]
    queries = [dict(parse_qsl(urlsplit(p).query)) for p in paths]
    failed = [q for q in queries if q["id"] == f"{unknown.json()['id']}:0"]
    assert [(q["status"], q["error_code"]) for q in failed] == [("failed", "132001")]
    assert sorted(q["status"] for q in queries if q not in failed) == ["delivered", "read",
                                                                       "sent"]


def test_four_quick_reply_payloads_are_refused(api: MockApi) -> None:
    answer = httpx.post(api.v2_url(BUSINESS), json=quick_reply_template(list("ABCD")),
                        headers=KEY)
    assert answer.status_code == 400
    assert "at most 3" in json.dumps(answer.json())


def test_v2_interactive_reaction_media_and_reply_context_are_accepted(api: MockApi) -> None:
    base = {"messaging_product": "whatsapp", "to": SHOPPER}
    bodies = [
        {**base, "type": "interactive", "interactive": {
            "type": "button", "body": {"text": "Pick one"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}]}}},
        {**base, "type": "interactive", "interactive": {
            "type": "list", "body": {"text": "Sizes"}, "action": {"button": "Choose", "sections": [
                {"title": "S", "rows": [{"id": "s1", "title": "Small"}]}]}}},
        {**base, "type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}},
        {**base, "type": "image", "image": {"link": "https://example.com/a.jpg"}},
        {**base, "type": "text", "context": {"message_id": "wamid.ABC"}, "text": {"body": "hi"}},
    ]
    for body in bodies:
        answer = httpx.post(api.v2_url(BUSINESS), json={"messaging_object": body}, headers=KEY)
        assert answer.status_code == 202, answer.text
    sent = api.sent
    assert [b.payload for b in sent[0].buttons] == ["y"]
    assert [b.text for b in sent[1].buttons] == ["Small"]
    assert sent[2].context_id == "wamid.X" and sent[4].context_id == "wamid.ABC"


# --- V1 ---------------------------------------------------------------------------------


def test_courier_s_exact_urlencoded_text_with_a_form_field_key_is_accepted(api: MockApi) -> None:
    body = (f"api-key={DEFAULT_API_KEY}&body=foo+https%3A%2F%2Ffoo.bar+bar&callback_url="
            f"https%3A%2F%2Flocalhost%2Fc%2Fkwa%2Fstatus&channel=WhatsApp&from={BUSINESS}"
            f"&preview_url=true&to={SHOPPER}&type=text")
    answer = httpx.post(api.v1_url(), content=body,
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 202
    reply = answer.json()
    [sent] = api.sent
    assert reply["id"] == sent.message_id
    assert reply["data"] == [{"message_id": f"{sent.message_id}:0", "recipient": SHOPPER,
                              "status": "queued"}]
    assert sent.text == "foo https://foo.bar bar"


def test_a_multipart_body_labelled_json_is_read_from_its_bytes(api: MockApi) -> None:
    fields = {"to": "+" + SHOPPER, "from": "+" + BUSINESS, "type": "mediatemplate",
              "channel": "whatsapp", "template_name": "quick_reply_confirm",
              'language":"en_us': "", "params": '"p1","p2"', "payload1": "cart_checkout",
              "payload2": "later"}
    request = httpx.Request("POST", api.v1_url(), data=fields,
                            files={"media": ("a.png", b"\x89PNG", "image/png")})
    body = request.read()
    answer = httpx.post(api.v1_url(), content=body,
                        headers={**KEY, "Content-Type": "application/json"})
    assert answer.status_code == 202, answer.text
    [sent] = api.sent
    assert sent.params == ("p1", "p2")
    assert [b.payload for b in sent.buttons] == ["cart_checkout", "later"]
    assert sent.request["media"] == "a.png (4 bytes)"


def test_a_v1_post_with_every_field_in_the_query_string_is_accepted(api: MockApi) -> None:
    params = {"to": SHOPPER, "from": BUSINESS, "type": "template", "channel": "whatsapp",
              "template_name": "booking_confirm", "params": "a,b,c"}
    assert httpx.post(api.v1_url(), params=params, headers=KEY).status_code == 202
    assert httpx.get(api.v1_url(), params=params, headers=KEY).status_code == 202
    assert [m.params for m in api.sent] == [("a", "b", "c")] * 2


def test_a_v1_json_body_location_and_interactive_json_in_form_are_accepted(api: MockApi) -> None:
    location = {"channel": "whatsapp", "to": SHOPPER, "from": BUSINESS, "type": "location",
                "location": {"longitude": "77.6", "latitude": "12.9", "name": "Shop"}}
    assert httpx.post(api.v1_url(), json=location, headers=KEY).status_code == 202
    action = {"buttons": [{"type": "reply", "reply": {"id": "1", "title": "First"}}]}
    form = {"to": SHOPPER, "from": BUSINESS, "type": "interactive", "channel": "whatsapp",
            "body": "Pick", "action": json.dumps(action)}
    assert httpx.post(api.v1_url(), data=form, headers=KEY).status_code == 202
    assert api.sent[0].text == "Shop"
    assert [b.payload for b in api.sent[1].buttons] == ["1"]


def test_several_v1_recipients_get_one_uuid_and_indexed_ids(api: MockApi) -> None:
    form = {"to": f"{SHOPPER},+919812345679", "from": BUSINESS, "type": "text", "body": "hi"}
    answer = httpx.post(api.v1_url(), data=form, headers=KEY).json()
    first, second = api.sent
    assert first.message_id == second.message_id == answer["id"]
    assert (first.recipient_id, second.recipient_id) == (f"{answer['id']}:0", f"{answer['id']}:1")
    assert first.wamid != second.wamid


@pytest.mark.parametrize("form, field", [
    ({"from": BUSINESS, "type": "text", "body": "x"}, "to"),
    ({"to": "12", "from": BUSINESS, "type": "text", "body": "x"}, "to"),
    ({"to": SHOPPER, "from": BUSINESS, "type": "text"}, "body"),
    ({"to": SHOPPER, "from": BUSINESS, "type": "template"}, "template_name"),
    ({"to": SHOPPER, "from": BUSINESS, "type": "template", "template_name": "t",
      "payload4": "x"}, "payload"),
    ({"to": SHOPPER, "from": BUSINESS, "type": "interactive", "body": "x", "action": "{"},
     "action"),
    ({"to": SHOPPER, "from": BUSINESS, "type": "text", "body": "x", "channel": "sms"},
     "channel"),
])
def test_a_bad_v1_request_names_its_field(api: MockApi, form: dict[str, str],
                                          field: str) -> None:
    answer = httpx.post(api.v1_url(), data=form, headers=KEY)
    assert answer.status_code == 400
    assert answer.json()["code"] == "WA400" and field in answer.json()["error"]


def test_v1_auth_is_checked_before_the_body_is_judged(api: MockApi) -> None:
    answer = httpx.post(api.v1_url(), data={"type": "nonsense"})
    assert (answer.status_code, answer.json()["code"]) == (401, "RBC001")


def test_both_csv_styles_of_params_parse_the_same() -> None:
    assert parse_params("param1,param2") == ("param1", "param2")
    assert parse_params('"A, with comma","B"') == ("A, with comma", "B")
    assert parse_params("") == ()


# --- faults -----------------------------------------------------------------------------


@pytest.mark.parametrize("fault, status", [("WA500", 500), ("E110", 400), ("429", 429)])
def test_a_fault_set_at_runtime_answers_once_then_clears(api: MockApi, fault: str,
                                                         status: int) -> None:
    api.set_fault(fault, count=1)
    answer = httpx.post(api.v2_url(BUSINESS), json=v2_text(), headers=KEY)
    assert (answer.status_code, answer.json()["code"]) == (status, fault)
    assert api.sent == []
    assert httpx.post(api.v2_url(BUSINESS), json=v2_text(), headers=KEY).status_code == 202


def test_an_oversized_body_is_refused_unread() -> None:
    with MockApi(ApiOptions(port=0, max_body=100)) as api:
        answer = httpx.post(api.v2_url(BUSINESS), content=b"x" * 101, headers=KEY)
        assert answer.status_code == 413


def test_concurrent_sends_are_all_recorded_with_distinct_ids(api: MockApi) -> None:
    def send() -> None:
        httpx.post(api.v2_url(BUSINESS), json=v2_text(), headers=KEY)

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent = api.sent
    assert sorted(m.number for m in sent) == list(range(1, 21))
    assert len({m.message_id for m in sent}) == len({m.wamid for m in sent}) == 20


def test_the_record_is_bounded_in_count() -> None:
    with MockApi(ApiOptions(port=0, keep=2)) as api:
        for _ in range(3):
            httpx.post(api.v2_url(BUSINESS), json=v2_text(), headers=KEY)
        assert [m.number for m in api.sent] == [2, 3]


def test_assert_replied_lists_what_was_sent_when_it_fails(api: MockApi) -> None:
    httpx.post(api.v2_url(BUSINESS), json=v2_text(), headers=KEY)
    api.assert_replied(SHOPPER, contains="unsubscribed")
    with pytest.raises(AssertionError, match="got 0; the app sent:\n  #1 v2"):
        api.assert_replied(SHOPPER, contains="welcome")


# --- status callbacks -------------------------------------------------------------------


def test_v2_statuses_follow_a_send_to_the_webhook_with_ids_that_line_up(
        receiver: Receiver) -> None:
    webhook = delivery_options_from({"url": receiver.url}, lambda key: key)
    with MockApi(ApiOptions(port=0), webhook=webhook) as api:
        httpx.post(api.v2_url(BUSINESS), json=v2_text(), headers=KEY)
        arrivals = receiver.wait_for(3)
        [sent] = api.sent
    documents = [json.loads(a.body) for a in arrivals]
    assert [d["status"] for d in documents] == ["sent", "delivered", "read"]
    for document in documents:
        assert document["message_id"] == sent.wamid
        assert document["extra_info"]["message_id"] == sent.wamid
        assert document["meta_object"]["value"]["statuses"][0]["id"] == sent.wamid
        assert document["meta_object"]["value"]["statuses"][0]["recipient_id"] == SHOPPER
        assert document["extra_info"]["ref1"] == "campaign"
        assert document["extra_info"]["enable_url_tracking_body"] is False
    # The layout of wire-format.md section 6 (validate learns status kinds on another branch).
    assert list(documents[0]) == ["meta_object", "extra_info", "status", "message_id"]
    assert "media_url" not in documents[0]["extra_info"]
    assert "reply_to" not in documents[0]["extra_info"]


def test_failed_on_demand_carries_metas_error(receiver: Receiver) -> None:
    webhook = delivery_options_from({"url": receiver.url}, lambda key: key)
    with MockApi(ApiOptions(port=0), webhook=webhook) as api:
        api.set_outcome("failed", count=1)
        httpx.post(api.v2_url(BUSINESS), json=v2_text(), headers=KEY)
        documents = [json.loads(a.body) for a in receiver.wait_for(2)]
    assert [d["status"] for d in documents] == ["sent", "failed"]
    assert documents[1]["meta_object"]["value"]["statuses"][0]["errors"][0]["code"] == 131026


def test_status_delays_are_slept_through_the_injected_sleep(receiver: Receiver) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    webhook = delivery_options_from({"url": receiver.url}, lambda key: key)
    options = ApiOptions(port=0, status_delays=(1.0, 30.0, 600.0), speed=1.0)
    with MockApi(options, webhook=webhook, sleep=sleep, clock=lambda: 1_780_000_000.0) as api:
        httpx.post(api.v2_url(BUSINESS), json=v2_text(), headers=KEY)
        statuses = api.wait_for_statuses(3)
    assert slept == [1.0, 30.0, 600.0]
    stamps = [json.loads(s.body)["meta_object"]["value"]["statuses"][0]["timestamp"]
              for s in statuses]
    assert stamps == ["1780000001", "1780000031", "1780000631"]


def test_speed_divides_the_real_wait_but_not_the_stamped_time(receiver: Receiver) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    webhook = delivery_options_from({"url": receiver.url}, lambda key: key)
    for speed, waited in ((10.0, [0.1, 0.2, 0.5]), (math.inf, [])):
        slept.clear()
        options = ApiOptions(port=0, speed=speed)  # the default delays: 1 s, 2 s, 5 s
        with MockApi(options, webhook=webhook, sleep=sleep,
                     clock=lambda: 1_780_000_000.0) as api:
            httpx.post(api.v2_url(BUSINESS), json=v2_text(), headers=KEY)
            statuses = api.wait_for_statuses(3)
        assert slept == pytest.approx(waited)
        documents = [json.loads(s.body) for s in statuses]
        assert [d["status"] for d in documents] == ["sent", "delivered", "read"]
        items = [d["meta_object"]["value"]["statuses"][0] for d in documents]
        assert [i["timestamp"] for i in items] == ["1780000001", "1780000003", "1780000008"]
        # One conversation across the message's statuses, its expiry given once.
        assert items[0]["conversation"]["id"] == items[1]["conversation"]["id"]
        assert items[0]["conversation"]["expiration_timestamp"] == str(1780000001 + 86400)


class _GetRecorder(BaseHTTPRequestHandler):
    """Records the path of every GET (V1 status callbacks) on its server."""

    def do_GET(self) -> None:
        self.server.paths.append(self.path)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def get_recorder() -> Iterator[ThreadingHTTPServer]:
    """A real server on a free port that records GET paths."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GetRecorder)
    server.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_v1_statuses_are_gets_to_the_callback_url_keeping_its_own_query(
        get_recorder: ThreadingHTTPServer) -> None:
    callback = f"http://127.0.0.1:{get_recorder.server_address[1]}/status?database_id=42"
    with MockApi(ApiOptions(port=0)) as api:
        form = {"to": SHOPPER, "from": BUSINESS, "type": "text", "body": "hi",
                "callback_url": callback, "ref": "order-7"}
        answer = httpx.post(api.v1_url(), data=form, headers=KEY).json()
        api.wait_for_statuses(3)
    paths: list[str] = get_recorder.paths  # type: ignore[attr-defined]
    queries = [dict(parse_qsl(urlsplit(p).query)) for p in paths]
    assert [q["status"] for q in queries] == ["sent", "delivered", "read"]
    assert all(q["database_id"] == "42" and q["id"] == f"{answer['id']}:0"
               and q["ref"] == "order-7" for q in queries)


def test_a_remote_v1_callback_url_is_refused_and_recorded_not_sent() -> None:
    with MockApi(ApiOptions(port=0)) as api:
        form = {"to": SHOPPER, "from": BUSINESS, "type": "text", "body": "hi",
                "callback_url": "http://203.0.113.5/status"}
        assert httpx.post(api.v1_url(), data=form, headers=KEY).status_code == 202
        statuses = api.wait_for_statuses(3)
    assert all(s.result is None and s.error for s in statuses)


def test_the_v1_status_url_appends_with_an_ampersand_when_a_query_exists(api: MockApi) -> None:
    form = {"to": SHOPPER, "from": BUSINESS, "type": "text", "body": "x",
            "callback_url": "http://127.0.0.1:9/s?a=1"}
    httpx.post(api.v1_url(), data=form, headers=KEY)
    url = v1_status_url(api.sent[0], "read", 1_700_000_000)
    assert url.startswith("http://127.0.0.1:9/s?a=1&id=")


# --- ids in the shopper's later tap -------------------------------------------------------


def test_a_tap_replying_to_a_sent_template_carries_its_wamid_and_uuid(api: MockApi) -> None:
    httpx.post(api.v2_url(BUSINESS), json=quick_reply_template(["BUY", "LATER"]), headers=KEY)
    [sent] = api.sent
    factory = TapFactory(TapOptions(seed=3))
    tap = reply_tap(factory, sent, "LATER")
    assert tap.template.wamid == sent.wamid and tap.template.reply_to == sent.message_id
    assert tap.user.wa_id == SHOPPER and tap.business.display_phone_number == BUSINESS
    assert tap.button.payload == "LATER"
    from simulator.render import CallbackTemplate, find_template, render_tap

    document = json.loads(render_tap(CallbackTemplate(find_template("button_tap")), tap))
    assert document["meta_object"]["value"]["messages"][0]["context"]["id"] == sent.wamid
    assert document["extra_info"]["reply_to"] == sent.message_id
    assert validate_callback(document) == []


# --- the command ------------------------------------------------------------------------


def test_wasim_api_prints_its_url_sid_and_key_and_each_message(tmp_path: Any) -> None:
    import os
    import signal
    import subprocess
    import sys

    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "api", "--port", "0", "--sid", "HXIN1707324291IN",
         "--api-key", "Asecret", "--business-number", "+" + BUSINESS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert process.stderr is not None and process.stdout is not None
        first = process.stderr.readline()
        base_url = first.split(" listening on ")[1].split()[0]
        assert "HXIN1707324291IN" in process.stderr.readline()
        url = f"{base_url}/v2/HXIN1707324291IN/whatsapp/{BUSINESS}/messages"
        answer = httpx.post(url, json=v2_text(), headers={"api-key": "Asecret"}, timeout=30)
        assert answer.status_code == 202
        line = process.stdout.readline()
        assert f"v2 {BUSINESS} -> {SHOPPER}: text" in line
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "stopped after 1 message(s)" in stderr


def test_wasim_api_refuses_a_remote_webhook_in_one_line() -> None:
    from click.testing import CliRunner

    from simulator.cli import cli

    result = CliRunner().invoke(cli, ["api", "--port", "0", "--webhook",
                                      "http://203.0.113.5/hook"])
    assert result.exit_code == 2
    assert "--webhook" in result.stderr and len(result.stderr.splitlines()) == 1


def test_wasim_api_sends_statuses_in_metas_envelope_signed_with_the_webhooks_secret() -> None:
    import hashlib
    import hmac
    import os
    import signal
    import subprocess
    import sys

    from simulator.receiver import ReceiverOptions

    secret = "0123456789abcdef0123456789abcdef"
    with Receiver(ReceiverOptions(port=0, app_secret=secret)) as hook:
        process = subprocess.Popen(
            [sys.executable, "-m", "simulator", "api", "--port", "0", "--webhook", hook.url,
             "--envelope", "meta", "--app-secret", secret],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        try:
            assert process.stderr is not None
            base_url = process.stderr.readline().split(" listening on ")[1].split()[0]
            sid, key = process.stderr.readline().split()[1::2]
            answer = httpx.post(f"{base_url}/v2/{sid}/whatsapp/{BUSINESS}/messages",
                                json=v2_text(), headers={"api-key": key}, timeout=30)
            assert answer.status_code == 202
            arrivals = hook.wait_for(3, timeout=30)
        finally:
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
    assert [a.status for a in arrivals] == [200, 200, 200]  # the receiver checked each one
    assert all(a.problems == () for a in arrivals)
    for arrival in arrivals:
        document = json.loads(arrival.body)
        assert document["object"] == "whatsapp_business_account"
        [entry] = document["entry"]
        [change] = entry["changes"]
        assert change["field"] == "messages"
        [status] = change["value"]["statuses"]
        assert status["id"].startswith("wamid.") and status["recipient_id"] == SHOPPER
        signature = dict((k.lower(), v) for k, v in arrival.headers)["x-hub-signature-256"]
        assert signature == "sha256=" + hmac.new(secret.encode(), arrival.body,
                                                 hashlib.sha256).hexdigest()
    assert [json.loads(a.body)["entry"][0]["changes"][0]["value"]["statuses"][0]["status"]
            for a in arrivals] == ["sent", "delivered", "read"]
    assert secret not in stderr


def test_wasim_api_delivery_flags_without_a_webhook_are_a_one_line_error() -> None:
    from click.testing import CliRunner

    from simulator.cli import cli

    result = CliRunner().invoke(cli, ["api", "--port", "0", "--envelope", "meta"])
    assert result.exit_code == 2
    assert "--envelope" in result.stderr and "--webhook" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_statuses_in_metas_envelope_are_recorded_as_the_signed_bytes_that_left(
        receiver: Receiver) -> None:
    secret = "0123456789abcdef0123456789abcdef"
    webhook = delivery_options_from({"url": receiver.url, "envelope": "meta",
                                     "app_secret": secret}, str)
    with MockApi(ApiOptions(port=0), webhook=webhook) as mock:
        assert httpx.post(mock.v2_url(BUSINESS), json=v2_text(), headers=KEY).status_code == 202
        recorded = mock.wait_for_statuses(3)
        arrivals = receiver.wait_for(3)
    assert [d.body for d in recorded] == [a.body for a in arrivals]
    assert all(json.loads(d.body)["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
               == d.message.wamid for d in recorded)


# --- the Python API ---------------------------------------------------------------------


def test_wasim_api_without_a_target_records_but_sends_no_statuses() -> None:
    from simulator.testing import Simulator

    simulator = Simulator(seed=1)
    with simulator.api() as api:
        assert httpx.post(api.v2_url(BUSINESS), json=v2_text(), headers=KEY).status_code == 202
        assert api.webhook is None
        assert api.env()["KALEYRA_BASE_URL"] == api.base_url
    assert len(api.sent) == 1 and api.statuses == []


def test_wasim_api_names_itself_in_a_bad_option() -> None:
    from simulator.errors import WasimError
    from simulator.testing import Simulator

    with pytest.raises(WasimError) as caught:
        Simulator(seed=1).api(business_numbers=["12"])
    assert caught.value.where is not None and caught.value.where.startswith("wasim.api(")


def test_reply_tap_refuses_a_button_the_message_does_not_have(api: MockApi) -> None:
    from simulator.errors import WasimError
    from simulator.testing import Simulator

    httpx.post(api.v2_url(BUSINESS), json=quick_reply_template(["BUY"]), headers=KEY)
    with pytest.raises(WasimError, match="no button 'SELL'"):
        Simulator(seed=1).reply_tap(api.sent[0], "SELL")


def test_demo_with_an_api_port_runs_the_send_api_beside_its_receiver(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from simulator.tui.commands import demo

    scenario = tmp_path / "tiny.yaml"
    scenario.write_text("name: tiny\ncast:\n  countries: {IN: 1}\n")
    result = CliRunner().invoke(demo, [str(scenario), "--headless", "--no-history",
                                       "--api-port", "0"], standalone_mode=False)
    assert result.return_value == 0, result.output
    assert re.search(r"send API on http://127\.0\.0\.1:\d+ \(SID HXIN2026000001IN",
                     result.stderr)


def test_the_record_is_bounded_in_bytes_keeping_the_newest() -> None:
    with MockApi(ApiOptions(port=0, keep_bytes=500)) as api:
        for _ in range(3):
            httpx.post(api.v2_url(BUSINESS), json=v2_text(body="x" * 300), headers=KEY)
        assert [m.number for m in api.sent] == [3]


def test_a_status_line_escapes_control_characters_from_a_callback_url() -> None:
    with MockApi(ApiOptions(port=0)) as api:
        form = {"to": SHOPPER, "from": BUSINESS, "type": "text", "body": "hi",
                "callback_url": "http://203.0.113.5/\x1b[2J"}
        httpx.post(api.v1_url(), data=form, headers=KEY)
        [first, *_] = api.wait_for_statuses(3)
    line = first.describe()
    assert "\x1b" not in line and "\\x1b[2J" in line


def test_a_v1_authentication_template_records_its_code(api: MockApi) -> None:
    form = {"to": SHOPPER, "from": BUSINESS, "type": "authenticationtemplate",
            "template_name": "logincode", "verification_code": "427350"}
    assert httpx.post(api.v1_url(), files={k: (None, v) for k, v in form.items()},
                      headers=KEY).status_code == 202
    assert api.sent[0].params == ("427350",)
    del form["verification_code"]
    answer = httpx.post(api.v1_url(), data=form, headers=KEY)
    assert "verification_code" in answer.json()["error"]


def test_not_sent_on_demand_is_the_only_status(receiver: Receiver) -> None:
    webhook = delivery_options_from({"url": receiver.url}, lambda key: key)
    with MockApi(ApiOptions(port=0), webhook=webhook) as api:
        api.set_outcome("not-sent")
        httpx.post(api.v2_url(BUSINESS), json=v2_text(), headers=KEY)
        [arrival] = receiver.wait_for(1)
        api.wait_for_statuses(1)
    assert json.loads(arrival.body)["status"] == "not-sent"
    assert [s.status for s in api.statuses] == ["not-sent"]


def test_a_clients_test_connection_get_checks_the_credentials(api: MockApi) -> None:
    url = f"{api.base_url}/v2/{DEFAULT_SID}/whatsapp"
    assert httpx.get(url, headers=KEY).status_code == 200
    assert httpx.get(url, headers={"api-key": "wrong"}).status_code == 401


def test_hostile_bodies_get_an_answer_never_an_exception() -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    api = MockApi(ApiOptions(port=0))  # handle() needs no socket
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
            st.sampled_from(["to", "type", "text", "template", "interactive", "action",
                             "buttons", "components", "parameters", "body", "messaging_object",
                             "extra_info", "location", "reply", "sections", "rows", "name"]),
            inner, max_size=5), max_leaves=30)
    bodies = st.one_of(st.binary(max_size=300), json_values.map(
        lambda v: json.dumps({"messaging_object": v}).encode()), json_values.map(
        lambda v: json.dumps(v).encode()))

    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(body=bodies, version=st.sampled_from(["v1", "v2"]),
           content_type=st.sampled_from(["", "application/json", "multipart/form-data; "
                                         "boundary=x", "application/x-www-form-urlencoded"]))
    def check(body: bytes, version: str, content_type: str) -> None:
        target = (f"/v1/{DEFAULT_SID}/messages" if version == "v1"
                  else f"/v2/{DEFAULT_SID}/whatsapp/{BUSINESS}/messages")
        status, answer = api.handle("POST", target, {**KEY, "Content-Type": content_type},
                                    body)
        assert status in (202, 400), (status, answer)
        assert isinstance(answer, dict)

    check()
    deep = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    assert api.handle("POST", f"/v1/{DEFAULT_SID}/messages", KEY, deep)[0] == 400


def test_the_failure_report_lists_what_the_app_sent() -> None:
    from simulator.testing import Simulator

    simulator = Simulator(seed=1)
    with simulator.api() as api:
        httpx.post(api.v2_url(BUSINESS), json=v2_text(), headers=KEY)
    assert f"#1 v2 {BUSINESS} -> {SHOPPER}: text" in simulator.report()


def test_the_fast_copy_of_a_sent_message_is_dataclasses_replace() -> None:
    """sendapi._with skips replace()'s field walk; it must stay the same operation (a
    __post_init__ or an init=False field added to SentMessage would make it differ)."""
    import dataclasses

    from simulator.sendapi import SentMessage, _with

    assert not hasattr(SentMessage, "__post_init__")
    assert all(f.init for f in dataclasses.fields(SentMessage))
    message = SentMessage(1, "v2", 1.0, "918800000001", "919812345678", "text", "hi")
    changes = {"number": 7, "error": 132001, "wamid": "wamid.X", "ref": "order-1"}
    assert _with(message, **changes) == dataclasses.replace(message, **changes)
    assert message.number == 1  # the original is untouched
