"""Verdicts a correct handler must pass and a careless one must fail, whatever the speed: an
expected refusal is not a failed delivery, a reply the app sends after its 200 belongs to the
tap that caused it, and latency rules judge the handler's answer time, not wasim's own lag."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from simulator.runner import plan_scenario
from simulator.scenarios import load_scenario
from simulator.sendapi import ApiOptions, MockApi
from simulator.testing import Simulator

SECRET = "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"


def pywa_replying_app(phone_id: str, api: MockApi, app_secret: str | None) -> Any:
    """pywa as its users write it (its own routes, signature validation on when given a
    secret), replying through the send API from its handler, after its 200 has gone."""
    pytest.importorskip("pywa")
    from fastapi import FastAPI
    from pywa import WhatsApp

    app = FastAPI()
    wa = WhatsApp(server=app, webhook_endpoint="/webhook", phone_id=phone_id, token="unused",
                  verify_token="t0ken", app_secret=app_secret, validate_updates=True)

    @wa.on_callback_button()
    def on_button(_: Any, button: Any) -> None:
        body = {"messaging_object": {"messaging_product": "whatsapp", "to": button.from_user.wa_id,
                                     "type": "text", "text": {"body": "You are unsubscribed."}}}
        httpx.post(api.v2_url(button.metadata.display_phone_number), json=body,
                   headers={"api-key": api.options.api_key}, timeout=10)

    return app


def forged_run(app_secret: str | None) -> Any:
    scenario = load_scenario("forged-signatures")
    phone_id = plan_scenario(scenario).business.phone_number_id
    wasim = Simulator(13, envelope="meta")
    with wasim.api(statuses=False) as api:
        app = pywa_replying_app(phone_id, api, app_secret)
        wasim.target(app=app, path="/webhook", app_secret=SECRET)
        text = scenario.path.read_text().replace("within: 2s", "within: 1s")
        return wasim.run_scenario(text), api  # at full speed (--fast): no timeline waits


def test_a_correct_pywa_handler_passes_forged_signatures_at_full_speed() -> None:
    run, api = forged_run(SECRET)
    # pywa behind FastAPI refuses the missing header with 422: expected, so delivered.
    assert [r.result.attempts[-1].status for r in run.results
            if r.planned.step == "missing"] == [422, 422]
    assert run.summary.failed == 0, run.summary.lines()
    run.assert_ok()
    assert len(api.sent) == 2  # one reply per genuine tap, each counted for its own tap


# The careless handler is the point: pywa's own warning about the missing secret is expected.
@pytest.mark.filterwarnings("ignore:No `app_secret` provided")
def test_a_pywa_handler_without_its_secret_fails_every_forged_step() -> None:
    run, api = forged_run(None)  # the app checks no signature: it acts on forged taps
    assert not run.summary.ok
    # pywa's route still requires the header (422, not acted on); every other forgery is
    # answered 200 and acted on.
    assert {f.step for f in run.summary.failures} == {"wrong-secret", "reserialized",
                                                      "bad-format"}
    assert {f.rule for f in run.summary.failures} == {"status", "reply"}
    assert len(api.sent) == 8


# --- a reply sent after the 200 belongs to the tap that caused it ---------------------------

TWO_TAPS = """
name: two-taps
seed: 5
template:
  buttons:
    - {text: Shop now, payload: SHOP_NOW}
    - {text: Stop promotions, payload: STOP_PROMOTIONS}
cast: {countries: {IN: 2}}
steps:
  - name: stop
    tap: Stop promotions
    expect: {reply: {contains: unsubscribed, count: 1, within: 5s}}
  - name: browse
    tap: Shop now
    after: 3s
    expect: {reply: {count: 0, within: 1s}}
"""


class AnswersFirst:
    """A webhook on a real socket that answers 200 at once and replies afterwards, from
    another thread (as a well-made handler does): to STOP taps only, or to every tap."""

    def __init__(self, api: MockApi, *, careless: bool) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                value = json.loads(body)["meta_object"]["value"]
                message = value["messages"][0]
                if careless or message["button"]["payload"] == "STOP_PROMOTIONS":
                    # The reply leaves after the answer, a moment later.
                    timer = threading.Timer(0.05, outer.reply, (
                        value["metadata"]["display_phone_number"], message["from"]))
                    outer.timers.append(timer)
                    timer.start()

            def log_message(self, *_: Any) -> None:
                pass

        self.api = api
        self.timers: list[Any] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"

    def reply(self, business: str, user: str) -> None:
        body = {"messaging_object": {"messaging_product": "whatsapp", "to": user,
                                     "type": "text", "text": {"body": "You are unsubscribed."}}}
        httpx.post(self.api.v2_url(business), json=body,
                   headers={"api-key": self.api.options.api_key}, timeout=10)

    def close(self) -> None:
        for timer in self.timers:
            timer.join()
        self.server.shutdown()
        self.server.server_close()


def two_taps_run(careless: bool) -> Any:
    wasim = Simulator(5)
    with wasim.api(statuses=False) as api:
        app = AnswersFirst(api, careless=careless)
        try:
            return wasim.run_scenario(TWO_TAPS, url=app.url)  # at full speed
        finally:
            app.close()


def test_a_reply_sent_after_the_200_counts_for_its_own_tap_at_full_speed() -> None:
    run = two_taps_run(careless=False)
    assert run.summary.ok, run.summary.lines()


def test_a_handler_replying_to_the_wrong_tap_fails_on_that_tap() -> None:
    run = two_taps_run(careless=True)
    assert {(f.step, f.rule) for f in run.summary.failures} == {("browse", "reply")}


# --- latency rules judge the handler's answer time, not wasim's own lag ----------------------

LATENCY = """
name: latency
seed: 3
template:
  buttons: [{text: "Yes", payload: Y}]
cast: {countries: {IN: 3}}
target: {url: "http://127.0.0.1:9/hook"}
expect:
  status: [200]
  max_latency: 1s
"""


def latency_run(handler_s: float, wasim_lag_s: float) -> Any:
    """LATENCY against a transport whose answer takes `handler_s` of the injected timer,
    read `wasim_lag_s` later because wasim's loop ran late (as its lag probe reports)."""
    import asyncio

    from simulator.runner import Summary, run_plan, scenario_delivery
    from simulator.scenarios import parse_scenario

    plan = plan_scenario(parse_scenario(LATENCY, "latency.yaml"))
    now = [1000.0]
    spans: list[tuple[float, float]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        now[0] += handler_s + wasim_lag_s
        return httpx.Response(200)

    def lag(start: float, end: float) -> float:
        spans.append((start, end))
        return wasim_lag_s

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    async def go() -> Summary:
        summary = Summary(plan.scenario.name, plan.seed)
        async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
            async for outcome in run_plan(plan, scenario_delivery(plan, {}, str),
                                          speed=float("inf"), sleep=no_wait, client=client,
                                          timer=lambda: now[0], lag=lag):
                summary.add(outcome)
        return summary

    summary = asyncio.run(go())
    assert len(spans) == 3 and all(end - start >= handler_s for start, end in spans)
    return summary


def test_a_fast_handler_passes_max_latency_however_late_wasim_read_its_answer() -> None:
    summary = latency_run(handler_s=0.005, wasim_lag_s=1.5)
    assert summary.ok, summary.lines()
    assert summary.latencies == [pytest.approx(5.0)] * 3  # the handler's answer time
    assert "wasim's own queueing and lag, up to 1500.0 ms, not counted" in summary.lines()[-1]


def test_a_slow_handler_breaks_max_latency_even_when_wasim_is_on_time() -> None:
    summary = latency_run(handler_s=1.5, wasim_lag_s=0.0)
    assert summary.expectation_failures == {"max_latency": 3}
    assert summary.failures[0].message == "answered in 1500 ms, limit 1000 ms"


def test_a_slow_handler_still_fails_when_wasim_was_late_too() -> None:
    summary = latency_run(handler_s=1.2, wasim_lag_s=0.8)
    assert summary.expectation_failures == {"max_latency": 3}
    assert summary.failures[0].message == \
        "answered in 1200 ms (wasim's own 800 ms not counted), limit 1000 ms"


def test_the_loop_lag_probe_sees_a_hold_up_and_bounds_it_by_one_period() -> None:
    import asyncio

    from simulator.delivery import LoopLag

    now = [0.0]
    late = iter([0.0, 0.0, 0.4, 0.0] + [0.0] * 100)
    woke = asyncio.Event()

    async def sleep(seconds: float) -> None:
        now[0] += seconds + next(late)  # the third wake-up comes 400 ms late
        await asyncio.sleep(0)
        woke.set()

    async def go() -> tuple[float, float]:
        probe = LoopLag(timer=lambda: now[0], sleep=sleep, period=0.005).start()
        while now[0] < 0.5:
            woke.clear()
            await woke.wait()
        probe.stop()
        return probe.during(0.0, now[0]), probe.during(0.45, now[0])

    held, after = asyncio.run(go())
    assert held == pytest.approx(0.405)  # the hold-up, plus the period it may have hidden
    assert after == 0.0  # nothing late since


def test_a_reply_naming_a_taps_message_in_its_context_is_that_taps_whenever_it_comes() -> None:
    from simulator.replies import ReplyBook

    user = "919812345678"

    async def no_sleep(_: float) -> None:
        return None

    def reply(api: MockApi, context: str = "") -> None:
        meta: dict[str, Any] = {"messaging_product": "whatsapp", "to": user, "type": "text",
                                "text": {"body": "ok"}}
        if context:
            meta["context"] = {"message_id": context}
        httpx.post(api.v2_url("918068177179"), json={"messaging_object": meta},
                   headers={"api-key": api.options.api_key}, timeout=10)

    with MockApi(ApiOptions(port=0)) as api:
        book = ReplyBook(api, clock=lambda: 0.0, sleep=no_sleep)
        book.open("A", [user], ["wamid.A"])
        reply(api, "wamid.A")  # #1, in A's window
        book.open("B", [user], ["wamid.B"])
        reply(api, "wamid.A")  # #2: late, but it names A's message
        reply(api)  # #3: no context, in B's window
        assert [m.number for m in book.replies("A", user)] == [1, 2]
        assert [m.number for m in book.replies("B", user)] == [3]
