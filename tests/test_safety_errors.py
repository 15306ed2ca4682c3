"""Hostile values that used to end in a traceback: each is a one-line error with exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from simulator.cli import cli


def one_line(result: Result) -> str:
    """The single stderr line of a run refused as bad input."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


DEEP = 50_000
OUTPUTS = [
    ('{"v": {{ ("nan"|float)|json }}}', "NaN is not a JSON number"),
    ('{"v": NaN}', "NaN is not a JSON number"),
    ('{"v": Infinity}', "Infinity is not a JSON number"),
    ('{"v": -Infinity}', "-Infinity is not a JSON number"),
    ('{"v": 1e999}', "too large for a JSON number"),
    ('{"v": ' + "9" * 5000 + "}", "5,000 digits"),
    ('{"v": -' + "9" * 5000 + "}", "5,000 digits"),
    ('{"v": {{ (10 ** 1000) | json }}}', "1,001 digits"),
    ('{"v": ' + "[" * DEEP + "]" * DEEP + "}", "nests more than 100 levels"),
    ('{"v": ' + '{"a":' * DEEP + "1" + "}" * DEEP + "}", "nests more than 100 levels"),
    ('{"v": ' + "[" * 150 + "]" * 150 + "}", "nests more than 100 levels"),
    ('{"v": "\\ud800"}', "lone surrogate"),
    ('{"\\udfff": 1}', "lone surrogate"),
]


@pytest.mark.parametrize(("text", "fragment"), OUTPUTS, ids=[o[1] + str(i)
                                                            for i, o in enumerate(OUTPUTS)])
def test_template_output_a_callback_cannot_carry_is_one_line(tmp_path: Path, text: str,
                                                             fragment: str) -> None:
    (tmp_path / "t.json.j2").write_text(text + "\n")
    line = one_line(CliRunner().invoke(cli, ["render", "--template",
                                             str(tmp_path / "t.json.j2")]))
    assert "t.json.j2" in line and fragment in line, line


def test_moderate_nesting_and_long_numbers_still_render(tmp_path: Path) -> None:
    # The correct side: what a callback may hold still passes.
    (tmp_path / "t.json.j2").write_text(
        '{"v": ' + "[" * 50 + "]" * 50 + ', "n": ' + "9" * 300 + ', "f": 1.5e300}\n')
    result = CliRunner().invoke(cli, ["render", "--template", str(tmp_path / "t.json.j2")])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("name", "fragment"), [
    ("a" * 5000, "File name too long"),
    ("a\\x00b", "null byte"),
    ("../" * 2000 + "etc/passwd", "cannot include"),
    ("/" * 5000, "cannot include"),
])
def test_an_include_of_a_hostile_name_is_one_line(tmp_path: Path, name: str,
                                                  fragment: str) -> None:
    (tmp_path / "t.json.j2").write_text('{%- include "' + name + '" %}{}\n')
    line = one_line(CliRunner().invoke(cli, ["render", "--template",
                                             str(tmp_path / "t.json.j2")]))
    assert "t.json.j2:1" in line and fragment in line, line
    assert len(line) < 1000  # the name is cut, not printed whole


SURROGATES = [
    ('name: "\\ud800"\n', "s.yaml:1", "name"),
    ('name: "ok \\udfff"\n', "s.yaml:1", "name"),
    ('name: ok\ndescription: "\\udbff"\n', "s.yaml:2", "description"),
    ('name: ok\n"\\ud800": 1\n', "s.yaml:2", "a key"),
    ('name: ok\ncast:\n  users:\n    - {wa_id: "919845012345", name: "\\ud800"}\n', "s.yaml:4",
     "cast.users[0].name"),
]


@pytest.mark.parametrize(("text", "where", "path"), SURROGATES)
@pytest.mark.parametrize("mode", [["--dry-run"], ["--url", "http://127.0.0.1:9/",
                                                  "--no-history"]])
def test_a_lone_surrogate_in_a_scenario_is_one_line(tmp_path: Path, text: str, where: str,
                                                    path: str, mode: list[str]) -> None:
    (tmp_path / "s.yaml").write_text(text)
    line = one_line(CliRunner().invoke(cli, ["run", str(tmp_path / "s.yaml"), *mode]))
    assert where in line and path in line and "surrogate" in line, line


def test_a_surrogate_pair_written_as_two_escapes_is_one_character(tmp_path: Path) -> None:
    # The correct side: YAML joins "\ud83d\ude00" into one character, which is fine.
    (tmp_path / "s.yaml").write_text('name: "smile \\ud83d\\ude00"\n')
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "s.yaml"), "--dry-run"])
    assert result.exit_code == 0, result.output
