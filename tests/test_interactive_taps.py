"""A tap on the app's interactive message is what Meta sends: `type: interactive` with
`button_reply {id, title}` for a reply button and `list_reply` for a list row, not a template
quick reply (`type: button`); the same from `Simulator.reply_tap`, scenario `tap_reply` steps
and the TUI's phone, and pywa reads it as a callback button or selection."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from simulator.sendapi import MockApi, SentMessage, reply_kind
from simulator.testing import Simulator
from simulator.validate import validate_callback

SECRET = "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
BUSINESS = "918068177179"
SHOPPER = "919812345678"
BUTTONS = {"type": "button", "body": {"text": "Track your order?"},
           "action": {"buttons": [{"type": "reply", "reply": {"id": "TRACK", "title": "Track"}},
                                  {"type": "reply", "reply": {"id": "AGENT", "title": "Agent"}}]}}
LIST = {"type": "list", "body": {"text": "What are you shopping for?"},
        "action": {"button": "Menu", "sections": [{"title": "Shoes", "rows": [
            {"id": "SNEAKERS", "title": "Sneakers", "description": "Running and casual"},
            {"id": "BOOTS", "title": "Boots"}]}]}}


def sent_interactive(api: MockApi, interactive: dict[str, Any], to: str = SHOPPER
                     ) -> SentMessage:
    body = {"messaging_object": {"messaging_product": "whatsapp", "to": to,
                                 "type": "interactive", "interactive": interactive}}
    answer = httpx.post(api.v2_url(BUSINESS), json=body,
                        headers={"api-key": api.options.api_key}, timeout=10)
    assert answer.status_code == 202, answer.text
    return api.sent[-1]


def message_of(body: bytes) -> dict[str, Any]:
    document = json.loads(body)
    value = document["meta_object"]["value"] if "meta_object" in document else \
        document["entry"][0]["changes"][0]["value"]
    return value["messages"][0]  # type: ignore[no-any-return]


def test_a_reply_button_tap_is_interactive_button_reply_naming_the_message() -> None:
    wasim = Simulator(4)
    with wasim.api(statuses=False) as api:
        message = sent_interactive(api, BUTTONS)
        tap = wasim.reply_tap(message, "Agent")
    assert reply_kind(message) == "button_reply"
    sent = message_of(tap.body)
    assert sent["type"] == "interactive" and "button" not in sent
    assert sent["interactive"] == {"type": "button_reply",
                                   "button_reply": {"id": "AGENT", "title": "Agent"}}
    assert sent["context"]["id"] == message.wamid
    assert json.loads(tap.body)["extra_info"]["reply_to"] == message.recipient_id
    assert validate_callback(json.loads(tap.body)) == []


def test_a_list_row_is_interactive_list_reply_with_the_rows_own_description() -> None:
    wasim = Simulator(5)
    with wasim.api(statuses=False) as api:
        message = sent_interactive(api, LIST)
        with_description = message_of(wasim.reply_tap(message, "SNEAKERS").body)
        without = message_of(wasim.reply_tap(message, "Boots").body)
    assert with_description["interactive"] == {"type": "list_reply", "list_reply": {
        "id": "SNEAKERS", "title": "Sneakers", "description": "Running and casual"}}
    assert without["interactive"] == {"type": "list_reply",
                                      "list_reply": {"id": "BOOTS", "title": "Boots"}}


def test_pywa_reads_the_taps_as_a_callback_button_and_a_callback_selection() -> None:
    pytest.importorskip("pywa")
    from fastapi import FastAPI
    from pywa import WhatsApp

    wasim = Simulator(6, envelope="meta")
    buttons: list[str] = []
    selections: list[str] = []
    app = FastAPI()
    wa = WhatsApp(server=app, webhook_endpoint="/webhook",
                  phone_id=wasim.factory.business.phone_number_id, token="unused",
                  verify_token="t0ken", app_secret=SECRET, validate_updates=True)
    wa.on_callback_button()(lambda _, button: buttons.append(button.data))
    wa.on_callback_selection()(lambda _, selection: selections.append(selection.data))
    with wasim.api(statuses=False) as api:
        business = wasim.factory.business.display_phone_number
        for interactive, label in ((BUTTONS, "Track"), (LIST, "Sneakers")):
            body = {"messaging_object": {"messaging_product": "whatsapp", "to": SHOPPER,
                                         "type": "interactive", "interactive": interactive}}
            httpx.post(api.v2_url(business), json=body, headers={"api-key": api.options.api_key})
            wasim.target(app=app, path="/webhook", app_secret=SECRET)
            wasim.deliver(wasim.reply_tap(api.sent[-1], label)).assert_status(200)
    deadline = time.monotonic() + 10
    while (not buttons or not selections) and time.monotonic() < deadline:
        time.sleep(0.01)  # pywa handles the update after answering
    assert buttons == ["TRACK"] and selections == ["SNEAKERS"]


# --- a scenario's tap_reply on the app's interactive buttons -----------------------------------

handled: list[dict[str, Any]] = []


async def webhook(request: Request) -> JSONResponse:
    """Answers a template tap with interactive reply buttons, and only an interactive
    button_reply TRACK (Meta's shape for a reply button) with "Tracking your order"."""
    value = (await request.json())["meta_object"]["value"]
    if "statuses" in value:
        return JSONResponse({})
    message = value["messages"][0]
    handled.append(message)
    if message["type"] == "button":
        answer: dict[str, Any] = {"type": "interactive", "interactive": BUTTONS}
    elif message["type"] == "interactive" and \
            message["interactive"].get("button_reply", {}).get("id") == "TRACK":
        answer = {"type": "text", "text": {"body": "Tracking your order"}}
    else:
        return JSONResponse({"status": "not understood"})
    base, sid, key = (os.environ["KALEYRA_BASE_URL"], os.environ["KALEYRA_SID"],
                      os.environ["KALEYRA_API_KEY"])
    async with httpx.AsyncClient(timeout=10) as client:
        sent = await client.post(
            f"{base}/v2/{sid}/whatsapp/{value['metadata']['display_phone_number']}/messages",
            headers={"api-key": key},
            json={"messaging_object": {"messaging_product": "whatsapp", "to": message["from"],
                                       **answer}})
    sent.raise_for_status()
    return JSONResponse({"status": "answered"})


TRACKING = """
name: tracking
seed: 8
template:
  buttons: [{text: Where is my order, payload: WHERE}]
cast: {countries: {IN: 2}}
steps:
  - name: ask
    tap: Where is my order
    expect: {reply: {type: interactive, count: 1, within: 2s}}
  - name: track
    tap_reply: {button: Track, within: 2s}
    expect: {reply: {contains: tracking, count: 1, within: 2s}}
expect:
  status: [200]
"""


def test_a_tap_reply_step_on_interactive_buttons_reaches_a_handler_reading_button_reply(
        monkeypatch: pytest.MonkeyPatch) -> None:
    handled.clear()
    wasim = Simulator(8)
    wasim.target(app=Starlette(routes=[Route("/webhook", webhook, methods=["POST"])]),
                 path="/webhook")
    with wasim.api(statuses=False) as api:
        for name, value in api.env().items():
            monkeypatch.setenv(name, value)
        run = wasim.run_scenario(TRACKING)
    run.assert_ok()
    taps = [m for m in handled if m["type"] == "interactive"]
    assert len(taps) == 2 and all(m["interactive"]["button_reply"] == {
        "id": "TRACK", "title": "Track"} for m in taps)
