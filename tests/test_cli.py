"""The command line: render | validate, decode, exit codes, and one-line errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from simulator.cli import cli

ALL = "IN,US,GB,BR,ID,DE,AE,SA,MX,ES,FR,NG"
PUBLIC_SAMPLE = "wamid.HBgMOTE5NzQwNzc2NTA1FQIAEhggMDI1QjVEMzZGQzE2RDI3QzY2MjU2MTgwQjQ3RDM2NDYA"


def run(runner: CliRunner, *args: str, stdin: bytes | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(cli, list(args), input=stdin, catch_exceptions=False)


def test_render_piped_into_validate_exits_zero(runner: CliRunner) -> None:
    rendered = run(runner, "render", "--seed", "7")
    assert rendered.exit_code == 0
    checked = run(runner, "validate", "-", stdin=rendered.stdout_bytes)
    assert checked.exit_code == 0, checked.output
    assert "1 callback, all valid" in checked.stderr


def test_a_thousand_callbacks_of_every_country_validate(runner: CliRunner) -> None:
    rendered = run(runner, "render", "--seed", "7", "--count", "1000", "--country", ALL)
    assert len(rendered.stdout_bytes.splitlines()) == 1000
    checked = run(runner, "validate", "-", stdin=rendered.stdout_bytes)
    assert checked.exit_code == 0, checked.stdout[:2000]


def test_render_seed_7_matches_the_pinned_golden_file(runner: CliRunner) -> None:
    golden = Path(__file__).parent / "golden" / "render_seed7.json"
    assert run(runner, "render", "--seed", "7").stdout_bytes == golden.read_bytes()


def test_same_seed_same_bytes_across_runs(runner: CliRunner) -> None:
    args = ("render", "--seed", "12", "--count", "5", "--country", "BR,DE")
    assert run(runner, *args).stdout_bytes == run(runner, *args).stdout_bytes


def test_options_reach_the_payload(runner: CliRunner) -> None:
    result = run(runner, "render", "--seed", "1", "--button", "Stop promotions", "--payload",
                 "STOP", "--ref", "r0", "--ref1", "r1", "--ref2", "r2", "--country", "GB",
                 "--set", "extra_info.trace_id=cb94fee2-3e70-4a1b-944a-2a4c0ffdb90a",
                 "--now", "2026-01-01T00:00:00Z")
    document = json.loads(result.stdout)
    message = document["meta_object"]["value"]["messages"][0]
    assert message["button"] == {"payload": "STOP", "text": "Stop promotions"}
    assert message["from"].startswith("447")
    assert message["timestamp"] == "1767225600"
    assert [document["extra_info"][k] for k in ("ref", "ref1", "ref2", "trace_id")] == \
        ["r0", "r1", "r2", "cb94fee2-3e70-4a1b-944a-2a4c0ffdb90a"]


def test_a_context_id_makes_the_tap_a_reply_to_that_message(runner: CliRunner) -> None:
    sent = "wamid.HBgMOTE5NzQwNzc2NTA1FQIAERgSQjQxMjEyNjZBQTdGMDFFOTk4AA=="
    result = run(runner, "render", "--seed", "1", "--context-id", sent)
    message = json.loads(result.stdout)["meta_object"]["value"]["messages"][0]
    assert (message["context"]["id"], message["from"]) == (sent, "919740776505")
    assert run(runner, "validate", "-", stdin=result.stdout_bytes).exit_code == 0


def test_pretty_output_is_indented_and_holds_the_same_document(runner: CliRunner) -> None:
    compact = run(runner, "render", "--seed", "3").stdout
    pretty = run(runner, "render", "--seed", "3", "--pretty").stdout
    assert pretty.startswith('{\n  "meta_object"')
    assert json.loads(pretty) == json.loads(compact)


@pytest.mark.parametrize(("args", "fragment"), [
    (["render", "--country", "XX"], "--country: unknown country 'XX'"),
    (["render", "--set", "extra_info.ref"], "--set extra_info.ref: expected PATH=VALUE"),
    (["render", "--set", "extra_info.nope=1"], "has no key 'nope'"),
    (["render", "--template", "nope"], "--template: no built-in template named 'nope'"),
    (["render", "--template", "missing/file.json.j2"], "no template file"),
    (["render", "--count", "0"], "--count: '0' is out of range"),
    (["render", "--payload", "X"], "--payload needs --button"),
    (["render", "--now", "yesterday"], "--now: cannot read the time"),
    (["render", "--user", "12ab"], "--user: '12ab' is not a phone number"),
    (["render", "--context-id", PUBLIC_SAMPLE], "the user sent, not the business"),
    (["render", "--waba-id", "12"], "--waba-id: '12' is not a Meta id"),
    (["render", "--bogus"], "--bogus"),
    (["validate", "/no/such/file.json"], "cannot read the file"),
    (["frobnicate"], "No such command 'frobnicate'"),
    # Hostile values: huge, deep, not-a-number, out of range (issue 9).
    (["render", "--set", "extra_info.ref:=" + "[" * 5000 + "]" * 5000], "nested more than 64"),
    (["render", "--set", "extra_info.ref:=" + "9" * 5000], "a number of 5,000 digits"),
    (["render", "--set", "extra_info.ref:=NaN"], "NaN is not JSON"),
    (["render", "--set", "extra_info.ref:=[1e999]"], "1e999 is too large"),
    (["render", "--set", "messages[" + "9" * 5000 + "].x=1"], "in path is too large"),
    (["render", "--seed", "9" * 5000], "--seed: '999"),
    (["render", "--seed", "-1"], "--seed: '-1' is out of range"),
    (["render", "--count", "9" * 5000], "(5,000 characters) is too long"),
    (["render", "--now", "9" * 5000], "--now: '999"),
    (["render", "--now", "1" + "0" * 29], "up to 253402300799"),
    (["render", "--now", "99999-01-01"], "--now: cannot read the time"),
    (["render", "--now", "\u00b2"], "--now: cannot read the time"),
    (["render", "--template", "t" * 5000], "--template: the path 'ttt"),
    (["render", "--template", "a\0b"], "holds a NUL character"),
    (["fire", "--url", "http://127.0.0.1:9/", "--timeout", "nan"], "--timeout: 'nan' is not"),
    (["fire", "--url", "http://127.0.0.1:9/", "--timeout", "inf"], "--timeout: 'inf' is not"),
    (["fire", "--url", "http://127.0.0.1:9/", "--backoff", "-inf"], "--backoff: '-inf' is not"),
    (["fire", "--url", "http://127.0.0.1:9/", "--retries", "1100"], "at most 100"),
    (["fire", "--url", "http://127.0.0.1:9/", "--retry-schedule", "1,inf"], "'inf' is not"),
    (["fire", "--url", "http://127.0.0.1:9/", "--retry-schedule", ",".join("1" * 101)],
     "101 waits is more than 100"),
    (["fire", "--url", "http://127.0.0.1:99999/"], "--url: '99999' is out of range"),
    (["fire", "--url", "http://127.0.0.1:-1/"], "--url: '-1' is out of range"),
    (["fire", "--url", "http://127.0.0.1:9/", "--token-url", "http://127.0.0.1:0/t",
      "--client-id", "c"], "--token-url: '0' is out of range"),
    (["fire", "--url", "http://127.0.0.1:9/", "--success", "299-200"], "from low to high"),
    (["fire", "--url", "http://127.0.0.1:9/", "--success", "999"], "Statuses are 100-599"),
    (["fire", "--url", "http://127.0.0.1:9/", "--history", "h" * 300], "--history: the path"),
    (["run", "summer-sale", "--dry-run", "--speed", "nan"], "--speed: 'nan' is not"),
    (["run", "s" * 5000, "--dry-run"], "SCENARIO: the path 'sss"),
    (["run", "summer-sale", "--dry-run", "--report", "r" * 300 + ".json"], "--report: the path"),
    (["run", "summer-sale", "--wait-for-url", "--wait-timeout", "inf"], "--wait-timeout"),
    (["scenarios", "show", "s" * 5000], "NAME: the path"),
    (["new", "n" * 5000], "is not a usable name"),
    (["receive", "--port", "99999"], "--port: '99999' is out of range"),
    (["receive", "--fail-rate", "nan"], "--fail-rate: 'nan' is not"),
    (["history", "--status", "9" * 5000], "--status: '999"),
    (["replay", "--last", "0"], "--last: '0' is out of range"),
    (["validate", "v" * 5000], "FILE: the path 'vvv"),
    (["load", "--url", "http://127.0.0.1:9/", "--rate", "nan"], "--rate: 'nan' is not"),
    (["load", "--url", "http://127.0.0.1:9/", "--concurrency", "10" + "0" * 18], "out of range"),
    (["load", "--url", "http://127.0.0.1:99999/"], "--url: '99999' is out of range"),
    (["load", "l" * 5000, "--url", "http://127.0.0.1:9/"], "SCENARIO: the path 'lll"),
    (["decode", b"wamid.\xff".decode("utf-8", "surrogateescape")],
     "argument 2: the value is not valid UTF-8"),
])
def test_bad_input_is_one_line_on_stderr_with_exit_2(runner: CliRunner, args: list[str],
                                                     fragment: str) -> None:
    result = runner.invoke(cli, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("wasim: error: "), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("template", "fragment"), [
    ('{\n"a": {{ tap.user.name | json }\n}', "custom.json.j2:2: template syntax error"),
    ('{\n\n"a": {{ tap.usr | json }}\n}', "custom.json.j2:3: undefined variable"),
    ('{\n"a": {{ tap.user.name }}\n}', "custom.json.j2:2: the template renders invalid JSON"),
])
def test_broken_templates_are_one_line_errors_with_file_and_line(
    runner: CliRunner, tmp_path: Path, template: str, fragment: str,
) -> None:
    path = tmp_path / "custom.json.j2"
    path.write_text(template)
    result = runner.invoke(cli, ["render", "--template", str(path)])
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1
    assert fragment in result.stderr


def test_validate_reports_each_problem_with_line_and_path(runner: CliRunner) -> None:
    good = run(runner, "render", "--seed", "1", "--count", "2").stdout_bytes
    bad = run(runner, "render", "--seed", "2", "--set", "messages[0].type=poll").stdout_bytes
    result = run(runner, "validate", "-", stdin=good + bad)
    assert result.exit_code == 1
    assert result.stdout == '<stdin>:3: $.meta_object.value.messages[0].type: expected a known ' \
                            'kind (button, text, interactive, image, video, audio, document, ' \
                            'sticker, location, contacts, reaction, unsupported), got "poll"\n'
    assert "1 problem(s) in 1 of 3 callbacks" in result.stderr


@pytest.mark.parametrize(("document", "fragment"), [
    ("[" * 100_000 + "]" * 100_000, "nested more than 64 levels deep (line 1, column 65)"),
    ('{"a":\n  [' + "9" * 5000 + "]}", "a number of 5,000 digits (at most 100) (line 2, column 4)"),
    ('{"a": NaN}', "NaN is not JSON"),
    ('{"a": -Infinity}', "-Infinity is not JSON"),
    ("[1e400]", "1e400 is too large for a number"),
    ('{"ok": 1}\n' + "[" * 5000, "<stdin>:2: not JSON"),
])
def test_validate_of_hostile_json_is_a_one_line_error_with_its_place(
        runner: CliRunner, document: str, fragment: str) -> None:
    result = runner.invoke(cli, ["validate", "-"], input=document.encode())
    assert result.exit_code == 2, result.output
    assert len(result.stderr.splitlines()) == 1
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_reads_a_bounded_amount_from_an_endless_input(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    import simulator.cli

    monkeypatch.setattr(simulator.cli, "MAX_VALIDATE_BYTES", 1000)
    result = runner.invoke(cli, ["validate", "-"], input=b" " * 1001)
    assert result.exit_code == 2
    assert result.stderr == ("wasim: error: <stdin>: more than 1,000 bytes of input. "
                             "Validate it in parts, e.g. with split -l.\n")


@pytest.mark.parametrize("setting", ["timeout: .inf", "timeout: .nan", "retries: 1100",
                                     "retries: true", "backoff: '5'", "success: 299-200",
                                     "retry_schedule: '1,.inf'"])
def test_a_scenario_target_with_a_hostile_number_is_a_one_line_error_with_its_line(
        runner: CliRunner, tmp_path: Path, setting: str) -> None:
    scenario = tmp_path / "hostile.yaml"
    scenario.write_text("name: hostile\ndescription: d\nseed: 1\ntemplate:\n  name: t\n"
                        "  body: Hi\n  buttons: [{text: Go, payload: GO}]\n"
                        "cast: {countries: {IN: 1}}\nsteps: [{name: s, choices: {Go: 1}}]\n"
                        f"target:\n  url: http://127.0.0.1:9/\n  {setting}\n")
    result = runner.invoke(cli, ["run", str(scenario), "--fast", "--no-history"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"wasim: error: {scenario}:12: ")
    assert len(result.stderr.splitlines()) == 1


def test_json_just_inside_the_limits_still_validates_as_json(runner: CliRunner) -> None:
    document = "[" * 64 + "1" + "]" * 64
    result = runner.invoke(cli, ["validate", "-"], input=document.encode())
    assert result.exit_code == 1  # read, and then found not to be a callback
    assert "expected an object" in result.stdout


def test_validate_of_text_that_is_not_json_exits_2_with_line_and_column(
        runner: CliRunner) -> None:
    result = runner.invoke(cli, ["validate", "-"], input=b'{"a":\n  oops}')
    assert result.exit_code == 2
    assert "<stdin>:2: not JSON: Expecting value (line 2, column 3)" in result.stderr


def test_decode_prints_customer_direction_and_id(runner: CliRunner) -> None:
    result = run(runner, "decode", PUBLIC_SAMPLE)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "customer    919740776505",
        "direction   from user (fromMe false)",
        "message id  025B5D36FC16D27C66256180B47D3646 (32 chars, android)",
    ]


def test_decode_flags_a_fabricated_id_and_exits_1(runner: CliRunner) -> None:
    result = run(runner, "decode", "wamid.xyz", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["valid"] is False
    assert "not a structurally valid wamid" in run(runner, "decode", "wamid.xyz").stdout


def test_every_command_has_help_text(runner: CliRunner) -> None:
    for name, command in cli.commands.items():
        assert command.help, name
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.stdout, name
    assert isinstance(cli, click.Group)


def test_python_m_simulator_pipes_render_into_validate_from_any_directory(tmp_path: Path) -> None:
    render = subprocess.run([sys.executable, "-m", "simulator", "render", "--seed", "7",
                             "--count", "20"], cwd=tmp_path, capture_output=True, check=True)
    check = subprocess.run([sys.executable, "-m", "simulator", "validate", "-"], cwd=tmp_path,
                           input=render.stdout, capture_output=True)
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_closed_pipe_ends_quietly_without_a_traceback(tmp_path: Path) -> None:
    # click's convention for a reader that went away (`| head`): exit 1, nothing printed.
    proc = subprocess.Popen([sys.executable, "-m", "simulator", "render", "--count", "20000"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert stderr == b""


def test_an_argument_that_is_not_utf8_is_refused_before_any_command_runs(
        tmp_path: Path) -> None:
    # Real bytes in argv, as a shell passes them: without the check, echoing one back
    # crashed with UnicodeEncodeError under a strict locale.
    env = {"PYTHONPATH": str(Path(__file__).parent.parent), "LC_ALL": "C.UTF-8",
           "PYTHONIOENCODING": "utf-8:strict"}
    done = subprocess.run([sys.executable, "-m", "simulator", "render", "--ref", b"\xff\xfe"],
                          cwd=tmp_path, capture_output=True, env=env)
    assert done.returncode == 2
    assert done.stdout == b""
    assert done.stderr == (b"wasim: error: --ref: the value is not valid UTF-8. Give text in "
                           b"UTF-8 (check the terminal's or the script's encoding).\n")


def test_an_error_that_ends_in_parentheses_still_ends_its_sentence() -> None:
    from simulator.errors import WasimError

    line = WasimError("not UTF-8 text (byte 0)", where="x.json", hint="Use UTF-8.").one_line()
    assert line == "x.json: not UTF-8 text (byte 0). Use UTF-8."
