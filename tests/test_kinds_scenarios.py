"""Scenario steps that send any kind, status sequences with the known disorder as chaos, and
the two built-in scenarios that use them."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.errors import WasimError
from simulator.kinds import summarize
from simulator.receiver import Receiver
from simulator.runner import plan_scenario
from simulator.scenarios import load_scenario, parse_scenario
from simulator.validate import describe_kind, validate_body

HEAD = """
name: t
seed: 3
template:
  name: x
  buttons: [{text: "Yes"}]
cast:
  countries: {IN: 4}
"""


def plan(text: str, seed: int | None = None) -> Any:
    return plan_scenario(parse_scenario(HEAD + text, "t.yaml"), seed)


def documents(planned: Any) -> list[dict[str, Any]]:
    return [json.loads(send.event.body) for send in planned.sends]


def test_a_step_sends_any_kind_with_its_fields() -> None:
    planned = plan("""
steps:
  - send: {text: hi}
  - react: "\\U0001f44d"
  - send: [{image: {caption: "blue?"}}, {kind: location, lat: 1.5, lng: 2.5}]
  - statuses: [sent, {failed: 131047}]
""")
    seen = [summarize(d) for d in documents(planned)]
    assert seen.count("hi") == 4 and seen.count("reacted \U0001f44d") == 4
    assert seen.count("[image] blue?") == 4 and seen.count("[location] 1.5,2.5") == 4
    assert seen.count("[sent] \u2713") == 4 and seen.count("[failed] ! 131047") == 4
    assert all(validate_body(s.event.body) == [] for s in planned.sends)


def test_a_users_sends_name_their_copy_of_the_template() -> None:
    planned = plan("""
steps:
  - tap: "Yes"
  - react: "\\U0001f44d"
  - statuses: [read]
""")
    template = {u: m.wamid for u, m in planned.sent.items()}
    for doc in documents(planned):
        if "status" in doc:
            recipient = doc["meta_object"]["value"]["statuses"][0]["recipient_id"]
            assert doc["message_id"] == template[recipient]
            continue
        message = doc["meta_object"]["value"]["messages"][0]
        replied = message.get("context", {}).get("id") or message["reaction"]["message_id"]
        assert replied == template[message["from"]]


def _sequences(planned: Any) -> dict[str, list[str]]:
    by_user: dict[str, list[str]] = defaultdict(list)
    for doc in documents(planned):
        status = doc["meta_object"]["value"]["statuses"][0]
        by_user[status["recipient_id"]].append(status["status"])
    return by_user


def test_status_disorder_is_the_known_disorder_and_nothing_else() -> None:
    text = """
cast:
  countries: {IN: 60}
steps:
  - statuses: [sent, delivered, read]
chaos:
  status_disorder: 0.5
"""
    planned = plan_scenario(parse_scenario(HEAD.replace("cast:\n  countries: {IN: 4}\n", "")
                                           + text, "t.yaml"), 5)
    shapes = {tuple(seq) for seq in _sequences(planned).values()}
    known = {("sent", "delivered", "read"), ("delivered", "read", "sent"), ("sent", "read")}
    for shape in shapes:
        duplicate = len(shape) == 4 and set(shape) == {"sent", "delivered", "read"}
        failed = shape[:3] == ("sent", "delivered", "read") and shape[3:] == ("failed",)
        assert shape in known or duplicate or failed, shape
    assert len(shapes) >= 4  # the orderly sequence and several disorders
    again = plan_scenario(parse_scenario(HEAD.replace("cast:\n  countries: {IN: 4}\n", "")
                                         + text, "t.yaml"), 5)
    assert [s.event.body for s in again.sends] == [s.event.body for s in planned.sends]


@pytest.mark.parametrize(("step", "fragment"), [
    ("send: {txt: hi}", "no kind named 'txt'"),
    ("send: {text: hi, image: {}}", "give one kind"),
    ("send: {kind: location, lat: 100}", "expected degrees"),
    ("send: {kind: text, colour: red}", "unknown field"),
    ("statuses: [sent, seen]", "unknown status 'seen'"),
    ("statuses: [{read: 131026}]", "read takes no error"),
    ("{tap: 'Yes', send: {text: hi}}", "taps nothing"),
])
def test_a_bad_kind_step_is_a_located_one_line_error(step: str, fragment: str) -> None:
    with pytest.raises(WasimError) as raised:
        plan(f"steps:\n  - {step}\n")
    assert fragment in str(raised.value) and "t.yaml:" in str(raised.value.where)


@pytest.mark.parametrize("name", ["support-chat", "campaign-statuses"])
def test_the_built_in_kind_scenarios_plan_valid_callbacks(name: str) -> None:
    planned = plan_scenario(load_scenario(name))
    assert planned.sends and all(validate_body(s.event.body) == [] for s in planned.sends)


def test_support_chat_sends_every_kind_a_support_handler_meets() -> None:
    planned = plan_scenario(load_scenario("support-chat"))
    kinds = {describe_kind(d) for d in documents(planned)}
    assert kinds == {"a quick-reply tap (button)", "a text message (text)",
                     "a media message (image)", "a location (location)",
                     "an interactive reply (list_reply)", "a reaction (reaction)"}
    assert "removed a reaction" in {summarize(d) for d in documents(planned)}


def test_campaign_statuses_has_disorder_and_failures() -> None:
    sequences = _sequences(plan_scenario(load_scenario("campaign-statuses"))).values()
    assert any(s[-1] == "sent" and "read" in s for s in sequences)  # sent after read
    assert any("failed" in s for s in sequences)


def test_run_delivers_a_kind_scenario_to_a_real_webhook(runner: CliRunner, receiver: Receiver,
                                                        tmp_path: Path) -> None:
    result = runner.invoke(cli, ["run", "campaign-statuses", "--fast", "--url", receiver.url,
                                 "--history", str(tmp_path / "h.jsonl")])
    assert result.exit_code == 0, result.output
    planned = plan_scenario(load_scenario("campaign-statuses"))
    assert len(receiver.arrivals) == len(planned.sends)
    assert all(not a.problems for a in receiver.arrivals)


@pytest.mark.parametrize(("scenario", "kinds"), [
    ("support-chat", {"tap", "text", "image", "location", "list_reply", "reaction"}),
    ("campaign-statuses", {"status"}),
])
def test_a_dry_run_counts_each_step_by_the_kind_it_sends(scenario: str, kinds: set[str]) -> None:
    result = CliRunner().invoke(cli, ["run", scenario, "--dry-run"])
    assert result.exit_code == 0, result.output
    head, *steps = result.stdout.splitlines()[:-1]
    counted: dict[str, int] = {}
    for line in steps:
        for part in line.split(": ", 1)[1].split(", "):
            count, label = part.split(" ")
            name = label.removesuffix("(es)").removesuffix("(s)")
            counted[name] = counted.get(name, 0) + int(count)
    assert counted.keys() == kinds  # statuses and texts are no longer counted as taps
    assert sum(counted.values()) == int(head.split(": ")[1].split(" ")[0])
