"""Text from files, targets and clients reaches the terminal with its control characters made
visible: in every command's output, in errors, and in the TUI."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from simulator.cli import cli
from simulator.receiver import Receiver, ReceiverOptions, describe
from simulator.scenarios import load_scenario
from simulator.sendapi import DEFAULT_API_KEY, ApiOptions, MockApi
from simulator.terminal import visible, visible_json

TITLE = "\x1b]0;pwned\x07"  # sets the terminal's title
LINK = "\x1b]8;;http://evil.example/\x1b\\here\x1b]8;;\x1b\\"  # a hyperlink
C1 = "\x9b31m"  # an 8-bit CSI: red, on terminals that read C1 controls
BIDI = "\u202e"  # right-to-left override: reorders what follows
ACTING = ("\x1b", "\x07", "\x9b", "\u202e")

SCENARIO = """\
name: "esc\\e]0;pwned\\a"
description: "about \\e[31m"
seed: 1
template:
  name: "tpl\\e]8;;http://evil.example/\\e\\\\x"
  body: "body \\e[2J"
  buttons:
    - {text: "Yes\\e]0;pwned\\a", payload: "P\\e[31m"}
cast:
  countries: {IN: 1}
  users:
    - {wa_id: "919845012345", name: "Asha\\e]0;pwned\\a\\u202e\\x9b"}
steps:
  - name: "step\\e[1m"
    who: ["Asha\\e]0;pwned\\a\\u202e\\x9b"]
    tap: "Yes\\e]0;pwned\\a"
"""
APP = "wsgi:tests.apps.hostile_apps:wsgi_raises"


def clean(text: str) -> str:
    """Assert no character that acts on a terminal is left in `text`; return it."""
    for char in ACTING:
        assert char not in text, f"{char!r} reached the terminal: {text[:300]!r}"
    return text


def output(result: Result) -> str:
    return clean(result.stdout) + clean(result.stderr)


@pytest.fixture
def scenario(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO)
    return path


def test_visible_escapes_what_acts_and_keeps_what_reads() -> None:
    assert visible(f"a{TITLE}b") == "a\\x1b]0;pwned\\x07b"
    assert visible(LINK) == "\\x1b]8;;http://evil.example/\\x1b\\here\\x1b]8;;\\x1b\\"
    assert visible(f"x{C1}{BIDI}\u2028\ud800\x7f") == "x\\x9b31m\\u202e\\u2028\\ud800\\x7f"
    assert visible("Ação 👋 日本 tab\there") == "Ação 👋 日本 tab\\there"
    assert visible("two\nlines\tand\x1b", newlines=True) == "two\nlines\tand\\x1b"
    text = json.dumps({"n": f"a{C1}{BIDI}\U000e0001"}, ensure_ascii=False)
    assert json.loads(clean(visible_json(text))) == json.loads(text)


def test_run_dry_run_and_a_real_run_show_names_and_buttons_visibly(scenario: Path) -> None:
    runner = CliRunner()
    dry = output(runner.invoke(cli, ["run", str(scenario), "--dry-run"]))
    assert "esc\\x1b]0;pwned\\x07" in dry and "step\\x1b[1m" in dry
    real = output(runner.invoke(cli, ["run", str(scenario), "--app", APP,
                                      "--history", "h.jsonl"]))
    assert "Asha\\x1b]0;pwned\\x07\\u202e\\x9b" in real and "Yes\\x1b]0;pwned\\x07" in real


def test_history_table_json_and_replay_show_them_visibly(scenario: Path) -> None:
    runner = CliRunner()
    runner.invoke(cli, ["run", str(scenario), "--app", APP, "--history", "h.jsonl"])
    table = output(runner.invoke(cli, ["history", "--history", "h.jsonl"]))
    assert "Asha\\x1b]0;pwned\\x07" in table
    lines = output(runner.invoke(cli, ["history", "--history", "h.jsonl", "--json"]))
    record = json.loads(lines.splitlines()[0])
    assert record["name"] == "Asha\x1b]0;pwned\x07\u202e\x9b"  # the same data, escaped
    replay = output(runner.invoke(cli, ["replay", "--last", "1", "--history", "h.jsonl",
                                        "--app", APP, "--no-history"]))
    assert "Yes\\x1b]0;pwned\\x07" in replay


def test_fire_and_render_show_a_hostile_name_visibly() -> None:
    runner = CliRunner()
    fired = output(runner.invoke(cli, ["fire", "--name", f"N{TITLE}{C1}", "--app", APP,
                                       "--no-history"]))
    assert "N\\x1b]0;pwned\\x07\\x9b31m" in fired
    pretty = output(runner.invoke(cli, ["render", "--name", f"N{C1}{BIDI}", "--pretty"]))
    assert json.loads(pretty)["meta_object"]["value"]["contacts"][0]["profile"]["name"] \
        == f"N{C1}{BIDI}"


def test_errors_quote_outside_text_visibly(scenario: Path) -> None:
    scenario.write_text(SCENARIO.replace('tap: "Yes', 'tap: "No'))
    result = CliRunner().invoke(cli, ["run", str(scenario), "--dry-run"])
    assert result.exit_code == 2
    line = output(result)
    assert "No\\x1b]0;pwned\\x07" in line and len(line.strip().splitlines()) == 1


def test_scenarios_show_prints_the_file_visibly(scenario: Path) -> None:
    shown = output(CliRunner().invoke(cli, ["scenarios", "show", str(scenario)]))
    assert "\n" in shown  # lines stay lines


def test_receive_describes_a_hostile_arrival_visibly() -> None:
    body = CliRunner().invoke(cli, ["render", "--name", f"N{TITLE}", "--button",
                                    f"B{LINK}{C1}"]).stdout_bytes
    with Receiver(ReceiverOptions(port=0)) as receiver:
        httpx.post(receiver.url, content=body)
        arrival = receiver.wait_for(1)[0]
        line = clean(describe(arrival))
        assert "B\\x1b]8;;http://evil.example/" in line


def test_api_log_lines_show_a_hostile_message_visibly() -> None:
    with MockApi(ApiOptions(port=0)) as api:
        form = {"to": "919812345678", "from": "918800000001", "type": "text",
                "channel": "whatsapp", "body": f"hi{TITLE}{C1}{BIDI}"}
        answer = httpx.post(api.v1_url(), data=form, headers={"api-key": DEFAULT_API_KEY})
        assert answer.status_code == 202, answer.text
        [message] = api.sent
        assert "hi\\x1b]0;pwned\\x07\\x9b31m\\u202e" in clean(message.describe())


def test_the_guard_catches_raw_escapes() -> None:
    # The check above can fail: raw text is caught.
    with pytest.raises(AssertionError):
        clean(f"user {TITLE}")



@pytest.mark.anyio
async def test_the_tui_draws_hostile_names_buttons_and_answers_visibly(
        scenario: Path, receiver: Receiver) -> None:
    from simulator.tui.app import make_app
    from simulator.tui.widgets.log import DeliveryLog

    app = make_app(scenario=load_scenario(str(scenario)), url=receiver.url, history=None,
                   clock=lambda: 1_780_000_000.0)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.press("1")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        receiver.wait_for(1)
        app.notify(f"answer {TITLE}{LINK}")
        await pilot.pause()
        screen = app.export_screenshot()
        assert "\x1b" not in screen and "\u202e" not in screen and "\x9b" not in screen
        assert "\\x1b]0;pwned" in screen.replace("&#x27;", "'")
        log = app.query_one(DeliveryLog)
        assert log.row_count == 1


def test_a_table_on_a_terminal_keeps_its_own_styling_and_escapes_its_cells(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from simulator.terminal import Col, table_lines

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    lines = table_lines([Col("USER"), Col("BUTTON", wrap=True, spill=True)],
                        [(f"Asha{TITLE}", f"Yes{LINK}")], Terminal(), width=200)
    assert "\x1b[1m" in lines[0]  # the header is bold: wasim's own escape, kept
    body = "\n".join(lines[1:])
    assert "Asha\\x1b]0;pwned\\x07" in body and "\x1b]" not in body and "\x07" not in body
