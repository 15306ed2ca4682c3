"""Running scenarios: every built-in one is green at a real receiver, chaos is observable,
expectations fail loudly, and the same seed replays byte for byte."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.receiver import Receiver, ReceiverOptions
from simulator.runner import Summary, plan_scenario, run_plan, scenario_delivery
from simulator.scenarios import builtin_scenarios, load_scenario, parse_scenario
from simulator.sendapi import ApiOptions, MockApi
from simulator.validate import validate_callback

SMALL = """\
name: small
seed: 5
template:
  buttons: [Shop now, Stop promotions]
cast:
  countries: {{IN: 12}}
steps:
  - name: wave
    spread: 10s
{extra}
"""


def run(scenario_text: str, url: str, speed: float = math.inf, **flags: str) -> Summary:
    scenario = parse_scenario(scenario_text, "t.yaml")
    plan = plan_scenario(scenario)
    delivery = scenario_delivery(plan, {"url": url, **flags}, lambda k: k)

    async def go() -> Summary:
        summary = Summary(scenario.name, plan.seed)
        async for outcome in run_plan(plan, delivery, speed=speed):
            summary.add(outcome)
        return summary

    return asyncio.run(go())


@pytest.mark.parametrize("path", builtin_scenarios(), ids=lambda p: p.stem)
def test_every_built_in_scenario_runs_green_and_sends_only_valid_payloads(
        path: Path, receiver: Receiver) -> None:
    with contextlib.ExitStack() as stack:
        _run_built_in(path, receiver, stack)


def _run_built_in(path: Path, receiver: Receiver, stack: contextlib.ExitStack) -> None:
    """Run one built-in scenario against the receiver (one checking signatures if it forges)."""
    scenario = load_scenario(path)
    plan = plan_scenario(scenario)
    # Every rule of the scenario is checked except its latency limit: how fast a shared,
    # noisy CI machine answers is not behaviour (test_slow_answers_break_max_latency covers
    # that the rule works).
    # Nor its reply rules: the receiver never replies (tests/examples/test_scenario_replies.py
    # runs forged-signatures against an app that does); a send API runs, as the run requires.
    plan = replace(plan, sends=tuple(replace(s, expect=replace(s.expect, max_latency_ms=None,
                                                               reply=None))
                                     for s in plan.sends))
    api = stack.enter_context(MockApi(ApiOptions(port=0))) if scenario.needs_api else None
    forged = {s.name for s in scenario.steps if s.target.get("signature")}
    if forged:  # signature cases need the app's secret, and a webhook that checks it
        receiver = stack.enter_context(Receiver(ReceiverOptions(port=0, app_secret="s3cret")))
    delivery = scenario_delivery(plan, {"url": receiver.url, "app_secret": "s3cret"},
                                 lambda k: k)

    async def go() -> Summary:
        summary = Summary(scenario.name, plan.seed)
        async for outcome in run_plan(plan, delivery, speed=math.inf, replies=api):
            summary.add(outcome)
        return summary

    summary = asyncio.run(go())
    assert summary.ok, summary.lines()
    assert summary.sent == len(plan.sends) > 0
    arrivals = receiver.wait_for(len(plan.sends))
    assert [a.status for a in arrivals].count(401) == \
        sum(s.step in forged for s in plan.sends)  # each forged one refused, the rest taken
    assert [a.problems for a in arrivals if a.problems and a.status != 401] == []
    assert Counter(a.body for a in arrivals) == Counter(s.event.body for s in plan.sends)


def test_the_same_scenario_and_seed_plan_identical_bodies_in_identical_order() -> None:
    for path in builtin_scenarios():
        first, second = (plan_scenario(load_scenario(path)) for _ in range(2))
        assert [s.event.body for s in first.sends] == [s.event.body for s in second.sends]
        assert [s.at for s in first.sends] == [s.at for s in second.sends]


def test_a_different_seed_plans_different_bodies() -> None:
    scenario = load_scenario(builtin_scenarios()[0])
    assert plan_scenario(scenario, seed=1).sends[0].event.body != \
        plan_scenario(scenario, seed=2).sends[0].event.body


def test_two_runs_arrive_in_the_same_order_byte_for_byte() -> None:
    orders = []
    for _ in range(2):
        with Receiver(ReceiverOptions(port=0)) as receiver:
            run(SMALL.format(extra=""), receiver.url)
            orders.append([a.body for a in receiver.arrivals])
    assert orders[0] == orders[1] and len(orders[0]) == 12


def test_payload_timestamps_follow_the_timeline() -> None:
    plan = plan_scenario(parse_scenario(SMALL.format(extra=""), "t.yaml"), start=1_767_225_600)
    stamps = [int(s.tap.timestamp) for s in plan.sends]
    assert stamps == sorted(stamps)
    assert all(1_767_225_600 <= t <= 1_767_225_610 for t in stamps)


def test_duplicates_arrive_with_identical_bytes(receiver: Receiver) -> None:
    summary = run(load_scenario("idempotency-check").path.read_text(), receiver.url)
    assert summary.ok
    counts = Counter(a.body for a in receiver.arrivals)
    assert len(counts) == 10 and set(counts.values()) == {2}


def test_concurrent_duplicates_are_in_flight_together() -> None:
    text = SMALL.format(extra="    who: 1\n    duplicate: concurrently\n    concurrency: 1\n")
    with Receiver(ReceiverOptions(port=0, delay=0.5)) as slow:
        summary = run(text, slow.url)
        first, second = slow.arrivals
    assert summary.ok and first.body == second.body
    # The copy arrived before the first was answered (0.5 s after it arrived): the two were
    # in flight together. One after the other, it could only arrive after that answer.
    assert second.received_at < first.received_at + 0.5


def test_a_shuffle_changes_arrival_order_but_not_what_arrives() -> None:
    with Receiver(ReceiverOptions(port=0)) as plain:
        run(SMALL.format(extra=""), plain.url)
    with Receiver(ReceiverOptions(port=0)) as shuffled:
        run(SMALL.format(extra="chaos:\n  shuffle: 6\n"), shuffled.url)
    before, after = ([a.body for a in r.arrivals] for r in (plain, shuffled))
    assert before != after and sorted(before) == sorted(after)


def test_a_late_redelivery_arrives_after_its_delay() -> None:
    text = SMALL.format(extra="    who: 1\nchaos:\n  redeliver: 1.0\n  redeliver_after: 30s\n")
    planned = plan_scenario(parse_scenario(text, "t.yaml")).sends
    assert [(s.kind, s.event.id) for s in planned] == [("tap", planned[0].event.id),
                                                       ("redelivery", planned[0].event.id)]
    assert planned[1].at - planned[0].at == 30
    # The scenario clock is injected: the runner may only send the redelivery once its clock
    # has reached the planned moment, however fast or slow this machine is.
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0)

    with Receiver(ReceiverOptions(port=0)) as receiver:
        scenario = parse_scenario(text, "t.yaml")
        plan = plan_scenario(scenario)
        delivery = scenario_delivery(plan, {"url": receiver.url}, lambda k: k)

        async def go() -> None:
            async for _ in run_plan(plan, delivery, speed=1.0, sleep=sleep,
                                    clock=lambda: now[0]):
                pass

        asyncio.run(go())
        assert len(receiver.wait_for(2)) == 2
        original, late = receiver.arrivals
    assert original.body == late.body
    assert now[0] == pytest.approx(planned[1].at)  # the runner waited out the 30 s


def test_per_step_targets_send_each_step_to_its_own_url() -> None:
    with Receiver(ReceiverOptions(port=0)) as first, Receiver(ReceiverOptions(port=0)) as second:
        text = (SMALL.format(extra=f"  - name: other\n    who: 2\n    target:\n"
                                   f"      url: {second.url}\n")
                + f"target:\n  url: {first.url}\n")
        scenario = parse_scenario(text, "t.yaml")
        plan = plan_scenario(scenario)
        delivery = scenario_delivery(plan, {}, lambda k: k)

        async def go() -> None:
            async for _ in run_plan(plan, delivery, speed=math.inf):
                pass

        asyncio.run(go())
        assert (len(first.arrivals), len(second.arrivals)) == (12, 2)


def test_a_failing_expectation_exits_1_with_a_summary_line_and_a_junit_failure(
        tmp_path: Path) -> None:
    path = tmp_path / "strict.yaml"
    path.write_text(SMALL.format(extra="expect:\n  status: [200]\n  json:\n"
                                       "    $.received: true\n"))
    junit, report = tmp_path / "junit.xml", tmp_path / "results.json"
    with Receiver(ReceiverOptions(port=0, status=202)) as receiver:
        result = CliRunner().invoke(cli, ["run", str(path), "--url", receiver.url, "--fast",
                                          "--no-history", "--report", str(junit),
                                          "--report", str(report)])
    assert result.exit_code == 1, result.output
    assert "expectations failed: status 12" in result.stdout
    suite = ET.parse(junit).getroot()
    assert (suite.get("tests"), suite.get("failures")) == ("12", "12")
    failure = suite.find("testcase/failure")
    assert failure is not None and failure.get("message") == "status: expected 200, got 202"
    document = json.loads(report.read_text())
    assert document["summary"]["expectation_failures"] == {"status": 12}
    assert [f["rule"] + ": " + f["message"] for f in document["sends"][0]["failures"]] \
        == ["status: expected 200, got 202"]


def test_slow_answers_break_max_latency() -> None:
    with Receiver(ReceiverOptions(port=0, delay=0.2)) as slow:
        summary = run(SMALL.format(extra="    who: 2\nexpect:\n  max_latency: 50ms\n"),
                      slow.url)
    assert summary.expectation_failures == {"max_latency": 2}
    assert not summary.ok


def test_json_and_body_expectations_hold_against_the_receivers_answer(
        receiver: Receiver) -> None:
    summary = run(SMALL.format(extra="expect:\n  body_contains: received\n  json:\n"
                                     "    $.received: true\n"), receiver.url)
    assert summary.ok, summary.lines()


def test_the_cli_run_prints_lines_and_a_summary_and_records_history(
        tmp_path: Path, receiver: Receiver, without_latency_limit: Callable[[str], Path]) -> None:
    history = tmp_path / "h.jsonl"
    scenario = str(without_latency_limit("appointment-reminder"))
    result = CliRunner().invoke(cli, ["run", scenario, "--url", receiver.url,
                                      "--fast", "--history", str(history)])
    assert result.exit_code == 0, result.output
    assert "appointment-reminder (seed 31): 38 sent, 38 delivered, 0 failed" in result.stdout
    assert "latency p50" in result.stdout
    assert len(history.read_text().splitlines()) == 38


def test_command_line_target_overrides_the_scenarios(tmp_path: Path, receiver: Receiver) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SMALL.format(extra="") + "target:\n  url: http://127.0.0.1:9/nowhere\n")
    result = CliRunner().invoke(cli, ["run", str(path), "--url", receiver.url, "--fast",
                                      "--no-history"])
    assert result.exit_code == 0, result.output
    assert len(receiver.arrivals) == 12


def test_nothing_listening_exits_3_after_writing_the_report(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = CliRunner().invoke(cli, ["run", "idempotency-check", "--url",
                                      "http://127.0.0.1:9/", "--fast", "--no-history",
                                      "--report", str(report)])
    assert result.exit_code == 3
    assert "Nothing is listening on 127.0.0.1:9" in result.stderr
    assert json.loads(report.read_text())["summary"]["unreachable"] == 20


def test_wait_for_url_gives_up_with_exit_3() -> None:
    result = CliRunner().invoke(cli, ["run", "idempotency-check", "--url",
                                      "http://127.0.0.1:9/", "--wait-for-url",
                                      "--wait-timeout", "0.3", "--no-history"])
    assert result.exit_code == 3
    assert "did not accept connections within 0.3 s" in result.stderr


def test_wait_for_url_waits_for_a_webhook_that_starts_late() -> None:
    import threading

    late = Receiver(ReceiverOptions(port=0))
    late.start()
    url, port = late.url, late.port
    late.stop()  # the port is known and free; start it again shortly
    again = Receiver(ReceiverOptions(port=port))
    timer = threading.Timer(0.5, again.start)
    timer.start()
    try:
        result = CliRunner().invoke(cli, ["run", "idempotency-check", "--url", url,
                                          "--wait-for-url", "--fast", "--no-history"])
        assert result.exit_code == 0, result.output
        assert len(again.arrivals) == 20
    finally:
        timer.join()
        again.stop()


def test_a_dry_run_sends_nothing(receiver: Receiver) -> None:
    result = CliRunner().invoke(cli, ["run", "burst-1000", "--url", receiver.url, "--dry-run"])
    assert result.exit_code == 0
    assert "all 1000 payload(s) valid" in result.stdout
    assert receiver.arrivals == []
    for line in result.stdout.splitlines():
        assert "$." not in line  # no validation problem was printed


def test_every_planned_body_is_valid_for_every_built_in_scenario() -> None:
    for path in builtin_scenarios():
        for send in plan_scenario(load_scenario(path)).sends:
            assert validate_callback(json.loads(send.event.body)) == [], path


def test_deliver_events_sends_in_order_and_marks_replays(receiver: Receiver) -> None:
    from simulator.delivery import DeliveryOptions, Event, url_target
    from simulator.runner import deliver_events

    events = [Event.from_body(b'{"n":1}'), Event.from_body(b'{"n":2}')]

    async def go() -> list[object]:
        options = DeliveryOptions(target=url_target(receiver.url))
        return [r async for r in deliver_events(events, options,
                                                replay_of={events[1].id: "dlv_old"})]

    results = asyncio.run(go())
    assert [a.body for a in receiver.arrivals] == [b'{"n":1}', b'{"n":2}']
    assert [r.attempts[0].replay_of for r in results] == [None, "dlv_old"]  # type: ignore[attr-defined]
