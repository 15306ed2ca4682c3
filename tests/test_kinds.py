"""Every kind of callback (issue 12): pinned bytes, valid in every identity mode, the same
bytes from `render --kind` and the plugin, ids that decode from the right side, one-line errors.

Regenerate the golden files deliberately: WASIM_REGENERATE_GOLDEN=1 pytest tests/test_kinds.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.kinds import KIND_SPECS, KindArgs, kind_names, render_kind, summarize
from simulator.kinds.status import ERRORS
from simulator.receiver import Receiver
from simulator.render import RenderOptions
from simulator.taps import TapOptions
from simulator.testing import Simulator
from simulator.validate import describe_kind, validate_body
from simulator.wamid import BUSINESS_ID_LENGTH, decode_wamid

GOLDEN = Path(__file__).parent / "golden" / "kinds"
SEED = "12"
# (golden file name, `wasim render` arguments after --seed): every kind, and the variants.
CASES: list[tuple[str, list[str]]] = [
    ("text", ["--kind", "text", "--text", "Where is my order? \U0001f69a"]),
    ("text_forwarded", ["--kind", "text", "--forwarded", "frequently_forwarded"]),
    ("button_reply", ["--kind", "button_reply", "--reply-id", "track", "--reply-title",
                      "Track order"]),
    ("list_reply", ["--kind", "list_reply"]),
    ("image", ["--kind", "image", "--caption", "This one / blue?"]),
    ("video", ["--media", "video"]),
    ("audio", ["--kind", "audio"]),
    ("voice", ["--kind", "voice"]),
    ("document", ["--kind", "document"]),
    ("sticker", ["--kind", "sticker"]),
    ("location", ["--kind", "location", "--lat", "12.9467329", "--lng", "77.646835"]),
    ("location_place", ["--kind", "location", "--place-name", "Forum Mall", "--address",
                        "Hosur Road, Bengaluru", "--place-url", "https://example.com/forum"]),
    ("contacts", ["--kind", "contacts"]),
    ("reaction", ["--kind", "reaction", "--emoji", "\U0001f44d"]),
    ("reaction_removed", ["--kind", "reaction", "--emoji", ""]),
    ("unsupported", ["--kind", "unsupported"]),
    *[(f"status_{s}", ["--kind", "status", "--status", s])
      for s in ("sent", "delivered", "read", "not-sent")],
    ("status_sent_no_contacts", ["--kind", "status", "--no-contacts"]),
    *[(f"status_failed_{code}", ["--kind", "status", "--status", "failed", "--error", str(code)])
      for code in ERRORS],
]
NOW = 1_800_000_000  # after every seeded timestamp


def render(runner: CliRunner, *args: str) -> bytes:
    result = runner.invoke(cli, ["render", "--seed", SEED, *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def document(body: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(body)
    return parsed


@pytest.mark.parametrize(("name", "args"), CASES, ids=[c[0] for c in CASES])
def test_each_kind_matches_its_pinned_golden_file(runner: CliRunner, name: str,
                                                  args: list[str]) -> None:
    body = render(runner, *args)
    golden = GOLDEN / f"{name}.json"
    if os.environ.get("WASIM_REGENERATE_GOLDEN"):
        golden.write_bytes(body)
    assert body == golden.read_bytes()
    assert validate_body(body.strip(), now=NOW) == []


def test_every_kind_has_a_golden_file() -> None:
    covered = {kind_in(GOLDEN / f"{name}.json") for name, _ in CASES}
    assert set(KIND_SPECS) <= covered


def kind_in(path: Path) -> str:
    doc = document(path.read_bytes())
    if "status" in doc:
        return "status"
    message = doc["meta_object"]["value"]["messages"][0]
    if message["type"] == "interactive":
        return str(message["interactive"]["type"])
    if message["type"] == "audio" and message["audio"].get("voice"):
        return "voice"
    return str(message["type"])


@pytest.mark.parametrize("identity", ["bsuid", "phone", "username", "bsuid=1,username=1"])
@pytest.mark.parametrize("kind", [k for k in kind_names() if k != "button"])
def test_every_kind_is_valid_in_every_identity_mode_country_and_platform(
        kind: str, identity: str) -> None:
    from simulator.taps import IDENTITIES, parse_shares

    options = RenderOptions(TapOptions(seed=5, countries=("IN", "BR", "US", "MX", "DE"),
                                       identity=parse_shares(identity, IDENTITIES, "-"),
                                       enterprise=0.3), count=12)
    statuses = ("sent", "delivered", "read", "failed", "not-sent")
    for i, rendered in enumerate(render_kind(kind, options, KindArgs())):
        args = KindArgs(status=statuses[i % 5]) if kind == "status" else KindArgs()
        body = rendered.body if kind != "status" else next(iter(render_kind(
            kind, RenderOptions(TapOptions(seed=i, identity=options.taps.identity)), args))).body
        assert validate_body(body, now=NOW) == [], (kind, body)


@pytest.mark.parametrize(("kind", "args", "seen"), [
    ("text", ["--kind", "text"], "a text message (text)"),
    ("list_reply", ["--kind", "list_reply"], "an interactive reply (list_reply)"),
    ("button_reply", ["--kind", "button_reply"], "an interactive reply (button_reply)"),
    ("voice", ["--kind", "voice"], "a media message (audio)"),
    ("reaction", ["--kind", "reaction"], "a reaction (reaction)"),
    ("status", ["--kind", "status", "--status", "read"], "a status callback (read)"),
])
def test_validate_says_which_kind_it_saw(runner: CliRunner, kind: str, args: list[str],
                                         seen: str) -> None:
    body = render(runner, *args)
    checked = runner.invoke(cli, ["validate", "-"], input=body, catch_exceptions=False)
    assert checked.exit_code == 0, checked.output
    assert checked.stderr == f"1 callback, all valid: {seen}\n"
    assert describe_kind(document(body)) == seen


@pytest.mark.parametrize("kind", [k for k in kind_names() if k != "button"])
def test_the_plugin_sends_the_same_bytes_as_render_kind(runner: CliRunner, kind: str) -> None:
    wasim = Simulator(int(SEED), wall_clock=False)
    assert wasim.send(kind).body + b"\n" == render(runner, "--kind", kind)


def test_the_plugin_shortcuts_match_render_with_the_same_options(runner: CliRunner) -> None:
    def fresh() -> Simulator:
        return Simulator(int(SEED), wall_clock=False)

    pairs = [
        (fresh().text("hi"), ["--kind", "text", "--text", "hi"]),
        (fresh().react("\U0001f44d"), ["--kind", "reaction", "--emoji", "\U0001f44d"]),
        (fresh().status("failed", error=131047),
         ["--kind", "status", "--status", "failed", "--error", "131047"]),
        (fresh().location(1.5, 2.5), ["--kind", "location", "--lat", "1.5", "--lng", "2.5"]),
        (fresh().media("document", caption="bill"),
         ["--kind", "document", "--caption", "bill"]),
        (fresh().list_reply("2", "Sandals"),
         ["--kind", "list_reply", "--reply-id", "2", "--reply-title", "Sandals"]),
        (fresh().button_reply("yes", "Yes"),
         ["--kind", "button_reply", "--reply-id", "yes", "--reply-title", "Yes"]),
    ]
    for callback, args in pairs:
        assert callback.body + b"\n" == render(runner, *args), args


def test_a_users_tap_reaction_and_statuses_all_name_the_same_template_message() -> None:
    wasim = Simulator(3, wall_clock=False)
    user = wasim.user()
    tap = wasim.tap(user=user)
    reaction, read = wasim.react(user=user), wasim.status("read", user=user)
    template_wamid = tap.document["meta_object"]["value"]["messages"][0]["context"]["id"]
    assert reaction.document["meta_object"]["value"]["messages"][0]["reaction"][
        "message_id"] == template_wamid
    assert read.document["message_id"] == template_wamid == read.document["extra_info"][
        "message_id"] == read.document["meta_object"]["value"]["statuses"][0]["id"]
    assert read.kind == "status" and tap.kind == "button"


def test_a_status_id_is_the_businesss_wamid_embedding_the_users_number(
        runner: CliRunner) -> None:
    doc = document(render(runner, "--kind", "status", "--status", "delivered"))
    status = doc["meta_object"]["value"]["statuses"][0]
    decoded = decode_wamid(status["id"])
    assert decoded.from_business and len(decoded.message_id) == BUSINESS_ID_LENGTH
    assert decoded.customer == status["recipient_id"]
    assert list(doc) == ["meta_object", "extra_info", "status", "message_id"]
    assert list(doc["extra_info"]) == ["trace_id", "message_id", "waba_id", "ref", "ref1",
                                       "ref2", "enable_url_tracking_body",
                                       "enable_url_tracking_button"]
    assert list(status) == ["id", "status", "timestamp", "recipient_id", "recipient_user_id",
                            "conversation", "pricing"]
    assert list(doc["meta_object"]["value"]["contacts"][0]) == ["wa_id", "user_id",
                                                                "country_code"]


def test_a_failed_status_carries_metas_error_object_and_no_billing(runner: CliRunner) -> None:
    doc = document(render(runner, "--kind", "status", "--status", "failed", "--error",
                          "130429"))
    status = doc["meta_object"]["value"]["statuses"][0]
    assert status["errors"] == [{"code": 130429, "title": "Rate limit hit",
                                 "message": "Rate limit hit", "error_data": {
                                     "details": "Cloud API message throughput has been "
                                                "reached."}}]
    assert "conversation" not in status and "pricing" not in status


def test_media_carries_a_numeric_id_a_base64_sha256_and_kaleyras_media_url(
        runner: CliRunner) -> None:
    body = render(runner, "--kind", "image", "--caption", "blue?")
    doc = document(body)
    image = doc["meta_object"]["value"]["messages"][0]["image"]
    assert list(image) == ["caption", "mime_type", "sha256", "id"]
    assert image["id"].isdigit() and len(image["sha256"]) == 44
    assert doc["extra_info"]["media_url"].startswith("https://")
    assert doc["extra_info"]["media_url"].endswith(f"{image['id']}.jpg")
    assert b'"image\\/jpeg"' in body and b"https:\\/\\/" in body  # PHP's escaped slashes
    text = document(render(runner, "--kind", "text"))
    assert text["extra_info"]["media_url"] == ""


def test_the_unreact_has_an_empty_emoji_and_no_context(runner: CliRunner) -> None:
    doc = document(render(runner, "--kind", "reaction", "--emoji", ""))
    message = doc["meta_object"]["value"]["messages"][0]
    assert "context" not in message and message["reaction"]["emoji"] == ""
    assert summarize(doc) == "removed a reaction"


def test_the_phone_summary_of_each_kind_is_one_short_line(runner: CliRunner) -> None:
    for name, args in CASES:
        line = summarize(document(render(runner, *args)))
        assert line and "\n" not in line and len(line) <= 80, name
    assert summarize(document(render(runner, "--kind", "status", "--status", "failed"))) == \
        "[failed] ! 131026"


@pytest.mark.parametrize(("args", "where", "fragment"), [
    (["--kind", "poll"], "--kind", "no kind named 'poll'"),
    (["--kind", "txt"], "--kind", "Did you mean 'text'?"),
    (["--kind", "text", "--emoji", "x"], "--emoji", "not an option of kind text"),
    (["--kind", "status", "--error", "131026"], "--error", "needs --status failed"),
    (["--kind", "text", "--button", "Buy"], "--button", "not kind text"),
    (["--kind", "status", "--status", "gone"], "--status", "gone"),
    (["--kind", "location", "--lat", "91"], "--lat", "out of range"),
])
def test_a_bad_kind_option_is_a_one_line_error(runner: CliRunner, args: list[str], where: str,
                                               fragment: str) -> None:
    result = runner.invoke(cli, ["render", "--seed", "1", *args])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and where in result.stderr
    assert fragment in result.stderr


def test_kind_list_and_templates_name_every_kind(runner: CliRunner) -> None:
    listed = runner.invoke(cli, ["render", "--kind", "list"], catch_exceptions=False)
    header, *rows = listed.stdout.splitlines()
    assert header.split() == ["KIND", "WHAT", "OPTIONS"]
    assert [row.split()[0] for row in rows if not row.startswith(" ")] == kind_names()
    templates = runner.invoke(cli, ["templates"], catch_exceptions=False).stdout
    assert all(f"  {name} " in templates for name in kind_names())


@pytest.mark.parametrize("args", [["--kind", "text", "--text", "hi"],
                                  ["--kind", "status", "--status", "failed"],
                                  ["--media", "voice"], ["--kind", "reaction", "--emoji", ""]])
def test_fire_sends_any_kind_with_renders_bytes_to_a_real_webhook(
        runner: CliRunner, receiver: Receiver, tmp_path: Path, args: list[str]) -> None:
    seeded = ["--seed", SEED, "--count", "2", "--clock", "seeded", *args]
    result = runner.invoke(cli, ["fire", "--history", str(tmp_path / "h.jsonl"), "--url",
                                 receiver.url, *seeded])
    assert result.exit_code == 0, result.output
    expected = runner.invoke(cli, ["render", *seeded]).stdout_bytes.splitlines()
    assert [a.body for a in receiver.arrivals] == expected
    assert all(not a.problems for a in receiver.arrivals)  # the receiver validates each kind


def test_a_kind_callback_describes_itself_by_its_kind_not_as_a_tap() -> None:
    wasim = Simulator(2, wall_clock=False)
    read = wasim.status("read")
    assert read.describe().startswith("status '[read] \u2713\u2713 blue' for ")
    assert read.document["message_id"] in read.describe()
    assert wasim.text("hi").describe().startswith("text 'hi' for ")


def test_kind_name_tells_every_kind_apart_in_both_envelopes(runner: CliRunner) -> None:
    from simulator.kinds import kind_name

    for name in kind_names():
        for envelope in ("kaleyra", "meta"):
            body = runner.invoke(cli, ["render", "--seed", "4", "--kind", name, "--envelope",
                                       envelope], catch_exceptions=False).stdout
            assert kind_name(json.loads(body)) == name, (name, envelope)
    assert kind_name({"meta_object": {"value": {"messages": [{"type": "order"}]}}}) == "?"
    assert kind_name([]) == "?"
