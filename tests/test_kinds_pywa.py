"""A real framework parses each kind to its matching type with the same data: a FastAPI
webhook built on the current pywa, fed wasim's callbacks in Meta's envelope (as a Kaleyra
user's handler does)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI, Request, Response  # module level: FastAPI resolves annotations

from simulator.testing import Callback, Simulator

pytest.importorskip("pywa")


def pywa_app(phone_id: str) -> tuple[FastAPI, list[tuple[str, Any]]]:
    """A webhook with pywa's default parsing and one handler per update type."""
    from pywa import WhatsApp

    app, seen = FastAPI(), []
    wa = WhatsApp(server=None, phone_id=phone_id, token="unused", verify_token="unused",
                  validate_updates=False)

    @wa.on_message()
    def on_message(_: Any, message: Any) -> None:
        seen.append(("Message", message))

    @wa.on_callback_button()
    def on_button(_: Any, button: Any) -> None:
        seen.append(("CallbackButton", button))

    @wa.on_callback_selection()
    def on_selection(_: Any, selection: Any) -> None:
        seen.append(("CallbackSelection", selection))

    @wa.on_message_status()
    def on_status(_: Any, status: Any) -> None:
        seen.append(("MessageStatus", status))

    @app.post("/kaleyra")
    async def kaleyra(request: Request) -> Response:
        callback = json.loads(await request.body())
        envelope = {"object": "whatsapp_business_account",
                    "entry": [{"id": callback["extra_info"]["waba_id"],
                               "changes": [callback["meta_object"]]}]}
        text, status = wa.webhook_update_handler(json.dumps(envelope).encode())
        return Response(text, status_code=status)

    return app, seen


@pytest.fixture
def wasim() -> Simulator:
    return Simulator(8, wall_clock=False)


def deliver(wasim: Simulator, callback: Callback) -> tuple[str, Any]:
    app, seen = pywa_app(wasim.factory.business.phone_number_id)
    wasim.target(app=app, path="/kaleyra")
    wasim.deliver(callback).assert_status(200)
    assert len(seen) == 1, seen  # parsed, not dropped
    return seen[0]


def message_of(callback: Callback) -> dict[str, Any]:
    message: dict[str, Any] = callback.document["meta_object"]["value"]["messages"][0]
    return message


def test_a_text_is_a_message_of_type_text_with_its_body_and_sender(wasim: Simulator) -> None:
    callback = wasim.text("Where is my order? \U0001f69a", forwarded="forwarded")
    kind, message = deliver(wasim, callback)
    assert kind == "Message" and message.type == "text"
    assert message.text == "Where is my order? \U0001f69a" and message.forwarded
    assert message.id == callback.message_id
    assert message.from_user.wa_id == callback.user.wa_id
    assert message.from_user.bsuid == callback.user.user_id


def test_a_list_row_is_a_callback_selection_with_its_id_title_and_description(
        wasim: Simulator) -> None:
    callback = wasim.list_reply("2", "Sandals", description="Summer collection")
    kind, selection = deliver(wasim, callback)
    assert kind == "CallbackSelection"
    assert (selection.data, selection.title, selection.description) == \
        ("2", "Sandals", "Summer collection")
    assert selection.reply_to_message.id == callback.context_id


def test_a_reply_button_is_a_callback_button_with_its_id_and_title(wasim: Simulator) -> None:
    callback = wasim.button_reply("track", "Track order")
    kind, button = deliver(wasim, callback)
    assert kind == "CallbackButton" and (button.data, button.title) == ("track", "Track order")
    assert button.id == callback.message_id


@pytest.mark.parametrize("media", ["image", "video", "audio", "voice", "document", "sticker"])
def test_media_is_a_message_of_its_type_with_the_media_id_and_mime_type(
        wasim: Simulator, media: str) -> None:
    callback = wasim.media(media, caption="blue?" if media in ("image", "video") else None)
    wire = message_of(callback)["type"]
    kind, message = deliver(wasim, callback)
    assert kind == "Message" and message.type == wire
    got = getattr(message, wire)
    assert got.id == message_of(callback)[wire]["id"]
    assert got.mime_type == message_of(callback)[wire]["mime_type"]
    assert got.sha256 == message_of(callback)[wire]["sha256"]
    if media in ("image", "video"):
        assert message.caption == "blue?"


def test_a_location_is_a_message_with_its_coordinates_and_name(wasim: Simulator) -> None:
    callback = wasim.location(12.9467329, 77.646835, place_name="Forum Mall",
                              address="Hosur Road")
    kind, message = deliver(wasim, callback)
    assert kind == "Message" and message.type == "location"
    assert (message.location.latitude, message.location.longitude) == (12.9467329, 77.646835)
    assert (message.location.name, message.location.address) == ("Forum Mall", "Hosur Road")


def test_a_contact_card_is_a_message_with_its_name_and_phone(wasim: Simulator) -> None:
    callback = wasim.send("contacts")
    card = message_of(callback)["contacts"][0]
    kind, message = deliver(wasim, callback)
    assert kind == "Message" and message.type == "contacts"
    assert message.contacts[0].name.formatted_name == card["name"]["formatted_name"]
    assert message.contacts[0].phones[0].wa_id == card["phones"][0]["wa_id"]


@pytest.mark.parametrize("emoji", ["\U0001f44d", ""])
def test_a_reaction_and_its_removal_are_messages_naming_the_reacted_message(
        wasim: Simulator, emoji: str) -> None:
    user = wasim.user()
    tap = wasim.tap(user=user)
    callback = wasim.react(emoji, user=user)
    kind, message = deliver(wasim, callback)
    assert kind == "Message" and message.type == "reaction"
    assert message.reaction.message_id == tap.context_id
    assert (message.reaction.emoji or "") == emoji
    assert message.reaction.is_removed == (emoji == "")


def test_an_unsupported_message_is_a_message_with_metas_error(wasim: Simulator) -> None:
    kind, message = deliver(wasim, wasim.send("unsupported"))
    assert kind == "Message" and message.type == "unsupported"
    assert message.error.code == 131051


@pytest.mark.parametrize("status", ["sent", "delivered", "read", "failed"])
def test_a_status_is_a_message_status_of_the_brands_message(wasim: Simulator,
                                                            status: str) -> None:
    user = wasim.user()
    tap = wasim.tap(user=user)
    callback = wasim.status(status, error=131047 if status == "failed" else None, user=user)
    kind, got = deliver(wasim, callback)
    assert kind == "MessageStatus" and got.status == status
    assert got.id == tap.context_id == callback.document["message_id"]
    assert got.from_user.wa_id == user.wa_id and got.from_user.bsuid == user.user_id
    if status == "failed":
        assert got.error.code == 131047
    if status in ("sent", "delivered"):
        assert got.pricing.category == "marketing" and got.conversation is not None


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_kaleyras_not_sent_reaches_pywa_as_an_unknown_status_with_its_error(
        wasim: Simulator) -> None:
    kind, got = deliver(wasim, wasim.status("not-sent"))
    assert kind == "MessageStatus" and got.status.name == "UNKNOWN"  # it knows only Meta's
    assert got.error is not None


def test_current_pywa_drops_a_status_without_contacts_yet_answers_200(
        wasim: Simulator) -> None:
    # The shape variance of wire-format section 9: pywa 4.5 reads value["contacts"][0] for
    # every status, so a status without it raises inside pywa and is silently lost.
    app, seen = pywa_app(wasim.factory.business.phone_number_id)
    wasim.target(app=app, path="/kaleyra")
    wasim.deliver(wasim.status("read", contacts=False)).assert_status(200)
    assert seen == []


# --- a scenario run: pywa handles the statuses of its own replies ----------------------------

RUN_SCENARIO = """\
name: pywa-replies
seed: 5
template:
  buttons: [{text: Track order, payload: TRACK}]
cast: {countries: {IN: 2, US: 1}}
steps:
  - name: tap
    expect:
      reply: {within: 10s, type: text}
"""
PHONE_ID = "104605889412733"


class _PywaServer:
    """pywa 4.5 (default filters: its own phone_id) behind a real HTTP server on port 0: it
    answers each button tap through Kaleyra's V2 send API and keeps the statuses it handles."""

    def __init__(self, phone_id: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import httpx
        from pywa import WhatsApp

        wa = WhatsApp(server=None, phone_id=phone_id, token="unused", verify_token="unused",
                      validate_updates=False)
        self.replied: list[str] = []  # the Kaleyra ids of its replies
        self.statuses: list[Any] = []

        @wa.on_callback_button()
        def on_button(_: Any, button: Any) -> None:
            import os

            base, sid = os.environ["KALEYRA_BASE_URL"], os.environ["KALEYRA_SID"]
            business = button.metadata.display_phone_number
            answer = httpx.post(
                f"{base}/v2/{sid}/whatsapp/{business}/messages",
                headers={"api-key": os.environ["KALEYRA_API_KEY"]},
                json={"messaging_object": {"messaging_product": "whatsapp",
                                           "to": button.from_user.wa_id, "type": "text",
                                           "text": {"body": "On its way."}}})
            self.replied.append(answer.json()["data"]["message_id"])

        @wa.on_message_status()
        def on_status(_: Any, status: Any) -> None:
            self.statuses.append(status)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                callback = json.loads(body)
                envelope = {"object": "whatsapp_business_account",
                            "entry": [{"id": callback["extra_info"]["waba_id"],
                                       "changes": [callback["meta_object"]]}]}
                text, status = wa.webhook_update_handler(json.dumps(envelope).encode())
                self.send_response(status)
                self.send_header("Content-Length", str(len(text.encode())))
                self.end_headers()
                self.wfile.write(text.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/kaleyra"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _PywaServer:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_pywa_handles_the_statuses_of_its_own_replies_in_a_run_with_its_phone_number_id(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from simulator.cli import cli

    scenario = tmp_path / "pywa.yaml"
    scenario.write_text(RUN_SCENARIO)
    for name in ("KALEYRA_BASE_URL", "KALEYRA_SID", "KALEYRA_API_KEY"):
        monkeypatch.delenv(name, raising=False)  # the run sets them; restored after
    with _PywaServer(PHONE_ID) as app:
        result = CliRunner().invoke(cli, [
            "run", str(scenario), "--url", app.url, "--api-port", "0", "--fast",
            "--no-history", "--phone-number-id", PHONE_ID])
    assert result.exit_code == 0, result.output
    assert len(app.replied) == 3
    # Every status of every reply passed pywa's phone-number filter (0 of 3 before).
    handled = {(s.id, s.status.value) for s in app.statuses}
    assert len(handled) == 9, handled
    assert {s.status.value for s in app.statuses} == {"sent", "delivered", "read"}
    assert all(s.metadata.phone_number_id == PHONE_ID for s in app.statuses)
