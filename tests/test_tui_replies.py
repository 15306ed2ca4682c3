"""The phone's other half, driven with Pilot: the composer (every kind the user sends), the
template's ticks, and the app's own replies through the local send API, tapped on the phone."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import OptionList, Static

from simulator.delivery import delivery_options_from
from simulator.demo_bot import TEMPLATES, DemoBot
from simulator.kinds import KindArgs, kind_body
from simulator.receiver import Receiver, ReceiverOptions
from simulator.scenarios import parse_scenario
from simulator.sendapi import MockApi, api_options
from simulator.tui import commands
from simulator.tui.app import WasimApp, make_app
from simulator.tui.feed import ApiFeed, ArrivalFeed
from simulator.tui.screens.compose import ACTIONS, RowScreen, SendScreen
from simulator.tui.session import PhoneSession, default_scenario
from simulator.tui.widgets.phone import AppButton, AppMessage, Composer, QuickReply, Reply
from simulator.tui.widgets.run_panel import RunPanel
from simulator.validate import describe_kind, validate_callback
from tests.apps import replying_app

pytestmark = pytest.mark.anyio

SIZE = (100, 32)
NOW = 1_780_000_000.0


def fixed_clock() -> float:
    """The UI's clock in tests: always the same instant."""
    return NOW


async def settle(app: WasimApp, pilot: Pilot[int]) -> None:
    """Let every worker finish and the screen catch up."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def until(app: WasimApp, pilot: Pilot[int], condition: Callable[[], object],
                what: str) -> None:
    """Wait (a bounded number of turns, not a time) until `condition()` holds."""
    for _ in range(1000):
        if condition():
            return
        await app.workers.wait_for_complete()
        await pilot.pause(0.01)
    raise AssertionError(f"never happened: {what}")


def documents(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(arrival.body) for arrival in receiver.arrivals]


async def choose(app: WasimApp, pilot: Pilot[int], action: str) -> None:
    """Open the send menu (m) and pick `action` with the arrows and enter."""
    await pilot.press("m")
    await settle(app, pilot)
    assert isinstance(app.screen, SendScreen)
    index = [name for name, _ in ACTIONS].index(action)
    app.screen.query_one(OptionList).highlighted = index
    await pilot.press("enter")
    await settle(app, pilot)


# --- the composer -----------------------------------------------------------------------------


async def test_typing_in_the_box_sends_a_valid_text_callback_with_those_words(
        receiver: Receiver) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("c")
        assert isinstance(app.focused, Composer)
        await pilot.press(*"hi there 1", "enter")  # a digit in the box is typed, not fired
        await settle(app, pilot)
        [arrival] = receiver.wait_for(1)
        assert not arrival.problems
        document = json.loads(arrival.body)
        assert document["meta_object"]["value"]["messages"][0]["text"] == {"body": "hi there 1"}
        reply = app.query_one(Reply)
        assert reply.label == "hi there 1" and "✓✓ 200" in str(reply.render())
        assert app.query_one(Composer).value == ""
        await pilot.press("escape")
        assert not isinstance(app.focused, Composer)


@pytest.mark.parametrize(("action", "typed", "kind", "check"), [
    ("react:👍", "", "reaction", lambda m: m["reaction"]["emoji"] == "👍"),
    ("unreact", "", "reaction", lambda m: m["reaction"]["emoji"] == ""),
    ("location", "12.5,77.25", "location",
     lambda m: (m["location"]["latitude"], m["location"]["longitude"]) == (12.5, 77.25)),
    ("location", "", "location", lambda m: "latitude" in m["location"]),
    ("image", "in blue?", "image", lambda m: m["image"]["caption"] == "in blue?"),
    ("list", "", "interactive", lambda m: m["interactive"]["type"] == "list_reply"),
], ids=["react", "unreact", "location-typed", "location-drawn", "image", "list-drawn"])
async def test_each_menu_action_delivers_a_valid_callback_of_its_kind(
        receiver: Receiver, action: str, typed: str, kind: str,
        check: Callable[[dict[str, Any]], bool]) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.query_one(Composer).value = typed
        await choose(app, pilot, action)
        [arrival] = receiver.wait_for(1)
        assert not arrival.problems, arrival.problems
        document = json.loads(arrival.body)
        message = document["meta_object"]["value"]["messages"][0]
        assert message["type"] == kind and check(message)
        assert validate_callback(document) == []
        # Sent in the user's chat under the template: Kaleyra's reply_to names it.
        sent = app.session.current_sent if app.session else None
        assert sent is not None and document["extra_info"]["reply_to"] == sent.reply_to
        assert app.sends[app.log_table.selected_key or "d1"].attempts[-1].status == 200


async def test_a_reaction_shows_on_the_template_and_un_reacting_clears_it(
        receiver: Receiver) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await choose(app, pilot, "react:🔥")
        assert "🔥" in str(app.query_one("#bubble-time", Static).render())
        await choose(app, pilot, "unreact")
        assert "🔥" not in str(app.query_one("#bubble-time", Static).render())
        assert [m["reaction"]["emoji"] for m in (
            d["meta_object"]["value"]["messages"][0] for d in documents(receiver))] == ["🔥", ""]


async def test_a_text_typed_without_a_target_stays_in_the_box() -> None:
    app = make_app(seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("c", *"hello", "enter")
        await settle(app, pilot)
        assert app.query_one(Composer).value == "hello" and not app.query(Reply)
        assert any("No target" in n.message for n in app._notifications)


def test_the_composer_sends_the_bytes_the_kinds_builder_makes_from_the_same_facts() -> None:
    session = PhoneSession(default_scenario(), 7, fixed_clock)
    for kind, args in [("text", KindArgs(text="hello")), ("reaction", KindArgs(emoji="👍")),
                       ("location", KindArgs(lat=1.5, lng=2.5)), ("image", KindArgs()),
                       ("list_reply", KindArgs()), ("status", KindArgs(status="read"))]:
        stream = session.factory.streams[f"kind:{kind}"]
        state = stream.getstate()
        tap, event = session.compose(kind, args)
        stream.setstate(state)
        assert event.body == kind_body(kind, tap, args, stream), kind
        stream.setstate(state)
        kind_body(kind, tap, args, stream)  # leave the stream where compose left it


async def test_the_palette_offers_every_composer_action_and_the_help_explains_them(
        receiver: Receiver) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        sends = [title for title, c in commands.items() if "send menu (m)" in (c.help or "")]
        assert len(sends) == len(ACTIONS) and "Send: Remove my reaction" in sends
        commands["Send: 📍 Send a location (type lat,lng first to choose it)"].callback()
        await settle(app, pilot)
        [arrival] = receiver.wait_for(1)
        assert "[location]" in arrival.summary and not arrival.problems
        shown = " ".join(what for _, rows in app.help_sections() for _, what in rows)
        assert "un-react" in shown and "list row" in shown and "statuses" in shown


# --- ticks ------------------------------------------------------------------------------------


async def test_the_templates_ticks_follow_the_statuses_sent(receiver: Receiver) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)

        def ticks() -> str:
            return str(app.query_one("#bubble-time", Static).render())

        assert "✓" not in ticks()
        await choose(app, pilot, "status:sent")
        assert "✓ sent" in ticks()
        await choose(app, pilot, "status:delivered")
        assert "✓✓ delivered" in ticks()
        await choose(app, pilot, "status:read")
        assert "✓✓ read" in ticks()
        await choose(app, pilot, "status:failed")
        assert "✗ failed" in ticks()
        await choose(app, pilot, "status:not-sent")
        assert "⊘ not sent" in ticks()
        arrived = receiver.wait_for(5)
        assert [json.loads(a.body)["status"] for a in arrived] == [
            "sent", "delivered", "read", "failed", "not-sent"]
        assert not any(a.problems for a in arrived)
        wamid = app.session.current_sent.wamid if app.session else ""
        assert {json.loads(a.body)["message_id"] for a in arrived} == {wamid}
        # Another user's copy of the template has had no status yet.
        await pilot.press("n")
        await settle(app, pilot)
        assert "✓" not in ticks() and "⊘" not in ticks()


async def test_a_status_sequence_arrives_in_order(receiver: Receiver) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await choose(app, pilot, "statuses")
        arrived = receiver.wait_for(3)
        assert [json.loads(a.body)["status"] for a in arrived] == ["sent", "delivered", "read"]
        assert "✓✓ read" in str(app.query_one("#bubble-time", Static).render())


# --- the app's replies through the local send API ---------------------------------------------


@pytest.fixture
def replying(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[WasimApp, MockApi]]:
    """The TUI aimed at an in-process app that replies through a local send API (V2)."""
    replying_app.received.clear()
    feed = ApiFeed()
    app = make_app(app="asgi:tests.apps.replying_app:app", path="/webhook", seed=7,
                   history=None, clock=fixed_clock, api=feed)
    with MockApi(api_options(port=0), webhook=app.delivery, on_sent=feed,
                 on_status=feed) as api:
        for name, value in api.env().items():
            monkeypatch.setenv(name, value)
        yield app, api


def taps_received() -> list[dict[str, Any]]:
    return [d for d in replying_app.received if "messages" in d["meta_object"]["value"]]


async def test_the_apps_reply_shows_on_the_phone_and_its_quick_reply_reaches_the_app(
        replying: tuple[WasimApp, MockApi]) -> None:
    app, api = replying
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1")
        await until(app, pilot, lambda: app.query(AppMessage), "the reply bubble")
        [catalogue] = api.sent
        bubble = app.query_one(AppMessage)
        assert bubble.message == catalogue and bubble.display
        assert "catalogue" in str(bubble.query_one(".app-body", Static).render())
        # Numbered after the template's three quick replies: key 4 taps BUY.
        await until(app, pilot, lambda: bubble.query(AppButton).first().key == 4, "the keys")
        assert [str(b.label) for b in bubble.query(AppButton)] == ["4  ↩ BUY", "5  ↩ LATER"]
        await pilot.press("4")
        await until(app, pilot, lambda: len(taps_received()) == 2, "the second tap")
        await until(app, pilot, lambda: len(api.sent) == 2, "the answer to BUY")
        tap = taps_received()[1]
        message = tap["meta_object"]["value"]["messages"][0]
        assert message["button"]["payload"] == "BUY"
        assert message["context"]["id"] == catalogue.wamid
        assert tap["extra_info"]["reply_to"] == catalogue.message_id
        assert validate_callback(tap) == []
        assert api.sent[1].context_id == message["id"] and api.sent[1].text == "Added to your cart."
        # The same user, the same chat: the second answer is there too.
        assert len(app.query(AppMessage)) == 2 and all(b.display for b in app.query(AppMessage))


async def test_the_send_apis_statuses_become_ticks_on_the_apps_message(
        replying: tuple[WasimApp, MockApi]) -> None:
    app, api = replying
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1")
        await until(app, pilot, lambda: app.query(AppMessage), "the reply bubble")
        bubble = app.query_one(AppMessage)
        await until(app, pilot, lambda: bubble.status == "read", "the read status")
        assert "✓✓ read" in str(bubble.query_one(".app-meta", Static).render())
        assert [s.status for s in api.statuses] == ["sent", "delivered", "read"]
        vias = [app.sends[k].via for k in app.sends]
        assert vias.count("api") == 3  # the statuses the API sent are in the log


async def test_an_apps_list_is_picked_and_its_reply_buttons_tapped_with_their_context(
        replying: tuple[WasimApp, MockApi]) -> None:
    app, api = replying
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("c", *"menu", "enter", "escape")  # esc: the box lets go of keys
        await until(app, pilot, lambda: app.query(AppMessage), "the list")
        [listing] = api.sent
        await choose(app, pilot, "list")
        assert isinstance(app.screen, RowScreen)
        await pilot.press("down", "enter")  # the second row: Boots
        await until(app, pilot, lambda: len(taps_received()) == 2, "the row picked")
        picked = taps_received()[1]
        message = picked["meta_object"]["value"]["messages"][0]
        assert message["interactive"] == {"type": "list_reply", "list_reply": {
            "id": "BOOTS", "title": "Boots"}}
        assert message["context"]["id"] == listing.wamid
        assert picked["extra_info"]["reply_to"] == listing.message_id
        assert describe_kind(picked) and validate_callback(picked) == []

        app.query_one(Composer).value = "buttons"
        app.query_one(Composer).focus()
        await pilot.press("enter")
        await until(app, pilot, lambda: len(app.query(AppMessage)) == 2, "the buttons")
        buttons = api.sent[1]
        assert await pilot.click(f"#app-message-{buttons.number} AppButton")
        await until(app, pilot, lambda: len(taps_received()) == 4, "the button tapped")
        tapped = taps_received()[3]["meta_object"]["value"]["messages"][0]
        assert tapped["interactive"]["button_reply"] == {"id": "TRACK", "title": "Track"}
        assert tapped["context"]["id"] == buttons.wamid


async def test_reacting_goes_to_the_apps_last_message(
        replying: tuple[WasimApp, MockApi]) -> None:
    app, api = replying
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1")
        await until(app, pilot, lambda: app.query(AppMessage), "the reply bubble")
        await choose(app, pilot, "react:❤️")
        await until(app, pilot, lambda: len(taps_received()) == 2, "the reaction")
        reaction = taps_received()[1]["meta_object"]["value"]["messages"][0]["reaction"]
        assert reaction == {"message_id": api.sent[0].wamid, "emoji": "❤️"}
        assert "❤️" in str(app.query_one(AppMessage).query_one(".app-meta", Static).render())


async def test_a_reply_meta_fails_is_marked_failed_with_its_error_and_cannot_be_tapped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The account has no `catalogue` template: Kaleyra accepts the app's send (202), then
    # Meta fails it with 132001, so the shopper's phone never shows it.
    replying_app.received.clear()
    feed = ApiFeed()
    app = make_app(app="asgi:tests.apps.replying_app:app", path="/webhook", seed=7,
                   history=None, clock=fixed_clock, api=feed)
    with MockApi(api_options(port=0, templates=("summer_sale",)), webhook=app.delivery,
                 on_sent=feed, on_status=feed) as api:
        for name, value in api.env().items():
            monkeypatch.setenv(name, value)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await pilot.press("1")
            await until(app, pilot, lambda: app.query(AppMessage), "the failed reply")
            [catalogue] = api.sent
            assert catalogue.error == 132001 and catalogue.buttons  # it had BUY and LATER
            bubble = app.query_one(AppMessage)
            assert bubble.display and bubble.has_class("-failed")
            failure = str(bubble.query_one(".app-failure", Static).render())
            assert "✗ fails 132001 Template name does not exist" in failure
            assert "never sees it" in failure
            assert list(bubble.query(AppButton)) == []  # nothing to tap
            await until(app, pilot, lambda: bubble.status == "failed", "the failed status")
            assert "✗ failed" in str(bubble.query_one(".app-meta", Static).render())
            # Nor does a reaction go to it: it is the template the shopper reacts to.
            await choose(app, pilot, "react:❤️")
            await until(app, pilot, lambda: len(taps_received()) == 2, "the reaction")
            reaction = taps_received()[1]["meta_object"]["value"]["messages"][0]["reaction"]
            assert reaction["message_id"] != catalogue.wamid


async def test_a_reply_that_reaches_the_phone_is_not_marked_failed(
        replying: tuple[WasimApp, MockApi]) -> None:
    app, _ = replying
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1")
        await until(app, pilot, lambda: app.query(AppMessage), "the reply bubble")
        bubble = app.query_one(AppMessage)
        assert not bubble.has_class("-failed") and not bubble.query(".app-failure")
        assert len(bubble.query(AppButton)) == 2


# --- the commands: where an in-process app finds the API ---------------------------------------


def test_tui_with_an_api_port_gives_an_in_process_app_the_apis_address(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    seen: dict[str, Any] = {}

    def run(app: WasimApp) -> int:
        seen.update({k: os.environ.get(k) for k in ("KALEYRA_BASE_URL", "KALEYRA_SID",
                                                     "KALEYRA_API_KEY")})
        seen["feed"] = app.settings.api
        seen["mock"] = app.settings.api.mock if app.settings.api else None
        return 0

    monkeypatch.setattr(commands, "_run_app", run)
    monkeypatch.setattr(commands, "check_can_draw", lambda command: None)
    monkeypatch.delenv("KALEYRA_BASE_URL", raising=False)
    result = CliRunner().invoke(commands.tui, ["--app", "tests.apps.replying_app:app",
                                               "--path", "/webhook", "--no-history",
                                               "--api-port", "0"], standalone_mode=False)
    assert result.exception is None, result.output
    assert seen["KALEYRA_BASE_URL"].startswith("http://127.0.0.1:")
    assert seen["KALEYRA_SID"] and seen["KALEYRA_API_KEY"]
    feed = seen["feed"]
    assert isinstance(feed, ApiFeed) and feed.base_url == seen["KALEYRA_BASE_URL"]
    assert (feed.sid, feed.api_key) == (seen["KALEYRA_SID"], seen["KALEYRA_API_KEY"])
    # The running API itself, for scenario runs' reply checks; gone once it stops.
    assert isinstance(seen["mock"], MockApi) and seen["mock"].base_url == feed.base_url
    assert feed.mock is None
    assert f"send API on {seen['KALEYRA_BASE_URL']}" in result.stderr
    assert "KALEYRA_BASE_URL" not in os.environ  # put back as it was


def test_demo_with_an_api_port_gives_the_apis_address_to_the_app(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def run(app: WasimApp) -> int:
        seen["url"] = os.environ.get("KALEYRA_BASE_URL")
        seen["feed"] = app.settings.api
        seen["mock"] = app.settings.api.mock if app.settings.api else None
        return 0

    monkeypatch.setattr(commands, "_run_app", run)
    monkeypatch.setattr(commands, "check_can_draw", lambda command: None)
    result = CliRunner().invoke(commands.demo, ["--no-history", "--api-port", "0"],
                                standalone_mode=False)
    assert result.exception is None, result.output
    assert seen["url"] and seen["feed"].base_url == seen["url"]
    assert isinstance(seen["mock"], MockApi) and seen["mock"].base_url == seen["url"]


def test_a_list_row_reply_echoes_the_rows_description_only_when_the_app_gave_one() -> None:
    from dataclasses import replace

    from simulator.models import Button
    from simulator.sendapi import v2_message
    from simulator.wamid import encode_wamid

    session = PhoneSession(default_scenario(), 7, fixed_clock)
    user = session.current_user
    message = replace(v2_message({"to": user.wa_id, "type": "interactive",
                                  "interactive": replying_app.LIST}),
                      number=1, business=session.business.display_phone_number,
                      message_id="5d6a2f3e-8d1c-4c47-9a57-0c1f2e3d4b5a",
                      recipient_id="5d6a2f3e-8d1c-4c47-9a57-0c1f2e3d4b5a",
                      wamid=encode_wamid(user.wa_id, True, "0123456789ABCDEF01"))
    rows = {}
    for button in message.buttons:
        tap, event = session.reply(message, button)
        document = json.loads(event.body)
        reply = document["meta_object"]["value"]["messages"][0]
        rows[button.payload] = reply["interactive"]["list_reply"]
        assert reply["context"]["id"] == message.wamid and tap.user == user
        assert validate_callback(document) == []
    assert rows == {"SNEAKERS": {"id": "SNEAKERS", "title": "Sneakers",
                                 "description": "Running and casual"},
                    "BOOTS": {"id": "BOOTS", "title": "Boots"}}
    assert isinstance(message.buttons[0], Button)


def app_text(number: int, to: str, text: str, business: str) -> Any:
    """A text the app sent through the send API, as the API records it."""
    from simulator.sendapi import SentMessage

    return SentMessage(number, "v2", NOW, business, to, "text", text,
                       message_id="5d6a2f3e-8d1c-4c47-9a57-0c1f2e3d4b5a",
                       recipient_id="5d6a2f3e-8d1c-4c47-9a57-0c1f2e3d4b5a",
                       wamid=f"wamid.test{number}")


async def test_the_phone_says_where_the_send_api_is() -> None:
    feed = ApiFeed()
    feed.base_url, feed.sid, feed.api_key = "http://127.0.0.1:8700", "HXIN1", "Akey"
    app = make_app(seed=7, history=None, clock=fixed_clock, api=feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert str(app.phone.border_subtitle) == "send API 127.0.0.1:8700"
        assert any("http://127.0.0.1:8700 (SID HXIN1, api-key Akey)" in n.message
                   for n in app._notifications)


async def test_a_reply_to_another_user_waits_in_their_chat_and_is_announced() -> None:
    feed = ApiFeed()
    app = make_app(seed=7, history=None, clock=fixed_clock, api=feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.session is not None
        other = next(u for u in app.session.users if u != app.session.current_user)
        feed(app_text(1, other.wa_id, "Your order shipped", app.session.business.
                      display_phone_number))
        await until(app, pilot, lambda: app.query(AppMessage), "the bubble")
        bubble = app.query_one(AppMessage)
        assert not bubble.display
        assert any(other.name in n.message for n in app._notifications)
        app.session.select(other)
        app._show_user()
        assert bubble.display


async def test_hostile_text_from_the_app_is_escaped_and_cut_on_the_phone() -> None:
    feed = ApiFeed()
    app = make_app(seed=7, history=None, clock=fixed_clock, api=feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.session is not None
        feed(app_text(1, app.session.current_user.wa_id, "\x1b[2J" + "x" * 5000,
                      app.session.business.display_phone_number))
        await until(app, pilot, lambda: app.query(AppMessage), "the bubble")
        body = str(app.query_one(AppMessage).query_one(".app-body", Static).render())
        assert "\x1b" not in body and "\\x1b[2J" in body
        assert body.endswith("…") and len(body) < 1100  # 1000 characters, escapes widened


def test_an_api_port_in_use_is_a_one_line_error_naming_the_flag(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setattr(commands, "check_can_draw", lambda command: None)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = CliRunner().invoke(commands.tui, ["--no-history", "--api-port", port],
                                    standalone_mode=False)
    error = result.exception
    assert isinstance(error, commands.WasimError)
    assert error.one_line().startswith("--api-port: cannot listen") and "--api-port 0" in (
        error.hint or "")


# --- scenarios with reply expectations, run in the UI -----------------------------------------

REPLY_SCENARIO = """
name: replies in the ui
seed: 5
template:
  buttons:
    - {text: Stop promotions, payload: STOP_PROMOTIONS}
cast: {countries: {IN: 2}}
steps:
  - name: opt out
    tap: Stop promotions
    expect:
      reply: {type: text, contains: %s, count: 1, within: %s}
"""


@contextlib.contextmanager
def demo_like(text: str) -> Iterator[tuple[WasimApp, DemoBot]]:
    """`wasim demo`'s setup: the built-in receiver with the demo bot behind it, answering
    through the send API the UI shows (started as the demo starts it)."""
    scenario = parse_scenario(text, "replies.yaml")
    arrivals, api_feed = ArrivalFeed(), ApiFeed()
    bot = DemoBot(then=arrivals)
    with Receiver(ReceiverOptions(port=0), on_arrival=bot) as receiver, \
            commands.send_api(0, delivery_options_from({"url": receiver.url}, str), api_feed,
                              "wasim demo", templates=(*scenario.template_names, *TEMPLATES),
                              seed=scenario.seed) as api:
        bot.api = api
        try:
            yield make_app(scenario=scenario, url=receiver.url, seed=5, history=None,
                           clock=fixed_clock, receiver=receiver, arrivals=arrivals,
                           api=api_feed), bot
        finally:
            bot.close()


async def run_in_the_ui(app: WasimApp, pilot: Pilot[int]) -> str:
    """Start the scenario (s, as fast as allowed), wait for the panel to say it ended, and
    return the panel's text."""
    await settle(app, pilot)
    await pilot.press("s", "down", "down", "enter")
    panel = app.query_one(RunPanel)
    await until(app, pilot, lambda: panel.has_class("-done"), "the run to finish")
    return "\n".join(str(panel.query_one(f"#run-{part}", Static).render())
                     for part in ("title", "stats"))


async def test_a_scenario_expecting_the_bots_reply_runs_in_the_ui_and_holds() -> None:
    with demo_like(REPLY_SCENARIO % ("unsubscribed", "5s")) as (app, bot):
        async with app.run_test(size=SIZE) as pilot:
            shown = await run_in_the_ui(app, pilot)
            assert "✓ all held" in shown and "2 delivered" in shown, shown
            assert "expectations: all held" in shown and "broken" not in shown, shown
            # The replies the expectation read are the ones the phone shows.
            assert len(bot.replies) == 2
            await until(app, pilot, lambda: len(app.query(AppMessage)) >= 1, "a reply bubble")
            assert app.query(AppMessage).first().message in bot.replies


async def test_a_reply_expectation_the_bot_does_not_meet_fails_in_the_ui_with_its_reason(
        ) -> None:
    with demo_like(REPLY_SCENARIO % ("'welcome back'", "1s")) as (app, bot):
        async with app.run_test(size=SIZE) as pilot:
            shown = await run_in_the_ui(app, pilot)
    assert "✗ failures" in shown and "2 expectation(s) broken" in shown, shown
    assert "reply" in shown and "welcome back" in shown, shown
    assert len(bot.replies) == 2  # the bot did answer, just not with those words


async def test_without_a_send_api_a_reply_scenario_is_refused_in_one_line_naming_the_flag(
        receiver: Receiver) -> None:
    app = make_app(scenario=parse_scenario(REPLY_SCENARIO % ("unsubscribed", "5s"),
                                           "replies.yaml"),
                   url=receiver.url, seed=5, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("s", "down", "down", "enter")
        await settle(app, pilot)
        [refusal] = [n.message for n in app._notifications if n.title == "Cannot run"]
        assert "\n" not in refusal and "--api-port" in refusal, refusal
        assert "not yet" not in refusal
        assert receiver.received == 0  # nothing was sent


async def test_number_keys_tap_the_apps_buttons_newest_message_first(
        receiver: Receiver) -> None:
    """Keys after the template's own (1-3) tap the app's buttons: 4, 5 on the newest message,
    6, 7 on the one before; a key with no button says so instead of doing nothing."""
    from simulator.models import Button
    from simulator.sendapi import SentMessage

    feed = ApiFeed()
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock, api=feed)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.session is not None
        user = app.session.current_user.wa_id
        business = app.session.business.display_phone_number
        for number, payloads in ((1, ("OLD_A", "OLD_B")), (2, ("NEW_A", "NEW_B"))):
            feed(SentMessage(number, "v2", NOW, business, user, "template", "catalogue",
                             template="catalogue", buttons=tuple(Button(p, p) for p in payloads),
                             message_id=f"m{number}", recipient_id=f"m{number}",
                             wamid=f"wamid.{number}"))
        await until(app, pilot, lambda: len(app.query(AppMessage)) == 2, "the bubbles")
        await until(app, pilot, lambda: len(app.phone.app_keys) == 4, "the keys")
        labels = {key: str(button.label) for key, button in app.phone.app_keys.items()}
        assert labels == {4: "4  ↩ NEW_A", 5: "5  ↩ NEW_B", 6: "6  ↩ OLD_A", 7: "7  ↩ OLD_B"}
        [fire] = [b for b in app.BINDINGS if isinstance(b, Binding) and b.action == "fire(1)"]
        assert app.get_key_display(fire) == "1-7"  # the footer says so too
        await pilot.press("6")
        [arrival] = receiver.wait_for(1)
        message = json.loads(arrival.body)["meta_object"]["value"]["messages"][0]
        assert message["button"]["payload"] == "OLD_A"
        assert message["context"]["id"] == "wamid.1"
        await pilot.press("9")
        await settle(app, pilot)
        assert any("No button 9" in n.message for n in app._notifications)
        assert len(receiver.arrivals) == 1
        # Tab never lands on a phone button, so an Enter meant for the log is never a tap.
        for _ in range(8):
            await pilot.press("tab")
            assert not isinstance(app.focused, (AppButton, QuickReply))
