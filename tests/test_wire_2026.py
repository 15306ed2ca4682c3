"""Today's wire: BSUID identities, valid mobile numbers, send-moment time, one byte path.

Handlers meet Meta's 2026 webhooks (wire-format.md section 10); these tests hold wasim's
callbacks to that wire and to the parsers handlers are built on (pywa, libphonenumber).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
from click.testing import CliRunner
from fastapi import FastAPI, Request, Response  # module level: FastAPI resolves annotations
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from simulator.cli import cli
from simulator.delivery import delivery_options_from
from simulator.errors import WasimError
from simulator.load import CallbackSource, LoadOptions, run_load
from simulator.models import Button
from simulator.providers import WhatsAppProvider, make_faker
from simulator.receiver import Receiver, ReceiverOptions
from simulator.render import RenderOptions, render_callbacks
from simulator.scenarios import parse_scenario
from simulator.taps import TapFactory, TapOptions, live_clock, make_business, parse_shares
from simulator.testing import Simulator
from simulator.tui.session import PhoneSession
from simulator.validate import validate_callback
from simulator.wamid import decode_wamid
from simulator.wire import to_wire

COUNTRIES = tuple(WhatsAppProvider.countries)
BSUID = re.compile(r"[A-Z]{2}\.[0-9]{15,16}")
PARENT_BSUID = re.compile(r"[A-Z]{2}\.ENT\.[0-9]{15,16}")
T0 = 1_780_000_000
NOW_LIVE = 1_790_000_000  # "now" for the tests that stamp live: a clock of ours


def bodies(count: int = 1, **options: Any) -> list[bytes]:
    return [r.body for r in render_callbacks(RenderOptions(TapOptions(**options), count=count))]


def value_of(body: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(body)["meta_object"]["value"]
    return value


# --- identity modes ---------------------------------------------------------------------------


def test_the_default_tap_carries_a_bsuid_in_the_contact_and_the_message() -> None:
    value = value_of(bodies(seed=4)[0])
    contact, message = value["contacts"][0], value["messages"][0]
    assert list(contact) == ["profile", "wa_id", "user_id", "country_code"]
    assert list(message) == ["context", "from", "from_user_id", "id", "timestamp", "type",
                             "button"]
    assert BSUID.fullmatch(contact["user_id"]) and contact["user_id"].startswith("IN.")
    assert message["from_user_id"] == contact["user_id"] and contact["country_code"] == "IN"


def test_phone_identity_is_the_seed_pages_shape() -> None:
    body = bodies(seed=4, identity=(("phone", 1.0),))[0]
    value = value_of(body)
    assert list(value["contacts"][0]) == ["profile", "wa_id"]
    assert list(value["messages"][0]) == ["context", "from", "id", "timestamp", "type", "button"]
    assert b"user_id" not in body and b"country_code" not in body


def test_a_username_user_has_no_number_on_the_wire() -> None:
    body = bodies(seed=4, identity=(("username", 1.0),))[0]
    value = value_of(body)
    contact, message = value["contacts"][0], value["messages"][0]
    assert list(contact) == ["profile", "user_id", "country_code"]
    assert list(contact["profile"]) == ["name", "username"]
    assert re.fullmatch(r"[a-z0-9.]+\.[0-9]{2,4}", contact["profile"]["username"])
    assert "from" not in message and message["from_user_id"] == contact["user_id"]
    assert validate_callback(json.loads(body)) == []


def test_an_enterprise_user_has_a_parent_bsuid_after_the_user_id() -> None:
    value = value_of(bodies(seed=4, enterprise=1.0)[0])
    contact, message = value["contacts"][0], value["messages"][0]
    assert list(contact) == ["profile", "wa_id", "user_id", "parent_user_id", "country_code"]
    assert PARENT_BSUID.fullmatch(contact["parent_user_id"])
    assert list(message)[1:4] == ["from", "from_user_id", "from_parent_user_id"]
    assert message["from_parent_user_id"] == contact["parent_user_id"]


def test_identity_shares_mix_modes_in_one_run() -> None:
    shares = parse_shares("bsuid=80,username=10,phone=10", ("bsuid", "phone", "username"), "x")
    seen: Counter[str] = Counter()
    for body in bodies(600, seed=6, identity=shares):
        contact = value_of(body)["contacts"][0]
        seen["username" if "username" in contact["profile"] else
             "bsuid" if "user_id" in contact else "phone"] += 1
        assert validate_callback(json.loads(body)) == []
    assert seen["bsuid"] > seen["username"] > 20 and seen["phone"] > 20


def test_a_users_bsuid_is_stable_across_taps_and_unique_across_users() -> None:
    wasim = Simulator(8, wall_clock=False)
    shopper = wasim.user()
    ids = {value_of(wasim.tap(user=shopper).body)["contacts"][0]["user_id"] for _ in range(3)}
    assert len(ids) == 1
    many = [value_of(b)["contacts"][0]["user_id"] for b in bodies(2000, seed=8)]
    assert len(set(many)) == len(many)


def test_the_same_user_keeps_their_bsuid_whichever_button_or_option() -> None:
    first = value_of(bodies(seed=9)[0])["contacts"][0]
    other = value_of(bodies(seed=9, buttons=(Button("Yes", "Y"),), platform="ios")[0])
    assert other["contacts"][0]["user_id"] == first["user_id"]


def test_identity_is_an_option_of_every_face(runner: CliRunner) -> None:
    for command in (["render"], ["fire", "--url", "http://127.0.0.1:9/", "--no-history"]):
        result = runner.invoke(cli, [*command, "--seed", "1", "--identity", "banana"])
        assert result.exit_code == 2 and "--identity: unknown value 'banana'" in result.stderr
    for command in ("run", "load", "tui"):
        assert "--identity" in runner.invoke(cli, [command, "--help"]).stdout
    text = "name: x\ncast:\n  countries: {IN: 3}\n  identity: {username: 1}\n"
    assert parse_scenario(text, "x.yaml").cast.identity == (("username", 1.0),)
    with pytest.raises(Exception, match=r"cast.identity.nope: unknown key"):
        parse_scenario(text.replace("username: 1", "nope: 1"), "x.yaml")


# --- numbers ---------------------------------------------------------------------------------


def _is_mobile_of(number: str, country: str) -> bool:
    parsed = phonenumbers.parse("+" + number)
    kinds = {PhoneNumberType.MOBILE}
    if country in ("US", "MX"):  # libphonenumber cannot tell mobiles from fixed lines there
        kinds.add(PhoneNumberType.FIXED_LINE_OR_MOBILE)
    return (phonenumbers.is_valid_number(parsed)
            and phonenumbers.region_code_for_number(parsed) == country
            and phonenumbers.number_type(parsed) in kinds)


@pytest.mark.parametrize("country", COUNTRIES)
def test_libphonenumber_calls_every_user_and_business_number_a_mobile_of_its_country(
        country: str) -> None:
    factory = TapFactory(TapOptions(seed=17, countries=(country,)))
    users = [factory.new_user().wa_id for _ in range(3000)]
    fake = make_faker(17)
    businesses = [make_business(fake, country).display_phone_number for _ in range(3000)]
    for numbers in (users, businesses):
        valid = sum(_is_mobile_of(n, country) for n in numbers)
        assert valid / len(numbers) >= 0.999, (country, len(numbers) - valid)
        assert len(set(numbers)) > 0.99 * len(numbers)


def test_the_business_country_option_sets_the_business_number(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["render", "--seed", "2", "--business-country", "BR"])
    number = value_of(result.stdout_bytes)["metadata"]["display_phone_number"]
    assert number.startswith("55") and _is_mobile_of(number, "BR")


def test_the_mexican_521_quirk_puts_the_legacy_form_on_the_wire() -> None:
    for body in bodies(50, seed=3, countries=("MX",), quirks=(("mx521", 1.0),)):
        value = value_of(body)
        wa_id = value["contacts"][0]["wa_id"]
        assert wa_id.startswith("521") and len(wa_id) == 13
        assert value["messages"][0]["from"] == wa_id
        assert decode_wamid(value["messages"][0]["id"]).customer == wa_id
        assert _is_mobile_of("52" + wa_id[3:], "MX")  # the number behind it is a real mobile
        assert validate_callback(json.loads(body)) == []


def test_the_brazilian_quirk_drops_the_ninth_digit_for_its_share_only() -> None:
    lengths = Counter(len(value_of(b)["contacts"][0]["wa_id"])
                      for b in bodies(1000, seed=3, countries=("BR",), quirks=(("br8", 0.3),)))
    assert set(lengths) == {12, 13}
    assert 0.2 < lengths[12] / 1000 < 0.4


def test_the_plugin_takes_quirks_and_enterprise_shares() -> None:
    wasim = Simulator(3, country="MX", quirks="mx521=1", enterprise=1.0)
    contact = value_of(wasim.tap().body)["contacts"][0]
    assert contact["wa_id"].startswith("521") and PARENT_BSUID.fullmatch(contact["parent_user_id"])
    with pytest.raises(WasimError, match=r"wasim\(quirks=...\): unknown value 'mx'"):
        Simulator(3, quirks="mx=1")


def test_quirks_are_off_by_default_and_a_bad_one_is_a_clear_error(runner: CliRunner) -> None:
    assert all(len(value_of(b)["contacts"][0]["wa_id"]) == 12
               for b in bodies(200, seed=3, countries=("MX",)))
    result = runner.invoke(cli, ["render", "--seed", "1", "--quirks", "mx521=lots"])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "wasim: error: --quirks: 'lots' is not a number. Give a share, e.g. mx521=0.5."]


# --- ids -------------------------------------------------------------------------------------


def test_phone_number_id_and_waba_id_follow_the_business_number_across_seeds() -> None:
    metas = set()
    for seed in range(20):
        document = json.loads(bodies(seed=seed, business_number="918068177179")[0])
        metas.add((document["meta_object"]["value"]["metadata"]["phone_number_id"],
                   document["extra_info"]["waba_id"]))
    assert len(metas) == 1
    (phone_number_id, waba_id), = metas
    assert phone_number_id != waba_id
    for meta_id in (phone_number_id, waba_id):
        assert meta_id.isdigit() and len(meta_id) in (15, 16) and meta_id[0] != "0"


def _ids(body: bytes) -> dict[str, str]:
    document = json.loads(body)
    message = document["meta_object"]["value"]["messages"][0]
    return {"trace_id": document["extra_info"]["trace_id"],
            "reply_to": document["extra_info"]["reply_to"],
            "message": decode_wamid(message["id"]).message_id,
            "context": decode_wamid(message["context"]["id"]).message_id}


def test_changing_one_option_moves_no_id_into_another_family() -> None:
    base = [_ids(b) for b in bodies(2000, seed=12)]
    other = [_ids(b) for b in bodies(2000, seed=12, buttons=(Button("Yes", "Y"),),
                                      identity=(("phone", 1.0),), countries=("IN", "US"))]
    # Each family is its own stream: the option changes none of them...
    assert [i["trace_id"] for i in other] == [i["trace_id"] for i in base]
    assert [i["reply_to"] for i in other] == [i["reply_to"] for i in base]
    # ...and no value of one family turns up as another's.
    for family in ("trace_id", "reply_to"):
        rest = {i[f] for i in base for f in ("trace_id", "reply_to") if f != family}
        assert not {i[family] for i in other} & rest


def test_user_message_ids_have_their_platforms_shape() -> None:
    shapes: Counter[str] = Counter()
    for body in bodies(400, seed=5, platform="mix"):
        message = value_of(body)["messages"][0]
        hex_id = decode_wamid(message["id"]).message_id
        assert len(decode_wamid(message["context"]["id"]).message_id) == 18
        if hex_id.startswith("3EB0") and len(hex_id) == 22:
            shapes["web"] += 1
        elif hex_id.startswith("3A") and len(hex_id) == 20:
            shapes["ios"] += 1
        else:
            assert len(hex_id) == 32
            shapes["android"] += 1
    assert shapes["android"] > shapes["ios"] > shapes["web"] > 0


# --- time ------------------------------------------------------------------------------------


def test_a_live_clock_keeps_the_runs_spacing_from_the_given_start() -> None:
    readings = iter([500.0, 500.2, 503.9, 530.0])
    clock = live_clock(start=T0, now=lambda: next(readings))
    assert [clock(), clock(), clock()] == [T0, T0 + 3, T0 + 30]


class StepClock:
    """A stand-in for `time.time` that moves only when a callback arrives: each tap's stamp
    then tells which arrivals happened before it was made, whatever the machine's speed."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def arrived(self, _arrival: object) -> None:
        self.now += 5


def test_fire_stamps_each_tap_with_its_send_moment(runner: CliRunner,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    clock = StepClock(NOW_LIVE + 0.5)
    monkeypatch.setattr(time, "time", clock)
    with Receiver(ReceiverOptions(port=0), clock.arrived) as receiver:
        result = runner.invoke(cli, ["fire", "--url", receiver.url, "--seed", "3", "-n", "3",
                                     "--no-history"])
        assert result.exit_code == 0, result.output
        stamps = [int(value_of(a.body)["messages"][0]["timestamp"]) for a in receiver.arrivals]
    # Each tap is made after the one before it arrived: the clock moved 5 s between them.
    assert stamps == [NOW_LIVE, NOW_LIVE + 5, NOW_LIVE + 10]


def test_now_moves_a_fired_run_without_freezing_it(runner: CliRunner,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    clock = StepClock(NOW_LIVE + 0.5)
    monkeypatch.setattr(time, "time", clock)
    with Receiver(ReceiverOptions(port=0), clock.arrived) as receiver:
        result = runner.invoke(cli, ["fire", "--url", receiver.url, "--seed", "3", "-n", "3",
                                     "--now", str(T0), "--no-history"])
        assert result.exit_code == 0, result.output
        stamps = [int(value_of(a.body)["messages"][0]["timestamp"]) for a in receiver.arrivals]
    assert stamps == [T0, T0 + 5, T0 + 10]  # moved to --now, still following the clock


def test_a_run_is_stamped_from_its_start_and_keeps_the_timelines_spacing(
        runner: CliRunner, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
        without_latency_limit: Callable[[str], Path]) -> None:
    scenario = str(without_latency_limit("appointment-reminder"))
    result = runner.invoke(cli, ["run", scenario, "--url", receiver.url, "--fast",
                                 "--now", str(T0), "--no-history"])
    assert result.exit_code == 0, result.output
    stamps = sorted(int(value_of(a.body)["messages"][0]["timestamp"]) for a in receiver.arrivals)
    assert stamps[0] >= T0 and stamps[-1] > stamps[0]  # spread like the scenario, not frozen
    # The run reads "now" once, for its start: a clock of ours, not the machine's.
    monkeypatch.setattr(time, "time", lambda: NOW_LIVE + 0.25)
    result = runner.invoke(cli, ["run", scenario, "--url", receiver.url, "--fast",
                                 "--no-history"])
    assert result.exit_code == 0, result.output
    fresh = [int(value_of(a.body)["messages"][0]["timestamp"])
             for a in receiver.arrivals[len(stamps):]]
    # By default the run starts now, not on a seeded day, with the same spacing.
    assert sorted(fresh) == [NOW_LIVE + stamp - T0 for stamp in stamps]


def test_render_stays_reproducible_and_the_plugin_stamps_now(runner: CliRunner) -> None:
    assert runner.invoke(cli, ["render", "--seed", "5", "-n", "3"]).stdout_bytes == \
        runner.invoke(cli, ["render", "--seed", "5", "-n", "3"]).stdout_bytes
    readings = iter([NOW_LIVE + 0.5, NOW_LIVE + 7.9])
    wasim = Simulator(5, clock=lambda: next(readings))
    stamps = [int(value_of(wasim.tap().body)["messages"][0]["timestamp"]) for _ in range(2)]
    assert stamps == [NOW_LIVE, NOW_LIVE + 7]  # each tap reads the live clock as it is made


# --- serialization -----------------------------------------------------------------------------


def test_del_goes_out_as_the_raw_byte_as_php_writes_it() -> None:
    assert to_wire({"a": "x\x7fy", "b": "\\u007f", "c": "\\\x7f"}) == \
        b'{"a":"x\x7fy","b":"\\\\u007f","c":"\\\\\x7f"}'
    options = TapOptions(seed=2, user_name="Ana\x7f", identity=(("bsuid", 1.0),))
    body = next(render_callbacks(RenderOptions(options))).body
    assert b'"name":"Ana\x7f"' in body and json.loads(body)  # the compiled path agrees


def test_an_argument_that_is_not_utf8_is_a_one_line_error() -> None:
    result = CliRunner().invoke(cli, ["render", "--seed", "1", "--name", "Ana\udcff"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "wasim: error: --name: the value is not valid UTF-8. Give text in UTF-8 (check the "
        "terminal's or the script's encoding)."]


# --- run options and payloads --------------------------------------------------------------------


def test_run_takes_the_business_ids_frameworks_filter_on(runner: CliRunner,
                                                         receiver: Receiver) -> None:
    result = runner.invoke(cli, ["run", "idempotency-check", "--url", receiver.url, "--fast",
                                 "--no-history", "--business-number", "918068177179",
                                 "--phone-number-id", "104605889412733",
                                 "--waba-id", "102290129340398"])
    assert result.exit_code == 0, result.output
    for arrival in receiver.arrivals:
        document = json.loads(arrival.body)
        metadata = document["meta_object"]["value"]["metadata"]
        assert (metadata["display_phone_number"], metadata["phone_number_id"],
                document["extra_info"]["waba_id"]) == \
            ("918068177179", "104605889412733", "102290129340398")


def test_the_default_buttons_carry_developer_payloads() -> None:
    payloads = {value_of(b)["messages"][0]["button"]["payload"] for b in bodies(60, seed=1)}
    assert payloads == {"SHOP_NOW", "REMIND_LATER", "STOP_PROMOTIONS"}


# --- one byte path -------------------------------------------------------------------------------


def test_the_plugin_tap_and_render_give_the_same_bytes_for_every_seed(
        runner: CliRunner) -> None:
    for seed in range(20):
        plugin = Simulator(seed, wall_clock=False).tap("Yes", payload="Y").body
        rendered = runner.invoke(cli, ["render", "--seed", str(seed), "--button", "Yes",
                                       "--payload", "Y"]).stdout_bytes
        assert plugin + b"\n" == rendered, seed


def _header_names(arrival: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in arrival.headers if k.lower() not in ("host",
                                                                          "content-length")}


def test_fire_load_and_the_plugin_send_one_header_set(runner: CliRunner,
                                                      receiver: Receiver) -> None:
    runner.invoke(cli, ["fire", "--url", receiver.url, "--seed", "1", "--no-history"])
    Simulator(1).deliver(Simulator(1).tap(), url=receiver.url)
    source = CallbackSource.from_taps(TapOptions(seed=1))
    delivery = delivery_options_from({"url": receiver.url}, str)
    asyncio.run(run_load(source, delivery, LoadOptions(duration=None, count=1, concurrency=1)))
    fired, plugin, loaded = (_header_names(a) for a in receiver.wait_for(3))
    assert fired == plugin == loaded
    assert fired["content-type"] == "application/json" and fired["user-agent"].startswith("wasim/")


@pytest.fixture(scope="module")
def shared_receiver() -> Iterator[Receiver]:
    with Receiver(ReceiverOptions(port=0)) as running:
        yield running


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10**6), country=st.sampled_from(COUNTRIES),
       identity=st.sampled_from(["bsuid", "phone", "username", "bsuid=1,username=1"]),
       platform=st.sampled_from(["android", "ios", "web", "mix"]), count=st.integers(1, 3))
def test_every_face_sends_the_same_bytes_for_the_same_seed_and_options(
        shared_receiver: Receiver, tmp_path: Path, seed: int, country: str, identity: str,
        platform: str, count: int) -> None:
    receiver, runner = shared_receiver, CliRunner()
    args = ["--seed", str(seed), "--country", country, "--identity", identity, "--platform",
            platform, "--button", "Yes", "--payload", "Y", "-n", str(count), "--now", str(T0),
            "--clock", "seeded"]
    rendered = runner.invoke(cli, ["render", *args]).stdout_bytes.splitlines()
    assert len(rendered) == count

    wasim = Simulator(seed, country=country, platform=platform, identity=identity,
                      wall_clock=False, now=T0)
    assert [wasim.tap("Yes", payload="Y").body for _ in range(count)] == rendered

    options = TapOptions(seed=seed, countries=(country,), platform=platform,
                         identity=parse_shares(identity, ("bsuid", "phone", "username"), "x"),
                         buttons=(Button("Yes", "Y"),), start=T0)
    source = CallbackSource.from_taps(options)
    assert [source.next()[1] for _ in range(count)] == rendered
    delivery = delivery_options_from({"url": receiver.url}, str)
    asyncio.run(run_load(CallbackSource.from_taps(options), delivery,
                         LoadOptions(duration=None, count=count, concurrency=1)))
    assert [a.body for a in receiver.arrivals[-count:]] == rendered

    history = tmp_path / f"h{seed}.jsonl"
    history.unlink(missing_ok=True)
    fired = runner.invoke(cli, ["fire", "--url", receiver.url, "--history", str(history), *args])
    assert fired.exit_code == 0, fired.output
    assert [a.body for a in receiver.arrivals[-count:]] == rendered
    replayed = runner.invoke(cli, ["replay", "--last", str(count), "--history", str(history)])
    assert replayed.exit_code == 0, replayed.output
    assert [a.body for a in receiver.arrivals[-count:]] == rendered


@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 10**6), country=st.sampled_from(COUNTRIES),
       identity=st.sampled_from(["bsuid", "phone", "username"]), button=st.integers(0, 2))
def test_the_tui_session_sends_what_render_gives_for_the_same_seed_and_options(
        seed: int, country: str, identity: str, button: int) -> None:
    scenario = parse_scenario(f"name: x\ncast:\n  countries: {{{country}: 2}}\n"
                              f"  identity: {identity}\n  platform: ios\n", "x.yaml")
    session = PhoneSession(scenario, seed, clock=lambda: float(T0))
    session.new_user(country)
    business, sent, chosen = session.business, session.current_sent, session.buttons[button]
    phone_seed = session.factory.options.seed  # the phone's own seed, next to the run's
    result = CliRunner().invoke(cli, [
        "render", "--seed", str(phone_seed), "--country", country, "--identity", identity,
        "--platform", "ios", "--business-number", business.display_phone_number,
        "--phone-number-id", business.phone_number_id, "--waba-id", business.waba_id,
        "--ref", sent.ref, "--ref1", sent.ref1, "--ref2", sent.ref2, "--button", chosen.text,
        "--payload", chosen.payload, "--now", str(T0)])
    assert result.exit_code == 0, result.output
    assert session.body(button) + b"\n" == result.stdout_bytes
    assert session.fire(button)[1].body + b"\n" == result.stdout_bytes


# --- the frameworks handlers are built on ------------------------------------------------------

# A handler built on pywa, as a Kaleyra user writes one: the callback's `meta_object` is one
# of Meta's `changes`, so it is put back in Meta's envelope and handed to pywa's own parser.
PYWA_HANDLER = """
import json, sys
import pywa
from pywa import WhatsApp

lines = [line for line in sys.stdin.buffer.read().splitlines() if line.strip()]
first = json.loads(lines[0])
wa = WhatsApp(server=None, phone_id=first["meta_object"]["value"]["metadata"]["phone_number_id"],
              token="unused", verify_token="unused", validate_updates=False)
seen = []

@wa.on_callback_button()
def on_button(client, button):
    seen.append({"wa_id": button.from_user.wa_id, "payload": button.data,
                 "label": button.title, "bsuid": getattr(button.from_user, "bsuid", None),
                 "message_id": button.id})

answers = []
for line in lines:
    callback = json.loads(line)
    envelope = {"object": "whatsapp_business_account",
                "entry": [{"id": callback["extra_info"]["waba_id"],
                           "changes": [callback["meta_object"]]}]}
    answers.append(wa.webhook_update_handler(json.dumps(envelope).encode())[1])
print(json.dumps({"version": pywa.__version__, "answers": answers, "seen": seen}))
"""


def _pywa(bodies_: list[bytes], path: str | None = None) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (path, os.environ.get(
        "PYTHONPATH")) if p)}
    done = subprocess.run([sys.executable, "-c", PYWA_HANDLER], input=b"\n".join(bodies_),
                          capture_output=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


def _expected(body: bytes) -> dict[str, Any]:
    value = value_of(body)
    contact, message = value["contacts"][0], value["messages"][0]
    return {"wa_id": contact.get("wa_id"), "payload": message["button"]["payload"],
            "label": message["button"]["text"], "bsuid": contact.get("user_id"),
            "message_id": message["id"]}


def _pywa_app(phone_id: str) -> tuple[Any, list[dict[str, Any]]]:
    """A FastAPI webhook for Kaleyra built on pywa, with its default update parsing."""
    from pywa import WhatsApp

    app, seen = FastAPI(), []
    wa = WhatsApp(server=None, phone_id=phone_id, token="unused", verify_token="unused",
                  validate_updates=False)

    @wa.on_callback_button()
    def on_button(_: Any, button: Any) -> None:
        seen.append({"wa_id": button.from_user.wa_id, "payload": button.data,
                     "label": button.title, "bsuid": button.from_user.bsuid,
                     "message_id": button.id})

    @app.post("/kaleyra")
    async def kaleyra(request: Request) -> Response:
        callback = json.loads(await request.body())
        envelope = {"object": "whatsapp_business_account",
                    "entry": [{"id": callback["extra_info"]["waba_id"],
                               "changes": [callback["meta_object"]]}]}
        text, status = wa.webhook_update_handler(json.dumps(envelope).encode())
        return Response(text, status_code=status)

    return app, seen


def test_current_pywa_recognises_every_default_tap_as_a_quick_reply_button() -> None:
    pytest.importorskip("pywa")
    wasim = Simulator(31, country=COUNTRIES)
    app, seen = _pywa_app(wasim.factory.business.phone_number_id)
    wasim.target(app=app, path="/kaleyra")
    taps = [wasim.tap() for _ in range(24)]
    for tap in taps:
        wasim.deliver(tap).assert_status(200)
    assert seen == [_expected(t.body) for t in taps]  # every tap recognised, none dropped
    assert all(BSUID.fullmatch(s["bsuid"]) for s in seen)


def test_current_pywa_drops_taps_for_another_phone_number_id() -> None:
    pytest.importorskip("pywa")
    wasim = Simulator(31)
    app, seen = _pywa_app("104605889412733")
    wasim.deliver(wasim.tap(), app=app, path="/kaleyra").assert_status(200)
    assert seen == []  # why `wasim run` takes --phone-number-id


def test_current_pywa_recognises_a_username_user_by_bsuid_alone() -> None:
    pytest.importorskip("pywa")
    wasim = Simulator(4)
    taps = [wasim.tap(identity="username").body for _ in range(3)]
    got = _pywa(taps)
    assert got["seen"] == [_expected(b) for b in taps]
    assert all(s["wa_id"] is None and s["bsuid"] for s in got["seen"])


@pytest.fixture(scope="session")
def pywa_3_9() -> str:
    """pywa 3.9 (before BSUIDs) in a cache folder of its own, installed once with pip."""
    target = Path(tempfile.gettempdir()) / "wasim-test-pywa-3.9"
    if not (target / "pywa" / "__init__.py").is_file():
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-deps", "--target", str(target), "pywa==3.9.*"],
            capture_output=True, timeout=300, check=False)
        if done.returncode != 0:
            pytest.skip("pip could not install pywa==3.9.* (no network to PyPI?): "
                        + done.stderr.decode(errors="replace").strip()[-300:])
    return str(target)


def test_phone_identity_taps_are_recognised_by_pywa_3_9_which_predates_bsuids(
        pywa_3_9: str, runner: CliRunner) -> None:
    taps = runner.invoke(cli, ["render", "--seed", "7", "-n", "12", "--identity", "phone",
                               "--country", ",".join(COUNTRIES)]).stdout_bytes.splitlines()
    got = _pywa(taps, pywa_3_9)
    assert got["version"].startswith("3.9")
    assert got["seen"] == [{**_expected(b), "bsuid": None} for b in taps]
