"""Scenarios check the app's replies: `expect: reply` against what the send API recorded,
`tap_reply` steps that tap the app's own buttons, Meta batches answered message by message."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import fastapi_replies as handler
import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.errors import WasimError
from simulator.scenarios import load_scenario
from simulator.sendapi import MockApi
from simulator.testing import ScenarioRun, Simulator

FORGED = ("missing", "wrong-secret", "reserialized", "bad-format")

CONVERSATION = """
name: conversation
seed: 4
template:
  name: summer_sale
  buttons:
    - {text: Shop now, payload: SHOP_NOW}
    - {text: Stop promotions, payload: STOP_PROMOTIONS}
templates: [catalogue]
cast: {countries: {IN: 3}}
steps:
  - name: opt out
    tap: Stop promotions
    duplicate: true
    expect:
      reply: {type: text, contains: unsubscribed, count: 1, within: 2s}
  - name: shop
    tap: Shop now
    expect:
      reply: {type: template, template: catalogue, count: 1}
  - name: buy
    tap_reply: {button: BUY, within: 5s}
    expect:
      reply: {type: text, contains: added, count: 1}
expect:
  status: [200]
"""

BATCHED = """
name: batched
seed: 9
template:
  buttons: [{text: Stop promotions, payload: STOP_PROMOTIONS}]
cast: {countries: {IN: 6}}
chaos: {batch: 1.0, batch_size: 3}
expect:
  status: [200]
  reply: {type: text, contains: unsubscribed, count: 1}
"""


@pytest.fixture
def kaleyra(wasim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Iterator[MockApi]:
    """The example app in-process at /webhook, replying through a local send API."""
    for store in (handler.handled, handler.statuses, handler.taps):
        store.clear()
    for key, value in (("version", "v2"), ("dedupe", True), ("times", 1),
                       ("first_only", False), ("app_secret", None), ("act_then_refuse", False)):
        monkeypatch.setitem(handler.settings, key, value)
    wasim.target(app=handler.app, path="/webhook")
    with wasim.api() as api:
        for name, value in api.env().items():
            monkeypatch.setenv(name, value)
        yield api


def test_a_correct_handler_holds_every_reply_expectation_and_taps_reach_its_buttons(
        wasim: Simulator, kaleyra: MockApi) -> None:
    run = wasim.run_scenario(CONVERSATION)
    run.assert_ok()
    buys = [r for r in run.results if r.planned.step == "buy"]
    assert len(buys) == 3
    for outcome in buys:
        document = json.loads(outcome.planned.event.body)
        message = document["meta_object"]["value"]["messages"][0]
        catalogue = kaleyra.find(message["context"]["id"])
        assert catalogue is not None and catalogue.template == "catalogue"
        assert document["extra_info"]["reply_to"] == catalogue.recipient_id
        assert message["button"]["payload"] == "BUY"
        assert catalogue.to == outcome.planned.tap.user.wa_id


def test_a_handler_that_answers_a_duplicate_again_fails_on_the_duplicate(
        wasim: Simulator, kaleyra: MockApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(handler.settings, "dedupe", False)  # the bug under test
    run = wasim.run_scenario(CONVERSATION)
    broken = [f for f in run.summary.failures if f.rule == "reply"]
    assert {f.step for f in broken} == {"opt out"} and len(broken) == 3
    assert all("expected exactly 1" in f.message and "copy" in f.message for f in broken)
    duplicates = {r.planned.index for r in run.results if r.planned.kind == "duplicate"}
    assert {f.index for f in broken} == duplicates
    with pytest.raises(AssertionError, match="reply: 2 text containing 'unsubscribed'"):
        run.assert_ok()


def test_a_handler_that_replies_twice_to_one_tap_is_caught(
        wasim: Simulator, kaleyra: MockApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(handler.settings, "times", 2)
    run = wasim.run_scenario(CONVERSATION)
    # Opt out: the duplicate's watch sees two; shop and buy: each tap's own watch does.
    assert run.summary.expectation_failures == {"reply": 9}
    assert all("2 " in f.message and "expected exactly 1" in f.message
               for f in run.summary.failures)


def test_a_handler_reading_only_the_first_message_of_a_batch_is_caught(
        wasim: Simulator, kaleyra: MockApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(handler.settings, "first_only", True)  # value["messages"][0]
    run = wasim.run_scenario(BATCHED)
    assert len(run.results) == 2 and all(len(r.planned.batch) == 3 for r in run.results)
    broken = run.summary.failures
    assert len(broken) == 4  # two of three users in each batch got nothing
    assert all(f.rule == "reply" and "batch of 3" in f.message for f in broken)


def test_a_handler_reading_every_message_of_a_batch_passes(
        wasim: Simulator, kaleyra: MockApi) -> None:
    run = wasim.run_scenario(BATCHED)
    run.assert_ok()
    assert len(kaleyra.sent) == 6


def test_a_template_the_scenario_does_not_define_is_accepted_then_fails_the_reply_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in (("version", "v2"), ("dedupe", True), ("times", 1),
                       ("first_only", False)):
        monkeypatch.setitem(handler.settings, key, value)
    handler.handled.clear()
    path = tmp_path / "no-catalogue.yaml"
    path.write_text(CONVERSATION.replace("templates: [catalogue]\n", "")
                    .replace("    duplicate: true\n", "").replace("within: 5s", "within: 1s"))
    monkeypatch.syspath_prepend(str(Path(handler.__file__).parent))
    for name in ("KALEYRA_BASE_URL", "KALEYRA_SID", "KALEYRA_API_KEY"):
        monkeypatch.setenv(name, "stale")  # `wasim run` sets them for the --app; undone after
    result = CliRunner().invoke(cli, ["run", str(path), "--app", "fastapi_replies:app",
                                      "--path", "/webhook", "--api-port", "0", "--no-history",
                                      "--fast"])
    assert result.exit_code == 1, result.output
    # As Kaleyra does, the send API accepted the app's catalogue (so the app answered 200),
    # and Meta's 132001 failed it: it never reached the phones, so no BUY button either.
    assert "expectations failed: reply 3, tap_reply 3" in result.stdout
    assert ("shop tap 919144865590 'Shop now': reply: the app sent template 'catalogue', which "
            "the scenario does not define: Kaleyra accepts it and reports it failed (132001"
            ) in result.stdout
    assert result.stderr.count("fails 132001") == 3
    assert "send API on http://127.0.0.1:" in result.stderr
    assert result.stderr.count("sent #") == 6  # the opt-out texts and catalogues, printed


def test_wasim_run_in_meta_direct_mode_sends_the_replies_statuses_signed_in_metas_envelope(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.replies

    secret = "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"
    for key, value in (("version", "v2"), ("dedupe", True), ("times", 1),
                       ("first_only", False), ("app_secret", secret),
                       ("act_then_refuse", False)):
        monkeypatch.setitem(handler.settings, key, value)
    for store in (handler.handled, handler.statuses, handler.taps):
        store.clear()
    started: list[MockApi] = []
    real = simulator.replies.start_scenario_api

    def keeping_statuses(*args: object, **kwargs: object) -> MockApi:
        """The run's send API, which lets every status go out before it stops."""
        api = real(*args, **kwargs)  # type: ignore[arg-type]
        started.append(api)
        stop = api.stop

        def stop_after_statuses() -> None:
            api.wait_for_statuses(3 * len(api.sent), timeout=30)
            stop()

        monkeypatch.setattr(api, "stop", stop_after_statuses)
        return api

    monkeypatch.setattr(simulator.replies, "start_scenario_api", keeping_statuses)
    monkeypatch.syspath_prepend(str(Path(handler.__file__).parent))
    for name in ("KALEYRA_BASE_URL", "KALEYRA_SID", "KALEYRA_API_KEY"):
        monkeypatch.setenv(name, "stale")
    path = tmp_path / "conversation.yaml"
    path.write_text(CONVERSATION)
    result = CliRunner().invoke(cli, ["run", str(path), "--app", "fastapi_replies:app",
                                      "--path", "/webhook", "--api-port", "0", "--no-history",
                                      "--fast", "--envelope", "meta", "--app-secret", secret])
    assert result.exit_code == 0, result.output  # taps signed too, or the handler refuses
    [api] = started
    assert api.statuses and len(api.statuses) == 3 * len(api.sent)
    assert all(s.delivered for s in api.statuses)  # the handler checked every signature
    assert len(handler.statuses) == len(api.statuses)
    assert all(d["object"] == "whatsapp_business_account" for d in handler.statuses)
    assert {handler.value_of(d)["statuses"][0]["id"] for d in handler.statuses} == \
        {m.wamid for m in api.sent}
    assert secret not in result.output


# --- forged signatures: refused, and not acted on ----------------------------------------------

SECRET = "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e"  # the app's secret (Meta: App settings > Basic)


def forged_signatures(wasim: Simulator) -> ScenarioRun:
    """The built-in scenario, signed with the app's secret; its reply windows shortened (the
    example app replies before it answers, so a reply it should not have sent is already in)."""
    wasim.target(app=handler.app, path="/webhook", app_secret=SECRET)
    text = load_scenario("forged-signatures").path.read_text()
    assert text.count("within: 2s") == 3
    return wasim.run_scenario(text.replace("within: 2s", "within: 300ms"))


def test_a_handler_checking_signatures_answers_the_genuine_tap_and_nothing_forged(
        wasim: Simulator, kaleyra: MockApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(handler.settings, "app_secret", SECRET)
    run = forged_signatures(wasim)
    run.assert_ok()
    assert [(r.planned.step, r.result.attempts[-1].status) for r in run.results
            if r.planned.step != "signed"] == [(s, 403) for s in FORGED for _ in range(2)]
    signed = {r.planned.tap.user.wa_id for r in run.results if r.planned.step == "signed"}
    assert sorted(m.to for m in kaleyra.sent) == sorted(signed) and len(signed) == 2


def test_a_handler_skipping_the_check_fails_on_status_and_reply_of_every_forged_step(
        wasim: Simulator, kaleyra: MockApi) -> None:
    run = forged_signatures(wasim)  # no app secret in the handler: it checks nothing
    assert run.summary.expectation_failures == {"status": 8, "reply": 8}
    assert {f.step for f in run.summary.failures} == set(FORGED)
    assert all("expected exactly 0" in f.message for f in run.summary.failures
               if f.rule == "reply")
    assert len(kaleyra.sent) == 10  # it unsubscribed everyone who sent a forged tap


def test_a_handler_refusing_only_after_it_acted_fails_on_the_reply_rule_only(
        wasim: Simulator, kaleyra: MockApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(handler.settings, "app_secret", SECRET)
    monkeypatch.setitem(handler.settings, "act_then_refuse", True)
    run = forged_signatures(wasim)
    assert run.summary.expectation_failures == {"reply": 8}  # every 403 was as expected
    assert {f.step for f in run.summary.failures} == set(FORGED)


def test_the_forged_signatures_scenario_says_it_needs_the_app_secret(
        wasim: Simulator, kaleyra: MockApi) -> None:
    with pytest.raises(WasimError, match="the wrong-secret signature case needs the app secret"):
        wasim.run_scenario("forged-signatures")
