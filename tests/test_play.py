"""One run lifecycle for every face (simulator.play): the person's layers over the scenario's
target, the send API check, the summary as sends end, and the verdict, through the client seam."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from simulator.errors import ExitCode, WasimError
from simulator.play import Play, play
from simulator.records import SendResult
from simulator.runner import plan_scenario
from simulator.scenarios import parse_scenario

SCENARIO = """
name: lifecycle
seed: 3
template:
  name: t
  body: hi
  buttons: [{text: "Yes", payload: Y}]
cast: {countries: {IN: 3}}
target: {url: "http://127.0.0.1:9/hook", timeout: 5}
steps:
  - who: all
    tap: "Yes"
expect:
  status: [200]
"""


def answering(status: int, seen: list[httpx.Request]) -> httpx.AsyncClient:
    """A client whose transport answers every request with `status`, recording it."""
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json={"ok": status == 200})

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


def refusing() -> httpx.AsyncClient:
    """A client where nothing listens."""
    def handle(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def _no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


@pytest.mark.anyio
async def test_a_correct_handler_is_verdict_0() -> None:
    plan = plan_scenario(parse_scenario(SCENARIO, "l.yaml"))
    seen: list[httpx.Request] = []
    async with answering(200, seen) as client:
        running = await play(plan, client=client, sleep=_no_wait)
    assert running.verdict == ExitCode.OK and running.summary.ok
    assert len(seen) == len(plan.sends) == len(running.results) == 3


@pytest.mark.anyio
async def test_each_result_is_counted_before_the_face_is_told_of_it() -> None:
    plan = plan_scenario(parse_scenario(SCENARIO, "l.yaml"))
    async with answering(200, []) as client:
        running = Play(plan, client=client)
        sent: list[int] = []
        await running.run(speed=float("inf"), sleep=_no_wait,
                          on_result=lambda _: sent.append(running.summary.sent))
    assert sent == [1, 2, 3]


@pytest.mark.anyio
async def test_a_careless_handler_is_verdict_1() -> None:
    plan = plan_scenario(parse_scenario(SCENARIO, "l.yaml"))
    async with answering(500, []) as client:
        running = await play(plan, client=client, sleep=_no_wait)
    assert running.verdict == ExitCode.FAILED
    assert running.summary.expectation_failures["status"] == 3


@pytest.mark.anyio
async def test_nothing_listening_is_verdict_3() -> None:
    plan = plan_scenario(parse_scenario(SCENARIO, "l.yaml"))
    async with refusing() as client:
        running = await play(plan, client=client, sleep=_no_wait)
    assert running.verdict == ExitCode.UNREACHABLE and running.unreachable


def test_the_persons_layers_win_over_the_scenario_and_are_checked_before_sending() -> None:
    plan = plan_scenario(parse_scenario(SCENARIO, "l.yaml"))
    running = Play(plan, ({"timeout": 9.0}, lambda key: f"--{key}"))
    assert running.delivery(plan.sends[0]).timeout == 9.0  # the flag over the file's 5
    assert Play(plan).delivery(plan.sends[0]).timeout == 5.0
    with pytest.raises(WasimError) as caught:
        Play(plan, ({"timeout": -1}, lambda key: f"--{key}"))
    assert caught.value.where == "--timeout"


def test_a_scenario_that_needs_the_send_api_is_refused_with_the_faces_hint() -> None:
    needs = SCENARIO.replace("  status: [200]", "  status: [200]\n  reply: {within: 1s}")
    plan = plan_scenario(parse_scenario(needs, "r.yaml"))
    with pytest.raises(WasimError) as caught:
        Play(plan, api_hint="--api-port 0")
    assert "Start one with --api-port 0" in (caught.value.hint or "")


@pytest.mark.anyio
async def test_an_interrupted_run_keeps_what_it_learned() -> None:
    plan = plan_scenario(parse_scenario(SCENARIO, "l.yaml"))

    def stop_after_first(outcome: SendResult) -> None:
        raise KeyboardInterrupt

    async with answering(200, []) as client:
        running = Play(plan, client=client)
        with pytest.raises(KeyboardInterrupt):
            await running.run(speed=float("inf"), sleep=_no_wait, on_result=stop_after_first)
    assert running.summary.sent == 1 and len(running.results) == 1


# --- the client seam reaches the send API's status callbacks and the terminal UI -------------

def test_the_send_apis_status_callbacks_go_through_the_client_seam() -> None:
    from simulator.delivery import delivery_options_from
    from simulator.sendapi import DEFAULT_API_KEY, ApiOptions, MockApi

    seen: list[httpx.Request] = []
    # Nothing listens on port 9: only the seam can answer these.
    webhook = delivery_options_from({"url": "http://127.0.0.1:9/hook"}, str)
    client = answering(200, seen)
    with MockApi(ApiOptions(port=0), webhook=webhook, client=client) as api:
        answer = httpx.post(api.v2_url("918800000001"), headers={"api-key": DEFAULT_API_KEY},
                            json={"messaging_object": {
                                "messaging_product": "whatsapp", "to": "+919812345678",
                                "type": "text", "text": {"body": "You're unsubscribed"}}})
        assert answer.status_code == 202, answer.text
        statuses = api.wait_for_statuses(3)
    assert [s.status for s in statuses] == ["sent", "delivered", "read"]
    assert all(s.delivered for s in statuses)
    assert [request.url.port for request in seen] == [9, 9, 9]


def test_make_app_takes_the_client_seam() -> None:
    from simulator.tui.app import make_app

    client = answering(200, [])
    app = make_app(url="http://127.0.0.1:9/hook", seed=1, history=None, client=client)
    assert app.settings.client is client
