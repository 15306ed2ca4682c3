"""A hostile file or target against the remote guard, secret redaction and the history.

No test here sends a packet off this machine: names are resolved by injected resolvers (or a
patched socket.getaddrinfo), remote addresses are documentation ranges (203.0.113.0/24) that
wasim must refuse before connecting, and connection attempts are recorded to prove it.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.delivery import (
    REDACTED,
    Attempt,
    Auth,
    Deliverer,
    DeliveryOptions,
    Event,
    delivery_options_from,
    redact_headers,
    url_target,
)
from simulator.errors import WasimError
from simulator.history import HistoryWriter, read_history, to_record
from simulator.loopback import is_loopback
from simulator.receiver import Receiver
from simulator.scenarios import load_scenario
from simulator.testing import Simulator
from simulator.transports import LoopbackOnlyTransport

pytestmark = pytest.mark.anyio

REMOTE = "203.0.113.5"  # TEST-NET-3: never routed; wasim must refuse it before connecting
BODY = b'{"meta_object":{"value":{"messages":[{"from":"919812345678","id":"wamid.X"}]}}}'


class Resolver:
    """A getaddrinfo that answers from a table (or a list of answers, one per call)."""

    def __init__(self, table: dict[str, list[str] | list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host: str, port: int | None, *args: Any) -> list[tuple[Any, ...]]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers = self.table[host]
        if answers and isinstance(answers[0], list):  # one answer per call: a rebinding name
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        else:
            addresses = answers
        return [(socket.AF_INET6 if ":" in str(a) else socket.AF_INET, socket.SOCK_STREAM, 6,
                 "", (a, port or 0)) for a in addresses]


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Resolver:
    """socket.getaddrinfo answering evil.localhost and good.localhost from a table.

    IP literals go to the real getaddrinfo with AI_NUMERICHOST (no lookup); any other name
    fails, so nothing in the test can ask real DNS.
    """
    real = socket.getaddrinfo
    table = Resolver({"evil.localhost": [REMOTE], "good.localhost": ["127.0.0.1"],
                      "mixed.localhost": ["127.0.0.1", REMOTE],
                      "rebind.localhost": [["127.0.0.1"], [REMOTE]]})

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                    flags: int = 0) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name in table.table:
            return table(name, port)
        return real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return table


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host httpcore opens a TCP connection to, recorded before it connects."""
    from httpcore._backends.auto import AutoBackend

    seen: list[str] = []
    original = AutoBackend.connect_tcp

    async def connect_tcp(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        seen.append(host)
        if not is_loopback(host, Resolver({})):  # an IP here; refuse, never connect off-machine
            raise AssertionError(f"wasim tried to connect to {host}")
        return await original(self, host, port, *args, **kwargs)

    monkeypatch.setattr(AutoBackend, "connect_tcp", connect_tcp)
    return seen


def one_line_error(result: Any, code: int = 2) -> str:
    """The single stderr line of a command that failed with `code`, no traceback."""
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0]).removeprefix("wasim: error: ")


def scenario(tmp_path: Path, target: str, step_target: str = "") -> Path:
    """A small scenario file with the given `target:` block (and a step's)."""
    path = tmp_path / "shared.yaml"
    path.write_text(
        "name: shared\nseed: 3\n"
        f"target:\n{target}\n"
        "cast:\n  countries: {IN: 2}\n"
        "steps:\n  - name: wave\n    choices: {Shop now: 100}\n" + step_target)
    return path


# --- the remote guard: only the person at the keyboard lifts it --------------------------


@pytest.mark.parametrize("value", ["true", '"false"', "yes", "1"])
def test_a_scenario_cannot_allow_remote_targets(tmp_path: Path, value: str) -> None:
    path = scenario(tmp_path, f"  url: http://{REMOTE}/hook\n  allow_remote: {value}")
    with pytest.raises(WasimError) as info:
        load_scenario(path)
    assert info.value.where == f"{path}:5"
    assert "cannot allow remote targets" in info.value.what
    # The core names the field; the command line shows its flag, the Python API its keyword.
    assert "--allow-remote" in info.value.one_line(lambda field: "--" + field.replace("_", "-"))
    assert "give allow_remote yourself" in info.value.one_line()


def test_a_step_cannot_allow_remote_targets(tmp_path: Path) -> None:
    path = scenario(tmp_path, "  url: http://127.0.0.1:9/hook",
                    "    target:\n      url: http://203.0.113.5/\n      allow_remote: true\n")
    with pytest.raises(WasimError, match=r"steps\[0\]\.target\.allow_remote") as info:
        load_scenario(path)
    assert info.value.where == f"{path}:12"


@pytest.mark.parametrize("command", [["run"], ["run", "--dry-run"], ["load", "-n", "1"],
                                     ["run", "--url", f"http://{REMOTE}/"]])
def test_every_command_refuses_a_file_that_allows_remote(tmp_path: Path, runner: CliRunner,
                                                         command: list[str]) -> None:
    path = scenario(tmp_path, f"  url: http://{REMOTE}/hook\n  allow_remote: true")
    result = runner.invoke(cli, [*command, str(path), "--history", str(tmp_path / "h.jsonl")])
    line = one_line_error(result)
    assert line.startswith(f"{path}:5: target.allow_remote") and "--allow-remote" in line
    assert not (tmp_path / "h.jsonl").exists()


def test_a_remote_scenario_url_is_refused_without_the_flag(tmp_path: Path,
                                                          runner: CliRunner) -> None:
    path = scenario(tmp_path, f"  url: http://{REMOTE}/hook")
    line = one_line_error(runner.invoke(cli, ["run", str(path), "--no-history"]))
    assert line.startswith(f"{path}:4: refusing to send callbacks to {REMOTE}")


def test_a_scenarios_remote_token_url_is_refused(tmp_path: Path, runner: CliRunner) -> None:
    path = scenario(tmp_path, "  url: http://127.0.0.1:9/hook\n"
                              f"  token_url: http://{REMOTE}/token\n  client_id: me\n"
                              "  client_secret: '{{ env.get(\"HOME\", \"x\") }}'")
    line = one_line_error(runner.invoke(cli, ["run", str(path), "--no-history",
                                              "--template-env", "HOME"]))
    assert line.startswith(f"{path}:5: refusing to send callbacks to {REMOTE}")


@pytest.mark.parametrize(("block", "fragment"), [
    ("  url: http://127.0.0.1:9/\n  timeout: true", "target.timeout: expected a number"),
    ("  url: http://127.0.0.1:9/\n  retries: '3'", "target.retries: expected a whole number"),
    ("  url: http://127.0.0.1:9/\n  headers: true", "target.headers: expected a mapping"),
    ("  url: http://127.0.0.1:9/\n  headers:\n    X-On: true", "expected text header values"),
    ("  url: true", "target.url: expected text"),
    ("  url: http://127.0.0.1:9/\n  backoff: false", "target.backoff: expected a number"),
])
def test_target_settings_have_their_types_or_fail_at_load(tmp_path: Path, block: str,
                                                           fragment: str) -> None:
    with pytest.raises(WasimError, match=fragment):
        load_scenario(scenario(tmp_path, block))


def test_settings_cannot_carry_the_permission() -> None:
    with pytest.raises(WasimError, match="allow_remote is not a delivery setting"):
        delivery_options_from({"url": f"http://{REMOTE}/", "allow_remote": True},
                              lambda key: key)


def test_the_python_api_argument_is_the_only_way_to_allow_remote(tmp_path: Path) -> None:
    wasim = Simulator(5)
    with pytest.raises(WasimError, match="allow_remote must be True or False"):
        wasim.target(url=f"http://{REMOTE}/", allow_remote="false")  # type: ignore[arg-type]
    with pytest.raises(WasimError, match="not this machine"):
        wasim.target(url=f"http://{REMOTE}/")
    path = scenario(tmp_path, f"  url: http://{REMOTE}/hook\n  allow_remote: true")
    with pytest.raises(WasimError, match="cannot allow remote targets"):
        wasim.run_scenario(path)


def test_allow_remote_from_the_api_lets_a_remote_url_through() -> None:
    wasim = Simulator(5)
    wasim.target(url=f"http://{REMOTE}/hook", allow_remote=True)  # checked, nothing sent


# --- names are judged by the addresses they resolve to -------------------------------------


def test_a_localhost_name_that_resolves_elsewhere_is_refused() -> None:
    dns = Resolver({"evil.localhost": [REMOTE]})
    with pytest.raises(WasimError, match=rf"evil\.localhost \({REMOTE}\), which is not this"):
        url_target("http://evil.localhost:8000/hook", resolver=dns)
    assert dns.calls == ["evil.localhost"]


def test_every_address_of_a_name_must_be_loopback() -> None:
    dns = Resolver({"mixed.localhost": ["127.0.0.1", "::1", REMOTE]})
    with pytest.raises(WasimError, match="not this machine"):
        url_target("http://mixed.localhost/", resolver=dns)
    assert url_target("http://ok.localhost/", resolver=Resolver(
        {"ok.localhost": ["127.0.0.1", "::1"]})).url == "http://ok.localhost/"


def test_a_name_that_does_not_resolve_is_a_one_line_error() -> None:
    with pytest.raises(WasimError, match=r"cannot resolve the host 'nowhere\.localhost'") as info:
        url_target("http://nowhere.localhost/", resolver=Resolver({}))
    # The core names the field; the face that took the URL says where (--url, a file's line).
    assert info.value.field == "url" and info.value.where is None


def test_the_token_url_is_judged_by_its_addresses_too() -> None:
    dns = Resolver({"good.localhost": ["127.0.0.1"], "evil.localhost": [REMOTE]})
    with pytest.raises(WasimError, match="not this machine") as info:
        delivery_options_from({"url": "http://good.localhost/", "client_id": "me",
                               "token_url": "http://evil.localhost/token"},
                              lambda key: f"--{key}", resolver=dns)
    assert info.value.where == "--token_url"


def test_fire_refuses_a_localhost_name_that_resolves_elsewhere(
        fake_dns: Resolver, runner: CliRunner, tmp_path: Path) -> None:
    for url in ("http://evil.localhost/hook", "http://mixed.localhost/hook"):
        line = one_line_error(runner.invoke(cli, ["fire", "--url", url, "--no-history"]))
        assert line.startswith("--url: refusing to send callbacks to")
    line = one_line_error(runner.invoke(cli, [
        "fire", "--url", "http://good.localhost:9/", "--token-url",
        "http://evil.localhost/token", "--client-id", "me", "--no-history"]))
    assert line.startswith("--token-url: refusing")


def test_a_steps_target_is_judged_by_its_addresses(fake_dns: Resolver, runner: CliRunner,
                                                   tmp_path: Path) -> None:
    path = scenario(tmp_path, "  url: http://good.localhost:9/hook",
                    "    target:\n      url: http://evil.localhost/hook\n")
    line = one_line_error(runner.invoke(cli, ["run", str(path), "--no-history"]))
    assert line.startswith(f"{path}:11: refusing to send callbacks to evil.localhost")


def test_the_plugin_refuses_a_localhost_name_that_resolves_elsewhere(fake_dns: Resolver) -> None:
    with pytest.raises(WasimError, match="not this machine"):
        Simulator(1).target(url="http://evil.localhost/hook")


def test_the_tui_refuses_a_localhost_name_that_resolves_elsewhere(fake_dns: Resolver) -> None:
    from simulator.tui.app import make_app

    with pytest.raises(WasimError, match="not this machine"):
        make_app(url="http://evil.localhost/hook", history=None)


async def test_a_name_checked_as_loopback_is_connected_to_at_that_address(
        receiver: Receiver, connections: list[str]) -> None:
    port = httpx.URL(receiver.url).port
    dns = Resolver({"good.localhost": ["127.0.0.1"]})
    options = delivery_options_from({"url": f"http://good.localhost:{port}/hook"},
                                    lambda key: key, resolver=dns)
    async with Deliverer(options) as deliverer:
        result = await deliverer.deliver(Event.from_body(BODY))
    assert result.delivered
    assert connections == ["127.0.0.1"]  # the checked address, not the name resolved again
    assert httpx.Headers(receiver.arrivals[0].headers)["host"] == f"good.localhost:{port}"


async def test_a_name_that_rebinds_after_the_check_is_refused_at_send_time(
        connections: list[str]) -> None:
    # Loopback when the target is set, remote when the request leaves: DNS rebinding.
    dns = Resolver({"rebind.localhost": [["127.0.0.1"], [REMOTE]]})
    options = delivery_options_from({"url": "http://rebind.localhost:8000/hook"},
                                    lambda key: key, resolver=dns)
    async with Deliverer(options) as deliverer:
        result = await deliverer.deliver(Event.from_body(BODY))
    assert dns.calls == ["rebind.localhost", "rebind.localhost"]
    assert not result.delivered and result.attempts[0].outcome == "unreachable"
    assert connections == []  # nothing was even attempted


async def test_the_token_fetch_is_guarded_at_send_time_too(connections: list[str]) -> None:
    dns = Resolver({"good.localhost": ["127.0.0.1"], "tok.localhost": [["127.0.0.1"], [REMOTE]]})
    options = delivery_options_from({"url": "http://good.localhost:9/hook", "client_id": "me",
                                     "client_secret": "s3cret-value",
                                     "token_url": "http://tok.localhost/token"},
                                    lambda key: key, resolver=dns)
    async with Deliverer(options) as deliverer:
        result = await deliverer.deliver(Event.from_body(BODY))
    assert result.attempts[0].error_kind == "auth"
    assert connections == []


def test_load_connects_to_the_checked_address_and_refuses_a_rebinding_name(
        fake_dns: Resolver, receiver: Receiver, runner: CliRunner) -> None:
    port = httpx.URL(receiver.url).port
    result = runner.invoke(cli, ["load", "--url", f"http://good.localhost:{port}/", "-n", "2",
                                 "-c", "1"])
    assert result.exit_code == 0, result.output
    assert [httpx.Headers(a.headers)["host"] for a in receiver.arrivals] == \
        [f"good.localhost:{port}"] * 2
    refused = runner.invoke(cli, ["load", "--url", "http://rebind.localhost:9/", "-n", "1"])
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert refused.stderr.splitlines()[-1].startswith(
        "wasim: error: --url: refusing to send callbacks to rebind.localhost")
    assert fake_dns.calls.count("rebind.localhost") == 2  # checked, then checked again


def test_wait_for_url_checks_the_name_again_before_connecting(
        fake_dns: Resolver, runner: CliRunner, tmp_path: Path) -> None:
    path = scenario(tmp_path, "  url: http://rebind.localhost:9/hook")
    result = runner.invoke(cli, ["run", str(path), "--wait-for-url", "--no-history"])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines()[-1].startswith(
        "wasim: error: --url: refusing to send callbacks to rebind.localhost (203.0.113.5)")


async def test_the_tui_probe_never_connects_to_a_name_that_moved(
        fake_dns: Resolver, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from simulator.tui.session import probe_target

    opened: list[str] = []

    async def open_connection(host: str, port: int) -> Any:
        opened.append(host)
        raise OSError("refused")

    monkeypatch.setattr(asyncio, "open_connection", open_connection)
    target = url_target("http://rebind.localhost:9/")  # checked once: 127.0.0.1
    assert await probe_target(target) == "unreachable"  # then 203.0.113.5: no connection
    assert opened == []
    assert await probe_target(url_target("http://good.localhost:9/")) == "unreachable"
    assert opened == ["127.0.0.1"]


async def test_https_keeps_the_name_for_tls_when_pinned() -> None:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    guard = LoopbackOnlyTransport(httpx.MockTransport(record),
                                   Resolver({"secure.localhost": ["::1"]}))
    async with httpx.AsyncClient(transport=guard) as client:
        await client.post("https://secure.localhost:8443/hook", content=b"{}")
    assert str(seen[0].url) == "https://[::1]:8443/hook"
    assert seen[0].extensions["sni_hostname"] == "secure.localhost"
    assert seen[0].headers["host"] == "secure.localhost:8443"


# --- secrets never reach disk or output ----------------------------------------------------


def test_only_known_harmless_headers_are_kept_in_clear() -> None:
    headers = [("Authorization", "single-word-token"), ("Authorization", "Bearer abc.def"),
               ("Authorization", "Custom abc"), ("Proxy-Authorization", "Basic dXNlcg=="),
               ("X-Credential", "c"), ("X-Passwd", "p"), ("Set-Cookie", "sid=1"),
               ("X-Echo-Authorization", "Bearer abc"), ("Content-Type", "application/json"),
               ("User-Agent", "python-httpx"), ("X-Request-Id", "r1")]
    assert redact_headers(headers) == (
        ("Authorization", REDACTED), ("Authorization", f"Bearer {REDACTED}"),
        ("Authorization", REDACTED), ("Proxy-Authorization", f"Basic {REDACTED}"),
        ("X-Credential", REDACTED), ("X-Passwd", REDACTED), ("Set-Cookie", REDACTED),
        ("X-Echo-Authorization", REDACTED), ("Content-Type", "application/json"),
        ("User-Agent", "python-httpx"), ("X-Request-Id", "r1"))


def test_response_cookies_and_echoed_credentials_are_not_stored(tmp_path: Path) -> None:
    attempt = Attempt(event=Event.from_body(BODY), delivery_id="dlv_1", number=1,
                      started_at=1.0, target="http://127.0.0.1/", method="POST",
                      url="http://127.0.0.1/", request_headers=(("X-Api-Key", "k-123"),),
                      status=200, response_headers=(("Set-Cookie", "session=abc123"),
                                                    ("X-Auth-Echo", "Bearer tok-123")))
    path = tmp_path / "history.jsonl"
    with HistoryWriter(path) as writer:
        writer.append(attempt)
    text = path.read_text()
    assert "abc123" not in text and "tok-123" not in text and "k-123" not in text
    assert read_history(path).attempts[0].response_headers == (
        ("Set-Cookie", REDACTED), ("X-Auth-Echo", REDACTED))


def test_url_credentials_are_sent_but_never_shown_or_recorded(
        receiver: Receiver, runner: CliRunner, tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    url = receiver.url.replace("http://", "http://kaleyra:hunter2-pw@")
    result = runner.invoke(cli, ["fire", "--url", url, "--history", str(history)])
    assert result.exit_code == 0, result.output
    assert httpx.Headers(receiver.arrivals[0].headers)["authorization"].startswith("Basic ")
    event = records(history)[0]["event"]
    outputs = [result.output, history.read_text()]
    for command in (["history"], ["history", "--json"], ["export", str(event)]):
        shown = runner.invoke(cli, [*command, "--history", str(history)])
        assert shown.exit_code == 0, shown.output
        outputs.append(shown.output)
    for text in outputs:
        assert "hunter2" not in text and "kaleyra:" not in text


def test_url_credentials_stay_out_of_reports_and_load_output(
        receiver: Receiver, runner: CliRunner, tmp_path: Path) -> None:
    url = receiver.url.replace("http://", "http://kaleyra:hunter2-pw@")
    path = scenario(tmp_path, "  url: http://kaleyra:hunter2-pw@127.0.0.1:9/hook")
    report = tmp_path / "report.json"
    run = runner.invoke(cli, ["run", str(path), "--fast", "--report", str(report),
                              "--history", str(tmp_path / "h.jsonl")])
    assert run.exit_code == 3, run.output
    load = runner.invoke(cli, ["load", "--url", url, "-n", "2", "-c", "1"])
    assert load.exit_code == 0, load.output
    for text in (run.output, report.read_text(), (tmp_path / "h.jsonl").read_text(),
                 load.output):
        assert "hunter2" not in text


@pytest.mark.parametrize("url", ["http://user:hunter2-pw@[bad/", "ftp://user:hunter2-pw@x/",
                                 f"http://user:hunter2-pw@{REMOTE}/"])
def test_errors_about_a_url_never_show_its_credentials(runner: CliRunner, url: str) -> None:
    line = one_line_error(runner.invoke(cli, ["fire", "--url", url, "--no-history"]))
    assert "hunter2" not in line and "user:" not in line


def test_a_header_value_with_control_characters_is_refused_without_showing_it(
        runner: CliRunner) -> None:
    for header in ("X-Key: abc\x01hunter2", "X-Key abc hunter2"):
        line = one_line_error(runner.invoke(cli, ["fire", "--url", "http://127.0.0.1:9/",
                                                  "-H", header, "--no-history"]))
        assert "hunter2" not in line and line.startswith("--header:")


async def test_a_token_with_control_characters_is_never_printed() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "tok\r\nX-Evil: hunter2"})
        return httpx.Response(200)

    options = DeliveryOptions(target=url_target("http://127.0.0.1:9/hook"),
                              auth=Auth(token_url="http://127.0.0.1:9/token", client_id="me"))
    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    async with Deliverer(options, client=client) as deliverer:
        result = await deliverer.deliver(Event.from_body(BODY))
    await client.aclose()
    attempt = result.attempts[0]
    assert attempt.error_kind == "auth" and "header" in str(attempt.error)
    assert "hunter2" not in json.dumps(to_record(attempt))


async def test_secrets_a_target_echoes_back_are_not_kept() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/token":
            return httpx.Response(200, json={"access_token": "tok-hunter2-abc"})
        sent = "; ".join(f"{k}={v}" for k, v in request.headers.items())
        return httpx.Response(500, text=f"you sent {sent}",
                              headers={"X-Echo": request.headers["x-api-key"]})

    options = delivery_options_from(
        {"url": "http://127.0.0.1:9/hook", "headers": {"X-Api-Key": "key-hunter2"},
         "token_url": "http://127.0.0.1:9/token", "client_id": "me",
         "client_secret": "sec-hunter2"}, lambda key: key)
    client = httpx.AsyncClient(transport=httpx.MockTransport(echo))
    async with Deliverer(options, client=client) as deliverer:
        result = await deliverer.deliver(Event.from_body(BODY))
    await client.aclose()
    attempt = result.attempts[0]
    assert attempt.status == 500 and "you sent" in attempt.response_body
    assert "hunter2" not in repr(attempt) and "hunter2" not in json.dumps(to_record(attempt))


# --- the history is untrusted input, and unwritable ones are found before sending --------


def records(path: Path) -> list[dict[str, Any]]:
    """The history file's records."""
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def unwritable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Path]:
    """A history path that cannot be written: /dev/full, a folder, a read-only file."""
    kind = request.param
    if kind == "full":
        if not Path("/dev/full").exists():
            pytest.skip("no /dev/full here")
        yield Path("/dev/full")
    elif kind == "folder":
        yield tmp_path
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes read-only files")
        path = tmp_path / "history.jsonl"
        path.write_text("")
        path.chmod(stat.S_IRUSR)
        yield path


@pytest.mark.parametrize("unwritable", ["full", "folder", "read-only"], indirect=True)
def test_an_unwritable_history_stops_fire_before_anything_is_sent(
        unwritable: Path, receiver: Receiver, runner: CliRunner) -> None:
    result = runner.invoke(cli, ["fire", "--url", receiver.url, "--history", str(unwritable)])
    line = one_line_error(result)
    assert line.startswith(f"{unwritable}: cannot write the history")
    assert receiver.arrivals == []


@pytest.mark.parametrize("unwritable", ["full", "folder"], indirect=True)
def test_an_unwritable_history_stops_run_and_load_before_anything_is_sent(
        unwritable: Path, receiver: Receiver, runner: CliRunner, tmp_path: Path) -> None:
    path = scenario(tmp_path, f"  url: {receiver.url}")
    for command in (["run", str(path), "--fast"],
                    ["load", "--url", receiver.url, "-n", "3", "--history-sample", "1"]):
        one_line_error(runner.invoke(cli, [*command, "--history", str(unwritable)]))
    assert receiver.arrivals == []


def test_an_unwritable_history_stops_the_tui_before_it_starts(runner: CliRunner,
                                                               tmp_path: Path) -> None:
    from simulator.tui.commands import demo, tui

    for command, args in ((tui, ["--url", "http://127.0.0.1:9/"]), (demo, [])):
        result = runner.invoke(command, [*args, "--history", str(tmp_path)])
        assert isinstance(result.exception, WasimError), result.output
        assert result.exception.what.startswith("cannot write the history")


def write_records(path: Path, *targets: str) -> None:
    """A history whose records went to these targets."""
    lines = [json.dumps({"v": 1, "event": f"evt_{i}", "delivery": f"dlv_{i}", "attempt": 1,
                         "final": True, "at": 1.0, "outcome": "failed", "target": target,
                         "method": "POST", "url": "http://app.wasim.local/", "body": "{}"})
             for i, target in enumerate(targets)]
    path.write_text("\n".join(lines) + "\n")


def test_replay_never_imports_a_module_a_record_names(
        tmp_path: Path, runner: CliRunner, monkeypatch: pytest.MonkeyPatch,
        receiver: Receiver) -> None:
    marker = tmp_path / "pwned.txt"
    (tmp_path / "hostile_mod.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\napp = lambda *a: None\n")
    monkeypatch.chdir(tmp_path)
    history = tmp_path / "history.jsonl"
    write_records(history, "asgi:hostile_mod:app/hook", receiver.url)
    line = one_line_error(runner.invoke(cli, ["replay", "--last", "2", "--history",
                                              str(history)]))
    assert "--app" in line and "hostile_mod" not in sys.modules and not marker.exists()
    assert receiver.arrivals == []  # checked before the first send, even the good record
    sent = runner.invoke(cli, ["replay", "--last", "2", "--history", str(history),
                               "--url", receiver.url])
    assert sent.exit_code == 0, sent.output
    assert not marker.exists() and len(receiver.arrivals) == 2


def test_replay_keeps_the_remote_guard_against_a_recorded_target(
        tmp_path: Path, runner: CliRunner, connections: list[str]) -> None:
    history = tmp_path / "history.jsonl"
    write_records(history, f"http://{REMOTE}/hook")
    line = one_line_error(runner.invoke(cli, ["replay", "--last", "1", "--history",
                                              str(history)]))
    assert "not this machine" in line and connections == []


def test_history_refuses_a_fifo_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "history.jsonl"
    os.mkfifo(fifo)
    for command, problem in ((["history"], "cannot read the history"),
                             (["fire", "--url", "http://127.0.0.1:9/"],
                              "cannot write the history")):
        # A subprocess with a deadline: blocking on the FIFO would hang an in-process test.
        done = subprocess.run([sys.executable, "-m", "simulator", *command, "--history",
                               str(fifo)], capture_output=True, text=True, timeout=120,
                              cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.pathsep.join(
                                  sys.path)})
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{fifo}: {problem} (not a regular file)" in lines[0]


@pytest.mark.parametrize(("line", "reason"), [
    ('{"status": "200"}', "status is not a whole number"),
    ('{"event": ["evt"]}', "event is not text"),
    ('{"at": 1e999}', "at is not a number"),
    ('{"at": 99999999999999999999}', "at is not a number"),
    ('{"attempt": true}', "attempt is not a whole number"),
    ('{"request_headers": [["a"]]}', "request_headers is not a list"),
    ('{"request_headers": "x"}', "request_headers is not a list"),
    ('{"body": 5}', "body is not text"),
    ('{"final": "false"}', "final is not true or false"),
    ('{"error_kind": "rce"}', "error_kind is not one wasim writes"),
    ('{"latency_ms": NaN}', "latency_ms is not a number"),
])
def test_wrongly_typed_history_fields_are_skipped_with_their_line(
        tmp_path: Path, runner: CliRunner, line: str, reason: str) -> None:
    history = tmp_path / "history.jsonl"
    write_records(history, "http://127.0.0.1:9/", "http://127.0.0.1:9/")
    good, second = history.read_text().splitlines()
    bad = json.dumps({**json.loads(second), **json.loads(line)}) if "NaN" not in line \
        else second[:-1] + ',"latency_ms":NaN}'
    history.write_text(f"{good}\n{bad}\n")
    result = runner.invoke(cli, ["history", "--history", str(history)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"{history}:2: skipped a line that is not a history record ({reason}" in \
        result.stderr
    assert len(result.stdout.splitlines()) == 2  # the header and the good record
    assert history.read_text() == f"{good}\n{bad}\n"  # reading changes nothing


@pytest.mark.parametrize("line", ["[" * 100_000 + "]" * 100_000, "9" * 5000,
                                  '{"at": ' + "1" * 5000 + "}"])
def test_deep_or_huge_json_lines_are_skipped_not_raised(tmp_path: Path, runner: CliRunner,
                                                         line: str) -> None:
    history = tmp_path / "history.jsonl"
    write_records(history, "http://127.0.0.1:9/")
    history.write_text(history.read_text() + line + "\n")
    result = runner.invoke(cli, ["history", "--history", str(history)])
    assert result.exit_code == 0, result.output
    assert f"{history}:2: skipped" in result.stderr and "Traceback" not in result.output


def test_appending_after_a_hostile_line_loses_nothing(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    write_records(history, "http://127.0.0.1:9/")
    history.write_text(history.read_text() + '{"status": "x"')  # torn and wrongly typed
    attempt = read_history(history).attempts[0]
    with HistoryWriter(history) as writer:
        writer.append(attempt)
    assert [a.event.id for a in read_history(history).attempts] == ["evt_0", "evt_0"]
