"""`wasim tui`, `wasim demo` and bare `wasim`: the commands around the terminal UI."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from simulator.errors import WasimError
from simulator.tui.commands import demo, open_tui_or_help, tui

ROOT = Path(__file__).parents[1]
_ANSI = re.compile(r"\x1b(\[[0-9;?<>=]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|P[^\x1b]*\x1b\\|.)")


def test_the_cli_and_the_tui_commands_do_not_import_textual() -> None:
    code = ("import sys, simulator.cli, simulator.tui.commands; "
            "print([m for m in sys.modules if m == 'textual' or m.startswith('textual.')])")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_demo_headless_plays_the_builtin_scenario_and_prints_the_summary(
        runner: CliRunner, tmp_path: Path,
        without_latency_limit: Callable[[str], Path]) -> None:
    history = tmp_path / "history.jsonl"
    scenario = without_latency_limit("summer-sale")
    # standalone_mode=False: the return value is the exit code, as the wasim group uses it.
    result = runner.invoke(demo, [str(scenario), "--headless", "--history", str(history)],
                           standalone_mode=False)
    assert result.return_value == 0, result.output
    assert "summer-sale (seed 2026)" in result.stdout
    assert "expectations: all held" in result.stdout
    assert re.search(r"receiver: (\d+) callback\(s\), all valid", result.stdout)
    assert "built-in receiver listening on http://127.0.0.1:" in result.stderr
    sent = int(re.search(r"(\d+) sent", result.stdout).group(1))  # type: ignore[union-attr]
    attempts = [line for line in history.read_text().splitlines()
                if '"kind":"sent"' not in line]  # the demo bot's replies are kept too
    assert len(attempts) == sent


def test_demo_headless_exits_1_when_an_expectation_breaks(runner: CliRunner,
                                                         tmp_path: Path) -> None:
    scenario = tmp_path / "strict.yaml"
    scenario.write_text("name: strict\ncast:\n  countries: {IN: 3}\nexpect:\n  status: [201]\n")
    result = runner.invoke(demo, [str(scenario), "--headless", "--no-history"],
                           standalone_mode=False)
    assert result.return_value == 1, result.output
    assert "expectations failed: status 3" in result.stdout


def test_the_ui_commands_refuse_without_a_terminal(runner: CliRunner) -> None:
    for command, args in ((tui, ["--url", "http://127.0.0.1:9/"]), (demo, [])):
        result = runner.invoke(command, args)
        assert isinstance(result.exception, WasimError), result.output
        assert "needs a terminal" in result.exception.what


def test_a_bad_target_is_refused_before_the_ui_starts(runner: CliRunner) -> None:
    result = runner.invoke(tui, ["--url", "http://203.0.113.5/hook"])
    assert isinstance(result.exception, WasimError)
    assert result.exception.where == "--url"


def test_bare_wasim_prints_the_help_off_a_terminal(runner: CliRunner) -> None:
    @click.group(invoke_without_command=True)
    @click.pass_context
    def group(ctx: click.Context) -> int | None:
        """A stand-in for the `wasim` group."""
        return open_tui_or_help(ctx) if ctx.invoked_subcommand is None else None

    result = runner.invoke(group, [])
    assert result.exit_code == 0
    assert "A stand-in for the `wasim` group." in result.stdout


def test_every_ui_command_has_help_text(runner: CliRunner) -> None:
    for command in (tui, demo):
        assert command.help and len(command.help.split()) > 10
        result = runner.invoke(command, ["--help"])
        assert result.exit_code == 0 and "--seed" in result.stdout


def test_the_cli_registers_the_ui_commands(runner: CliRunner) -> None:
    from simulator.cli import cli

    if "demo" not in cli.commands:
        pytest.skip("simulator/cli.py does not register tui and demo yet")
    assert cli.commands["tui"] is tui and cli.commands["demo"] is demo
    assert runner.invoke(cli, ["demo", "--help"]).exit_code == 0


def _read(master: int, seconds: float) -> bytes:
    """What the terminal showed during the next `seconds`."""
    out = b""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([master], [], [], min(left, 0.05))
        if ready:
            try:
                out += os.read(master, 65536)
            except OSError:
                break
    return out


def test_wasim_demo_opens_the_ui_and_a_tap_reaches_its_receiver(tmp_path: Path) -> None:
    import fcntl
    import termios

    history = tmp_path / "history.jsonl"
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    code = ("from simulator.tui.commands import demo; "
            f"demo.main(['--seed', '7', '--history', {str(history)!r}], prog_name='wasim demo')")
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    process = subprocess.Popen([sys.executable, "-c", code], stdin=slave, stdout=slave,
                               stderr=slave, cwd=tmp_path, env=env, start_new_session=True)
    os.close(slave)
    screen = ""
    try:
        deadline = time.monotonic() + 30
        # The phone names the selected user (with their +91 number) once the cast is loaded:
        # only then does a key tap (the business header is drawn before, while it loads).
        while "+91" not in screen and time.monotonic() < deadline:
            screen += _ANSI.sub("", _read(master, 0.2).decode("utf-8", "replace"))
        assert "business" in screen and "+91" in screen, screen[-2000:]
        os.write(master, b"1")

        def taps() -> list[dict[str, object]]:
            # The demo bot answers the tap through the send API, whose status callbacks are
            # recorded too (in any order against the tap): the tap is the record with a button.
            if not history.exists():
                return []
            records = [json.loads(line) for line in history.read_text().splitlines()]
            return [r for r in records if r.get("button")]

        while not taps() and time.monotonic() < deadline:
            screen += _ANSI.sub("", _read(master, 0.2).decode("utf-8", "replace"))
        tapped = taps()
        assert [r["status"] for r in tapped] == [200], screen[-3000:]
        assert json.loads(str(tapped[0]["response_body"]))["received"] is True
        os.write(master, b"q")
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        os.close(master)


def test_a_dumb_terminal_is_refused_with_a_pointer_to_the_headless_commands(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.tui.commands

    monkeypatch.setattr(simulator.tui.commands, "is_terminal", lambda: True)
    monkeypatch.setenv("TERM", "dumb")
    for command, args in ((tui, ["--url", "http://127.0.0.1:9/"]), (demo, [])):
        result = runner.invoke(command, args)
        assert isinstance(result.exception, WasimError), result.output
        assert result.exception.where == "TERM=dumb" and result.exception.exit_code == 2
        assert "wasim demo --headless" in (result.exception.hint or "")


def test_tui_takes_fires_auth_header_timeout_and_retry_flags(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.tui.commands
    from simulator.cli import cli

    opened: list[Any] = []
    monkeypatch.setattr(simulator.tui.commands, "_run_app", lambda app: opened.append(app) or 0)
    result = runner.invoke(cli, ["tui", "--url", "http://127.0.0.1:9/hook", "--no-history",
                                 "-H", "X-Brand: acme", "--basic-auth", "qa:secret",
                                 "--timeout", "2.5", "--retries", "2", "--backoff", "0.5",
                                 "--success", "200,202", "--method", "PUT"])
    assert result.exit_code == 0, result.output
    delivery = opened[0].delivery
    assert ("X-Brand", "acme") in delivery.headers and delivery.auth.basic == ("qa", "secret")
    assert (delivery.timeout, delivery.retry.delays, delivery.method) == (2.5, (0.5, 1.0), "PUT")
    assert delivery.success == ((200, 200), (202, 202))
    # Flags left alone do not replace what a scenario's `target:` says.
    assert opened[0].overrides.keys() == {"url", "app", "headers", "basic_auth", "timeout",
                                          "retries", "backoff", "success", "method"}


def test_reply_wait_sets_how_long_the_run_panel_waits_for_the_last_replies(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.tui.commands
    from simulator.cli import cli

    opened: list[Any] = []
    monkeypatch.setattr(simulator.tui.commands, "_run_app", lambda app: opened.append(app) or 0)
    for args, wait in ((["--reply-wait", "30"], 30.0), ([], 10.0)):
        result = runner.invoke(cli, ["tui", "--url", "http://127.0.0.1:9/hook", "--no-history",
                                     *args])
        assert result.exit_code == 0, result.output
        assert opened[-1].settings.reply_wait == wait
    bad = runner.invoke(cli, ["tui", "--url", "http://127.0.0.1:9/hook", "--no-history",
                              "--reply-wait", "-1"])
    assert bad.exit_code == 2 and "--reply-wait" in bad.output


def test_the_demo_takes_reply_wait_too(runner: CliRunner,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.tui.commands
    from simulator.tui.commands import demo

    opened: list[Any] = []
    monkeypatch.setattr(simulator.tui.commands, "is_terminal", lambda: True)
    monkeypatch.setenv("TERM", "xterm-256color")
    monkeypatch.setattr(simulator.tui.commands, "_run_app", lambda app: opened.append(app) or 0)
    result = runner.invoke(demo, ["--no-history", "--reply-wait", "2.5"])
    assert result.exit_code == 0, result.output
    assert opened[0].settings.reply_wait == 2.5
