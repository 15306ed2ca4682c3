"""Meta-direct mode: Meta's envelope, X-Hub-Signature-256 over the bytes that leave, the
negative signature cases, the GET handshake, and a pywa handler with its checks switched on."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import FastAPI, Request, Response  # module level: FastAPI resolves annotations
from fastapi.responses import PlainTextResponse

from simulator.cli import cli
from simulator.delivery import callback_headers, delivery_options_from
from simulator.errors import WasimError
from simulator.history import read_history
from simulator.load import CallbackSource, LoadOptions, run_load
from simulator.meta import check_signature, sign, signature_for, wrap
from simulator.receiver import Receiver, ReceiverOptions
from simulator.render import RenderOptions, render_callbacks
from simulator.taps import TapOptions
from simulator.testing import Callback, Simulator
from simulator.validate import validate_body

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "my-verify-token"
NEGATIVE = ("missing", "wrong-secret", "reserialized", "bad-format")


def independent_signature(body: bytes, secret: str = SECRET) -> str:
    """HMAC-SHA256 as a handler computes it, without any wasim code."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def header(arrival: Any, name: str) -> str | None:
    found = [v for k, v in arrival.headers if k.lower() == name.lower()]
    return found[0] if found else None


def kaleyra_body(seed: int = 1) -> bytes:
    return next(render_callbacks(RenderOptions(TapOptions(seed=seed)))).body


# --- the envelope --------------------------------------------------------------------------


def test_the_meta_envelope_wraps_the_same_value_object_bytes_under_the_waba_id() -> None:
    kaleyra = kaleyra_body()
    meta = wrap(kaleyra)
    document = json.loads(meta)
    assert list(document) == ["object", "entry"]
    assert document["object"] == "whatsapp_business_account"
    entry = document["entry"][0]
    assert entry["id"] == json.loads(kaleyra)["extra_info"]["waba_id"]
    assert entry["changes"] == [json.loads(kaleyra)["meta_object"]]
    # The value object keeps its exact bytes: same escaping, same key order.
    inner = kaleyra[len(b'{"meta_object":'):kaleyra.index(b',"extra_info":')]
    assert meta == (b'{"object":"whatsapp_business_account","entry":[{"id":"'
                    + entry["id"].encode() + b'","changes":[' + inner + b"]}]}")


def test_wrapping_twice_changes_nothing_and_a_body_without_meta_object_is_refused() -> None:
    meta = wrap(kaleyra_body())
    assert wrap(meta) == meta
    with pytest.raises(WasimError, match="no meta_object"):
        wrap(b'{"hello":"world"}')
    with pytest.raises(WasimError, match="not JSON"):
        wrap(b"not json")


def test_render_prints_the_meta_envelope_and_validate_accepts_it(runner: CliRunner,
                                                                 tmp_path: Path) -> None:
    result = runner.invoke(cli, ["render", "--seed", "4", "-n", "3", "--envelope", "meta"])
    assert result.exit_code == 0, result.output
    lines = result.stdout_bytes.splitlines()
    plain = runner.invoke(cli, ["render", "--seed", "4", "-n", "3"]).stdout_bytes.splitlines()
    assert lines == [wrap(b) for b in plain]
    file = tmp_path / "meta.jsonl"
    file.write_bytes(result.stdout_bytes)
    checked = runner.invoke(cli, ["validate", str(file)])
    assert checked.exit_code == 0, checked.output
    assert "3 x a quick-reply tap (button)" in checked.stderr


def test_validate_reports_meta_envelope_problems_at_their_place_in_entry() -> None:
    document = json.loads(wrap(kaleyra_body()))
    document["entry"][0]["id"] = "12"
    document["entry"][0]["changes"][0]["field"] = "statuses"
    del document["entry"][0]["changes"][0]["value"]["metadata"]
    problems = {str(p).split(":")[0] for p in validate_body(json.dumps(
        document, separators=(",", ":")).replace("/", "\\/"))}
    assert problems == {"$.entry[0].id", "$.entry[0].changes[0].field",
                        "$.entry[0].changes[0].value.metadata"}


# --- signing over the bytes that leave -------------------------------------------------------


@pytest.mark.parametrize("name", ["Zoë / 山田 太郎 😂", "Ахмед \\ \"x\" / 👍🏽", "محمد/علي"])
def test_the_signature_matches_an_independent_hmac_over_the_received_bytes(
        runner: CliRunner, receiver: Receiver, name: str) -> None:
    result = runner.invoke(cli, ["fire", "--url", receiver.url, "--seed", "5", "--no-history",
                                 "--envelope", "meta", "--app-secret", SECRET, "--name", name,
                                 "--set", "messages[0].button.text=Yes / Sí ✅"])
    assert result.exit_code == 0, result.output
    arrival = receiver.wait_for(1)[0]
    # The bytes carry exactly what breaks re-serializing verifiers.
    assert b"\\/" in arrival.body and b"\\u" in arrival.body and arrival.body.isascii()
    assert json.loads(arrival.body)["entry"][0]["changes"][0]["value"]["contacts"][0][
        "profile"]["name"] == name
    assert header(arrival, "X-Hub-Signature-256") == independent_signature(arrival.body)
    assert header(arrival, "User-Agent") == "facebookexternalua"
    assert header(arrival, "Content-Type") == "application/json"
    # Re-serializing the received document (what smee and careless verifiers do) breaks it.
    again = json.dumps(json.loads(arrival.body)).encode()
    assert independent_signature(again) != header(arrival, "X-Hub-Signature-256")


def test_the_app_secret_comes_from_the_environment_and_is_never_recorded(
        runner: CliRunner, receiver: Receiver, tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    result = runner.invoke(cli, ["fire", "--url", receiver.url, "--seed", "6", "-n", "2",
                                 "--envelope", "meta", "--history", str(history)],
                           env={"WASIM_APP_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    for arrival in receiver.wait_for(2):
        assert header(arrival, "X-Hub-Signature-256") == independent_signature(arrival.body)
    recorded = history.read_text()
    assert SECRET not in recorded and SECRET not in result.output
    attempts = read_history(history).attempts
    # The signature is kept out like every non-allow-listed header; the signed bytes stay.
    assert all({k.lower(): v for k, v in a.request_headers}["x-hub-signature-256"]
               == "[redacted]"
               for a in attempts)
    assert [a.event.body for a in attempts] == [a.body for a in receiver.arrivals]


def test_an_app_secret_the_target_echoes_back_is_scrubbed_from_the_record() -> None:
    echoed: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("500 Oops", [("Content-Type", "text/plain")])
        echoed.append(SECRET)
        return [f"bad secret {SECRET}".encode()]

    wasim = Simulator(7, envelope="meta")
    wasim.target(app=app, app_secret=SECRET)
    delivery = wasim.deliver(wasim.tap())
    assert echoed and SECRET not in delivery.result.attempts[-1].response_body


def test_replay_sends_the_recorded_signed_bytes_and_signs_only_when_asked(
        runner: CliRunner, receiver: Receiver, tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    runner.invoke(cli, ["fire", "--url", receiver.url, "--seed", "8", "--envelope", "meta",
                        "--app-secret", SECRET, "--history", str(history)])
    assert runner.invoke(cli, ["replay", "--last", "1", "--history", str(history),
                               "--url", receiver.url]).exit_code == 0
    assert runner.invoke(cli, ["replay", "--last", "1", "--history", str(history),
                               "--url", receiver.url, "--app-secret", SECRET]).exit_code == 0
    fired, unsigned, resigned = receiver.wait_for(3)
    assert fired.body == unsigned.body == resigned.body
    assert header(unsigned, "X-Hub-Signature-256") is None
    assert header(resigned, "X-Hub-Signature-256") == independent_signature(fired.body)


def test_load_signs_every_request_over_its_own_body(receiver: Receiver) -> None:
    delivery = delivery_options_from({"url": receiver.url, "envelope": "meta",
                                      "app_secret": SECRET}, str)
    source = CallbackSource.from_taps(TapOptions(seed=9))
    stats = asyncio.run(run_load(source, delivery, LoadOptions(duration=None, count=6,
                                                               concurrency=2)))
    assert stats.ok == 6
    arrivals = receiver.wait_for(6)
    assert len({a.body for a in arrivals}) == 6
    for arrival in arrivals:
        assert json.loads(arrival.body)["object"] == "whatsapp_business_account"
        assert header(arrival, "X-Hub-Signature-256") == independent_signature(arrival.body)
        assert header(arrival, "User-Agent") == "facebookexternalua"


def test_fire_load_and_the_plugin_send_one_meta_header_set(runner: CliRunner,
                                                          receiver: Receiver) -> None:
    runner.invoke(cli, ["fire", "--url", receiver.url, "--seed", "1", "--no-history",
                        "--envelope", "meta", "--app-secret", SECRET])
    wasim = Simulator(1, envelope="meta")
    wasim.target(url=receiver.url, app_secret=SECRET)
    wasim.deliver(wasim.tap())
    delivery = delivery_options_from({"url": receiver.url, "envelope": "meta",
                                      "app_secret": SECRET}, str)
    asyncio.run(run_load(CallbackSource.from_taps(TapOptions(seed=1)), delivery,
                         LoadOptions(duration=None, count=1, concurrency=1)))
    names = [sorted(k.lower() for k, _ in a.headers) for a in receiver.wait_for(3)]
    assert names[0] == names[1] == names[2]
    assert "x-hub-signature-256" in names[0]


# --- negative cases --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", NEGATIVE)
def test_every_negative_case_fails_an_independent_check(mode: str) -> None:
    body = wrap(kaleyra_body())
    value = signature_for(SECRET, body, mode)
    assert value != independent_signature(body)
    assert check_signature(SECRET, value, body) is not None


def test_negative_cases_other_than_missing_need_the_secret() -> None:
    with pytest.raises(WasimError, match="needs the app secret") as caught:
        delivery_options_from({"url": "http://127.0.0.1:9/", "signature": "wrong-secret"},
                              lambda key: f"--{key}")
    assert caught.value.where == "--signature"
    missing = delivery_options_from({"url": "http://127.0.0.1:9/", "signature": "missing",
                                     "app_secret": SECRET}, str)
    assert "X-Hub-Signature-256" not in callback_headers(missing, body=b"{}")


def test_unknown_envelope_and_signature_cases_are_one_line_errors(runner: CliRunner) -> None:
    for flag, value in (("--envelope", "twilio"), ("--signature", "weird")):
        result = runner.invoke(cli, ["fire", "--url", "http://127.0.0.1:9/", flag, value])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.output.count("\n") <= 3


def test_the_receiver_refuses_every_negative_case_and_records_why(runner: CliRunner) -> None:
    with Receiver(ReceiverOptions(port=0, app_secret=SECRET)) as receiver:
        for mode in NEGATIVE:
            result = runner.invoke(cli, ["fire", "--url", receiver.url, "--seed", "3",
                                         "--no-history", "--envelope", "meta",
                                         "--app-secret", SECRET, "--signature", mode])
            assert result.exit_code == 0, (mode, result.output)  # refused, as it must
        good = runner.invoke(cli, ["fire", "--url", receiver.url, "--seed", "3",
                                   "--no-history", "--envelope", "meta", "--app-secret",
                                   SECRET])
        assert good.exit_code == 0, good.output
        arrivals = receiver.wait_for(5)
    assert [a.status for a in arrivals] == [401, 401, 401, 401, 200]
    assert [a.problems[0].split(" ")[0] for a in arrivals[:4]] == \
        ["no", "X-Hub-Signature-256", "X-Hub-Signature-256", "X-Hub-Signature-256"]
    assert arrivals[4].problems == ()
    assert all(SECRET not in " ".join(a.problems) for a in arrivals)


NEGATIVE_SCENARIO = """\
name: signatures
seed: 3
target:
  envelope: meta
  app_secret: "{secret}"
template:
  name: promo
  buttons:
    - {{text: "Yes", payload: "YES"}}
    - {{text: "No", payload: "NO"}}
cast:
  countries: {{IN: 2}}
steps:
  - name: signed
    who: 1
    tap: "Yes"
    expect:
      status: [200]
{negative}"""

NEGATIVE_STEP = """\
  - name: {mode}
    who: 1
    tap: "No"
    after: 1s
    target:
      signature: {mode}
    expect:
      status: [401, 403]
"""


def test_a_scenario_declares_negative_cases_with_their_expectations(tmp_path: Path) -> None:
    text = NEGATIVE_SCENARIO.format(secret=SECRET, negative="".join(
        NEGATIVE_STEP.format(mode=mode) for mode in NEGATIVE))
    with Receiver(ReceiverOptions(port=0, app_secret=SECRET)) as receiver:
        run = Simulator(3).run_scenario(text, url=receiver.url)
        assert run.ok, run.summary.lines()
        assert sorted(a.status for a in receiver.wait_for(5)) == [200, 401, 401, 401, 401]
    # A handler that does not check signatures breaks every negative step's expectation.
    with Receiver(ReceiverOptions(port=0)) as lax:
        run = Simulator(3).run_scenario(text, url=lax.url)
        assert not run.ok


# --- the verification handshake --------------------------------------------------------------


def handshake_app(token: str = TOKEN, echo_any: bool = False) -> FastAPI:
    app = FastAPI()

    @app.get("/webhook")
    async def verify(request: Request) -> Response:
        query = request.query_params
        if query.get("hub.mode") == "subscribe" and (
                echo_any or query.get("hub.verify_token") == token):
            return PlainTextResponse(query.get("hub.challenge", ""))
        return PlainTextResponse("Forbidden", status_code=403)

    return app


def test_verify_passes_a_handler_that_echoes_for_its_token_and_refuses_others() -> None:
    handshake = Simulator(1).verify(app=handshake_app(), path="/webhook", token=TOKEN,
                                    challenge="1158201444")
    assert handshake.passed, handshake.lines()
    assert [c.status for c in handshake.checks] == [200, 403]


def test_verify_fails_a_handler_that_accepts_any_token_or_the_wrong_one() -> None:
    lax = Simulator(1).verify(app=handshake_app(echo_any=True), path="/webhook", token=TOKEN)
    assert not lax.passed and [c.passed for c in lax.checks] == [True, False]
    wrong = Simulator(1).verify(app=handshake_app("other"), path="/webhook", token=TOKEN)
    assert not wrong.passed and [c.passed for c in wrong.checks] == [False, True]


def test_wasim_verify_on_the_command_line(runner: CliRunner, receiver: Receiver) -> None:
    # The built-in receiver echoes for any token: the wrong-token check catches it.
    result = runner.invoke(cli, ["verify", receiver.url, "--verify-token", TOKEN,
                                 "--challenge", "42"])
    assert result.exit_code == 1, result.output
    assert "ok   right token: HTTP 200, echoed the challenge" in result.output
    assert "FAIL wrong token" in result.output
    assert TOKEN not in result.output
    sent = [a.path for a in receiver.arrivals]
    assert sent == [] or all("hub.mode=subscribe" in p for p in sent)


def test_wasim_verify_refuses_a_remote_target_and_says_when_nothing_listens(
        runner: CliRunner) -> None:
    remote = runner.invoke(cli, ["verify", "http://203.0.113.5/webhook", "--verify-token", "t"])
    assert remote.exit_code == 2 and "--allow-remote" in remote.output
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    away = runner.invoke(cli, ["verify", f"http://127.0.0.1:{port}/", "--verify-token", "t"])
    assert away.exit_code == 3, away.output


# --- a handler built on pywa, its checks switched on -------------------------------------------


def pywa_app(phone_id: str) -> tuple[FastAPI, list[str], Any]:
    """A Meta webhook as pywa users write one: pywa's own routes, signature validation on."""
    pytest.importorskip("pywa")
    from pywa import WhatsApp

    app, seen = FastAPI(), []
    wa = WhatsApp(server=app, webhook_endpoint="/webhook", phone_id=phone_id, token="unused",
                  verify_token=TOKEN, app_secret=SECRET, validate_updates=True)

    @wa.on_callback_button()
    def on_button(_: Any, button: Any) -> None:
        seen.append(button.id)

    return app, seen, wa


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    """pywa handles updates in a background task after answering: wait for its effect."""
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_pywa_handler_with_signature_validation_handles_every_signed_tap() -> None:
    wasim = Simulator(21, envelope="meta")
    app, seen, _ = pywa_app(wasim.factory.business.phone_number_id)
    wasim.target(app=app, path="/webhook", app_secret=SECRET)
    taps = [wasim.tap() for _ in range(30)]
    for tap in taps:
        wasim.deliver(tap).assert_status(200)
    wait_until(lambda: len(seen) >= len(taps))
    assert sorted(seen) == sorted(json.loads(t.body)["meta_object"]["value"]["messages"][0][
        "id"] for t in taps)  # 100% handled


def test_a_pywa_handler_rejects_every_wrong_signature_case_and_acts_on_none() -> None:
    wasim = Simulator(22, envelope="meta")
    app, seen, _ = pywa_app(wasim.factory.business.phone_number_id)
    statuses = {}
    for mode in NEGATIVE:
        wasim.target(app=app, path="/webhook", app_secret=SECRET, signature=mode)
        statuses[mode] = wasim.deliver(wasim.tap()).status
    # pywa's FastAPI route declares the header required: FastAPI answers 422 before pywa.
    assert statuses == {"missing": 422, "wrong-secret": 403, "reserialized": 403,
                        "bad-format": 403}
    wasim.target(app=app, path="/webhook", app_secret=SECRET)
    wasim.deliver(wasim.tap()).assert_status(200)
    wait_until(lambda: len(seen) >= 1)
    assert len(seen) == 1  # only the properly signed tap was acted on


def test_a_pywa_handler_drops_taps_for_another_phone_number_id() -> None:
    own, other = Simulator(23, envelope="meta"), Simulator(24, envelope="meta")
    app, seen, _ = pywa_app(own.factory.business.phone_number_id)
    for wasim in (other, own):
        wasim.target(app=app, path="/webhook", app_secret=SECRET)
    other.deliver(other.tap()).assert_status(200)  # pywa still answers 200...
    mine = own.tap()
    own.deliver(mine).assert_status(200)
    wait_until(lambda: len(seen) >= 1)
    # ...but acts only on its own number's tap, delivered after the other one.
    assert seen == [json.loads(mine.body)["meta_object"]["value"]["messages"][0]["id"]]


def test_a_pywa_handler_passes_the_verification_handshake() -> None:
    app, _, _ = pywa_app("104605889412733")
    handshake = Simulator(1).verify(app=app, path="/webhook", token=TOKEN)
    assert handshake.passed, handshake.lines()


def test_sign_is_hmac_sha256_of_the_bytes() -> None:
    assert sign("key", b"The quick brown fox jumps over the lazy dog") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8")


def test_the_readme_run_passes_a_signature_checking_webhook_and_a_wrong_secret_does_not(
        runner: CliRunner) -> None:
    with Receiver(ReceiverOptions(port=0, app_secret=SECRET)) as receiver:
        good = runner.invoke(cli, ["run", "idempotency-check", "--url", receiver.url,
                                   "--envelope", "meta", "--fast", "--no-history"],
                             env={"WASIM_APP_SECRET": SECRET})
        assert good.exit_code == 0, good.output
        count = receiver.received
        assert count and all(a.status == 200 for a in receiver.arrivals)
        bad = runner.invoke(cli, ["run", "idempotency-check", "--url", receiver.url,
                                  "--envelope", "meta", "--fast", "--no-history",
                                  "--app-secret", "not-the-secret"])
        assert bad.exit_code == 1
        assert {a.status for a in receiver.arrivals[count:]} == {401}


# --- batching as Meta does it ----------------------------------------------------------------


def messages_in(body: bytes) -> list[str]:
    document = json.loads(body)
    values = [c["value"] for e in document["entry"] for c in e["changes"]] \
        if "entry" in document else [document["meta_object"]["value"]]
    return [m["id"] for value in values for m in value["messages"]]


@pytest.mark.parametrize(("shape", "envelope"), [("messages", "kaleyra"), ("messages", "meta"),
                                                 ("changes", "meta"), ("entries", "meta")])
def test_fire_batches_every_tap_into_fewer_requests(runner: CliRunner, receiver: Receiver,
                                                   shape: str, envelope: str) -> None:
    result = runner.invoke(cli, ["fire", "--url", receiver.url, "--seed", "12", "-n", "7",
                                 "--no-history", "--batch", "3", "--batch-shape", shape,
                                 "--envelope", envelope, "--app-secret", SECRET])
    assert result.exit_code == 0, result.output
    arrivals = receiver.wait_for(3)
    singles = [json.loads(b)["meta_object"]["value"]["messages"][0]["id"] for b in
               runner.invoke(cli, ["render", "--seed", "12", "-n", "7"]).stdout_bytes.splitlines()]
    # Every tap arrives once, in order, 3 + 3 + 1; each request signed over its own bytes.
    assert [messages_in(a.body) for a in arrivals] == [singles[:3], singles[3:6], singles[6:]]
    assert all(header(a, "X-Hub-Signature-256") == independent_signature(a.body)
               for a in arrivals)
    assert all(a.problems == () for a in arrivals), [a.problems for a in arrivals]
    if shape == "changes":
        assert [len(json.loads(a.body)["entry"]) for a in arrivals] == [1, 1, 1]
    if shape == "entries":
        assert [len(json.loads(a.body)["entry"]) for a in arrivals] == [3, 3, 1]


def test_a_batch_of_changes_needs_the_meta_envelope(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["fire", "--url", "http://127.0.0.1:9/", "--batch", "2",
                                 "--batch-shape", "changes"])
    assert result.exit_code == 2 and "--envelope meta" in result.output


BATCH_SCENARIO = """\
name: batches
seed: 5
target:
  envelope: meta
template:
  name: promo
  buttons:
    - {{text: "Yes", payload: "YES"}}
cast:
  countries: {{IN: 12}}
steps:
  - name: everyone
    tap: "Yes"
chaos:
  batch: {share}
  batch_size: 3
  batch_shape: {shape}
"""


def test_batch_chaos_sends_a_share_of_taps_together_and_loses_none() -> None:
    from simulator.runner import plan_scenario
    from simulator.scenarios import parse_scenario

    plain = plan_scenario(parse_scenario(BATCH_SCENARIO.format(share=0, shape="messages"),
                                         "<s>"))
    every = [messages_in(s.event.body)[0] for s in plain.sends]
    for share, shape in ((1.0, "messages"), (0.5, "changes"), (0.5, "entries")):
        scenario = parse_scenario(BATCH_SCENARIO.format(share=share, shape=shape), "<s>")
        plan = plan_scenario(scenario)
        carried = [m for s in plan.sends for m in messages_in(wrap(s.event.body))]
        assert carried == every  # every tap, once, in order
        assert len(plan.sends) < len(every)
        assert plan_scenario(scenario).sends == plan.sends  # reproducible from the seed
    with Receiver(ReceiverOptions(port=0)) as receiver:
        run = Simulator(5).run_scenario(BATCH_SCENARIO.format(share=1.0, shape="messages"),
                                        url=receiver.url)
        assert run.ok, run.summary.lines()
        assert [len(messages_in(a.body)) for a in receiver.wait_for(4)] == [3, 3, 3, 3]


def test_an_unknown_batch_shape_is_a_one_line_error_at_its_line() -> None:
    from simulator.scenarios import parse_scenario

    with pytest.raises(WasimError, match="unknown batch shape") as caught:
        parse_scenario(BATCH_SCENARIO.format(share=1, shape="boxes"), "<s>")
    assert caught.value.where == "<s>:17"


@pytest.mark.parametrize("shape", ["messages", "changes", "entries"])
def test_pywa_acts_on_only_the_first_tap_of_a_batch_which_batching_exposes(shape: str) -> None:
    from simulator.meta import batch

    wasim = Simulator(25, envelope="meta")
    app, seen, _ = pywa_app(wasim.factory.business.phone_number_id)
    wasim.target(app=app, path="/webhook", app_secret=SECRET)
    taps = [wasim.tap() for _ in range(3)]
    wasim.deliver(Callback(taps[0].tap, batch([t.body for t in taps], shape), 25)) \
        .assert_status(200)
    after = wasim.tap()
    wasim.deliver(after).assert_status(200)
    wait_until(lambda: messages_in(after.body)[0] in seen)
    # pywa 4.5 reads entry[0].changes[0].value.messages[0] only (wire-format section 9.4):
    # two of the three batched taps are dropped while the webhook answers 200.
    assert seen == [messages_in(taps[0].body)[0], messages_in(after.body)[0]]


def test_export_says_how_to_sign_the_recorded_bytes_again(runner: CliRunner, receiver: Receiver,
                                                          tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    runner.invoke(cli, ["fire", "--url", receiver.url, "--seed", "13", "--envelope", "meta",
                        "--app-secret", SECRET, "--history", str(history)])
    event = read_history(history).attempts[-1].event
    exported = runner.invoke(cli, ["export", event.id, "--history", str(history)]).output
    assert f"wasim replay {event.id} --app-secret" in exported and SECRET not in exported
    assert event.body == receiver.wait_for(1)[0].body


def test_a_pywa_handler_gets_the_statuses_of_its_reply_through_the_mock_api_signed() -> None:
    """Meta-direct end to end: a tap, the app's reply through wasim's send API, and the
    statuses that follow arrive in Meta's envelope, signed, and pywa parses them."""
    import httpx
    from pywa.types import MessageStatus

    wasim = Simulator(25, envelope="meta")
    app, seen, wa = pywa_app(wasim.factory.business.phone_number_id)
    statuses: list[MessageStatus] = []
    wa.on_message_status()(lambda _, status: statuses.append(status))
    wasim.target(app=app, path="/webhook", app_secret=SECRET)
    with wasim.api() as kaleyra:
        tap = wasim.tap()
        wasim.deliver(tap).assert_status(200)
        wait_until(lambda: len(seen) >= 1)  # pywa acted on the tap; the app now replies
        business = tap.tap.business.display_phone_number
        answer = httpx.post(kaleyra.v2_url(business), headers={"api-key": kaleyra.options.api_key},
                            json={"messaging_object": {
                                "messaging_product": "whatsapp", "to": tap.user.wa_id,
                                "type": "text", "text": {"body": "You're unsubscribed"}}})
        assert answer.status_code == 202, answer.text
        [reply] = kaleyra.assert_replied(tap.user.wa_id)
        delivered = kaleyra.wait_for_statuses(3)
        wait_until(lambda: len(statuses) >= 3)
    assert [d.result.attempts[-1].status for d in delivered if d.result] == [200, 200, 200]
    assert all(json.loads(d.body)["object"] == "whatsapp_business_account" for d in delivered)
    assert [s.id for s in statuses] == [reply.wamid] * 3
    assert [str(s.status) for s in statuses] == ["sent", "delivered", "read"]
    # The recipient is the tapping user, under the BSUID its taps carry.
    assert {(s.from_user.wa_id, s.from_user.bsuid) for s in statuses} == \
        {(tap.user.wa_id, tap.user.user_id)} and tap.user.user_id
