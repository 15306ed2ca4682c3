"""Secrets stay out of payloads and the history: the environment, echoes in every spelling,
and credentials in query strings.

Scenarios read only the environment variables the person allows (--template-env). A target
that echoes a credential, in whatever spelling, never gets it into the history: after a
request that carried a secret, the history keeps the answer's length, not its body.
"""

from __future__ import annotations

import base64
import html
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.delivery import Deliverer, Event, delivery_options_from, hide_url_secrets
from simulator.errors import WasimError
from simulator.history import WITHHELD, read_history
from simulator.scenarios import parse_scenario, template_env

pytestmark = pytest.mark.anyio
PASSWORD = 'S3cr"et/+=&x<y>'  # JSON, form and HTML encodings all differ from the raw text
LIMIT = 64 * 1024  # what wasim keeps of an answer


def one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0]).removeprefix("wasim: error: ")


# --- the environment ------------------------------------------------------------------------


def scenario_reading(tmp_path: Path, expression: str) -> Path:
    path = tmp_path / "shared.yaml"
    path.write_text("name: shared\nseed: 3\n"
                    "template:\n  name: t\n  body: Hi\n"
                    "  buttons:\n    - {text: Shop now, payload: SHOP}\n"
                    f"  ref1: '{expression}'\n"
                    "cast:\n  countries: {IN: 1}\n"
                    "steps:\n  - name: wave\n    choices: {Shop now: 100}\n")
    return path


@pytest.mark.parametrize("expression", [
    "{{ env.WASIM_BASIC_AUTH }}",
    '{{ env["WASIM_CLIENT_SECRET"] }}',
    '{{ env.get("WASIM_APP_SECRET", "none") }}',
    '{{ env.WASIM_BASIC_AUTH | default("none") }}',  # no silent fallback while it is set
    '{{ "yes" if "WASIM_API_KEY" in env else "no" }}',  # not even whether it is there
    "{{ env.HOME }}",  # any variable, not only wasim's own
])
def test_a_scenario_cannot_read_a_variable_it_was_not_allowed(
        tmp_path: Path, runner: CliRunner, expression: str) -> None:
    path = scenario_reading(tmp_path, expression)
    secrets = {"WASIM_BASIC_AUTH": "kaleyra:pw-1234", "WASIM_CLIENT_SECRET": "cs-1234",
               "WASIM_APP_SECRET": "as-1234", "WASIM_API_KEY": "ak-1234", "HOME": "/home/x"}
    result = runner.invoke(cli, ["run", str(path), "--dry-run"], env=secrets)
    line = one_line_error(result)
    name = next(n for n in secrets if n in expression)
    assert line.startswith(f"{path}:8: the scenario reads the environment variable {name}, "
                           "which scenarios see only when you allow it")
    assert f"--template-env {name}" in line
    assert not any(value in result.output for value in secrets.values())


def test_a_variable_allowed_by_name_is_seen_and_no_other(tmp_path: Path,
                                                         runner: CliRunner) -> None:
    path = scenario_reading(tmp_path, "{{ env.BRAND }}|{{ env|tojson }}|{{ env|length }}")
    environ = {"BRAND": "acme", "WASIM_BASIC_AUTH": "kaleyra:pw-1234"}
    result = runner.invoke(cli, ["scenarios", "show", str(path), "--rendered",
                                 "--template-env", "BRAND"], env=environ)
    assert result.exit_code == 0, result.output
    assert "ref1: 'acme|{\"BRAND\": \"acme\"}|1'" in result.stdout
    assert "pw-1234" not in result.output


def test_an_unset_variable_that_is_not_allowed_is_simply_missing(tmp_path: Path,
                                                                  runner: CliRunner) -> None:
    # `wasim new`'s starter reads WEBHOOK_URL with a default: unset, it runs as before.
    path = scenario_reading(tmp_path, '{{ env.NOT_SET_ANYWHERE | default("fallback") }}')
    result = runner.invoke(cli, ["scenarios", "show", str(path), "--rendered"],
                           env={"NOT_SET_ANYWHERE": None})
    assert result.exit_code == 0, result.output
    assert "ref1: 'fallback'" in result.stdout


def test_load_and_the_tui_keep_the_same_rule(tmp_path: Path, runner: CliRunner,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator.tui.commands import _scenario

    path = scenario_reading(tmp_path, "{{ env.WASIM_CLIENT_SECRET }}")
    monkeypatch.setenv("WASIM_CLIENT_SECRET", "cs-1234")
    result = runner.invoke(cli, ["load", str(path), "--url", "http://127.0.0.1:9/", "-n", "1"])
    assert "reads the environment variable WASIM_CLIENT_SECRET" in one_line_error(result)
    with pytest.raises(WasimError, match="WASIM_CLIENT_SECRET"):
        _scenario(str(path), None)
    assert _scenario(str(path), None, ("WASIM_CLIENT_SECRET",)).template.ref1 == "cs-1234"


@pytest.mark.parametrize("name", ["", "A B", "X=1", "1ABC", "$(id)"])
def test_a_bad_template_env_name_is_a_one_line_error(tmp_path: Path, runner: CliRunner,
                                                     name: str) -> None:
    path = scenario_reading(tmp_path, "x")
    line = one_line_error(runner.invoke(cli, ["run", str(path), "--dry-run",
                                              "--template-env", name]))
    assert line.startswith("--template-env: ") and "is not an environment variable name" in line


def test_the_python_api_passes_exactly_what_it_chooses() -> None:
    text = "name: t\nseed: 1\ndescription: '{{ env.A }}'\n" \
           "steps:\n  - name: s\n    choices: {Shop now: 1}\n"
    assert parse_scenario(text, "<t>", env={"A": "given"}).description == "given"
    with pytest.raises(WasimError, match="variable A"):
        parse_scenario(text, "<t>", env=template_env((), {"A": "hidden"}))


# --- echoed secrets ---------------------------------------------------------------------------


def _echo_of(password: str, how: str) -> tuple[bytes, dict[str, str]]:
    """The answer body (and headers) a target echoing `password` in one spelling sends."""
    raw = password.encode()
    bodies = {
        "raw": raw,
        "json": json.dumps({"you_sent": password}).encode(),
        "form": f"you_sent={quote_plus(password)}".encode(),
        "percent": quote(password, safe="").lower().encode(),
        "upper": password.upper().encode(),
        "base64": base64.b64encode(raw),
        "base64-inside": base64.b64encode(b"Authorization was kaleyra:" + raw + b" ok"),
        "html": html.escape(password).encode(),
        "cut": b"x" * (LIMIT - 6) + raw,  # the kept 64 KiB end with the secret's start
        "header": b"{}",
    }
    headers = {"ETag": f'"{password.upper()}"'} if how == "header" else {}
    return bodies[how], headers


class EchoServer:
    """A real HTTP server that echoes the password of the request's Basic auth (or the
    X-Key header), spelled as the path says."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server's name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                auth = self.headers.get("Authorization", "")
                secret = base64.b64decode(auth.split(" ")[-1]).decode().split(":", 1)[1] \
                    if auth.startswith("Basic ") else self.headers.get("X-Key", "none")
                body, extra = _echo_of(secret, self.path.strip("/").split("?")[0])
                self.send_response(200)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def spellings(secret: str) -> list[bytes]:
    """Spellings to look for in the history file (as JSON would store them, too)."""
    raw = secret.encode()
    found = {secret, secret.upper(), quote_plus(secret), quote(secret, safe="").lower(),
             html.escape(secret), base64.b64encode(raw).decode()}
    found |= {json.dumps(s)[1:-1] for s in list(found)}
    if len(secret) >= 4:
        found.add(secret[:6])  # the cut's start
    return [s.encode() for s in found]


@pytest.mark.parametrize("how", ["raw", "json", "form", "percent", "upper", "base64",
                                 "base64-inside", "html", "cut", "header"])
def test_no_spelling_of_an_echoed_secret_reaches_the_history(
        tmp_path: Path, echo: EchoServer, runner: CliRunner, how: str) -> None:
    history = tmp_path / "h.jsonl"
    result = runner.invoke(cli, ["fire", "--url", f"{echo.url}/{how}", "--history",
                                 str(history)], env={"WASIM_BASIC_AUTH": f"kaleyra:{PASSWORD}"})
    assert result.exit_code == 0, result.output
    data = history.read_bytes()
    for spelling in spellings(PASSWORD):
        assert spelling not in data, (how, spelling)
    record = json.loads(data)
    assert record["status"] == 200 and record["response_body"] in (WITHHELD, "")
    if how != "header":
        assert record["response_withheld"] == min(len(_echo_of(PASSWORD, how)[0]), LIMIT)
    headers = {name.lower(): value for name, value in record["response_headers"]}
    # Only values of a known harmless shape stay: a media type, a number, a date.
    assert headers["content-type"] == "text/plain; charset=utf-8"
    assert headers["content-length"].isdigit() and headers["date"].endswith(" GMT")
    assert headers["server"] == "[redacted]"
    if how == "header":
        assert headers["etag"] == "[redacted]"


@pytest.mark.parametrize("secret", ["k", "ab", "xyz"])
def test_secrets_of_under_four_characters_do_not_survive(
        tmp_path: Path, echo: EchoServer, runner: CliRunner, secret: str) -> None:
    # Too short to search for without wrecking the text; the body is not kept at all.
    history = tmp_path / "h.jsonl"
    result = runner.invoke(cli, ["fire", "--url", f"{echo.url}/raw", "--history", str(history),
                                 "-H", f"X-Key: {secret}"])
    assert result.exit_code == 0, result.output
    record = read_history(history).attempts[0]
    assert record.response_body == WITHHELD
    assert f'"{secret}"'.encode() not in history.read_bytes()


def test_an_answer_to_a_request_without_secrets_is_kept(tmp_path: Path, echo: EchoServer,
                                                       runner: CliRunner) -> None:
    # The rule is about requests that carried a secret, not every answer.
    history = tmp_path / "h.jsonl"
    result = runner.invoke(cli, ["fire", "--url", f"{echo.url}/json", "--history",
                                 str(history)], env={"WASIM_BASIC_AUTH": None})
    assert result.exit_code == 0, result.output
    assert read_history(history).attempts[0].response_body == '{"you_sent": "none"}'


async def test_what_is_shown_live_is_scrubbed_in_every_spelling(echo: EchoServer) -> None:
    # The attempt in memory (terminal, TUI, expectations) keeps the body, less the secret.
    for how in ("raw", "json", "form", "percent", "upper", "base64", "html", "cut"):
        options = delivery_options_from({"url": f"{echo.url}/{how}",
                                         "basic_auth": f"kaleyra:{PASSWORD}"}, lambda k: k)
        async with Deliverer(options) as deliverer:
            body = (await deliverer.deliver(Event.from_body(b"{}"))).attempts[0].response_body
        assert "[redacted]" in body, how
        for spelling in spellings(PASSWORD):
            assert spelling.decode() not in body, (how, spelling)


# --- credentials in query strings -------------------------------------------------------------


@pytest.mark.parametrize(("url", "kept"), [
    ("http://h/x?token=abc&page=2", "http://h/x?token=[redacted]&page=2"),
    ("http://h/x?a=1&api_key=k1&access_token=t1", "http://h/x?a=1&api_key=[redacted]&"
                                                  "access_token=[redacted]"),
    ("http://h/x?sig=s1;signature=s2#frag", "http://h/x?sig=[redacted];signature=[redacted]#frag"),
    ("http://h/x?X-Amz-Signature=aa&X-Amz-Date=1", "http://h/x?X-Amz-Signature=[redacted]&"
                                                   "X-Amz-Date=1"),
    ("http://h/x?hub.verify_token=v&client%5Fsecret=c&KEY=K&monkey=ok",
     "http://h/x?hub.verify_token=[redacted]&client%5Fsecret=[redacted]&KEY=[redacted]&"
     "monkey=ok"),
    ("failed: http://u:p@h/x?password=p1 then", "failed: http://h/x?password=[redacted] then"),
])
def test_query_credentials_are_redacted_in_recorded_urls(url: str, kept: str) -> None:
    assert hide_url_secrets(url) == kept


def test_the_history_keeps_no_query_credential_and_replay_says_so(
        tmp_path: Path, echo: EchoServer, runner: CliRunner) -> None:
    history = tmp_path / "h.jsonl"
    url = f"{echo.url}/json?token=tok-9876&api_key=key-9876&page=2"
    result = runner.invoke(cli, ["fire", "--url", url, "--history", str(history)])
    assert result.exit_code == 0, result.output
    data = history.read_text()
    assert "tok-9876" not in data and "key-9876" not in data
    record = json.loads(data)
    assert record["url"].endswith("/json?token=[redacted]&api_key=[redacted]&page=2")
    line = one_line_error(runner.invoke(cli, ["replay", record["event"], "--history",
                                              str(history)]))
    assert "had a credential in its query" in line and "Give --url" in line


@pytest.mark.parametrize("password", ["ab", PASSWORD])
def test_reports_never_quote_an_answer_to_a_request_that_carried_a_secret(
        tmp_path: Path, echo: EchoServer, runner: CliRunner, password: str) -> None:
    path = tmp_path / "echo.yaml"
    path.write_text("name: echo\nseed: 3\ncast:\n  countries: {IN: 1}\n"
                    "steps:\n  - name: wave\n    choices: {Shop now: 100}\n"
                    "expect:\n  json: {\"$.you_sent\": \"something else\"}\n"
                    f"target:\n  url: {echo.url}/json\n")
    reports = [tmp_path / "r.json", tmp_path / "r.xml"]
    args = ["run", str(path), "--fast", "--no-history", *(
        a for r in reports for a in ("--report", str(r)))]
    result = runner.invoke(cli, args, env={"WASIM_BASIC_AUTH": f"kaleyra:{password}"})
    assert result.exit_code == 1, result.output
    for report in reports:
        text = report.read_text()
        assert "not quoted: a secret was sent" in text
        assert f'"you_sent": "{password}"' not in text and f"{password}\\\"" not in text
        assert json.dumps(password) not in text
    # Without a secret the value is quoted, as before.
    result = runner.invoke(cli, args, env={"WASIM_BASIC_AUTH": None})
    assert result.exit_code == 1, result.output
    assert '$.you_sent is \\"none\\"' in reports[0].read_text()
