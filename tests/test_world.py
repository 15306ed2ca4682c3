"""One world: every face and the send API agree on the business, each user's one BSUID, the
order and time of a message's statuses and the taps on it; a new run is new traffic.

End to end against a careful brand app on a real HTTP server (tests/apps/brand_app.py), and
property tests over the pieces the mock and the taps share."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.cli import cli
from simulator.delivery import delivery_options_from
from simulator.kinds import kind_body
from simulator.kinds.base import KindArgs
from simulator.kinds.status import ERRORS
from simulator.providers import WhatsAppProvider, draw_number
from simulator.receiver import Receiver
from simulator.sendapi import (
    DEFAULT_API_KEY,
    DEFAULT_SID,
    ApiOptions,
    MockApi,
    v2_status_document,
)
from simulator.taps import TapFactory, TapOptions
from simulator.testing import Simulator
from simulator.validate import validate_callback
from simulator.world import bsuid, canonical_number, parse_status_delays, user_country
from tests.apps.brand_app import SECRET, BrandApp

BRAND_SCENARIO = """\
name: brand-flow
seed: 11
template:
  name: order_update
  buttons: [{text: Track order, payload: TRACK}]
cast: {countries: {IN: 2, US: 1}}
steps:
  - name: tap
    tap: Track order
    duplicate: true
    expect:
      status: [200]
      reply: {count: 1, type: interactive, within: 2s}
  - name: done
    tap_reply: Done
    expect:
      status: [200]
      reply: {count: 1, type: text, within: 2s}
  - name: forged
    tap: Track order
    target: {signature: wrong-secret}
    expect:
      status: [401, 403]
      reply: {count: 0, within: 1s}
"""
KEY = {"api-key": DEFAULT_API_KEY}
BUSINESS = "918068177179"


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "brand.yaml"
    path.write_text(BRAND_SCENARIO)
    return path


@pytest.fixture(autouse=True)
def _kaleyra_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KALEYRA_BASE_URL", "KALEYRA_SID", "KALEYRA_API_KEY"):
        monkeypatch.delenv(name, raising=False)  # a run sets them; restored after the test


def run(scenario: Path, app: BrandApp, *extra: str) -> Any:
    return CliRunner().invoke(cli, ["run", str(scenario), "--url", app.url, "--api-port", "0",
                                    "--fast", "--no-history", "--app-secret", SECRET, *extra])


def taps_of(app: BrandApp) -> list[dict[str, Any]]:
    return [s.document for s in app.seen if s.kind == "message"]


# --- a careful app passes twice in a row; careless ones fail ---------------------------------


def test_a_careful_brand_app_passes_the_same_scenario_twice_in_a_row(scenario: Path) -> None:
    with BrandApp() as app:
        first = run(scenario, app)
        assert first.exit_code == 0, first.output
        seen_first = len(app.seen)
        second = run(scenario, app)
        assert second.exit_code == 0, second.output
    # It replied through both APIs, and each run is new traffic to the same people.
    assert {"totalCount" in a for a in app.sent} == {True, False}  # V1 answers count, V2 not
    runs = taps_of_runs(app, seen_first)
    ids = [{m["id"] for m in messages} for messages, _ in runs]
    assert ids[0] and not ids[0] & ids[1]
    assert runs[0][1] == runs[1][1]  # the same users (number, BSUID, name)


def taps_of_runs(app: BrandApp, split: int) -> list[tuple[list[dict[str, Any]], set[Any]]]:
    out = []
    for part in (app.seen[:split], app.seen[split:]):
        docs = [s.document["meta_object"]["value"] for s in part if s.kind == "message"]
        out.append(([d["messages"][0] for d in docs],
                    {(c.get("wa_id"), c.get("user_id"), c["profile"]["name"])
                     for d in docs for c in d["contacts"]}))
    return out


def test_a_tap_on_the_apps_message_comes_after_its_statuses_in_order_and_time(
        scenario: Path) -> None:
    with BrandApp() as app:
        result = run(scenario, app)
        assert result.exit_code == 0, result.output
    statuses: dict[str, list[tuple[int, str, int]]] = {}
    checked = 0
    for position, seen in enumerate(app.seen):
        value = seen.document.get("meta_object", {}).get("value", {})
        if seen.kind == "status":
            item = value["statuses"][0]
            statuses.setdefault(item["id"], []).append(
                (position, item["status"], int(item["timestamp"])))
            continue
        if seen.kind != "message" or "context" not in value["messages"][0]:
            continue
        message = value["messages"][0]
        before = statuses.get(message["context"]["id"])
        if before is None:
            continue  # a tap on the campaign template (sent before the run)
        # The user read the message before tapping: all three statuses came first, in time
        # order, and the tap is stamped after the read.
        assert [s for _, s, _ in before] == ["sent", "delivered", "read"]
        stamps = [t for _, _, t in before]
        assert stamps == sorted(stamps) and len(set(stamps)) == 3
        assert int(message["timestamp"]) > stamps[-1]
        # The tap comes from the message's recipient with its BSUID, to that business.
        status_contact = seen_status_contact(app, message["context"]["id"])
        assert value["contacts"][0]["user_id"] == status_contact["user_id"]
        checked += 1
    assert checked == 3


def seen_status_contact(app: BrandApp, wamid: str) -> dict[str, Any]:
    for seen in app.seen:
        value = seen.document.get("meta_object", {}).get("value", {})
        if seen.kind == "status" and value["statuses"][0]["id"] == wamid:
            contact: dict[str, Any] = value["contacts"][0]
            return contact
    raise AssertionError(f"no status of {wamid}")


@pytest.mark.parametrize(("habits", "rule"), [
    ({"dedupe": False}, "reply"), ({"signature": False}, "status")])
def test_a_careless_brand_app_fails(scenario: Path, habits: dict[str, bool],
                                    rule: str) -> None:
    with BrandApp(**habits) as app:
        result = run(scenario, app)
    assert result.exit_code == 1, result.output
    assert f"{rule}:" in result.output


def test_a_reproduced_run_is_a_replay_a_de_duplicating_app_ignores_and_says_why(
        scenario: Path) -> None:
    with BrandApp() as app:
        assert run(scenario, app, "--exact").exit_code == 0
        again = run(scenario, app, "--exact")
    assert again.exit_code == 1
    assert "de-duplicates by message id" in again.output and "--exact" in again.output


# --- the send API's business ids --------------------------------------------------------------


def test_the_send_apis_statuses_carry_the_given_business_ids(receiver: Receiver) -> None:
    webhook = delivery_options_from({"url": receiver.url}, lambda key: key)
    options = ApiOptions(port=0, phone_number_id="104605889412733", waba_id="102290129340398")
    with MockApi(options, webhook=webhook) as api:
        httpx.post(api.v2_url(BUSINESS), headers=KEY, json={"messaging_object": {
            "to": "919876543210", "type": "text", "text": {"body": "hi"}}})
        documents = [json.loads(s.body) for s in api.wait_for_statuses(3)]
    for document in documents:
        metadata = document["meta_object"]["value"]["metadata"]
        assert metadata == {"display_phone_number": BUSINESS,
                            "phone_number_id": "104605889412733"}
        assert document["extra_info"]["waba_id"] == "102290129340398"


def test_one_phone_number_id_for_several_business_numbers_is_refused() -> None:
    result = CliRunner().invoke(cli, ["api", "--port", "0", "--business-number", "918068177179",
                                      "--business-number", "918068177180",
                                      "--phone-number-id", "104605889412733"])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_status_delays_read_seconds_milliseconds_and_minutes() -> None:
    assert parse_status_delays("1s,2s,5s") == (1.0, 2.0, 5.0)
    assert parse_status_delays("500ms, 1, 1m") == (0.5, 1.0, 60.0)
    with pytest.raises(Exception, match="not a delay"):
        parse_status_delays("soon")


# --- property tests ---------------------------------------------------------------------------

# Numbers of many countries, Canada's +1 among them (libphonenumber calls a 416 number CA).
def _drawn(code: str, seed: int) -> str:
    import random

    return draw_number(random.Random(seed), WhatsAppProvider.countries[code])


CANADIAN_AREAS = ["204", "306", "403", "416", "514", "604", "613", "709", "780", "902"]


NUMBERS = st.one_of(
    st.sampled_from([
        "919876543210", "14165550123", "16135550199", "12125550123", "447700900123",
        "5511987654321", "551187654321", "5215512345678", "525512345678", "4915123456789",
        "971501234567", "2348031234567", "33612345678", "6281234567890"]),
    # A mobile of every country wasim draws users from.
    st.builds(_drawn, st.sampled_from(sorted(WhatsAppProvider.countries)),
              st.integers(0, 10**6)),
    # Canadian numbers: +1 and a Canadian area code.
    st.builds(lambda area, rest: f"1{area}{rest:07d}", st.sampled_from(CANADIAN_AREAS),
              st.integers(2_000_000, 9_999_999)))


def _recorded(api: MockApi, to: str, business: str = BUSINESS) -> Any:
    status, _ = api.handle("POST", f"/v2/{DEFAULT_SID}/whatsapp/{business}/messages", KEY,
                           json.dumps({"messaging_object": {
                               "to": to, "type": "text", "text": {"body": "hi"}}}).encode())
    assert status == 202
    return api.sent[-1]


@settings(max_examples=60, deadline=None)
@given(number=NUMBERS, seed=st.integers(0, 10_000))
def test_one_user_has_one_bsuid_across_taps_statuses_and_the_mocks_record(
        number: str, seed: int) -> None:
    factory = TapFactory(TapOptions(seed=seed, business_number=BUSINESS, user_number=number))
    user = factory.new_user()
    tap = factory.tap(user, factory.send_template(user))
    api = MockApi(ApiOptions(port=0))  # handle() needs no socket
    message = _recorded(api, number)
    status = v2_status_document(message, "sent", 1_780_000_000, factory.rnd, world=api.world)
    rendered = json.loads(kind_body("status", tap, KindArgs(status="read"), factory.rnd))
    ids = {user.user_id, message.user_id, bsuid(BUSINESS, number),
           status["meta_object"]["value"]["contacts"][0]["user_id"],
           status["meta_object"]["value"]["statuses"][0]["recipient_user_id"],
           rendered["meta_object"]["value"]["contacts"][0]["user_id"]}
    assert len(ids) == 1, ids
    country = user_country(number)
    if number[0] == "1" and number[1:4] in CANADIAN_AREAS:
        assert country == "CA"
    assert user.user_id.startswith(f"{country}.") and user.country == country
    assert status["meta_object"]["value"]["contacts"][0]["country_code"] == country
    # One person whatever form of their number the wire carries (521..., 12-digit BR).
    assert bsuid(BUSINESS, number) == bsuid(BUSINESS, canonical_number(number))


CODES = st.sampled_from([None, *ERRORS])


@settings(max_examples=80, deadline=None)
@given(number=NUMBERS, status=st.sampled_from(["sent", "delivered", "read", "failed",
                                                 "not-sent"]),
       code=CODES, as_bsuid=st.booleans(), business=st.sampled_from([BUSINESS, "14165550100"]))
def test_every_body_the_mock_sends_validates(number: str, status: str, code: int | None,
                                             as_bsuid: bool, business: str) -> None:
    api = MockApi(ApiOptions(port=0))
    to = bsuid(business, number) if as_bsuid else number
    message = _recorded(api, to, business)
    if status == "failed" and code is not None:
        from dataclasses import replace

        message = replace(message, error=code)
    import random

    document = v2_status_document(message, status, 1_780_000_000, random.Random(1),
                                  world=api.world)
    assert validate_callback(document) == [], document
    item = document["meta_object"]["value"]["statuses"][0]
    assert ("errors" in item) == (status in ("failed", "not-sent"))
    assert "simulated" not in json.dumps(document)


@pytest.fixture(scope="module")
def module_receiver() -> Iterator[Receiver]:
    from simulator.receiver import ReceiverOptions

    with Receiver(ReceiverOptions(port=0)) as running:
        yield running


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(delays=st.lists(st.floats(0, 600).map(lambda d: round(d, 3)), min_size=1, max_size=3),
       seed=st.integers(0, 1000))
def test_statuses_are_in_time_order_and_before_any_tap_on_their_message(
        module_receiver: Receiver, delays: list[float], seed: int) -> None:
    wasim = Simulator(seed, wall_clock=True)  # the tap is stamped now; the read is later
    wasim.target(url=module_receiver.url)
    before = module_receiver.received
    with wasim.api(status_delays=delays, speed=math.inf) as api:
        user = wasim.factory.new_user()
        httpx.post(api.v2_url(wasim.factory.business.display_phone_number), headers=KEY,
                   json={"messaging_object": {"to": user.wa_id, "type": "interactive",
                                              "interactive": {
                                                  "type": "button", "body": {"text": "?"},
                                                  "action": {"buttons": [{"type": "reply",
                                                             "reply": {"id": "Y",
                                                                       "title": "Yes"}}]}}}})
        message = api.wait_for_sent(1)[0]
        tap = wasim.reply_tap(message)
        wasim.deliver(tap).assert_status(200)
    arrivals = module_receiver.wait_for(before + 4)[-4:]
    assert module_receiver.received == before + 4
    documents = [json.loads(a.body) for a in arrivals]
    kinds = ["statuses" in d["meta_object"]["value"] for d in documents]
    assert kinds == [True, True, True, False]  # every status, then the tap
    stamps = [int(d["meta_object"]["value"]["statuses"][0]["timestamp"])
              for d in documents[:3]]
    assert stamps == sorted(stamps)
    assert int(documents[3]["meta_object"]["value"]["messages"][0]["timestamp"]) > stamps[-1]


# --- fire --context-id: a tap on a message the history recorded -----------------------------


def test_fire_on_a_recorded_message_comes_from_its_recipient_to_its_business(
        tmp_path: Path, receiver: Receiver) -> None:
    from simulator.history import HistoryWriter

    history = tmp_path / "history.jsonl"
    options = ApiOptions(port=0, phone_number_id="104605889412733", waba_id="102290129340398")
    with HistoryWriter(history) as writer, MockApi(options, on_sent=writer.append_sent) as api:
        httpx.post(api.v2_url(BUSINESS), headers=KEY, json={
            "messaging_object": {"to": "+14165550123", "type": "text", "text": {"body": "hi"}},
            "extra_info": {"ref": "order-7", "ref1": "spring", "ref2": "shoes"}})
        message = api.wait_for_sent(1)[0]
    result = CliRunner().invoke(cli, ["fire", "--context-id", message.wamid, "--url",
                                      receiver.url, "--history", str(history)])
    assert result.exit_code == 0, result.output
    assert "invented" not in result.stderr
    document = json.loads(receiver.wait_for(1)[0].body)
    value = document["meta_object"]["value"]
    assert value["metadata"] == {"display_phone_number": BUSINESS,
                                 "phone_number_id": "104605889412733"}
    assert value["contacts"][0]["wa_id"] == "14165550123"
    assert value["contacts"][0]["user_id"] == message.user_id != ""
    assert value["contacts"][0]["user_id"].startswith("CA.")
    assert value["messages"][0]["context"]["id"] == message.wamid
    extra = document["extra_info"]
    assert (extra["waba_id"], extra["reply_to"], extra["ref"], extra["ref1"], extra["ref2"]) == \
        ("102290129340398", message.message_id, "order-7", "spring", "shoes")


def test_fire_on_a_message_nobody_recorded_says_which_fields_are_invented(
        tmp_path: Path, receiver: Receiver) -> None:
    wamid = "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSMDEyMzQ1Njc4OUFCQ0RFRjAxAA=="
    result = CliRunner().invoke(cli, ["fire", "--context-id", wamid, "--url", receiver.url,
                                      "--history", str(tmp_path / "none.jsonl"),
                                      "--reply-to", "48c38d78-4ec5-4b1e-abee-03aa11bb6c85"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stderr.splitlines() if "not in the history" in x)
    assert "business number, phone_number_id, waba_id" in line and "BSUID" in line
    assert "reply_to" not in line  # given as a flag: not invented


# --- new traffic and --exact, without a send API -----------------------------------------------


def _bodies(receiver: Receiver, *extra: str) -> list[dict[str, Any]]:
    before = receiver.received
    result = CliRunner().invoke(cli, ["run", "idempotency-check", "--url", receiver.url,
                                      "--fast", "--no-history", *extra])
    assert result.exit_code == 0, result.output
    return [json.loads(a.body) for a in receiver.wait_for(before + 20)[-20:]]


def test_each_run_is_new_traffic_to_the_same_people_and_exact_reproduces_the_seed(
        receiver: Receiver) -> None:
    def ids(bodies: list[dict[str, Any]]) -> set[str]:
        return {b["meta_object"]["value"]["messages"][0]["id"] for b in bodies} | \
            {b["extra_info"]["trace_id"] for b in bodies} | \
            {b["extra_info"]["reply_to"] for b in bodies}

    def people(bodies: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
        return {(c["wa_id"], c["user_id"], c["profile"]["name"])
                for b in bodies for c in b["meta_object"]["value"]["contacts"]}

    first, second = _bodies(receiver), _bodies(receiver)
    assert not ids(first) & ids(second) and people(first) == people(second)
    exact = [_bodies(receiver, "--exact") for _ in range(2)]
    assert sorted(map(json.dumps, exact[0])) == sorted(map(json.dumps, exact[1]))
    assert people(exact[0]) == people(first)


def test_bad_status_delays_are_one_line_and_exit_2() -> None:
    for command in (["api", "--port", "0"], ["run", "idempotency-check", "--dry-run"]):
        result = CliRunner().invoke(cli, [*command, "--status-delays", "1s,soon"])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output and "--status-delays" in result.stderr
