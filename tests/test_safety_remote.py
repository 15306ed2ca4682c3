"""--allow-remote covers the hosts the person names, never the hosts a file names.

Real servers listen on 127.0.0.1 (this machine) and on 127.0.0.2, which these tests make
"remote" by narrowing the guard's idea of loopback to 127.0.0.1 alone. No packet leaves the
machine, and a server that must not be reached records whether it was.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

import simulator.delivery
import simulator.loopback
from simulator.cli import cli
from simulator.delivery import Deliverer, Event, delivery_options_from
from simulator.errors import WasimError
from simulator.testing import Simulator

pytestmark = pytest.mark.anyio
SECRET = "client-s3cret-from-env"
BODY = b'{"meta_object":{"value":{"messages":[{"from":"919812345678","id":"wamid.X"}]}}}'


class Server:
    """A real HTTP server that records every request and answers a token to any POST."""

    def __init__(self, host: str) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        seen = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen.append((self.path, dict(self.headers), body))
                answer = json.dumps({"access_token": "tok-abc", "expires_in": 600}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def secrets_seen(self) -> bool:
        return any(SECRET.encode() in body or SECRET in json.dumps(headers)
                   for _, headers, body in self.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def here() -> Iterator[Server]:
    """A server on this machine (127.0.0.1)."""
    server = Server("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def remote(monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server on a host the guard treats as another machine (127.0.0.2)."""
    real = simulator.loopback.is_loopback_address

    def only_127_0_0_1(address: str) -> bool:
        return real(address) and address.strip("[]") == "127.0.0.1"

    # The guard lives in simulator.loopback; the name delivery imports from it is patched too.
    # (Not simulator.locust: importing Locust patches this process with gevent.)
    for module in (simulator.loopback, simulator.delivery):
        monkeypatch.setattr(module, "is_loopback_address", only_127_0_0_1)
    server = Server("127.0.0.2")
    yield server
    server.close()


def scenario(tmp_path: Path, target: str, step_target: str = "") -> Path:
    path = tmp_path / "shared.yaml"
    path.write_text("name: shared\nseed: 3\n"
                    f"target:\n{target}\n"
                    "cast:\n  countries: {IN: 1}\n"
                    "steps:\n  - name: wave\n    choices: {Shop now: 100}\n" + step_target)
    return path


def one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0]).removeprefix("wasim: error: ")


def test_the_guard_stub_makes_the_second_address_remote(remote: Server, here: Server,
                                                        runner: CliRunner) -> None:
    # The premise of every test below: without --allow-remote, 127.0.0.2 is refused.
    line = one_line_error(runner.invoke(cli, ["fire", "--url", remote.url, "--no-history"]))
    assert "refusing to send callbacks to 127.0.0.2" in line


# --- a file's token URL and the secret from the environment ---------------------------------


def test_a_files_token_url_never_gets_the_environments_secret(
        tmp_path: Path, remote: Server, here: Server, runner: CliRunner) -> None:
    path = scenario(tmp_path, f"  token_url: {remote.url}/steal\n  client_id: me")
    result = runner.invoke(cli, ["run", str(path), "--fast", "--no-history", "--url",
                                 here.url + "/hook", "--allow-remote"],
                           env={"WASIM_CLIENT_SECRET": SECRET})
    line = one_line_error(result)
    assert line.startswith(f"{path}:4: refusing to send callbacks to 127.0.0.2, which is not "
                           "this machine nor a host you named")
    assert "--allow-remote covers only the hosts you name yourself" in line
    assert remote.requests == [] and here.requests == []


def test_the_same_token_url_named_by_the_person_gets_the_secret(
        tmp_path: Path, remote: Server, here: Server, runner: CliRunner) -> None:
    path = scenario(tmp_path, "  client_id: me")
    result = runner.invoke(cli, ["run", str(path), "--fast", "--no-history", "--url",
                                 here.url + "/hook", "--token-url", remote.url + "/token",
                                 "--allow-remote"], env={"WASIM_CLIENT_SECRET": SECRET})
    assert result.exit_code == 0, result.output
    assert remote.secrets_seen()
    assert [h.get("Authorization") for _, h, _ in here.requests] == ["Bearer tok-abc"]


def test_a_files_token_url_on_the_persons_own_host_gets_only_the_files_own_secret(
        tmp_path: Path, remote: Server, runner: CliRunner) -> None:
    # The person named 127.0.0.2 (for the webhook): a file may name that same host, but on a
    # shared host another path can be someone else's, so the person's secret does not go there.
    path = scenario(tmp_path, f"  token_url: {remote.url}/token\n  client_id: me")
    args = ["run", str(path), "--fast", "--no-history", "--url", remote.url + "/hook",
            "--allow-remote"]
    line = one_line_error(runner.invoke(cli, args, env={"WASIM_CLIENT_SECRET": SECRET}))
    assert line.startswith(f"{path}:4: --client-secret (yours) would go to {remote.url}/token, "
                           "which a file names")
    assert remote.requests == []
    path.write_text(path.read_text().replace("client_id: me",
                                             "client_id: me\n  client_secret: the-files-own"))
    result = runner.invoke(cli, args, env={"WASIM_CLIENT_SECRET": None})
    assert result.exit_code == 0, result.output
    assert [p for p, _, _ in remote.requests] == ["/token", "/hook"]


@pytest.mark.parametrize(("flag", "value"), [
    ("--app-secret", "app-s3cret"), ("--header", "X-Api-Key: k3y-value"),
    ("--client-secret", SECRET)])
def test_a_files_url_on_the_persons_token_host_gets_none_of_their_credentials(
        tmp_path: Path, remote: Server, runner: CliRunner, flag: str, value: str) -> None:
    path = scenario(tmp_path, f"  url: {remote.url}/hook")
    extra = [flag, value] if flag != "--client-secret" else []
    env = {"WASIM_CLIENT_SECRET": SECRET if flag == "--client-secret" else "file-irrelevant"}
    result = runner.invoke(cli, ["run", str(path), "--fast", "--no-history", "--token-url",
                                 remote.url + "/token", "--client-id", "me", "--allow-remote",
                                 *extra], env=env)
    if flag == "--client-secret":  # the bearer token it buys goes to the webhook
        assert one_line_error(result).startswith(f"{path}:4: --client-secret (yours) would go")
    else:
        assert one_line_error(result).startswith(f"{path}:4: {flag} (yours) would go to")
    assert remote.requests == []


# --- a file's webhook URL ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["scenario", "step"])
def test_a_files_remote_url_is_refused_even_with_the_flag(
        tmp_path: Path, remote: Server, here: Server, runner: CliRunner, where: str) -> None:
    if where == "scenario":
        path, line_no = scenario(tmp_path, f"  url: {remote.url}/hook"), 4
    else:
        path, line_no = scenario(tmp_path, f"  url: {here.url}/hook",
                                 f"    target:\n      url: {remote.url}/hook\n"), 11
    result = runner.invoke(cli, ["run", str(path), "--fast", "--no-history", "--allow-remote"],
                           env={"WASIM_BASIC_AUTH": f"kaleyra:{SECRET}"})
    assert one_line_error(result).startswith(f"{path}:{line_no}: refusing to send callbacks "
                                             "to 127.0.0.2")
    assert remote.requests == [] and here.requests == []


def test_load_and_the_tui_keep_the_same_scope(tmp_path: Path, remote: Server,
                                              runner: CliRunner) -> None:
    from simulator.scenarios import load_scenario
    from simulator.tui.session import delivery_for

    path = scenario(tmp_path, f"  url: {remote.url}/hook")
    result = runner.invoke(cli, ["load", str(path), "-n", "1", "--allow-remote"])
    assert "refusing to send callbacks to 127.0.0.2" in one_line_error(result)
    with pytest.raises(WasimError, match="nor a host you named"):
        delivery_for(load_scenario(path), {}, lambda key: f"--{key}", allow_remote=True)
    assert delivery_for(load_scenario(path), {"url": remote.url + "/x"}, lambda key: key,
                        allow_remote=True) is not None
    assert remote.requests == []


def test_the_python_api_scopes_the_permission_to_its_own_url(
        tmp_path: Path, remote: Server, here: Server) -> None:
    path = scenario(tmp_path, f"  token_url: {remote.url}/steal\n  client_id: me\n"
                              f"  client_secret: {SECRET}")
    wasim = Simulator(5)
    wasim.target(url=here.url + "/hook", allow_remote=True)
    with pytest.raises(WasimError, match="nor a host you named"):
        wasim.run_scenario(path)
    assert remote.requests == []
    wasim.target(url=remote.url + "/hook", allow_remote=True)  # the person names it
    run = wasim.run_scenario(path)
    assert [p for p, _, _ in remote.requests] == ["/steal", "/hook"]
    assert run.summary.delivered == 1


def test_replay_sends_a_recorded_remote_target_only_when_named(
        tmp_path: Path, remote: Server, runner: CliRunner) -> None:
    history = tmp_path / "h.jsonl"
    history.write_text(json.dumps({
        "v": 1, "event": "evt_1", "delivery": "dlv_1", "attempt": 1, "final": True, "at": 1.0,
        "outcome": "failed", "target": remote.url + "/hook", "method": "POST",
        "url": remote.url + "/hook", "body": "{}"}) + "\n")
    result = runner.invoke(cli, ["replay", "evt_1", "--history", str(history),
                                 "--allow-remote"])
    assert "refusing to send callbacks to 127.0.0.2" in one_line_error(result)
    assert remote.requests == []
    result = runner.invoke(cli, ["replay", "evt_1", "--history", str(history),
                                 "--allow-remote", "--url", remote.url + "/hook"])
    assert result.exit_code == 0, result.output
    assert len(remote.requests) == 1


# --- at send time --------------------------------------------------------------------------


async def test_a_file_named_loopback_name_that_moves_is_refused_at_send_time(
        remote: Server) -> None:
    # Checked as this machine when the options are built, the name then moves to the other
    # host. --allow-remote (for another host the person named) does not cover it.
    port = httpx.URL(remote.url).port
    answers = [["127.0.0.1"], ["127.0.0.2"]]

    def resolver(host: str, port_: Any, *args: Any) -> list[tuple[Any, ...]]:
        import socket

        addresses = answers.pop(0) if len(answers) > 1 else answers[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port_ or 0)) for a in addresses]

    options = delivery_options_from(
        {"url": f"http://moving.localhost:{port}/hook", "token_url": "http://named.example/t",
         "client_id": "me", "client_secret": SECRET},
        lambda key: key, allow_remote=True, person=("token_url", "client_id", "client_secret"),
        resolver=resolver)
    assert options.remote_hosts == frozenset({"named.example"})
    answers[:] = [["127.0.0.1"], ["127.0.0.2"]]
    options = delivery_options_from({"url": f"http://moving.localhost:{port}/hook"},
                                    lambda key: key, allow_remote=True, person=(),
                                    resolver=resolver)
    async with Deliverer(options) as deliverer:
        result = await deliverer.deliver(Event.from_body(BODY))
    assert result.attempts[0].outcome == "unreachable"
    assert remote.requests == []
