"""The run panel's replies (issue 24 item 3), driven with Pilot: a scenario run beside a real
send API matches each of the run's taps to the app's reply, as `wasim load --replies` does."""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from simulator.delivery import delivery_options_from
from simulator.demo_bot import TEMPLATES, DemoBot
from simulator.meta import wrap
from simulator.receiver import Receiver, ReceiverOptions
from simulator.reply_tracking import ReplyTracker, tap_of, taps_of
from simulator.runner import plan_scenario
from simulator.scenarios import parse_scenario
from simulator.sendapi import MockApi, api_options
from simulator.tui import commands
from simulator.tui.app import WasimApp, make_app
from simulator.tui.feed import ApiFeed, ArrivalFeed
from simulator.tui.widgets.run_panel import RunPanel
from tests.apps.load_replier import LoadReplier

pytestmark = pytest.mark.anyio

SIZE = (100, 32)
TAPS = 6

SCENARIO = f"""\
name: replies-in-the-panel
seed: 11
template:
  name: small_promo
  body: "A small promo."
  buttons:
    - {{text: Yes please, payload: "YES"}}
    - {{text: No thanks, payload: "NO"}}
cast:
  countries: {{IN: {TAPS // 2}, US: {TAPS - TAPS // 2}}}
steps:
  - name: everyone
    spread: 1s
    concurrency: 3
"""
# Meta's batching: every tap opens a body with the next one's message in it.
BATCHED = SCENARIO.replace("steps:", "chaos: {batch: 1.0, batch_size: 2, batch_shape: %s}\nsteps:")


def fixed_clock() -> float:
    """The UI's clock in tests: always the same instant."""
    return 1_780_000_000.0


async def until(app: WasimApp, pilot: Pilot[int], condition: Callable[[], object],
                what: str) -> None:
    """Wait (a bounded number of turns, not a time) until `condition()` holds."""
    for _ in range(2000):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError(f"never happened: {what}")


@contextlib.contextmanager
def beside_a_send_api(url: str, monkeypatch: pytest.MonkeyPatch, reply_wait: float = 60.0,
                      scenario: str = SCENARIO) -> Iterator[tuple[WasimApp, MockApi]]:
    """`wasim tui --url URL --api-port 0`: the app aimed at `url`, a real send API beside it,
    its address in the environment for the app. No statuses: they are not what the panel's
    replies line counts, and one arriving as the test's app closes would hit a gone screen."""
    feed = ApiFeed()
    app = make_app(scenario=parse_scenario(scenario, "replies.yaml"), url=url, seed=3,
                   history=None, clock=fixed_clock, api=feed)
    # A generous wait: it ends as soon as every tap has its reply, and never decides a test.
    app.settings = dataclasses.replace(app.settings, reply_wait=reply_wait)
    assert app.delivery is not None
    with MockApi(api_options(port=0), webhook=None, on_sent=feed,
                 on_status=feed) as api:
        feed.base_url, feed.mock = api.base_url, api
        for name, value in api.env().items():
            monkeypatch.setenv(name, value)
        yield app, api


async def run(app: WasimApp, pilot: Pilot[int]) -> tuple[str, ReplyTracker | None]:
    """Start the scenario (s, as fast as allowed), wait for the panel to say it ended; the
    panel's replies line and the run's tracker."""
    await pilot.pause()
    await until(app, pilot, lambda: app.session is not None, "the scenario to load")
    await pilot.press("s", "down", "down", "enter")
    panel = app.query_one(RunPanel)
    await until(app, pilot, lambda: panel.has_class("-done"), "the run to finish")
    return str(panel.query_one("#run-replies", Static).render()), panel.tracker


async def waiting_for_replies(app: WasimApp, pilot: Pilot[int]) -> tuple[RunPanel, Static]:
    """Start the scenario and wait until every tap is sent and the panel waits (600 s) for
    the replies still missing; the panel and its title."""
    await until(app, pilot, lambda: app.session is not None, "the scenario to load")
    await pilot.press("s", "down", "down", "enter")
    panel = app.query_one(RunPanel)
    title = panel.query_one("#run-title", Static)
    await until(app, pilot, lambda: "waiting up to 600 s" in str(title.render()),
                "the wait for the last replies")
    return panel, title


def send_reply(api: MockApi, business: str, to: str, context: str | None = None) -> None:
    """A reply through the send API, as an app would send it."""
    message = {"messaging_product": "whatsapp", "to": to, "type": "text",
               "text": {"body": "late"}} | ({"context": {"message_id": context}}
                                            if context else {})
    httpx.post(f"{api.base_url}/v2/{api.options.sid}/whatsapp/{business}/messages",
               headers={"api-key": api.options.api_key},
               json={"messaging_object": message}).raise_for_status()


async def test_a_replying_app_gets_a_reply_latency_and_no_missing_reply_in_the_panel(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with LoadReplier() as replier, beside_a_send_api(replier.url, monkeypatch) as (app, api):
        async with app.run_test(size=SIZE) as pilot:
            # A tap of the phone's own before the run, answered: not one of the run's.
            await until(app, pilot, lambda: app.session is not None, "the scenario to load")
            await pilot.press("1")
            await until(app, pilot, lambda: len(api.sent) == 1, "the phone's tap's reply")
            shown, tracker = await run(app, pilot)
            assert replier.taps == TAPS + 1
            assert f"{TAPS} of {TAPS} taps answered" in shown, shown
            assert "0 missing" in shown and "0 to the wrong user" in shown, shown
            assert "0 duplicate" in shown and "reply latency p50" in shown and "p99" in shown, shown
            assert tracker is not None and tracker.matched == TAPS
            assert tracker.latency.total == TAPS and tracker.replies == TAPS
            # The run is over: the tracker is detached, a later reply is the phone's.
            send_reply(api, api.sent[-1].business, api.sent[-1].to)
            await until(app, pilot, lambda: len(api.sent) == TAPS + 2, "the later reply")
            assert tracker.replies == TAPS and tracker.duplicates == 0


async def test_an_app_that_never_replies_has_every_reply_missing(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    # The built-in receiver answers 200 and never replies. No wait for the replies: none come.
    with beside_a_send_api(receiver.url, monkeypatch, reply_wait=0) as (app, api):
        async with app.run_test(size=SIZE) as pilot:
            shown, tracker = await run(app, pilot)
    assert receiver.received == TAPS and not api.sent
    assert f"0 of {TAPS} taps answered" in shown and f"{TAPS} missing" in shown, shown
    assert "reply latency p50" not in shown, shown
    assert tracker is not None and tracker.missing == TAPS


async def test_duplicate_replies_and_replies_to_the_wrong_user_are_counted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with LoadReplier("twice") as replier, \
            beside_a_send_api(replier.url, monkeypatch) as (app, _):
        async with app.run_test(size=SIZE) as pilot:
            shown, _ = await run(app, pilot)
    assert f"{TAPS} of {TAPS} taps answered" in shown and f"{TAPS} duplicate" in shown, shown
    with LoadReplier("wrong") as replier, \
            beside_a_send_api(replier.url, monkeypatch, reply_wait=0) as (app, _):
        async with app.run_test(size=SIZE) as pilot:
            shown, _ = await run(app, pilot)
    # The replier answers before its 200: every wrong reply is in before the run ends.
    assert f"{TAPS} to the wrong user" in shown and f"{TAPS} missing" in shown, shown


async def test_stopping_the_wait_for_replies_detaches_the_tracker(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    with beside_a_send_api(receiver.url, monkeypatch, reply_wait=600) as (app, api):
        async with app.run_test(size=SIZE) as pilot:
            panel, title = await waiting_for_replies(app, pilot)
            tracker = panel.tracker
            assert tracker is not None and tracker.taps == TAPS
            await pilot.press("x")
            await until(app, pilot, lambda: panel.has_class("-done"), "the run to stop")
            assert "stopped" in str(title.render())
            assert f"{TAPS} missing" in str(panel.query_one("#run-replies", Static).render())
            tap = json.loads(receiver.arrivals[0].body)["meta_object"]["value"]
            send_reply(api, tap["metadata"]["display_phone_number"], tap["messages"][0]["from"],
                       tap["messages"][0]["id"])
            await until(app, pilot, lambda: len(api.sent) == 1, "the reply after the stop")
            assert tracker.replies == 0


async def test_the_phones_own_tap_during_a_run_and_its_reply_are_not_the_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Ten taps; the replier drops the tenth it gets, so the run waits for its reply.
    ten = SCENARIO.replace(f"{{IN: {TAPS // 2}, US: {TAPS - TAPS // 2}}}", "{IN: 5, US: 5}")
    with LoadReplier("drop10") as replier, \
            beside_a_send_api(replier.url, monkeypatch, 600, ten) as (app, api):
        async with app.run_test(size=SIZE) as pilot:
            panel, _ = await waiting_for_replies(app, pilot)
            # The run is still on: a tap on the phone, answered with its context.
            await pilot.press("1")
            await until(app, pilot, lambda: len(api.sent) == 10, "the phone's tap's reply")
            await pilot.press("x")
            await until(app, pilot, lambda: panel.has_class("-done"), "the run to stop")
            tracker = panel.tracker
    assert replier.taps == 11 and tracker is not None
    assert (tracker.taps, tracker.replies, tracker.matched) == (10, 9, 9)
    assert (tracker.duplicates, tracker.wrong_user, tracker.missing) == (0, 0, 1)


async def test_without_a_send_api_the_panel_says_nothing_about_replies(
        receiver: Receiver) -> None:
    app = make_app(scenario=parse_scenario(SCENARIO, "replies.yaml"), url=receiver.url,
                   history=None, clock=fixed_clock)
    async with app.run_test(size=SIZE) as pilot:
        _, tracker = await run(app, pilot)
        assert not app.query_one("#run-replies", Static).display
    assert tracker is None and receiver.received == TAPS



@pytest.mark.parametrize("shape", ["messages", "changes", "entries"])
def test_each_message_of_a_batch_is_a_tap_of_its_own_with_its_own_sender(shape: str) -> None:
    plan = plan_scenario(parse_scenario(BATCHED % shape, "batched.yaml"), seed=1)
    batched = [send for send in plan.sends if len(send.batch) == 2]
    assert batched
    for send in batched:
        expected = [(tap.message_id, (tap.user.wa_id, tap.user.user_id)) for tap in send.batch]
        for body in (send.event.body, wrap(send.event.body)):
            assert taps_of(body) == expected
    for send in plan_scenario(parse_scenario(SCENARIO, "single.yaml"), seed=1).sends:
        assert taps_of(send.event.body) == [tap_of(send.event.body)]
        assert tap_of(send.event.body) == (send.tap.message_id,
                                           (send.tap.user.wa_id, send.tap.user.user_id))
    assert taps_of(b'{"statuses":[{"id":"wamid.x"}]}') == []


@pytest.mark.parametrize("shape", ["messages", "entries"])
async def test_the_demo_bot_answers_every_tap_of_a_batched_run_in_the_panel(shape: str) -> None:
    """`wasim demo`'s setup: the built-in receiver with the demo bot behind it, answering
    every message of a batch through the send API the UI shows."""
    scenario = parse_scenario(BATCHED % shape, "batched.yaml")
    arrivals, feed = ArrivalFeed(), ApiFeed()
    bot = DemoBot(then=arrivals)
    with Receiver(ReceiverOptions(port=0), on_arrival=bot) as receiver, \
            commands.send_api(0, delivery_options_from({"url": receiver.url}, str), feed,
                              "wasim demo", seed=scenario.seed,
                              templates=(*scenario.template_names, *TEMPLATES)) as api:
        bot.api = api
        try:
            app = make_app(scenario=scenario, url=receiver.url, seed=5, history=None,
                           clock=fixed_clock, receiver=receiver, arrivals=arrivals, api=feed)
            app.settings = dataclasses.replace(app.settings, reply_wait=60.0)
            async with app.run_test(size=SIZE) as pilot:
                shown, tracker = await run(app, pilot)
                # The replies' statuses (to the receiver, as the demo sends them) all shown
                # before the app closes.
                await until(app, pilot, lambda: len(api.statuses) == 3 * TAPS, "the statuses")
                await pilot.pause()
        finally:
            bot.close()
    assert tracker is not None and tracker.taps == TAPS and len(bot.replies) == TAPS
    assert f"{TAPS} of {TAPS} taps answered" in shown and "0 missing" in shown, shown
    assert "0 to the wrong user" in shown and "0 duplicate" in shown, shown


async def test_a_status_arriving_as_the_app_closes_is_dropped_not_a_crash(
        receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """The send API's threads hand a status over while the screen is being torn down: the
    phone is gone, and the status is dropped (it used to raise NoMatches: Phone)."""
    from simulator.sendapi import SentMessage, StatusDelivery
    from simulator.tui.widgets.phone import Phone

    with beside_a_send_api(receiver.url, monkeypatch) as (app, _):
        async with app.run_test(size=SIZE) as pilot:
            await until(app, pilot, lambda: app.session is not None, "the scenario to load")
            message = SentMessage(1, "v2", 1.0, "918800000001", "919812345678", "text", "hi")
            await app.query_one(Phone).remove()
            app._from_api(StatusDelivery(message, "read", "", b"", None))
            app._from_api(message)


async def test_duplicated_taps_are_copies_owed_no_new_answer_and_a_second_answer_is_counted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every tap delivered twice (chaos duplicate): the copies are shown apart and nothing
    is missing; this replier answers every delivery, so each copy's answer is a duplicate."""
    twice = SCENARIO.replace("steps:", "chaos: {duplicate: 1.0}\nsteps:")
    with LoadReplier() as replier, \
            beside_a_send_api(replier.url, monkeypatch, scenario=twice) as (app, api):
        async with app.run_test(size=SIZE) as pilot:
            shown, tracker = await run(app, pilot)
            await until(app, pilot, lambda: len(api.sent) == 2 * TAPS, "every answer")
    assert replier.taps == 2 * TAPS
    assert f"{TAPS} of {TAPS} taps answered (+{TAPS} copies)" in shown, shown
    assert "0 missing" in shown and f"{TAPS} duplicate" in shown, shown
    assert tracker is not None and (tracker.taps, tracker.copies) == (TAPS, TAPS)
    assert (tracker.missing, tracker.duplicates) == (0, TAPS)
