"""The CLI's tables and live lines: aligned at 80 columns, words whole, plain text in a pipe."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.kinds import kind_rows
from simulator.receiver import Receiver
from simulator.scenarios import builtin_scenarios, describe_file
from simulator.terminal import Col, LiveLine, ProgressBar, is_plain, table_lines

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX = re.compile("[\u2500-\u257f]")  # box-drawing characters


class Tty(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _plain_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CI", "NO_COLOR", "COLUMNS", "TERM"):
        monkeypatch.delenv(name, raising=False)


def _is_plain_text_within(lines: list[str], width: int) -> bool:
    text = "\n".join(lines)
    return all(len(line) <= width for line in lines) and not ANSI.search(text) \
        and not BOX.search(text)


def _words(text: str) -> set[str]:
    return set(text.split())


def test_scenarios_at_80_columns_in_a_pipe_keep_names_and_words_whole() -> None:
    result = CliRunner().invoke(cli, ["scenarios"], env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and _is_plain_text_within(lines, 80)
    # Some description is wider than 80 columns, so this checks the wrapping, not a no-op.
    assert max(len(describe_file(p)) for p in builtin_scenarios()) > 80 - 30
    assert [line.split()[0] for line in lines[1:] if not line.startswith(" ")] == \
        [p.stem for p in builtin_scenarios()]
    for path in builtin_scenarios():
        assert _words(describe_file(path)) <= _words(result.stdout)


def test_the_kind_list_at_80_columns_aligns_descriptions_and_options_at_words() -> None:
    result = CliRunner().invoke(cli, ["render", "--kind", "list"], env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert _is_plain_text_within(lines, 80)
    assert lines[0].split() == ["KIND", "WHAT", "OPTIONS"]
    what = lines[0].index("WHAT")
    assert all(line[what - 2:what] == "  " and line[what] != " " for line in lines[1:]
               if line[what:].strip())  # every description starts in the same column
    for name, description, options in kind_rows():
        assert _words(f"{name} {description} {options}") <= _words(result.stdout)


def test_templates_indents_the_kind_table_within_80_columns() -> None:
    result = CliRunner().invoke(cli, ["templates"], env={"COLUMNS": "80"})
    lines = result.stdout.splitlines()
    assert _is_plain_text_within(lines, 80)
    assert any(line.startswith("  KIND ") for line in lines)
    assert all(f"  {name} " in result.stdout for name, _, _ in kind_rows())


def test_history_at_80_columns_wraps_names_at_words_and_keeps_ids_whole(
        receiver: Receiver, tmp_path: Path) -> None:
    runner = CliRunner()
    history = tmp_path / "h.jsonl"
    fired = runner.invoke(cli, ["fire", "--history", str(history), "--url", receiver.url,
                                "--seed", "3", "--count", "4", "--clock", "seeded"])
    assert fired.exit_code == 0, fired.output
    listing = runner.invoke(cli, ["history", "--history", str(history)], env={"COLUMNS": "80"})
    lines = listing.stdout.splitlines()
    assert _is_plain_text_within(lines, 80)
    records = [json.loads(line) for line in history.read_text().splitlines()]
    for record in records:
        assert record["event"] in _words(listing.stdout)
        assert _words(f"{record['user']} {record['name']} {record['button']}") <= \
            _words(listing.stdout)
    # Unbounded in a pipe without COLUMNS: one line per attempt, for grep.
    piped = runner.invoke(cli, ["history", "--history", str(history)]).stdout.splitlines()
    assert len(piped) == 1 + len(records) and max(len(line) for line in piped) > 80


def test_too_narrow_a_window_gets_longer_lines_not_cut_names_or_ids(
        receiver: Receiver, tmp_path: Path) -> None:
    runner = CliRunner()
    history = tmp_path / "h.jsonl"
    runner.invoke(cli, ["fire", "--history", str(history), "--url", receiver.url,
                        "--seed", "3", "--count", "2", "--clock", "seeded"])
    listing = runner.invoke(cli, ["history", "--history", str(history)], env={"COLUMNS": "30"})
    for record in map(json.loads, history.read_text().splitlines()):
        assert record["event"] in _words(listing.stdout)
    names = runner.invoke(cli, ["scenarios"], env={"COLUMNS": "30"}).stdout
    assert {p.stem for p in builtin_scenarios()} <= _words(names)


def test_history_json_is_the_records_whatever_the_width(receiver: Receiver,
                                                       tmp_path: Path) -> None:
    runner = CliRunner()
    history = tmp_path / "h.jsonl"
    runner.invoke(cli, ["fire", "--history", str(history), "--url", receiver.url,
                        "--seed", "3", "--clock", "seeded"])
    listed = runner.invoke(cli, ["history", "--json", "--history", str(history)],
                           env={"COLUMNS": "40"})
    assert [json.loads(line) for line in listed.stdout.splitlines()] == \
        [json.loads(line) for line in history.read_text().splitlines()]


@pytest.mark.parametrize(("env", "plain"), [({}, False), ({"CI": "true"}, True),
                                            ({"TERM": "dumb"}, True)])
def test_a_terminal_gets_a_ruled_bold_header_unless_ci_or_dumb(
        monkeypatch: pytest.MonkeyPatch, env: dict[str, str], plain: bool) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stream = Tty()
    assert is_plain(stream) is plain
    lines = table_lines([Col("NAME"), Col("WHAT", wrap=True)], [("a", "b " * 50)], stream, 80)
    assert _is_plain_text_within(lines, 80) is plain
    assert all(len(ANSI.sub("", line)) <= 80 for line in lines)


def test_a_pipe_is_plain_even_with_a_terminal_width() -> None:
    lines = table_lines([Col("NAME"), Col("WHAT", wrap=True)], [("a", "b " * 50)],
                        io.StringIO(), 80)
    assert _is_plain_text_within(lines, 80) and len(lines) == 3


def test_the_progress_bar_and_live_line_fit_an_80_column_terminal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    stream = Tty()
    bar = ProgressBar(stream, 20)
    bar.update(20, "delivered 20  failed 0  expectations 0  p95 6.9 ms " + "x" * 60)
    bar.close()
    line = LiveLine(stream)
    line.update("sent 300  1,699/s  errors 0 (0.00%)  " * 5)
    line.close()
    frames = [ANSI.sub("", f) for f in re.split(r"[\r\n]", stream.getvalue())]
    assert any("20/20" in f for f in frames) and any("sent 300" in f for f in frames)
    assert all(len(f) <= 80 for f in frames)
