"""The send API's account from the command line: approved templates (others fail, 132001),
failure rules by number or seeded share (131026, 131047...), its SID and key from the flags or
KALEYRA_*, and `--api-port` alone for an app already pointed at it."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.delivery import delivery_options_from
from simulator.errors import WasimError
from simulator.params import default_api_port
from simulator.receiver import Receiver, ReceiverOptions
from simulator.sendapi import FailRule, MockApi, api_options, parse_fail, parse_templates

BUSINESS = "918068177179"


def send(api: MockApi, to: str, template: str = "") -> httpx.Response:
    meta = {"messaging_product": "whatsapp", "to": to, "type": "text",
            "text": {"body": "Your order shipped."}}
    if template:
        meta = {"messaging_product": "whatsapp", "to": to, "type": "template",
                "template": {"name": template, "language": {"code": "en"}}}
    return httpx.post(api.v2_url(BUSINESS), json={"messaging_object": meta},
                      headers={"api-key": api.options.api_key}, timeout=10)


def test_fail_rules_read_a_number_a_bsuid_or_a_share() -> None:
    assert parse_fail("+919876543210=131026") == FailRule(131026, recipient="919876543210")
    assert parse_fail("IN.1410018717833190=131047") == \
        FailRule(131047, recipient="IN.1410018717833190")
    assert parse_fail("5%=131047") == FailRule(131047, share=0.05)
    assert parse_templates("order_update, catalogue") == ("order_update", "catalogue")


@pytest.mark.parametrize(("text", "message"), [
    ("919876543210", "is not NUMBER=CODE or SHARE%=CODE"),
    ("919876543210=999", "error code '999' is not one wasim knows"),
    ("150%=131026", "share '150%' is not 0% to 100%"),
    ("nan%=131026", "share 'nan%' is not 0% to 100%"),
    ("someone=131026", "'someone' is neither a number nor a BSUID"),
])
def test_a_bad_fail_rule_is_a_one_line_error_naming_the_flag(text: str, message: str) -> None:
    with pytest.raises(WasimError, match=message) as caught:
        parse_fail(text)
    assert caught.value.one_line().startswith("--fail: ")


@pytest.mark.parametrize("argv", [
    ["api", "--fail", "919876543210"], ["api", "--templates", "order update"],
    ["api", "--sid", "HX IN"], ["run", "summer-sale", "--fail", "1%=42"],
    ["tui", "--fail", "x=131026"], ["demo", "--headless", "--templates", ""],
    ["fire", "--fail", "=131026"],
])
def test_bad_send_api_flags_stop_every_command_with_one_line(argv: list[str]) -> None:
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"wasim: error: {argv[-2]}: "), line
    assert "Traceback" not in result.output


def test_the_mock_fails_by_number_and_template_and_accepts_every_send() -> None:
    with Receiver(ReceiverOptions(port=0)) as receiver:
        webhook = delivery_options_from({"url": receiver.url}, str)
        options = api_options(port=0, templates=["order_update"],
                              fail=[parse_fail("+919876543210=131026")])
        with MockApi(options, webhook=webhook, seed=1) as api:
            answers = [send(api, "919876543210"), send(api, "919812345678", "promo"),
                       send(api, "919812345678", "order_update"),
                       send(api, "919812345678")]
            assert [a.status_code for a in answers] == [202] * 4  # Kaleyra accepts them all
            statuses = api.wait_for_statuses(1 + 1 + 3 + 3)
        failed = {s.message.number: json.loads(s.body)["meta_object"]["value"]["statuses"][0]
                  for s in statuses if s.status == "failed"}
        assert {n: f["errors"][0]["code"] for n, f in failed.items()} == {1: 131026, 2: 132001}
        assert [m.error for m in api.sent] == [131026, 132001, 0, 0]


def test_a_share_fails_the_same_recipients_under_one_seed_and_others_under_another() -> None:
    numbers = [f"9198{n:08d}" for n in range(200)]

    def failing(seed: int) -> set[str]:
        with MockApi(api_options(port=0, fail=[parse_fail("25%=131047")]), seed=seed) as api:
            for number in numbers:
                send(api, number)
            return {m.to for m in api.sent if m.error == 131047}

    first = failing(7)
    assert 25 <= len(first) <= 75  # about a quarter
    assert failing(7) == first and failing(8) != first


def test_wasim_run_fails_the_reply_rule_when_the_apps_replies_fail(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "apps"))
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nseed: 2\ntemplate:\n  buttons: [{text: Shop now, payload: SHOP}]\n"
                    "templates: [catalogue]\ncast: {countries: {IN: 2}}\n"
                    "expect:\n  reply: {count: 1, within: 2s}\n")
    for name in ("KALEYRA_BASE_URL", "KALEYRA_SID", "KALEYRA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    base = ["run", str(path), "--app", "replying_app:app", "--path", "/webhook",
            "--api-port", "0", "--no-history",
            "--fast"]
    ok = CliRunner().invoke(cli, base)
    assert ok.exit_code == 0, ok.output
    failing = CliRunner().invoke(cli, [*base, "--fail", "100%=131026"])
    assert failing.exit_code == 1, failing.output
    assert "failed with 131026 (a --fail rule)" in failing.stdout
    unapproved = CliRunner().invoke(cli, [*base, "--templates", "other"])
    assert unapproved.exit_code == 0, unapproved.output  # the scenario's templates stay


def test_the_send_api_takes_its_sid_and_key_from_kaleyra_variables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "apps"))
    monkeypatch.setenv("KALEYRA_SID", "HXIN1707324291IN")
    monkeypatch.setenv("KALEYRA_API_KEY", "A" + "c" * 32)
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nseed: 2\ntemplate:\n  buttons: [{text: Shop now, payload: SHOP}]\n"
                    "templates: [catalogue]\ncast: {countries: {IN: 1}}\n"
                    "expect:\n  reply: {count: 1, within: 2s}\n")
    result = CliRunner().invoke(cli, ["run", str(path), "--app", "replying_app:app", "--path",
                                      "/webhook", "--api-port", "0", "--no-history", "--fast"])
    assert result.exit_code == 0, result.output
    assert "(SID HXIN1707324291IN, api-key Acccc" in result.stderr


def test_api_port_alone_is_the_port_of_kaleyra_base_url_on_this_machine(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KALEYRA_BASE_URL", "http://127.0.0.1:8765")
    assert default_api_port() == 8765
    monkeypatch.setenv("KALEYRA_BASE_URL", "https://api.kaleyra.io")
    assert default_api_port() == 8700
    monkeypatch.delenv("KALEYRA_BASE_URL")
    assert default_api_port() == 8700


@pytest.mark.parametrize("command", ["run", "fire"])
def test_a_busy_api_port_names_api_port(command: str, receiver: Receiver) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        argv = ["run", "summer-sale", "--fast"] if command == "run" else ["fire"]
        result = CliRunner().invoke(cli, [*argv, "--url", receiver.url, "--api-port", port,
                                          "--no-history"])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("wasim: error: --api-port: cannot listen on 127.0.0.1 port"), line
    assert "Pick another port with --api-port" in line


def test_a_rule_naming_a_number_also_fails_replies_to_that_users_bsuid() -> None:
    number = "919812345678"
    with MockApi(api_options(port=0, fail=[parse_fail(f"{number}=131047")]), seed=3) as api:
        bsuid = api.world.user(BUSINESS, number).user_id  # the one BSUID of that user
        for to in (bsuid, "IN.99999999"):
            httpx.post(api.v2_url(BUSINESS), headers={"api-key": api.options.api_key},
                       json={"messaging_object": {"messaging_product": "whatsapp",
                                                  "recipient": to, "type": "text",
                                                  "text": {"body": "Hi"}}})
        assert [(m.to, m.error) for m in api.sent] == [(bsuid, 131047), ("IN.99999999", 0)]


def test_fire_app_with_api_port_lets_the_app_reply_and_records_what_it_sent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "apps"))
    for name in ("KALEYRA_BASE_URL", "KALEYRA_SID", "KALEYRA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    history = tmp_path / "h.jsonl"
    result = CliRunner().invoke(cli, ["fire", "--app", "replying_app:app", "--path",
                                      "/webhook", "--api-port", "0", "--seed", "4",
                                      "--templates", "catalogue", "--history", str(history)])
    assert result.exit_code == 0, result.output
    assert "send API on http://127.0.0.1:" in result.stderr
    assert "sent #1 v2 " in result.stderr and "template catalogue" in result.stderr
    assert any('"catalogue"' in line for line in history.read_text().splitlines())
    import os

    assert "KALEYRA_BASE_URL" not in os.environ  # restored
