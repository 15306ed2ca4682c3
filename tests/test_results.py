"""Results are values: a broken expectation is a Failure (rule, message, where), a run is a
Summary (counts, failures, latency figures), and presenters turn them into text."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET

import httpx
import pytest

from simulator.records import summary_lines
from simulator.reports import json_report, junit_xml
from simulator.runner import (
    Failure,
    SendResult,
    Summary,
    plan_scenario,
    run_plan,
    scenario_delivery,
)
from simulator.scenarios import parse_scenario

SCENARIO = """
name: values
seed: 3
template:
  buttons: [{text: "Yes", payload: Y}, {text: "No", payload: N}]
cast: {countries: {IN: 3}}
target: {url: "http://127.0.0.1:9/hook"}
steps:
  - name: answer
    tap: "Yes"
expect:
  status: [200]
  json: {$.ok: true}
"""


async def _no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


def results(status: int, body: object) -> tuple[list[SendResult], Summary]:
    """Run SCENARIO against a transport that always answers `status` with `body`."""
    return results_of(SCENARIO, status, body)


def results_of(text: str, status: int, body: object = None
               ) -> tuple[list[SendResult], Summary]:
    """Run the scenario `text` against a transport that always answers `status` with `body`."""
    plan = plan_scenario(parse_scenario(text, "values.yaml"))

    async def go() -> tuple[list[SendResult], Summary]:
        client = httpx.AsyncClient(transport=httpx.MockTransport(
            lambda request: httpx.Response(status, json=body)))
        summary = Summary(plan.scenario.name, plan.seed)
        found = []
        async with client:
            async for outcome in run_plan(plan, scenario_delivery(plan, {}, str),
                                          speed=float("inf"), sleep=_no_wait, client=client):
                found.append(outcome)
                summary.add(outcome)
        return sorted(found, key=lambda r: r.planned.index), summary

    return asyncio.run(go())


def test_a_broken_expectation_is_a_value_naming_its_rule_and_its_send() -> None:
    found, _ = results(500, {"ok": False})
    first = found[0]
    assert [f.rule for f in first.broken] == ["status", "json"]
    status = first.broken[0]
    assert status.message == "expected 200, got 500"
    assert (status.step, status.index, status.event) == ("answer", 0, first.planned.event.id)
    assert status.where == "#0 answer"
    assert first.failures == ("status: expected 200, got 500", "json: $.ok is false, expected "
                                                               "true")


def test_the_summary_counts_failures_by_rule_and_keeps_latency_figures() -> None:
    _, summary = results(500, {"ok": False})
    assert (summary.sent, summary.delivered, summary.failed) == (3, 0, 3)
    assert summary.expectation_failures == {"status": 3, "json": 3}
    assert all(isinstance(f, Failure) for f in summary.failures) and len(summary.failures) == 6
    latency = summary.latency
    assert latency.count == 3 and latency.p50 is not None and latency.max is not None
    assert latency.p50 <= latency.p95 <= latency.max  # type: ignore[operator]
    assert not summary.ok


def test_a_run_that_held_has_no_failures_and_says_so() -> None:
    _, summary = results(200, {"ok": True})
    assert summary.ok and summary.failures == [] and summary.expectation_failures == {}
    assert summary_lines(summary)[1] == "expectations: all held"


def test_the_text_summary_lists_rules_and_the_failing_sends_from_the_values() -> None:
    _, summary = results(500, {"ok": False})
    lines = summary_lines(summary)
    assert lines[0] == "values (seed 3): 3 sent, 0 delivered, 3 failed, 3 attempt(s)"
    assert lines[1] == "expectations failed: json 3, status 3"
    assert lines[2].endswith(": delivery: answered 500, not a status that counts as delivered, "
                             "after 1 attempt(s); status: expected 200, got 500; json: $.ok is "
                             "false, expected true")
    assert summary.lines() == lines


def test_a_send_that_failed_only_its_delivery_is_listed_with_its_reason() -> None:
    plan = plan_scenario(parse_scenario(SCENARIO.replace("  status: [200]\n", "").replace(
        "  json: {$.ok: true}\n", "  max_latency: 10s\n"), "values.yaml"))

    async def go() -> Summary:
        client = httpx.AsyncClient(transport=httpx.MockTransport(
            lambda request: httpx.Response(422)))
        summary = Summary(plan.scenario.name, plan.seed)
        async with client:
            async for outcome in run_plan(plan, scenario_delivery(plan, {}, str),
                                          speed=float("inf"), sleep=_no_wait, client=client):
                summary.add(outcome)
        return summary

    summary = asyncio.run(go())
    assert summary.failed == 3 and not summary.failures
    lines = summary_lines(summary)
    assert lines[1] == "expectations: all held, but not every send was delivered:"
    assert all(line.endswith(": delivery: answered 422, not a status that counts as "
                             "delivered, after 1 attempt(s)")
               for line in lines[2:5]), lines


def test_an_expected_refusal_is_a_delivery_not_a_failure() -> None:
    found, summary = results_of(SCENARIO.replace("status: [200]", "status: [200, 422]"), 422)
    assert summary.failed == 0 and [f.rule for f in found[0].broken] == ["json"]


@pytest.mark.parametrize("status", [500, 200])
def test_reports_carry_each_failure_as_rule_and_message(status: int) -> None:
    found, summary = results(status, {"ok": False})
    document = json.loads(json_report(summary, found, 1.0))
    failures = document["sends"][0]["failures"]
    rules = ["status", "json"] if status == 500 else ["json"]
    assert [f["rule"] for f in failures] == rules
    assert failures[-1] == {"rule": "json", "message": "$.ok is false, expected true",
                            "step": "answer", "index": 0, "event": found[0].planned.event.id}
    suite = ET.fromstring(junit_xml(summary, found, 1.0))
    failure = suite.find("testcase/failure")
    assert failure is not None
    # An undelivered send names the delivery first; a delivered one its first broken rule.
    assert failure.get("type") == ("delivery" if status == 500 else "json")
