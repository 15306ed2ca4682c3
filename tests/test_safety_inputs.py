"""Small holes in what people type and what the network does: empty values, secrets on the
command line, a guard's refusal and a reset connection, each said plainly."""

from __future__ import annotations

import re
import socket
import struct
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.delivery import describe_transport_error
from simulator.receiver import Receiver

REMOTE = "203.0.113.5"  # TEST-NET-3: never routed; refused before any connection


def one_line_error(result: Any, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0]).removeprefix("wasim: error: ")


# --- empty values --------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "flag"), [
    (["api", "--api-key", "", "--port", "0"], "--api-key"),
    (["api", "--sid", " ", "--port", "0"], "--sid"),
    (["receive", "--host", "", "--port", "0"], "--host"),
    (["fire", "--url", "", "--no-history"], "--url"),
    (["fire", "--url", "http://127.0.0.1:9/", "--basic-auth", "", "--no-history"],
     "--basic-auth"),
    (["fire", "--url", "http://127.0.0.1:9/", "--client-secret", "", "--no-history"],
     "--client-secret"),
    (["fire", "--url", "http://127.0.0.1:9/", "--token-url", "", "--no-history"], "--token-url"),
    (["fire", "--url", "http://127.0.0.1:9/", "-H", "X-A: 1", "-H", "", "--no-history"],
     "--header"),
    (["fire", "--app", "", "--no-history"], "--app"),
    (["run", "summer-sale", "--dry-run", "--business-number", ""], "--business-number"),
    (["run", "summer-sale", "--dry-run", "--waba-id", ""], "--waba-id"),
    (["tui", "--url", ""], "--url"),
    (["load", "--url", "http://127.0.0.1:9/", "-n", "1", "--button", ""], "--button"),
    (["load", "--url", "http://127.0.0.1:9/", "-n", "1", "--country", ""], "--country"),
    (["load", "--url", "http://127.0.0.1:9/", "-n", "1", "--kind", ""], "--kind"),
    (["verify", "http://127.0.0.1:9/", "--verify-token", "t", "--challenge", ""],
     "--challenge"),
    (["api", "--webhook", "", "--port", "0"], "--webhook"),
    (["run", "summer-sale", "--dry-run", "--now", " "], "--now"),
    (["fire", "--url", "http://127.0.0.1:9/", "--no-history", "--user", ""], "--user"),
    (["render", "--template", ""], "--template"),
    (["render", "-b", ""], "--button"),
    (["render", "-c", "IN", "-c", ""], "--country"),
])
def test_an_empty_value_is_refused_not_taken_as_the_default(runner: CliRunner, args: list[str],
                                                             flag: str) -> None:
    # `--api-key ''` fell back to the published default key; `--host ''` listened on every
    # interface. Both now stop before anything starts.
    assert one_line_error(runner.invoke(cli, args)) == (
        f"{flag}: the value is empty. Give a value, or leave the flag out for the default.")


# --- secrets out of the process list -------------------------------------------------------


def test_headers_come_from_the_environment_one_per_line(runner: CliRunner,
                                                        receiver: Receiver) -> None:
    result = runner.invoke(cli, ["fire", "--url", receiver.url, "--no-history"],
                           env={"WASIM_HEADERS": "Authorization: Bearer tok-1\n\nX-Brand: acme\n"})
    assert result.exit_code == 0, result.output
    headers = httpx.Headers(receiver.arrivals[0].headers)
    assert headers["authorization"] == "Bearer tok-1" and headers["x-brand"] == "acme"
    assert "tok-1" not in result.output


def test_the_api_key_comes_from_the_environment(runner: CliRunner,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator import cli as cli_module

    seen: dict[str, Any] = {}

    def until_interrupted() -> None:
        raise KeyboardInterrupt

    def api_options(**kwargs: Any) -> Any:
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(cli_module, "_until_interrupted", until_interrupted)
    monkeypatch.setattr("simulator.sendapi.api_options", api_options)
    result = runner.invoke(cli, ["api", "--port", "0"], env={"WASIM_API_KEY": "key-from-env"})
    assert result.exit_code == 0, result.output
    assert seen["api_key"] == "key-from-env"


def test_api_flags_for_no_webhook_are_refused_but_the_environment_is_not(
        runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator import cli as cli_module

    monkeypatch.setattr(cli_module, "_until_interrupted", lambda: None)
    line = one_line_error(runner.invoke(cli, ["api", "--port", "0", "-H", "X-Key: k"]))
    assert line.startswith("--header: this shapes the status callbacks")
    result = runner.invoke(cli, ["api", "--port", "0"], env={"WASIM_HEADERS": "X-Key: k",
                                                             "WASIM_BASIC_AUTH": "u:p"})
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("command", "fragments"), [
    (["fire", "--help"], ["[env: WASIM_HEADERS]", "[env: WASIM_BASIC_AUTH]"]),
    (["api", "--help"], ["[env: KALEYRA_API_KEY or WASIM_API_KEY;"]),
])
def test_help_names_the_variables(runner: CliRunner, command: list[str],
                                  fragments: list[str]) -> None:
    text = " ".join(runner.invoke(cli, command).output.split())
    for fragment in fragments:
        assert fragment in text


# --- the guard's refusal at send time --------------------------------------------------------


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """rebind.localhost: loopback when checked, remote when the request leaves."""
    real = socket.getaddrinfo
    answers = [["127.0.0.1"], [REMOTE]]
    calls: list[str] = []

    def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                    flags: int = 0) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name == "rebind.localhost":
            calls.append(name)
            addresses = answers.pop(0) if len(answers) > 1 else answers[0]
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port or 0))
                    for a in addresses]
        return real(host, port, family, type, proto, flags | socket.AI_NUMERICHOST)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return calls


def test_a_refused_rebinding_name_is_reported_as_refused(runner: CliRunner,
                                                         rebinding: list[str]) -> None:
    result = runner.invoke(cli, ["fire", "--url", "http://rebind.localhost:9/hook",
                                 "--no-history"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"refusing to send callbacks to rebind.localhost ({REMOTE})" in result.output
    last = result.stderr.strip().splitlines()[-1]
    assert "Nothing is listening" not in last
    assert last.startswith("wasim: error: refusing to send callbacks to rebind.localhost")
    assert rebinding == ["rebind.localhost", "rebind.localhost"]


# --- a reset connection ----------------------------------------------------------------------


@pytest.fixture
def resetting() -> Iterator[str]:
    """A real server that reads the request, then resets the connection (RST, no answer)."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    server.close()


def test_a_reset_connection_says_what_broke(runner: CliRunner, resetting: str) -> None:
    result = runner.invoke(cli, ["fire", "--url", resetting, "--no-history"])
    assert result.exit_code == 1, result.output
    line = next(line for line in result.output.splitlines() if "FAILED" in line)
    error = line.split("FAILED: ", 1)[1]
    assert re.match(r"(ReadError|RemoteProtocolError|WriteError): \S", error), error
    assert not error.rstrip().endswith(":")


@pytest.mark.parametrize("exc", [httpx.ReadError(""), httpx.WriteError(""),
                                 httpx.RemoteProtocolError(""), httpx.LocalProtocolError("")])
def test_every_empty_transport_error_gets_a_reason(exc: Exception) -> None:
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except ConnectionResetError as cause:
            raise exc from cause
    except httpx.TransportError as raised:
        text = describe_transport_error(raised)
    name = type(exc).__name__
    assert text.startswith(f"{name}: ") and len(text) > len(name) + 20
    assert "(ConnectionResetError: [Errno 104] Connection reset by peer)" in text


# --- digits that are not 0-9 ---------------------------------------------------------------


@pytest.mark.parametrize(("args", "flag"), [
    (["api", "--port", "0", "--fail", "5%=\u00b2"], "--fail"),
    (["api", "--port", "0", "--business-number", "\u00b2" * 10], "--business-number"),
    (["api", "--port", "0", "--phone-number-id", "\u00b2" * 15], "--phone-number-id"),
])
def test_superscript_digits_are_a_one_line_error_not_a_traceback(
        runner: CliRunner, args: list[str], flag: str) -> None:
    # str.isdigit() says yes to '²', which int() refuses: `--fail 5%=²` was a ValueError.
    assert one_line_error(runner.invoke(cli, args)).startswith(f"{flag}:")
