"""One orchestration for every face: the runner and the plugin send through one client seam."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from simulator.delivery import delivery_options_from
from simulator.runner import deliver_events, plan_scenario, run_plan, scenario_delivery
from simulator.scenarios import parse_scenario
from simulator.testing import Simulator

SCENARIO = """
name: seam
seed: 3
template:
  name: t
  body: hi
  buttons: [{text: "Yes", payload: Y}, {text: "No", payload: N}]
cast: {countries: {IN: 3}}
target: {url: "http://127.0.0.1:9/hook"}
steps:
  - who: all
    tap: "Yes"
expect:
  status: [200]
"""


def answering(statuses: list[int], seen: list[httpx.Request]) -> httpx.AsyncClient:
    """A client whose transport answers each request with the next status, recording it."""
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(statuses[(len(seen) - 1) % len(statuses)], json={"ok": True})

    return httpx.AsyncClient(transport=httpx.MockTransport(handle))


async def _no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


@pytest.mark.anyio
async def test_run_plan_sends_every_planned_body_through_the_given_client() -> None:
    plan = plan_scenario(parse_scenario(SCENARIO, "seam.yaml"))
    seen: list[httpx.Request] = []
    async with answering([200], seen) as client:
        results = [r async for r in run_plan(plan, scenario_delivery(plan, {}, str),
                                             speed=float("inf"), sleep=_no_wait, client=client)]
    assert sorted(r.content for r in seen) == sorted(s.event.body for s in plan.sends)
    assert all(r.ok for r in results)


@pytest.mark.anyio
async def test_an_answer_outside_the_expectation_is_a_failure_value_not_an_exception() -> None:
    plan = plan_scenario(parse_scenario(SCENARIO, "seam.yaml"))
    seen: list[httpx.Request] = []
    async with answering([500], seen) as client:
        results = [r async for r in run_plan(plan, scenario_delivery(plan, {}, str),
                                             speed=float("inf"), sleep=_no_wait, client=client)]
    assert len(results) == len(plan.sends)
    assert all(r.failures and "500" in " ".join(r.failures) for r in results)


@pytest.mark.anyio
async def test_deliver_events_retries_through_the_same_client() -> None:
    plan = plan_scenario(parse_scenario(SCENARIO, "seam.yaml"))
    options = delivery_options_from({"url": "http://127.0.0.1:9/hook", "retries": 1,
                                     "backoff": 0}, str)
    seen: list[httpx.Request] = []
    async with answering([503, 200], seen) as client:
        results = [r async for r in deliver_events([plan.sends[0].event], options,
                                                   sleep=_no_wait, client=client)]
    assert [a.status for a in results[0].attempts] == [503, 200]
    assert len(seen) == 2 and seen[0].content == seen[1].content


def test_the_plugin_delivers_through_the_client_it_is_given() -> None:
    seen: list[httpx.Request] = []
    wasim = Simulator(5, client=answering([202], seen))
    wasim.target(url="http://127.0.0.1:9/hook")
    tap = wasim.tap("Shop now")
    delivery = wasim.deliver(tap)
    assert delivery.status == 202
    assert len(seen) == 1 and json.loads(seen[0].content) == tap.document


def test_the_plugin_runs_a_scenario_through_the_client_it_is_given(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "seam.yaml"
    path.write_text(SCENARIO)
    seen: list[httpx.Request] = []
    wasim = Simulator(5, client=answering([200], seen))
    run = wasim.run_scenario(path)
    assert run.ok and len(seen) == len(run.results)


def test_nothing_listening_is_one_error_with_the_scheme_s_port() -> None:
    from simulator.delivery import nothing_listening
    from simulator.errors import ExitCode

    assert "127.0.0.1:443." in nothing_listening("https://127.0.0.1/hook").one_line()
    error = nothing_listening("http://127.0.0.1/hook")
    assert "127.0.0.1:80." in error.one_line() and error.exit_code == ExitCode.UNREACHABLE
