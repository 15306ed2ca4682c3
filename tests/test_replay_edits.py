"""`wasim replay EVENT --set/--add/--remove` and `--edit`: an edited resend, recorded as an
edit of the original, refused when it breaks the contract unless --force."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.receiver import Receiver

SEED = ["--seed", "21", "--count", "1", "--clock", "seeded"]


@pytest.fixture
def history(tmp_path: Path) -> Path:
    return tmp_path / "history.jsonl"


def records(history: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in history.read_text().splitlines()]


def fired(runner: CliRunner, receiver: Receiver, history: Path) -> dict[str, object]:
    result = runner.invoke(cli, ["fire", "--history", str(history), "--url", receiver.url,
                                 *SEED])
    assert result.exit_code == 0, result.output
    return records(history)[0]


def replay(runner: CliRunner, history: Path, *args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, ["replay", "--history", str(history), *args])


def message(body: bytes) -> dict[str, object]:
    return json.loads(body)["meta_object"]["value"]["messages"][0]  # type: ignore[no-any-return]


def test_set_sends_the_edit_recorded_as_an_edit_of_the_original(
        runner: CliRunner, receiver: Receiver, history: Path) -> None:
    original = fired(runner, receiver, history)
    result = replay(runner, history, str(original["event"]),
                    "--set", "messages[0].button.payload=SIZES")
    assert result.exit_code == 0, result.output
    edited = receiver.arrivals[-1]
    assert message(edited.body)["button"]["payload"] == "SIZES"  # type: ignore[index]
    assert not edited.problems
    last = records(history)[-1]
    assert last["edit_of"] == original["delivery"] and last["replay_of"] is None
    assert last["event"] != original["event"]
    assert f"(edit of {original['delivery']})" in result.stdout
    listed = runner.invoke(cli, ["history", "--history", str(history)])
    assert "edit" in listed.stdout


def test_an_edit_that_breaks_the_contract_is_refused_unless_forced(
        runner: CliRunner, receiver: Receiver, history: Path) -> None:
    original = fired(runner, receiver, history)
    args = [str(original["event"]), "--remove", "messages[0].from"]
    refused = replay(runner, history, *args)
    assert refused.exit_code == 2
    assert "breaks the callback contract" in refused.stderr and "--force" in refused.stderr
    assert "Traceback" not in refused.output
    assert len(receiver.arrivals) == 1 and len(records(history)) == 1  # nothing sent
    forced = replay(runner, history, *args, "--force")
    assert forced.exit_code == 0, forced.output
    assert "sending despite --force" in forced.stderr
    assert "from" not in message(receiver.arrivals[-1].body)


def editor(tmp_path: Path, code: str) -> str:
    """An $EDITOR: a script running `code` on the file it is given (path in `path`)."""
    script = tmp_path / "editor.py"
    script.write_text(f"import sys, pathlib\npath = pathlib.Path(sys.argv[1])\n{code}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return f"{sys.executable} {script}"


def test_edit_opens_the_bytes_in_the_editor_and_sends_what_was_saved(
        runner: CliRunner, receiver: Receiver, history: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    original = fired(runner, receiver, history)
    # Like vim, the editor ends the file with a newline: it is not part of the edit.
    monkeypatch.setenv("EDITOR", editor(tmp_path, (
        "text = path.read_text().replace('\"ref\":\"', '\"ref\":\"edited-')\n"
        "path.write_text(text + '\\n')")))
    monkeypatch.delenv("VISUAL", raising=False)
    result = replay(runner, history, str(original["event"]), "--edit")
    assert result.exit_code == 0, result.output
    sent = receiver.arrivals[-1].body
    assert json.loads(sent)["extra_info"]["ref"].startswith("edited-")
    assert not sent.endswith(b"\n") and not receiver.arrivals[-1].problems
    assert records(history)[-1]["edit_of"] == original["delivery"]


def test_an_editor_that_breaks_the_json_is_refused_with_the_validators_words(
        runner: CliRunner, receiver: Receiver, history: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    original = fired(runner, receiver, history)
    monkeypatch.setenv("EDITOR", editor(tmp_path, "path.write_text(path.read_text()[:-1])"))
    monkeypatch.delenv("VISUAL", raising=False)
    result = replay(runner, history, str(original["event"]), "--edit")
    assert result.exit_code == 2
    assert "not JSON" in result.stderr
    assert len(receiver.arrivals) == 1


def test_an_edit_is_of_one_event(runner: CliRunner, receiver: Receiver, history: Path) -> None:
    fired(runner, receiver, history)
    assert runner.invoke(cli, ["fire", "--history", str(history), "--url", receiver.url,
                               "--seed", "22", "--count", "1"]).exit_code == 0
    result = replay(runner, history, "--last", "2", "--set", "extra_info.ref=x")
    assert result.exit_code == 2 and "one event" in result.stderr


def test_history_names_a_status_rows_recipient_and_status(
        runner: CliRunner, receiver: Receiver, history: Path) -> None:
    """A status callback has no user name or button: the history says whose and which."""
    result = runner.invoke(cli, ["fire", "--history", str(history), "--url", receiver.url,
                                 "--kind", "status", "--status", "read", *SEED])
    assert result.exit_code == 0, result.output
    assert "status read" in result.stdout and "  ?  " not in result.stdout
    recipient = json.loads(receiver.arrivals[0].body)["meta_object"]["value"]["statuses"][0][
        "recipient_id"]
    listed = runner.invoke(cli, ["history", "--history", str(history)], terminal_width=200)
    row = listed.stdout.splitlines()[-1]
    assert "status read" in row and recipient in row and " ? " not in row
