"""`expect: reply` and `tap_reply` in scenario files, the windows a run watches the send API
through (the runner's clock, woken by the mock's record), and sent messages in the history."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.errors import WasimError
from simulator.history import HistoryWriter, read_history
from simulator.runner import SendResult, plan_scenario, run_plan, scenario_delivery
from simulator.scenarios import ReplyExpectation, TapReplySpec, parse_scenario
from simulator.sendapi import DEFAULT_API_KEY, ApiOptions, MockApi

BASE = """\
name: r
seed: 2
template:
  buttons: [{text: Stop promotions, payload: STOP}]
cast: {countries: {IN: 1}}
target: {url: "http://127.0.0.1:9/hook"}
steps:
  - name: tap
    expect:
      reply: {within: 2s, type: text, contains: unsubscribed}
"""


@pytest.fixture
def api() -> Iterator[MockApi]:
    """A send API on a free port that sends no statuses."""
    with MockApi(ApiOptions(port=0)) as running:
        yield running


def test_reply_expectations_and_tap_reply_steps_are_read_from_the_file() -> None:
    scenario = parse_scenario(BASE + "  - name: buy\n    tap_reply: Track order\n"
                                     "templates: [catalogue]\n", "r.yaml")
    assert scenario.steps[0].expect is not None
    assert scenario.steps[0].expect.reply == ReplyExpectation(2.0, "text", "unsubscribed")
    assert scenario.steps[1].tap_reply == TapReplySpec("Track order", 10.0)
    assert scenario.template_names == ("promo", "catalogue") and scenario.needs_api


@pytest.mark.parametrize(("line", "where", "what"), [
    ("      reply: {within: soon}", "r.yaml:10", "cannot read the duration"),
    ("      reply: {within: 0s}", "r.yaml:10", "longer than 0"),
    ("      reply: {type: txt}", "r.yaml:10", "unknown message type 'txt'"),
    ("      reply: {count: -1}", "r.yaml:10", "whole number"),
    ("      reply: {count: two}", "r.yaml:10", "whole number"),
    ("      reply: {contains: ''}", "r.yaml:10", "empty text"),
    ("      reply: {colour: red}", "r.yaml:10", "unknown key"),
    ("      reply: [text]", "r.yaml:10", "expected a mapping"),
])
def test_every_bad_reply_value_is_one_error_at_its_line(line: str, where: str,
                                                        what: str) -> None:
    text = BASE.replace("      reply: {within: 2s, type: text, contains: unsubscribed}", line)
    with pytest.raises(WasimError) as caught:
        parse_scenario(text, "r.yaml")
    assert caught.value.where == where and what in caught.value.what


@pytest.mark.parametrize(("step", "line", "what"), [
    ("    tap_reply: {button: ''}", 12, "name the button"),
    ("    tap_reply: {button: X, within: never}", 12, "cannot read the duration"),
    ("    tap_reply: {button: X, wait: 2s}", 12, "unknown key"),
    ("    tap_reply: X\n    tap: Stop promotions", 12, "taps nothing else"),
    ("    tap_reply: X\n    duplicate: true", 13, "cannot be duplicated"),
    ("    verify: {verify_token: T, expect: maybe}", 12, "cannot read 'maybe'"),
    ("    verify: {expect: pass}", 12, "verify token"),
])
def test_every_bad_step_value_is_one_error_at_its_line(step: str, line: int, what: str) -> None:
    text = BASE + "  - name: more\n" + step + "\n"
    with pytest.raises(WasimError) as caught:
        parse_scenario(text, "r.yaml")
    assert caught.value.where == f"r.yaml:{line}" and what in caught.value.what


def test_templates_must_be_a_list_of_names() -> None:
    with pytest.raises(WasimError) as caught:
        parse_scenario(BASE + "templates: {a: 1}\n", "r.yaml")
    assert caught.value.where == "r.yaml:11" and "list of template names" in caught.value.what


def test_a_run_that_checks_replies_without_a_send_api_is_refused_at_the_expectations_line(
        tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(BASE)
    result = CliRunner().invoke(cli, ["run", str(path), "--no-history", "--fast"])
    assert result.exit_code == 2
    assert "r.yaml:10: steps[0].expect.reply: the app's replies are checked" in result.stderr
    assert "--api-port 0" in result.stderr


def _run(api: MockApi, on_request: object, sleep: object, clock: object,
         text: str = BASE) -> list[SendResult]:
    plan = plan_scenario(parse_scenario(text, "r.yaml"))

    async def go() -> list[SendResult]:
        client = httpx.AsyncClient(transport=httpx.MockTransport(on_request))  # type: ignore
        async with client:
            return [r async for r in run_plan(plan, scenario_delivery(plan, {}, str),
                                              speed=float("inf"), client=client,
                                              replies=api, sleep=sleep,  # type: ignore
                                              clock=clock)]  # type: ignore

    return asyncio.run(go())


def test_a_reply_that_never_comes_fails_when_the_runners_clock_passes_within(
        api: MockApi) -> None:
    now = [100.0]
    waited: list[float] = []

    async def sleep(seconds: float) -> None:  # the window passes at once, on the fake clock
        waited.append(seconds)
        now[0] += seconds

    [outcome] = _run(api, lambda request: httpx.Response(200), sleep, lambda: now[0])
    [failure] = outcome.broken
    assert failure.rule == "reply" and "within 2 s, got none" in failure.message
    assert waited == [2.0] and now[0] == 102.0


def test_a_reply_wakes_the_waiting_check_without_any_sleep_ending(api: MockApi) -> None:
    async def never(seconds: float) -> None:  # only the mock's record can end the wait
        await asyncio.Event().wait()

    replying: list[threading.Thread] = []

    def answer(request: httpx.Request) -> httpx.Response:
        to = json.loads(request.content)["meta_object"]["value"]["messages"][0]["from"]

        def reply() -> None:  # the app replies after its 200, from elsewhere
            httpx.post(f"{api.base_url}/v2/{api.options.sid}/whatsapp/918800000001/messages",
                       headers={"api-key": DEFAULT_API_KEY},
                       json={"messaging_object": {"to": to, "type": "text",
                                                  "text": {"body": "You're unsubscribed"}}})
        replying.append(threading.Thread(target=reply))
        replying[-1].start()
        return httpx.Response(200)

    [outcome] = _run(api, answer, never, lambda: 0.0)
    # The mock records a send before it answers 202: the check may end before the app's
    # post has its answer, so the app's thread is joined here, before the fixture stops
    # the mock (a stopped mock would cut that answer off, in the thread, after the test).
    for thread in replying:
        thread.join(timeout=30)
    assert outcome.ok and outcome.broken == ()
    assert len(api.sent) == 1


def test_a_reply_to_a_username_only_users_bsuid_counts_as_their_reply(api: MockApi) -> None:
    text = BASE.replace("cast: {countries: {IN: 1}}",
                        "cast: {countries: {IN: 1}, identity: username}")
    seen: list[dict[str, object]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        [message] = json.loads(request.content)["meta_object"]["value"]["messages"]
        seen.append(message)
        # As pywa 4.5 does: the reply goes to the BSUID (this user has no number to reply to).
        sent = httpx.post(api.v2_url("918800000001"), headers={"api-key": DEFAULT_API_KEY},
                          json={"messaging_object": {"to": message["from_user_id"],
                                                     "type": "text",
                                                     "text": {"body": "You're unsubscribed"}}})
        assert sent.status_code == 202
        return httpx.Response(200)

    now = [0.0]

    async def sleep(seconds: float) -> None:  # the reply is recorded before the 200
        now[0] += seconds

    [outcome] = _run(api, answer, sleep, lambda: now[0], text)
    [message] = seen
    assert "from" not in message and str(message["from_user_id"]).startswith("IN.")
    assert outcome.ok and outcome.broken == ()
    [sent] = api.sent
    assert (sent.to, sent.to_kind) == (message["from_user_id"], "bsuid")


def test_a_reply_to_another_users_bsuid_is_not_their_reply(api: MockApi) -> None:
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    def answer(request: httpx.Request) -> httpx.Response:
        httpx.post(api.v2_url("918800000001"), headers={"api-key": DEFAULT_API_KEY},
                   json={"messaging_object": {"to": "IN.999", "type": "text",
                                              "text": {"body": "You're unsubscribed"}}})
        return httpx.Response(200)

    [outcome] = _run(api, answer, sleep, lambda: now[0])
    [failure] = outcome.broken
    assert failure.rule == "reply" and "got none" in failure.message
    # The user is named by number and BSUID: the app may know them only by the latter.
    user = outcome.planned.tap.user
    assert f"to {user.wa_id} ({user.user_id}) within" in failure.message


def test_a_reply_with_a_template_the_scenario_does_not_define_fails_naming_it() -> None:
    text = BASE.replace("{within: 2s, type: text, contains: unsubscribed}",
                        "{within: 2s, template: catalogue}")
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    # The mock knows the scenario's templates (promo): as Kaleyra, it accepts catalogue.
    with MockApi(ApiOptions(port=0, templates=("promo",))) as api:
        def answer(request: httpx.Request) -> httpx.Response:
            to = json.loads(request.content)["meta_object"]["value"]["messages"][0]["from"]
            sent = httpx.post(api.v2_url("918800000001"), headers={"api-key": DEFAULT_API_KEY},
                              json={"messaging_object": {"to": to, "type": "template",
                                                         "template": {"name": "catalogue"}}})
            assert sent.status_code == 202
            return httpx.Response(200)

        [outcome] = _run(api, answer, sleep, lambda: now[0], text)
    [failure] = outcome.broken
    assert failure.rule == "reply"
    assert failure.message.startswith(
        "the app sent template 'catalogue', which the scenario does not define: Kaleyra "
        "accepts it and reports it failed (132001")
    assert "got none" in failure.message


def test_sent_messages_are_kept_in_the_history_without_secrets_and_shown_as_sent(
        api: MockApi, tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    writer = HistoryWriter(history)
    with MockApi(ApiOptions(port=0), on_sent=writer.append_sent) as mock:
        answer = httpx.post(mock.v1_url(), data={
            "api-key": DEFAULT_API_KEY, "channel": "whatsapp", "from": "918800000001",
            "to": "919812345678", "type": "text", "body": "You're unsubscribed"})
        assert answer.status_code == 202
    writer.close()
    text = history.read_text()
    assert DEFAULT_API_KEY not in text
    [sent] = read_history(history).sent
    assert (sent.to, sent.type, sent.text, sent.version) == ("919812345678", "text",
                                                             "You're unsubscribed", "v1")
    shown = CliRunner().invoke(cli, ["history", "--history", str(history)])
    assert shown.exit_code == 0, shown.output
    assert "sent text" in shown.stdout and "919812345678" in shown.stdout
    as_json = CliRunner().invoke(cli, ["history", "--history", str(history), "--json"])
    assert json.loads(as_json.stdout)["kind"] == "sent"


def test_a_sent_message_that_fails_keeps_its_error_and_recipient_kind_and_history_shows_it(
        tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    writer = HistoryWriter(history)
    with MockApi(ApiOptions(port=0, templates=("catalogue",)),
                 on_sent=writer.append_sent) as mock:
        for to, template in (("IN.1410018717833190", "no_such_template"),
                             ("919812345678", "catalogue")):
            answer = httpx.post(mock.v1_url(), data={
                "api-key": DEFAULT_API_KEY, "channel": "whatsapp", "from": "918800000001",
                "to": to, "type": "template", "template_name": template})
            assert answer.status_code == 202  # accepted, as Kaleyra does; it fails later
    writer.close()
    missing, known = read_history(history).sent
    assert (missing.to_kind, missing.error) == ("bsuid", 132001)
    assert (known.to_kind, known.error) == ("number", 0)
    shown = CliRunner().invoke(cli, ["history", "--history", str(history)],
                               env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    [failing] = [line for line in shown.stdout.splitlines() if "no_such_template" in line]
    assert "fails 132001" in failing
    assert shown.stdout.count("fails") == 1  # the defined template's row says nothing of it


def test_sent_records_written_before_to_kind_and_error_were_kept_still_read(
        tmp_path: Path) -> None:
    history = tmp_path / "old.jsonl"
    history.write_text(json.dumps({
        "v": 1, "kind": "sent", "at": 1_767_225_600.5, "version": "v2",
        "business": "918800000001", "to": "919812345678", "type": "text", "text": "Hi",
        "template": "", "buttons": [], "context_id": "", "message_id": "m", "wamid": "w"})
        + "\n" + json.dumps({"v": 1, "kind": "sent", "at": 1.0, "version": "v2",
                             "business": "1", "to": "2", "type": "text", "text": "",
                             "to_kind": "email", "error": "soon"}) + "\n")
    read = read_history(history)
    [old] = read.sent
    assert (old.to, old.to_kind, old.error) == ("919812345678", "number", 0)
    assert len(read.warnings) == 1 and "to_kind is not number or bsuid" in read.warnings[0]
