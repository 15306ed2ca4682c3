"""The terminal UI driven with Textual's Pilot against a real receiver on a free port."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from textual.binding import Binding
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, ProgressBar, Static, TextArea

from simulator.receiver import Receiver, ReceiverOptions
from simulator.scenarios import load_scenario, parse_scenario
from simulator.tui.app import WasimApp, make_app
from simulator.tui.feed import ArrivalFeed
from simulator.tui.screens.detail import DetailScreen, clipboard_problem
from simulator.tui.screens.help import HelpScreen
from simulator.tui.screens.users import UserScreen
from simulator.tui.widgets.arrivals import ArrivalsPane
from simulator.tui.widgets.log import DeliveryLog, fit_columns, latency_text
from simulator.tui.widgets.phone import Reply
from simulator.tui.widgets.preview import Preview
from simulator.tui.widgets.run_panel import RunPanel
from simulator.tui.widgets.target_bar import TargetBar
from tests.apps import blocking_app

pytestmark = pytest.mark.anyio

SIZE = (100, 32)
NOW = 1_780_000_000.0


def fixed_clock() -> float:
    """The UI's clock in tests: always the same instant."""
    return NOW


SMALL = """\
name: small
description: Thirty taps from three countries, for runs in tests.
seed: 5
template:
  name: small_promo
  body: "A small promo."
  buttons:
    - {text: Yes please, payload: "YES"}
    - {text: No thanks, payload: "NO"}
cast:
  countries: {IN: 10, US: 10, BR: 10}
steps:
  - name: everyone
    spread: 2s
    concurrency: 4
"""


@pytest.fixture
def history(tmp_path: Path) -> Path:
    return tmp_path / "history.jsonl"


def records(history: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in history.read_text().splitlines()]


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def settle(app: WasimApp, pilot: Pilot[int]) -> None:
    """Let every worker finish and the screen catch up."""
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def log_column(app: WasimApp, column: str) -> list[str]:
    """A column of the rows the log shows (from its rows when too narrow to show the column)."""
    table = app.query_one(DeliveryLog)
    if column in table.columns_shown:
        return [str(cell) for cell in table.get_column(column)]
    return [str(getattr(table.rows_by_key[str(row.key.value)], column))
            for row in table.ordered_rows]


async def test_a_number_key_sends_the_previewed_bytes_to_a_real_receiver(
        receiver: Receiver, history: Path) -> None:
    app = make_app(url=receiver.url, seed=7, history=history, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        previewed = app.query_one(Preview).body
        await pilot.press("1")
        await settle(app, pilot)
        arrival = receiver.wait_for(1)[0]
        assert arrival.body == previewed
        assert 'tapped "Shop now"' in arrival.summary and not arrival.problems
        reply = app.query_one(Reply)
        assert reply.label == "Shop now" and "✓✓ 200" in str(reply.render())
        assert log_column(app, "status") == ["200"]
        assert [r["status"] for r in records(history)] == [200]


async def test_clicking_a_quick_reply_fires_it(receiver: Receiver) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert await pilot.click("#quick-reply-3")
        await settle(app, pilot)
        assert 'tapped "Stop promotions"' in receiver.wait_for(1)[0].summary
        assert log_column(app, "button") == ["Stop promotions"]


async def test_replay_and_duplicate_from_the_log_and_its_detail_view(
        receiver: Receiver, history: Path) -> None:
    app = make_app(url=receiver.url, seed=7, history=history, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("2")
        await settle(app, pilot)
        app.query_one(DeliveryLog).move_cursor(row=0)
        await pilot.press("r")
        await settle(app, pilot)
        app.query_one(DeliveryLog).move_cursor(row=0)
        await pilot.press("d")
        await settle(app, pilot)
        app.query_one(DeliveryLog).move_cursor(row=0)
        app.query_one(DeliveryLog).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("d")
        await settle(app, pilot)
        assert not isinstance(app.screen, DetailScreen)
        bodies = {a.body for a in receiver.wait_for(4)}
        assert len(bodies) == 1  # one event, the same bytes four times
        assert log_column(app, "via") == ["tap", "replay", "duplicate", "duplicate"]
        stored = records(history)
        assert stored[1]["replay_of"] == stored[0]["delivery"]
        assert stored[2]["replay_of"] is None and stored[2]["delivery"] != stored[0]["delivery"]
        assert stored[2]["duplicate_of"] == stored[0]["delivery"]  # marked, as a replay is


async def test_an_unreachable_target_is_shown_not_raised() -> None:
    app = make_app(url=f"http://127.0.0.1:{closed_port()}/hook", seed=7, history=None,
                   clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.query_one(TargetBar).reach == "unreachable"
        await pilot.press("1")
        await settle(app, pilot)
        assert app.is_running
        assert "refused" in str(app.query_one(Reply).render())
        assert log_column(app, "status") == ["refused"]
        messages = [n.message for n in app._notifications]
        assert any("connection refused" in m for m in messages)


async def test_a_failing_handler_is_retried_shown_and_notified() -> None:
    scenario = parse_scenario(SMALL + "target:\n  retries: 1\n  backoff: 0\n", "small.yaml")
    with Receiver(ReceiverOptions(port=0, status=503)) as failing:
        app = make_app(scenario=scenario, url=failing.url, history=None, clock=fixed_clock)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await pilot.press("2")
            await settle(app, pilot)
            assert len(failing.wait_for(2)) == 2  # the attempt and its retry
            assert log_column(app, "status") == ["503 ↻1"]
            assert "✗ 503" in str(app.query_one(Reply).render())
            assert any("answered 503" in n.message for n in app._notifications)


async def test_running_a_scenario_updates_the_progress(receiver: Receiver,
                                                       history: Path) -> None:
    scenario = parse_scenario(SMALL, "small.yaml")
    app = make_app(scenario=scenario, url=receiver.url, history=history, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("s", "down", "down", "enter")  # 10x → as fast as allowed
        await settle(app, pilot)
        total = len(app.session.plan.sends) if app.session else 0
        assert total == 30
        progress = app.query_one("#run-progress", ProgressBar)
        assert (progress.progress, progress.total) == (30, 30)
        assert "30 delivered" in str(app.query_one("#run-stats").render())
        assert len(receiver.wait_for(30)) == 30
        assert len(log_column(app, "via")) == 30 and set(log_column(app, "via")) == {"run"}
        assert len(records(history)) == 30


async def test_the_ui_answers_keys_while_a_thousand_taps_run(receiver: Receiver) -> None:
    app = make_app(scenario=load_scenario("burst-1000"), url=receiver.url, history=None,
                   clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("s", "down", "down", "enter")
        await pilot.pause(0.3)
        progress = app.query_one("#run-progress", ProgressBar)
        assert app.running and 0 < progress.progress < 1000
        # A key goes through the app's queue like a real one; time until its action has run.
        # (Pilot.press would also wait for the screen to go idle, which a run never lets it.)
        # Causal, not timed: the key's action must run while the run is still going. Were
        # the UI blocked by the run, the preview would only hide once all 1000 had ended.
        app.simulate_key("p")
        while app.query_one(Preview).display and app.running:
            await asyncio.sleep(0.005)
        assert not app.query_one(Preview).display
        assert app.running and progress.progress < 1000  # the run goes on meanwhile
        app.simulate_key("x")  # stop the run
        await settle(app, pilot)
        assert not app.running
        assert "stopped" in str(app.query_one("#run-title").render())
        assert app.query_one(RunPanel).has_class("-done")


async def test_picking_a_user_and_a_new_one_changes_who_taps(receiver: Receiver) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.session is not None
        second = app.session.users[1]
        await pilot.press("u")
        assert isinstance(app.screen, UserScreen)
        await pilot.press(*second.wa_id[-6:], "enter")
        await pilot.pause()
        assert app.session.user == second
        await pilot.press("1")
        await settle(app, pilot)
        assert second.wa_id in receiver.wait_for(1)[0].summary
        await pilot.press("u", *"brazil", "enter")
        await pilot.pause()
        assert app.session.user.country == "BR"
        await pilot.press("u", *"IN", "enter")  # an exact code, though names contain "in"
        await pilot.pause()
        assert app.session.user.country == "IN" and app.session.user not in app.session.plan.users
        await pilot.press("u", *"BR", "enter")
        await pilot.pause()
        assert app.session.user.country == "BR"
        await pilot.press("n")
        assert app.session.user not in app.session.plan.users


async def test_edited_fields_are_what_is_sent(receiver: Receiver) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#edit-number", Input).value = "12345"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "not a phone number" in str(app.screen.query_one("#edit-error").render())
        app.screen.query_one("#edit-number", Input).value = "+55 11 91234 5678"
        app.screen.query_one("#edit-name", Input).value = "Ana QA"
        app.screen.query_one("#edit-payload-0", Input).value = "SHOP_QA"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.session is not None and app.session.current_user.country == "BR"
        await pilot.press("1")
        await settle(app, pilot)
        document = json.loads(receiver.wait_for(1)[0].body)
        value = document["meta_object"]["value"]
        contact = value["contacts"][0]
        assert (contact["profile"], contact["wa_id"]) == ({"name": "Ana QA"}, "5511912345678")
        assert contact["user_id"].startswith("BR.")  # the new number's own BSUID
        assert value["messages"][0]["button"] == {"payload": "SHOP_QA", "text": "Shop now"}
        assert not receiver.arrivals[0].problems  # the context wamid follows the new number


async def test_without_a_target_the_bar_says_so_and_t_sets_one(receiver: Receiver) -> None:
    app = make_app(seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.query_one(TargetBar).reach == "no target"
        await pilot.press("1")
        await pilot.pause()
        assert any("No target" in n.message for n in app._notifications)
        await pilot.press("t")
        await pilot.pause()
        app.screen.query_one("#target-url", Input).value = "http://203.0.113.5/hook"
        await pilot.press("enter")
        await pilot.pause()
        assert "not this machine" in str(app.screen.query_one("#target-error").render())
        app.screen.query_one("#target-url", Input).value = receiver.url
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.query_one(TargetBar).reach == "reachable"
        await pilot.press("1")
        await settle(app, pilot)
        assert len(receiver.wait_for(1)) == 1


async def test_help_lists_every_key_of_the_app() -> None:
    app = make_app(seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        shown = " ".join(str(w.render()) for w in app.screen.query(".help-keys"))
        for key in ("1-9", "u", "n", "e", "r", "d", "s", "x", "o", "t", "p", "b", "a", "?", "q",
                    "^p", "enter", "c"):
            assert key in shown.split(), key
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_opening_another_scenario_redraws_the_phone(receiver: Receiver) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1", "s", "down", "down", "enter")  # a tap, and a whole run
        await settle(app, pilot)
        assert app.query(Reply) and app.query_one(RunPanel).display
        await pilot.press("o")
        await settle(app, pilot)
        listing = app.screen.query_one("#scenario-list", OptionList)
        names = [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]
        listing.highlighted = next(i for i, n in enumerate(names) if "appointment-reminder" in n)
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.scenario.name == "appointment-reminder"
        assert app.query_one("#quick-reply-1").label.plain.endswith("Confirm")
        assert app.query_one(TargetBar).scenario == "appointment-reminder"
        # The old brand's chat and run are gone; the log keeps what was sent.
        assert not app.query(Reply) and not app.query_one(RunPanel).display


async def test_the_demo_receiver_pane_shows_each_arrival() -> None:
    feed = ArrivalFeed()
    with Receiver(ReceiverOptions(port=0), on_arrival=feed) as demo_receiver:
        app = make_app(url=demo_receiver.url, seed=7, history=None, clock=fixed_clock,
                       receiver=demo_receiver, arrivals=feed)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await pilot.press("1")
            await settle(app, pilot)
            demo_receiver.wait_for(1)
            pane = app.query_one(ArrivalsPane)
            for _ in range(1000):  # the receiver's thread posts the line; wait for the UI
                if pane.count:
                    break
                await pilot.pause(0.01)
            assert pane.count == 1 and str(pane.border_subtitle) == "1 received"
            shown = " ".join("".join(segment.text for segment in line) for line in pane.lines)
            assert 'tapped "Shop now"' in shown and " valid " in shown and "→ 200" in shown


async def test_the_command_palette_offers_each_quick_reply(receiver: Receiver) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Fire: Shop now", "Fire: Remind me later", "Fire: Stop promotions"} <= set(titles)


async def test_the_command_palette_offers_every_key_by_name() -> None:
    app = make_app(seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p")  # the palette is a dialog itself: nothing may hide behind it
        await pilot.pause()
        commands = list(app.get_system_commands(app.screen))
        actions = {getattr(c.callback, "__name__", "") for c in commands}
        keys = {b.action.partition("(")[0] for b in app.BINDINGS if isinstance(b, Binding)}
        keys -= {"fire", "stop_run", "toggle_arrivals"}  # per button; no run; no demo receiver
        assert {f"action_{a}" for a in keys if a != "quit"} <= actions
        titles = " ".join(c.title.lower() for c in commands)
        assert "run:" in titles and "replay:" in titles and "quit" in titles


async def until(condition: Callable[[], bool], what: str) -> None:
    """Let the app run until `condition` holds; fail (not hang) if it never does."""
    async def wait() -> None:
        while not condition():
            await asyncio.sleep(0.005)
    try:
        await asyncio.wait_for(wait(), 30)
    except TimeoutError:
        pytest.fail(f"never happened: {what}")


async def test_the_ui_handles_a_key_while_an_in_process_handler_blocks_its_loop() -> None:
    blocking_app.reset()
    app = make_app(app="asgi:tests.apps.blocking_app:app", path="/webhook", seed=7,
                   history=None, clock=fixed_clock)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await pilot.press("1")
            await until(blocking_app.entered.is_set, "the handler started")
            app.simulate_key("p")
            await until(lambda: not app.query_one(Preview).display, "p hid the preview")
            # Causal: the key's action ran while the handler was still blocking its loop.
            assert not blocking_app.finished.is_set()
            await until(lambda: any("blocked its event loop" in n.message
                                    for n in app._notifications), "the watchdog warned")
            blocking_app.release.set()
            await settle(app, pilot)
            assert log_column(app, "status") == ["200"]
            assert "✓✓ 200" in str(app.query_one(Reply).render())
    finally:
        blocking_app.release.set()


class TimedHandler(BaseHTTPRequestHandler):
    """Answers 200 once the test releases it, timing its own handling of each request."""

    entered = threading.Event()
    release = threading.Event()
    handled_ms: ClassVar[list[float]] = []

    def do_POST(self) -> None:
        """Read the body, wait for the release, answer; the time from first byte to answer."""
        started = time.perf_counter()
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.entered.set()
        self.release.wait(30)
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
        self.wfile.flush()
        self.handled_ms.append((time.perf_counter() - started) * 1000)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


async def test_shown_latency_is_the_attempts_and_drawing_the_screen_does_not_count() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), TimedHandler)
    TimedHandler.release.clear()
    TimedHandler.entered.clear()
    TimedHandler.handled_ms = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    busy_ui = 0.5  # seconds the UI's loop is kept busy while the answer comes back
    app = make_app(url=f"http://127.0.0.1:{server.server_port}/hook", seed=7, history=None,
                   clock=fixed_clock)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await settle(app, pilot)
            await pilot.press("1")
            record = next(iter(app.sends.values()))
            await until(TimedHandler.entered.is_set, "the handler got the request")
            TimedHandler.release.set()
            time.sleep(busy_ui)  # the UI's loop is busy (a heavy redraw): nothing runs on it
            await settle(app, pilot)
            await until(lambda: record.done, "the delivery ended")
            attempt = record.attempts[-1]
            assert log_column(app, "latency") == [latency_text(attempt.latency_ms)]
            handled = TimedHandler.handled_ms[-1]
            # Consistent: the answer cannot come back before the handler gave it, and the UI
            # being busy for half a second is not counted (it was, on the UI's own loop).
            assert handled <= attempt.latency_ms < handled + busy_ui * 1000
    finally:
        TimedHandler.release.set()
        server.shutdown()
        server.server_close()


async def test_tab_and_shift_tab_move_the_focus_in_the_dialogs() -> None:
    app = make_app(seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("e")
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "edit-name"
        await pilot.press("tab")
        assert app.focused is not None and app.focused.id == "edit-number"
        await pilot.press("shift+tab")
        assert app.focused is not None and app.focused.id == "edit-name"
        await pilot.press("escape", "o")
        await settle(app, pilot)
        assert app.focused is not None and app.focused.id == "scenario-list"
        await pilot.press("tab")  # what the browser's footer promises
        assert app.focused is not None and app.focused.id == "template-list"


TRACEBACK = """Traceback (most recent call last):
  File "app.py", line 12, in webhook
    ratio = 1 / 0
ZeroDivisionError: division by zero"""


async def test_the_detail_view_shows_the_apps_traceback_and_the_curl_command(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM", "linux")  # a console: no clipboard to copy to
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1")
        await settle(app, pilot)
        attempt = next(iter(app.sends.values())).attempts[-1]
        object.__setattr__(attempt, "app_error", TRACEBACK)  # what an in-process app's 500 has
        app.query_one(DeliveryLog).focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        shown = str(app.screen.query_one("#detail-text", Static).render())
        assert "The app raised" in shown and "ZeroDivisionError: division by zero" in shown
        await pilot.press("c")
        await pilot.pause()
        curl = app.screen.query_one("#curl", TextArea)
        assert curl.display and curl.text.startswith("curl ") and receiver.url in curl.text
        assert curl.selected_text == curl.text  # selected, ready for the terminal's copy
        notes = [n for n in app._notifications if n.title == "Not copied"]
        assert notes and "TERM=linux" in notes[0].message


async def test_the_detail_opens_scrollable_and_s_brings_the_response_into_view(
        receiver: Receiver) -> None:
    """PageDown scrolls at once (no Tab first); s shows the handler's response."""
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("1")
        await settle(app, pilot)
        app.query_one(DeliveryLog).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, DetailScreen)
        scroll = app.screen.query_one("#detail-scroll")
        assert scroll.scroll_y == 0 and scroll.max_scroll_y > 0
        await pilot.press("pagedown")
        await settle(app, pilot)
        assert scroll.scroll_y > 0
        await pilot.press("end")
        await settle(app, pilot)
        assert scroll.scroll_y == scroll.max_scroll_y
        await pilot.press("s")
        await settle(app, pilot)
        response = app.screen.query_one("#detail-response", Static)
        assert "Response · 200" in str(response.render())
        top = response.virtual_region.y
        assert scroll.scroll_y <= top < scroll.scroll_y + 2  # its heading at the top


def test_the_clipboard_is_trusted_only_where_a_copy_request_can_arrive() -> None:
    assert clipboard_problem({"TERM": "xterm-256color"}) is None
    assert "console" in (clipboard_problem({"TERM": "linux"}) or "")
    assert "Terminal" in (clipboard_problem({"TERM_PROGRAM": "Apple_Terminal"}) or "")
    assert "screen" in (clipboard_problem({"STY": "1234.pts-0"}) or "")


async def test_each_user_has_a_chat_of_their_own(receiver: Receiver) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        first = app.session.current_user if app.session else None
        await pilot.press("1", "n", "2", "3")
        await settle(app, pilot)

        def shown() -> list[str]:
            return [r.label for r in app.query(Reply) if r.display]

        assert shown() == ["Remind me later", "Stop promotions"]  # the new user's taps
        assert first is not None
        app._picked_user(first)  # what choosing them in the picker (u) does
        await pilot.pause()
        assert shown() == ["Shop now"]


async def test_the_raw_view_is_the_wire_tokens_spaced_then_the_exact_unwrapped_line() -> None:
    app = make_app(seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("b")
        await pilot.pause()
        preview = app.query_one(Preview)
        code = preview.query_one("#preview-code", Static)
        wire = preview.body.decode()
        shown = str(code.render())
        assert preview.raw and "\n" in shown and preview.max_scroll_x == 0  # readable, wrapped
        # Nothing but the spacing differs from the bytes on the wire.
        assert "".join(shown.split()) == "".join(wire.split())
        await pilot.press("b")
        await pilot.pause()
        assert preview.raw and b"\n" not in preview.body
        assert code.size.height == 1  # compact JSON on one line: not soft-wrapped
        assert code.size.width == len(preview.body.decode()) > preview.size.width
        assert preview.max_scroll_x > 0


async def test_the_log_starts_with_the_historys_last_deliveries_marked_earlier(
        receiver: Receiver, history: Path) -> None:
    first = make_app(url=receiver.url, seed=7, history=history, clock=fixed_clock)
    async with first.run_test(size=SIZE) as pilot:
        await settle(first, pilot)
        await pilot.press("1", "n", "2")
        await settle(first, pilot)
    with history.open("a") as handle:
        handle.write('{"torn": \n')  # a line that is not a record is skipped, not fatal
    again = make_app(url=receiver.url, seed=7, history=history, clock=fixed_clock)
    async with again.run_test(size=SIZE) as pilot:
        await settle(again, pilot)
        assert log_column(again, "via") == ["earlier", "earlier"]
        assert log_column(again, "button") == ["Shop now", "Remind me later"]
        await pilot.press("3")
        await settle(again, pilot)
        assert log_column(again, "via") == ["earlier", "earlier", "tap"]
        again.query_one(DeliveryLog).move_cursor(row=0)
        again.query_one(DeliveryLog).focus()
        await pilot.press("enter")  # an earlier delivery opens like any other
        await pilot.pause()
        assert isinstance(again.screen, DetailScreen)


async def test_slash_filters_the_log_by_user_button_or_status(receiver: Receiver) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1", "2", "1", "3")
        await settle(app, pilot)
        await pilot.press("slash", *"shop")
        await pilot.pause()
        assert log_column(app, "button") == ["Shop now", "Shop now"]
        assert "2 of 4" in str(app.query_one(DeliveryLog).border_title)
        await pilot.press("enter")  # keeps the filter, back in the log
        assert app.focused is app.query_one(DeliveryLog)
        await pilot.press("1")  # a new matching tap shows; the keys work again
        await settle(app, pilot)
        assert log_column(app, "button") == ["Shop now"] * 3
        await pilot.press("slash", "escape")  # clears it
        await pilot.pause()
        assert len(log_column(app, "button")) == 5


async def test_a_window_too_small_says_how_big_it_must_be() -> None:
    app = make_app(seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=(40, 12)) as pilot:
        await settle(app, pilot)
        notice = app.query_one("#too-small", Static)
        assert notice.display and "at least 70x20 (it is 40x12 now)" in str(notice.render())
        assert not app.query_one("#main").display
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert not notice.display and app.query_one("#main").display
        assert app.query_one("#quick-reply-3").region.height > 0  # the buttons are on screen


def test_a_narrow_log_drops_whole_columns_in_priority_order() -> None:
    assert [key for _, key, _ in fit_columns(46)] == ["button", "status", "latency", "user"]
    assert [key for _, key, _ in fit_columns(36)] == ["button", "status", "latency"]
    assert [key for _, key, _ in fit_columns(90)] == ["time", "button", "status", "latency",
                                                      "via", "user"]
    assert all(sum(size + 2 for _, _, size in fit_columns(width)) < width
               for width in range(20, 120))


async def test_at_80x24_the_log_keeps_its_user_column_with_the_filter_open() -> None:
    app = make_app(seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        log = app.query_one(DeliveryLog)
        assert log.columns_shown == ["button", "status", "latency", "user"]
        await pilot.press("slash", "x")
        await pilot.pause()
        assert log.columns_shown == ["button", "status", "latency", "user"]


def test_earlier_deliveries_reads_only_the_tail_and_skips_what_is_not_a_record(
        tmp_path: Path) -> None:
    from simulator.delivery import Attempt, Event
    from simulator.history import HistoryWriter
    from simulator.tui.earlier import earlier_deliveries

    path = tmp_path / "history.jsonl"
    with HistoryWriter(path) as writer:
        for number in range(30):
            event = Event.from_body(b'{"n": %d}' % number)
            for attempt in (1, 2):  # a failed attempt and its retry: one delivery
                writer.append(Attempt(event, f"dlv_{number:04d}", attempt, NOW, "t", "POST",
                                      "http://127.0.0.1/", (), status=200 * attempt,
                                      final=attempt == 2))
    with path.open("ab") as handle:
        handle.write(b"not json\n")
    records = earlier_deliveries(path, limit=5)
    assert [r.delivery_id for r in records] == [f"dlv_{n:04d}" for n in range(25, 30)]
    assert all(r.via == "earlier" and [a.number for a in r.attempts] == [1, 2] for r in records)
    tail = earlier_deliveries(path, limit=100, tail_bytes=path.stat().st_size // 3)
    assert 0 < len(tail) < 30 and tail[-1].delivery_id == "dlv_0029"  # no torn first line
    assert earlier_deliveries(tmp_path / "none.jsonl") == []


async def test_text_from_outside_is_shown_as_written_never_read_as_markup(
        receiver: Receiver) -> None:
    # A scenario's button, an app's reply or a target's answer may hold "[/b]" or an
    # "[@click=...]" action: notifications draw it as text; read as markup, a stray closing
    # tag raises while the toast is drawn and takes the UI down.
    from textual.content import Content
    from textual.markup import MarkupError

    hostile = "[/bold] [@click=app.quit]quit[/]"
    with pytest.raises(MarkupError):
        Content.from_markup(hostile)
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        app.notify(hostile)
        app.screen.notify(hostile, title=hostile)
        await settle(app, pilot)
        shown = [n for n in app._notifications if n.message == hostile]
        assert len(shown) == 2 and not any(n.markup for n in shown)
        assert app.is_running


def test_spacing_the_wire_keeps_strings_and_escapes_exactly() -> None:
    from simulator.tui.widgets.preview import spaced

    wire = '{"a":"x, {y}: \\"q\\"","b":[1,{"c":"\\u00e9"}]}'
    laid_out = spaced(wire)
    assert '"x, {y}: \\"q\\""' in laid_out and '"\\u00e9"' in laid_out
    assert json.loads(laid_out) == json.loads(wire)
    assert laid_out.count("\n") == 8


async def test_quitting_with_a_tap_in_flight_waits_and_records_it(history: Path) -> None:
    """q while the handler still holds a tap: the app waits for its answer and records it."""
    import threading
    from dataclasses import replace as replaced

    import httpx

    arrived, release = threading.Event(), threading.Event()

    async def slow_handler(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await asyncio.to_thread(release.wait, 10)
        return httpx.Response(200, json={"ok": True})

    app = make_app(url="http://127.0.0.1:8000/webhook", seed=7, history=history,
                   clock=fixed_clock)
    app.settings = replaced(app.settings, client=httpx.AsyncClient(
        transport=httpx.MockTransport(slow_handler)))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("1")
        await asyncio.to_thread(arrived.wait, 10)
        await pilot.press("q")
        await pilot.pause()
        assert app.is_running and any(n.title == "Quitting" for n in app._notifications)
        release.set()
        await app.workers.wait_for_complete()
    [line] = records(history)
    assert line["status"] == 200


async def test_edit_and_resend_checks_as_you_type_and_records_an_edit(
        receiver: Receiver, history: Path) -> None:
    """e in the detail: the bytes in an editor; a broken edit is refused (ctrl+s) with the
    validator's words, a fixed one is sent and recorded as an edit of the original."""
    from textual.widgets import TextArea

    from simulator.tui.screens.resend import ResendScreen

    app = make_app(url=receiver.url, seed=7, history=history, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("1")
        await settle(app, pilot)
        app.query_one(DeliveryLog).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        await pilot.press("e")
        await settle(app, pilot)
        assert isinstance(app.screen, ResendScreen)
        area = app.screen.query_one(TextArea)
        original = area.text
        area.load_text(original.replace('"messages":', '"mesages":'))
        await settle(app, pilot)
        problems = str(app.screen.query_one("#resend-problems", Static).render())
        assert "✗" in problems
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, ResendScreen)  # refused: nothing sent
        assert len(receiver.arrivals) == 1
        area.load_text(original.replace('"ref":"', '"ref":"edited-'))
        await settle(app, pilot)
        assert "keeps the contract" in str(app.screen.query_one("#resend-problems",
                                                                 Static).render())
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        [_, edited] = receiver.wait_for(2)
        assert not edited.problems and b'"ref":"edited-' in edited.body
        assert log_column(app, "via") == ["tap", "edit"]
    stored = records(history)
    assert stored[1]["edit_of"] == stored[0]["delivery"]
