"""The terminal UI driven with Textual's Pilot against a real receiver on a free port."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, ProgressBar

from simulator.receiver import Receiver, ReceiverOptions
from simulator.scenarios import load_scenario, parse_scenario
from simulator.tui.app import WasimApp, make_app
from simulator.tui.feed import ArrivalFeed
from simulator.tui.screens.detail import DetailScreen
from simulator.tui.screens.help import HelpScreen
from simulator.tui.screens.users import UserScreen
from simulator.tui.widgets.arrivals import ArrivalsPane
from simulator.tui.widgets.log import DeliveryLog
from simulator.tui.widgets.phone import Reply
from simulator.tui.widgets.preview import Preview
from simulator.tui.widgets.run_panel import RunPanel
from simulator.tui.widgets.target_bar import TargetBar

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
    table = app.query_one(DeliveryLog)
    return [str(cell) for cell in table.get_column(column)]


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
        started = time.perf_counter()
        app.simulate_key("p")
        while app.query_one(Preview).display and time.perf_counter() - started < 2:
            await asyncio.sleep(0.005)
        assert not app.query_one(Preview).display
        took = time.perf_counter() - started
        print(f"key handled in {took * 1000:.0f} ms during the run")
        assert took < 0.5
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
        app.screen.query_one("#target-url", Input).value = "http://example.com/hook"
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


async def test_opening_another_scenario_redraws_the_phone() -> None:
    app = make_app(seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
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
            await pilot.pause(0.1)
            pane = app.query_one(ArrivalsPane)
            assert pane.count == 1
            assert "valid" in str(pane.border_subtitle) or pane.count == 1


async def test_the_command_palette_offers_each_quick_reply(receiver: Receiver) -> None:
    app = make_app(url=receiver.url, seed=7, history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Fire: Shop now", "Fire: Remind me later", "Fire: Stop promotions"} <= set(titles)
        assert "Replay the selected delivery (same bytes)" in titles
