"""The UI's deliveries (on the courier's thread) go through the runner's one client seam,
`TuiSettings.client`: a test's `httpx.MockTransport` answers taps by hand and whole runs, with
no server and no monkeypatch."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import httpx
import pytest

from simulator.delivery import Attempt, Deliverer, Event, delivery_options_from
from simulator.scenarios import parse_scenario
from simulator.settings import flag_of
from simulator.tui.app import WasimApp, make_app
from simulator.tui.courier import Courier
from simulator.tui.widgets.preview import Preview
from tests.test_tui import SIZE, SMALL, fixed_clock, log_column, settle

# Nothing listens here: an answer can only come from the mock transport.
NOWHERE = "http://127.0.0.1:9/hook"


class Answers:
    """A MockTransport handler that records each request and answers `status`."""

    def __init__(self, status: int = 202) -> None:
        self.status = status
        self.bodies: list[bytes] = []
        self.threads: set[str] = set()
        self.lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.bodies.append(request.content)
            self.threads.add(threading.current_thread().name)
        return httpx.Response(self.status, json={"ok": True})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self))


def test_the_courier_delivers_on_its_thread_through_the_given_client() -> None:
    answers = Answers()
    attempts: list[Attempt] = []
    courier = Courier()
    courier.start()
    try:
        options = delivery_options_from({"url": NOWHERE}, flag_of)
        deliverer = Deliverer(options, on_attempt=attempts.append, client=answers.client())
        event = Event.from_body(b'{"hello":"courier"}', 1)
        result = courier.submit(deliverer.deliver(event)).result(timeout=10)
    finally:
        courier.stop()
    assert result.delivered and result.attempts[-1].status == 202
    assert answers.bodies == [b'{"hello":"courier"}']
    assert answers.threads == {"wasim-deliveries"}  # sent on the courier's loop, not the caller's
    assert [a.status for a in attempts] == [202]


def _app(answers: Answers, scenario: str | None = None) -> WasimApp:
    app = make_app(url=NOWHERE, seed=7, history=None, clock=fixed_clock,
                   scenario=parse_scenario(scenario, "small.yaml") if scenario else None)
    return WasimApp(replace(app.settings, client=answers.client()))


@pytest.mark.anyio
async def test_a_tap_by_hand_goes_through_the_injected_client() -> None:
    answers = Answers(status=200)
    app = _app(answers)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        previewed = app.query_one(Preview).body
        await pilot.press("1")
        await settle(app, pilot)
        assert answers.bodies == [previewed]
        assert log_column(app, "status") == ["200"]


@pytest.mark.anyio
async def test_a_run_goes_through_the_injected_client() -> None:
    answers = Answers(status=200)
    app = _app(answers, SMALL)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.session is not None
        plan = app.session.plan
        app.run_scenario(plan, 1000.0)
        await settle(app, pilot)
        assert sorted(answers.bodies) == sorted(s.event.body for s in plan.sends)
        assert all(json.loads(body) for body in answers.bodies)
        assert log_column(app, "status").count("200") == len(plan.sends)
