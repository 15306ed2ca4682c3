"""Snapshots of the terminal UI's key screens at fixed sizes (pytest-textual-snapshot).

Everything that varies between runs is pinned: the seed, the UI clock, the time zone, the
target's reachability and the handler's answers (a stand-in Deliverer with fixed latencies,
so the SVGs do not change with the machine's speed). Behaviour against a real receiver is
tested in test_tui.py. Update after a deliberate change with `pytest --snapshot-update`.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from textual.pilot import Pilot

import simulator.runner
import simulator.tui.app
from simulator.delivery import Attempt, DeliveryOptions, DeliveryResult, Event
from simulator.tui.app import WasimApp, make_app
from simulator.tui.courier import Courier
from simulator.tui.widgets.log import DeliveryLog

NOW = 1_780_000_000.0
URL = "http://127.0.0.1:8000/webhook"


class FixedDeliverer:
    """Stands in for Deliverer: answers 200 with fixed latencies, at the fixed instant."""

    latencies = itertools.cycle((12.4, 8.9, 15.2, 9.7, 31.0, 11.3))
    numbers = itertools.count(1)
    app_error: str | None = None  # set: the in-process app raised, answer 500 with this

    def __init__(self, options: DeliveryOptions, *,
                 on_attempt: Callable[[Attempt], None] | None = None, **_: Any) -> None:
        self.options = options
        self.on_attempt = on_attempt

    async def deliver(self, event: Event, replay_of: str | None = None,
                      **origin: str | None) -> DeliveryResult:
        """One successful attempt, reported like the real thing."""
        number = next(self.numbers)
        attempt = Attempt(
            event=event, delivery_id=f"dlv_{number:08x}", number=1, started_at=NOW,
            target=self.options.target.label, method="POST", url=self.options.target.url,
            request_headers=(("host", "127.0.0.1:8000"), ("content-type", "application/json"),
                             ("content-length", str(len(event.body)))),
            status=200, response_headers=(("content-type", "application/json"),),
            response_body=f'{{"received": true, "arrival": {number}}}',
            latency_ms=next(self.latencies), delivered=True, replay_of=replay_of)
        if self.app_error is not None:
            attempt = replace(attempt, status=500, delivered=False,
                              response_body="Internal Server Error",
                              response_headers=(("content-type", "text/plain"),))
            # Read with getattr by the UI: Attempt.app_error is another branch's field.
            object.__setattr__(attempt, "app_error", self.app_error)
        if self.on_attempt is not None:
            self.on_attempt(attempt)
        return DeliveryResult(event, (attempt,))

    async def aclose(self) -> None:
        """Nothing to close."""


async def always_reachable(target: Any, timeout: float = 1.0, **options: Any) -> str:
    return "reachable"


class QuietCourier(Courier):
    """The delivery thread without its watchdog's warning: on a busy machine the loop can miss
    a heartbeat, and a toast saying so would change the picture."""

    def __init__(self, on_blocked: Any = None, block_after: float = 1.0) -> None:
        super().__init__(None, math.inf)


@pytest.fixture(autouse=True)
def pinned(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """UTC, a reachable target, fixed answers from the handler, no load-dependent toast."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    monkeypatch.setattr(simulator.tui.app, "Deliverer", FixedDeliverer)
    monkeypatch.setattr(simulator.runner, "Deliverer", FixedDeliverer)
    monkeypatch.setattr(simulator.tui.app, "probe_target", always_reachable)
    monkeypatch.setattr(simulator.tui.app, "Courier", QuietCourier)
    FixedDeliverer.latencies = itertools.cycle((12.4, 8.9, 15.2, 9.7, 31.0, 11.3))
    FixedDeliverer.numbers = itertools.count(1)
    FixedDeliverer.app_error = None
    yield
    monkeypatch.undo()
    time.tzset()


def app() -> WasimApp:
    """The app as `wasim tui --url URL --seed 7` opens it, with a fixed clock."""
    return make_app(url=URL, seed=7, history=None, clock=lambda: NOW)


async def settle(pilot: Pilot[int]) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def three_taps(pilot: Pilot[int]) -> None:
    """Tap each quick reply once, the second as another user."""
    await settle(pilot)
    await pilot.press("1")
    await settle(pilot)
    await pilot.press("n", "2")
    await settle(pilot)
    await pilot.press("3")
    await settle(pilot)


def test_main_screen_at_80x24(snap_compare: Any) -> None:
    """The phone, the preview and the log after three taps, in the smallest usual terminal."""
    assert snap_compare(app(), terminal_size=(80, 24), run_before=three_taps)


def test_main_screen_full(snap_compare: Any) -> None:
    """The same at 120x40: the README's screenshot."""
    assert snap_compare(app(), terminal_size=(120, 40), run_before=three_taps)


TRACEBACK = """Traceback (most recent call last):
  File "/srv/shop/webhook.py", line 41, in webhook
    order = orders[payload["ref"]]
            ~~~~~~^^^^^^^^^^^^^^^^
KeyError: 'campaign-2026-06'"""


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_delivery_detail_with_the_apps_traceback(snap_compare: Any,
                                                 size: tuple[int, int]) -> None:
    """An in-process app that raised: its 500 opened, with the traceback under the attempts."""
    FixedDeliverer.app_error = TRACEBACK

    async def tap_and_open(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        pilot.app.clear_notifications()  # the toast says 500; the detail is the point
        pilot.app.query_one(DeliveryLog).focus()
        await pilot.press("enter")
        await settle(pilot)

    in_process = make_app(app="asgi:tests.apps.fastapi_app:app", path="/webhook", seed=7,
                          history=None, clock=lambda: NOW)
    assert snap_compare(in_process, terminal_size=size, run_before=tap_and_open)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_edit_dialog_with_the_focus_moved_by_tab(snap_compare: Any,
                                                 size: tuple[int, int]) -> None:
    """The edit form after two Tabs: the focus on the third field (ref)."""

    async def edit_and_tab(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("e", "tab", "tab")
        await settle(pilot)

    assert snap_compare(app(), terminal_size=size, run_before=edit_and_tab)


def test_delivery_detail(snap_compare: Any) -> None:
    """A log row opened: attempts, request headers, body and response."""

    async def open_first(pilot: Pilot[int]) -> None:
        await three_taps(pilot)
        pilot.app.query_one(DeliveryLog).move_cursor(row=0)
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(app(), terminal_size=(100, 32), run_before=open_first)


def test_help_screen(snap_compare: Any) -> None:
    """Every key, grouped."""

    async def open_help(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)

    assert snap_compare(app(), terminal_size=(80, 24), run_before=open_help)


def test_finished_run(snap_compare: Any) -> None:
    """A whole scenario run: the panel's totals and the log full of the run's rows."""

    async def run_all(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("s", "down", "down", "enter")
        await settle(pilot)
        await pilot.press("p")  # hide the preview: the log and the totals are the point
        pilot.app.clear_notifications()  # the panel says what the toast says
        await settle(pilot)

    assert snap_compare(app(), terminal_size=(100, 32), run_before=run_all)


def test_send_menu_after_a_text_and_the_templates_statuses(snap_compare: Any) -> None:
    """The composer at 80x24: a typed text sent, the template read (blue ✓✓), the menu open."""

    async def compose(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("c", *"Do you have size 9?", "enter", "escape")
        await settle(pilot)
        assert isinstance(pilot.app, WasimApp)
        pilot.app.send_action("statuses")
        await settle(pilot)
        await pilot.press("m")
        await settle(pilot)

    assert snap_compare(app(), terminal_size=(80, 24), run_before=compose)


def test_chat_with_the_apps_reply_at_80x24(snap_compare: Any) -> None:
    """A tap, then the app's answer from the send API: a template with two quick replies,
    delivered (✓✓), under the user's tap."""
    from simulator.models import Button
    from simulator.sendapi import SentMessage, StatusDelivery
    from simulator.tui.feed import ApiFeed

    feed = ApiFeed()

    async def tap_and_answer(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        assert isinstance(pilot.app, WasimApp) and pilot.app.session is not None
        user = pilot.app.session.current_user
        business = pilot.app.session.business.display_phone_number
        message = SentMessage(1, "v2", NOW, business, user.wa_id, "template", "catalogue",
                              template="catalogue", params=("shoes",),
                              buttons=(Button("BUY", "BUY"), Button("LATER", "LATER")),
                              message_id="5d6a2f3e-8d1c-4c47-9a57-0c1f2e3d4b5a",
                              recipient_id="5d6a2f3e-8d1c-4c47-9a57-0c1f2e3d4b5a",
                              wamid="wamid.HBgMOTE4MTI0ODI5MDE4FQIAERgSMDAwMDAwMDAwMDAwMDAwMDAxAA==")
        feed(message)
        for status in ("sent", "delivered"):
            feed(StatusDelivery(message, status, URL, b"", None))
        await settle(pilot)
        pilot.app.query_one(DeliveryLog).focus()
        await settle(pilot)

    tui = make_app(url=URL, seed=7, history=None, clock=lambda: NOW, api=feed)
    assert snap_compare(tui, terminal_size=(80, 24), run_before=tap_and_answer)


def test_composer_sends_and_the_templates_ticks_at_80x24(snap_compare: Any) -> None:
    """The phone after a typed text, a location typed as lat,lng and an image with a caption,
    the template's statuses sent up to read (blue ✓✓)."""

    async def compose(pilot: Pilot[int]) -> None:
        await settle(pilot)
        assert isinstance(pilot.app, WasimApp)
        await pilot.press("c", *"size 9?", "enter")
        await settle(pilot)
        await pilot.press(*"12.97,77.59")
        pilot.app.send_action("location")
        await settle(pilot)
        pilot.app.send_action("statuses")
        await settle(pilot)
        await pilot.press("escape")
        await settle(pilot)

    assert snap_compare(app(), terminal_size=(80, 24), run_before=compose)


def test_raw_bytes_after_a_replay_and_a_duplicate_at_80x24(snap_compare: Any) -> None:
    """b: the wire's own tokens laid out and wrapped; the log's marks tell the replay (↺) and
    the duplicate (⧉) from the tap where the Via column does not fit."""

    async def tap_again_and_b(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        pilot.app.query_one(DeliveryLog).move_cursor(row=0)
        await pilot.press("r")
        await settle(pilot)
        pilot.app.query_one(DeliveryLog).move_cursor(row=0)
        await pilot.press("d", "b")
        await settle(pilot)

    assert snap_compare(app(), terminal_size=(80, 24), run_before=tap_again_and_b)


def test_edit_and_resend_with_a_broken_edit_at_80x24(snap_compare: Any) -> None:
    """e in the detail: the exact bytes in an editor, a field renamed, the problem shown."""

    async def tap_open_edit(pilot: Pilot[int]) -> None:
        from textual.widgets import TextArea

        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        pilot.app.query_one(DeliveryLog).focus()
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        area = pilot.app.screen.query_one(TextArea)
        area.load_text(area.text.replace('"payload":', '"paylod":'))
        await settle(pilot)

    assert snap_compare(app(), terminal_size=(80, 24), run_before=tap_open_edit)


def test_delivery_detail_at_80x24(snap_compare: Any) -> None:
    """A 200 opened at 80x24: the response before the request, s and e in the subtitle."""

    async def tap_and_open(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("1")
        await settle(pilot)
        pilot.app.query_one(DeliveryLog).focus()
        await pilot.press("enter")
        await settle(pilot)

    assert snap_compare(app(), terminal_size=(80, 24), run_before=tap_and_open)
