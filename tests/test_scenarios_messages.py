"""Several messages of the brand's in one scenario (`messages:`, a step's `message:`) and
replies that quote one (`quote: true`): each message is its own wamid per user, every step
about it carries that wamid, a new run draws new ones, and a bad name is a one-line error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.errors import WasimError
from simulator.runner import plan_scenario
from simulator.scenarios import parse_scenario
from simulator.validate import validate_callback
from simulator.wamid import decode_wamid
from simulator.world import new_run_id

SCENARIO = """\
name: threads
seed: 5
template:
  buttons: [Shop now, Stop]
messages: [offer, reminder]
cast:
  users:
    - {wa_id: "919845012345", name: Asha Menon}
    - {wa_id: "14155550123", name: Sam Lee}
  identity: phone
steps:
  - name: offer statuses
    statuses: [sent, delivered, read]
  - name: taps the offer
    tap: Shop now
  - name: reminder statuses
    message: reminder
    statuses: [sent, read]
  - name: taps the reminder
    message: reminder
    tap: Stop
  - name: quotes the offer
    message: offer
    send: {text: {text: "still on?", quote: true}}
  - name: quotes the reminder
    message: reminder
    send: [{image: {caption: this, quote: true}}, {location: {quote: true}},
           {contacts: {quote: true}}, {audio: {quote: true}}]
  - name: reacts to the reminder
    message: reminder
    react: "\\U0001F44D"
  - name: plain text
    send: {text: no quote}
"""


def _message(body: bytes) -> dict[str, Any]:
    document = json.loads(body)
    value = document["meta_object"]["value"]
    found: dict[str, Any] = (value.get("messages") or value.get("statuses"))[0]
    return found


def _about(body: bytes) -> str:
    """The brand's message a callback is about: its context, reaction or status id."""
    message = _message(body)
    if "status" in message:
        return str(message["id"])
    if "reaction" in message:
        return str(message["reaction"]["message_id"])
    return str(message.get("context", {}).get("id", ""))


def _threads(run: str = "") -> dict[tuple[str, str], set[str]]:
    plan = plan_scenario(parse_scenario(SCENARIO, "threads.yaml", env={}), run=run)
    found: dict[tuple[str, str], set[str]] = {}
    for send in plan.sends:
        assert validate_callback(json.loads(send.event.body), now=int(send.tap.timestamp)) \
            == [], send.step
        found.setdefault((send.tap.user.wa_id, send.step), set()).add(_about(send.event.body))
    return found


def test_each_named_message_is_its_own_wamid_and_every_step_about_it_carries_it() -> None:
    threads = _threads()
    users = {user for user, _ in threads}
    assert len(users) == 2
    offers, reminders = set(), set()
    for user in users:
        def one(step: str, user: str = user) -> str:
            ids = threads[(user, step)]
            assert len(ids) == 1, (step, ids)
            return next(iter(ids))

        offer, reminder = one("offer statuses"), one("reminder statuses")
        assert offer != reminder
        for step in ("taps the offer", "quotes the offer"):
            assert one(step) == offer, step
        for step in ("taps the reminder", "quotes the reminder", "reacts to the reminder"):
            assert one(step) == reminder, step
        assert one("plain text") == ""
        for wamid in (offer, reminder):
            decoded = decode_wamid(wamid)
            assert decoded.from_business and decoded.customer == user
        offers.add(offer)
        reminders.add(reminder)
    assert len(offers | reminders) == 4  # each user's copy of each message is their own


def test_a_quote_is_a_reply_context_from_the_business() -> None:
    plan = plan_scenario(parse_scenario(SCENARIO, "threads.yaml", env={}))
    quoted = [s for s in plan.sends if s.step in ("quotes the offer", "quotes the reminder")]
    assert {_message(s.event.body)["type"] for s in quoted} == {
        "text", "image", "location", "contacts", "audio"}
    for send in quoted:
        context = _message(send.event.body)["context"]
        assert context == {"from": plan.business.display_phone_number,
                           "id": send.tap.template.wamid}
    plain = next(s for s in plan.sends if s.step == "plain text")
    assert "context" not in _message(plain.event.body)


def test_a_new_run_draws_new_ids_and_the_seeds_run_is_reproduced() -> None:
    first, again, fresh = _threads(), _threads(), _threads(new_run_id())
    assert first == again
    ids = {i for group in first.values() for i in group} - {""}
    fresh_ids = {i for group in fresh.values() for i in group} - {""}
    assert len(ids) == len(fresh_ids) == 4 and not ids & fresh_ids


def test_one_message_declared_plans_the_same_bytes_as_none() -> None:
    plain = SCENARIO.replace("messages: [offer, reminder]\n", "").replace(
        "    message: reminder\n", "").replace("    message: offer\n", "")
    named = plain.replace("steps:\n", "messages: [only]\nsteps:\n")
    assert [s.event.body for s in plan_scenario(parse_scenario(plain, "a.yaml", env={})).sends] \
        == [s.event.body for s in plan_scenario(parse_scenario(named, "a.yaml", env={})).sends]


@pytest.mark.parametrize(("text", "line", "fragment"), [
    (SCENARIO.replace("message: reminder\n    tap: Stop", "message: remindr\n    tap: Stop"),
     20, "steps[3].message: no message named 'remindr'; the scenario's messages are 'offer', "
         "'reminder'"),
    (SCENARIO.replace("messages: [offer, reminder]\n", ""), 16,
     "no message named 'reminder': the scenario declares no messages"),
    (SCENARIO.replace("[offer, reminder]", "[offer, offer]"), 5,
     "messages[1]: the message name 'offer' is used twice"),
    (SCENARIO.replace("[offer, reminder]", "[]"), 5, "expected a list of message names"),
    (SCENARIO.replace("tap: Shop now", "tap_reply: BUY\n    message: offer"), 16,
     "a tap_reply step answers no message"),
    (SCENARIO.replace('text: "still on?", quote: true', 'text: x, quote: 1'), 24,
     "quote: expected true or false"),
    (SCENARIO.replace('text: "still on?", quote: true',
                      'text: x, quote: true, forwarded: forwarded'), 24,
     "a forwarded message quotes nothing"),
], ids=["unknown name", "none declared", "twice", "empty", "tap_reply", "quote not a flag",
        "forwarded quote"])
def test_a_bad_message_or_quote_is_one_line_with_file_and_line(
        tmp_path: Path, text: str, line: int, fragment: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(path), "--dry-run"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0] and f"bad.yaml:{line}" in lines[0], lines[0]
    assert "Traceback" not in result.output


def test_the_hand_written_scenario_passes_dry_run(tmp_path: Path) -> None:
    path = tmp_path / "threads.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    result = CliRunner().invoke(cli, ["run", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "payload(s) valid" in result.stdout


def test_render_quotes_the_template_message() -> None:
    result = CliRunner().invoke(cli, ["render", "--seed", "2", "--kind", "text", "--quote"])
    assert result.exit_code == 0, result.output
    message = json.loads(result.stdout)["meta_object"]["value"]["messages"][0]
    assert set(message["context"]) == {"from", "id"}
    assert decode_wamid(message["context"]["id"]).from_business
    with pytest.raises(WasimError, match="quote"):
        parse_scenario(SCENARIO.replace("{contacts: {quote: true}}", "{contacts: {quote: 1}}"),
                       "t.yaml", env={})


@pytest.mark.parametrize("kind", ["text", "image", "audio", "location", "contacts"])
def test_pywa_reads_a_quote_as_a_reply_to_the_brands_message(kind: str) -> None:
    """A real framework judges the quote: pywa's reply_to_message is the brand's wamid."""
    pytest.importorskip("pywa")
    from simulator.testing import Simulator
    from tests.test_kinds_pywa import deliver

    wasim = Simulator(8, wall_clock=False)
    quoted = wasim.send(kind, quote=True)
    parsed, message = deliver(wasim, quoted)
    assert parsed == "Message" and message.is_reply
    assert message.reply_to_message is not None
    assert message.reply_to_message.id == quoted.document["meta_object"]["value"][
        "messages"][0]["context"]["id"] == quoted.tap.template.wamid
    _, plain = deliver(wasim, wasim.send(kind))
    assert plain.reply_to_message is None


def test_load_taps_answer_the_message_its_first_step_names() -> None:
    """`wasim load --scenario` taps as the first step does, so a first step's `message:` is
    the message every tap of the load answers (not the template message)."""
    from simulator.load import CallbackSource

    text = SCENARIO.replace(
        "steps:\n", "steps:\n  - name: load taps the reminder\n    message: reminder\n"
                    "    tap: Stop\n", 1)
    scenario = parse_scenario(text, "threads.yaml")
    plan = plan_scenario(scenario)
    reminder = {send.tap.user.wa_id: send.tap.template.wamid for send in plan.sends
                if send.step == "load taps the reminder"}
    offer = {wa_id: sent.wamid for wa_id, sent in plan.sent.items()}
    assert set(reminder) == set(offer) and all(reminder[u] != offer[u] for u in offer)
    source = CallbackSource.from_scenario(scenario)
    for _ in range(20):
        tap, body = source.next()
        assert tap.template.wamid == reminder[tap.user.wa_id]
        assert _message(body)["context"]["id"] == reminder[tap.user.wa_id]  # on the wire
