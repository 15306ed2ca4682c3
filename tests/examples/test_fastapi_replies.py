"""End to end: tap -> app -> wasim's send API -> recorded reply -> statuses back to the app."""

import json
from collections.abc import Iterator

import fastapi_replies as handler
import pytest

from simulator.sendapi import MockApi
from simulator.testing import Simulator


@pytest.fixture
def kaleyra(wasim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[MockApi]:
    """The app gets taps in-process at /webhook and replies through a local send API."""
    for store in (handler.handled, handler.statuses, handler.taps):
        store.clear()
    monkeypatch.setitem(handler.settings, "version", "v2")
    monkeypatch.setitem(handler.settings, "dedupe", True)
    wasim.target(app=handler.app, path="/webhook")
    with wasim.api() as api:
        for name, value in api.env().items():  # KALEYRA_BASE_URL, KALEYRA_SID, ...
            monkeypatch.setenv(name, value)
        yield api


def test_a_tap_gets_one_reply_and_its_statuses_come_back_with_the_same_ids(
        wasim: Simulator, kaleyra: MockApi) -> None:
    tap = wasim.tap("Stop promotions", payload="STOP_PROMOTIONS")
    wasim.deliver(tap).assert_status(200)
    [reply] = kaleyra.assert_replied(tap.user.wa_id, type="text", contains="unsubscribed")
    assert reply.version == "v2" and reply.context_id == tap.message_id
    assert reply.business == tap.tap.business.display_phone_number
    kaleyra.wait_for_statuses(3)
    assert [s.status for s in kaleyra.statuses] == ["sent", "delivered", "read"]
    assert all(s.delivered for s in kaleyra.statuses)
    assert [d["status"] for d in handler.statuses] == ["sent", "delivered", "read"]
    for document in handler.statuses:
        assert document["message_id"] == reply.wamid
        assert document["meta_object"]["value"]["statuses"][0]["id"] == reply.wamid
        assert document["extra_info"]["ref"] == tap.message_id  # the app's own correlation


def test_a_tap_on_the_apps_own_template_carries_its_wamid_and_kaleyra_id(
        wasim: Simulator, kaleyra: MockApi) -> None:
    wasim.deliver(wasim.tap("Shop now", payload="SHOP_NOW")).assert_delivered()
    [catalogue] = kaleyra.assert_replied(template="catalogue")
    assert [b.payload for b in catalogue.buttons] == ["BUY", "LATER"]
    wasim.deliver(wasim.reply_tap(catalogue, "BUY")).assert_delivered()
    second = handler.taps[-1]
    assert second["meta_object"]["value"]["messages"][0]["context"]["id"] == catalogue.wamid
    assert second["extra_info"]["reply_to"] == catalogue.message_id
    assert second["meta_object"]["value"]["messages"][0]["button"]["payload"] == "BUY"
    kaleyra.assert_replied(catalogue.to, contains="Added")


def test_a_duplicate_tap_gets_no_second_reply(wasim: Simulator, kaleyra: MockApi) -> None:
    tap = wasim.tap("Remind me later", payload="REMIND_LATER")
    wasim.duplicate(tap).assert_delivered()
    kaleyra.assert_replied(tap.user.wa_id, count=1)


def test_a_handler_that_replies_twice_to_a_duplicate_is_caught(
        wasim: Simulator, kaleyra: MockApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(handler.settings, "dedupe", False)  # the bug under test
    tap = wasim.tap("Remind me later", payload="REMIND_LATER")
    wasim.duplicate(tap).assert_delivered()
    with pytest.raises(AssertionError, match=r"exactly 1 reply .* got 2"):
        kaleyra.assert_replied(tap.user.wa_id, count=1)


def test_a_v1_handler_replies_with_form_fields_and_its_reply_to_lines_up(
        wasim: Simulator, kaleyra: MockApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(handler.settings, "version", "v1")
    wasim.deliver(wasim.tap("Shop now", payload="SHOP_NOW")).assert_delivered()
    [catalogue] = kaleyra.assert_replied(template="catalogue")
    assert catalogue.version == "v1" and catalogue.params == ("shoes", "20%")
    assert catalogue.recipient_id == f"{catalogue.message_id}:0"
    wasim.deliver(wasim.reply_tap(catalogue, "LATER")).assert_delivered()
    assert handler.taps[-1]["extra_info"]["reply_to"] == catalogue.recipient_id
    kaleyra.assert_replied(catalogue.to, type="text", count=1)


def test_a_send_api_fault_reaches_the_app_as_kaleyra_answers_it(
        wasim: Simulator, kaleyra: MockApi) -> None:
    kaleyra.set_fault("WA500", count=1)
    delivery = wasim.deliver(wasim.tap("Stop promotions", payload="STOP_PROMOTIONS"))
    assert delivery.status == 500  # this example lets the send error surface
    assert kaleyra.sent == []


def test_in_meta_direct_mode_the_handler_accepts_its_replys_statuses_signed_in_metas_envelope(
        wasim: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "0123456789abcdef0123456789abcdef"
    for store in (handler.handled, handler.statuses, handler.taps):
        store.clear()
    monkeypatch.setitem(handler.settings, "app_secret", secret)  # the handler checks them
    wasim.target(app=handler.app, path="/webhook", envelope="meta", app_secret=secret)
    with wasim.api() as kaleyra:
        for name, value in kaleyra.env().items():
            monkeypatch.setenv(name, value)
        tap = wasim.tap("Stop promotions", payload="STOP_PROMOTIONS")
        wasim.deliver(tap).assert_status(200)
        [reply] = kaleyra.assert_replied(tap.user.wa_id, contains="unsubscribed")
        statuses = kaleyra.wait_for_statuses(3)
    # Accepted by a handler that refuses (403) anything not signed over the bytes it got.
    assert [s.result.attempts[-1].status for s in statuses if s.result] == [200, 200, 200]
    assert [d["object"] for d in handler.statuses] == ["whatsapp_business_account"] * 3
    values = [handler.value_of(d) for d in handler.statuses]
    assert [v["statuses"][0]["status"] for v in values] == ["sent", "delivered", "read"]
    assert {v["statuses"][0]["id"] for v in values} == {reply.wamid}
    assert [json.loads(s.body) for s in statuses] == handler.statuses
