"""Delivery: targets, callback-profile auth, retries, timeouts; every outcome is a value."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from simulator.delivery import (
    Auth,
    Deliverer,
    DeliveryOptions,
    Event,
    RetryPolicy,
    Target,
    app_target,
    is_loopback,
    parse_header,
    parse_success,
    redact_headers,
    url_target,
)
from simulator.errors import WasimError

# Async tests run on asyncio through anyio's pytest plugin (anyio comes with httpx).
pytestmark = pytest.mark.anyio

BODY = b'{"meta_object":{"value":{"messages":[{"from":"919812345678","id":"wamid.X",' \
       b'"button":{"text":"Shop now"}}],"contacts":[{"profile":{"name":"Jos\\u00e9"}}]}}}'


class ScriptedApp:
    """A raw ASGI app that records requests and answers from a script of statuses."""

    def __init__(self, statuses: list[int] | None = None, token: str = "tok-1") -> None:
        self.statuses = list(statuses or [])
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.token_requests: list[dict[str, str]] = []
        self.tokens = [token]
        self.delay: Callable[[], Awaitable[None]] | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if scope["path"] == "/token":
            form = dict(pair.split("=", 1) for pair in body.decode().split("&"))
            self.token_requests.append(form)
            token = self.tokens[min(len(self.token_requests), len(self.tokens)) - 1]
            await self._answer(send, 200, json.dumps({"access_token": token,
                                                      "expires_in": 3600}).encode())
            return
        self.requests.append((scope["method"], scope["path"], headers, body))
        if self.delay is not None:
            await self.delay()
        status = self.statuses.pop(0) if self.statuses else 200
        await self._answer(send, status, b'{"ok":true}')

    @staticmethod
    async def _answer(send: Any, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def target_for(app: Any, path: str = "/webhook") -> Target:
    return Target("asgi", f"http://app.wasim.local{path}", "test:app", app)


async def no_sleep(seconds: float) -> None:
    """Retries in tests never wait for real."""


async def deliver(app: Any, **options: Any) -> Any:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async with Deliverer(DeliveryOptions(target=target_for(app), **options),
                         sleep=sleep) as deliverer:
        result = await deliverer.deliver(Event.from_body(BODY, seed=1))
    return result, slept


async def test_the_exact_bytes_arrive_with_json_content_type() -> None:
    app = ScriptedApp()
    result, _ = await deliver(app)
    method, path, headers, body = app.requests[0]
    assert (method, path, body) == ("POST", "/webhook", BODY)
    assert headers["content-type"] == "application/json"
    assert result.delivered and result.attempts[0].status == 200


async def test_custom_headers_and_method_reach_the_handler() -> None:
    app = ScriptedApp()
    await deliver(app, method="PUT", headers=(("X-Brand", "acme"),))
    method, _, headers, _ = app.requests[0]
    assert (method, headers["x-brand"]) == ("PUT", "acme")


async def test_basic_auth_arrives_and_is_redacted_in_the_record() -> None:
    app = ScriptedApp()
    result, _ = await deliver(app, auth=Auth(basic=("kaleyra", "s3cret")))
    scheme, encoded = app.requests[0][2]["authorization"].split()
    assert (scheme, base64.b64decode(encoded)) == ("Basic", b"kaleyra:s3cret")
    recorded = dict(result.attempts[0].request_headers)
    assert recorded["authorization"] == "Basic [redacted]"


async def test_a_token_is_fetched_once_and_reused() -> None:
    app = ScriptedApp()
    auth = Auth(token_url="/token", client_id="brand", client_secret="sh-secret")
    async with Deliverer(DeliveryOptions(target=target_for(app), auth=auth)) as deliverer:
        for _ in range(3):
            await deliverer.deliver(Event.from_body(BODY))
    assert len(app.token_requests) == 1
    assert app.token_requests[0] == {"grant_type": "client_credentials", "client_id": "brand",
                                     "client_secret": "sh-secret"}
    assert [r[2]["authorization"] for r in app.requests] == ["Bearer tok-1"] * 3


async def test_a_401_fetches_a_new_token_once_and_resends() -> None:
    app = ScriptedApp(statuses=[401, 200])
    app.tokens = ["old", "new"]
    auth = Auth(token_url="/token", client_id="brand", client_secret="x")
    result, slept = await deliver(app, auth=auth)
    assert [r[2]["authorization"] for r in app.requests] == ["Bearer old", "Bearer new"]
    assert [a.status for a in result.attempts] == [401, 200]
    assert result.delivered and slept == []


async def test_a_failing_token_endpoint_is_an_auth_failure_not_an_exception() -> None:
    auth = Auth(token_url="/nope-401", client_id="brand", client_secret="x")

    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        await ScriptedApp._answer(send, 403, b"no")

    result, _ = await deliver(refuse, auth=auth)
    assert result.attempts[0].error_kind == "auth"
    assert "answered 403" in (result.attempts[0].error or "")
    assert "x" not in (result.attempts[0].error or "").split()


async def test_500_twice_then_200_is_retried_per_schedule_and_delivered() -> None:
    app = ScriptedApp(statuses=[500, 500, 200])
    result, slept = await deliver(app, retry=RetryPolicy.exponential(3, 0.5))
    assert [a.status for a in result.attempts] == [500, 500, 200]
    assert [a.final for a in result.attempts] == [False, False, True]
    assert slept == [0.5, 1.0]
    assert result.delivered
    assert len(app.requests) == 3 and {r[3] for r in app.requests} == {BODY}


async def test_retries_run_out_and_the_delivery_fails() -> None:
    app = ScriptedApp(statuses=[503] * 5)
    result, slept = await deliver(app, retry=RetryPolicy((1.0, 2.0)))
    assert [a.status for a in result.attempts] == [503, 503, 503]
    assert not result.delivered and slept == [1.0, 2.0]


async def test_success_codes_are_configurable() -> None:
    app = ScriptedApp(statuses=[202])
    result, _ = await deliver(app, success=parse_success("200"))
    assert not result.delivered and result.attempts[0].outcome == "failed"


async def test_a_slow_handler_times_out_with_the_limit_in_the_error() -> None:
    import asyncio

    app = ScriptedApp()

    async def slow() -> None:
        await asyncio.sleep(5)

    app.delay = slow
    result, _ = await deliver(app, timeout=0.05)
    attempt = result.attempts[0]
    assert (attempt.error_kind, attempt.status) == ("timeout", None)
    assert "0.05 s" in (attempt.error or "")


async def test_an_app_that_crashes_is_a_500_not_an_exception() -> None:
    async def crash(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("handler bug")

    result, _ = await deliver(crash)
    assert result.attempts[0].status == 500 and not result.delivered


async def test_nothing_listening_is_recorded_as_unreachable() -> None:
    options = DeliveryOptions(target=url_target("http://127.0.0.1:9/x"), timeout=2)
    async with Deliverer(options) as deliverer:
        result = await deliverer.deliver(Event.from_body(BODY))
    assert result.unreachable and result.attempts[0].outcome == "unreachable"


def test_the_same_bytes_are_the_same_event() -> None:
    assert Event.from_body(BODY).id == Event.from_body(BODY).id
    assert Event.from_body(BODY).id != Event.from_body(BODY + b" ").id
    event = Event.from_body(BODY)
    assert (event.user, event.name, event.button, event.message_id) == \
        ("919812345678", "José", "Shop now", "wamid.X")


# What a resolver answers, so no test asks real DNS (or reads /etc/hosts) about these names.
_ADDRESSES = {"localhost": ["127.0.0.1", "::1"], "api.localhost": ["127.0.0.1"],
              "example.com": ["93.184.215.14"], "localhost.evil.com": ["203.0.113.5"]}


def fake_resolver(host: str, port: int | None, *args: Any) -> list[tuple[Any, ...]]:
    """A getaddrinfo that answers from _ADDRESSES and knows nothing else."""
    import socket

    if host not in _ADDRESSES:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
             (a, port or 0)) for a in _ADDRESSES[host]]


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.1", True), ("localhost", True), ("api.localhost", True),
    ("[::1]", True), ("10.0.0.1", False), ("example.com", False), ("localhost.evil.com", False),
])
def test_loopback_is_judged_by_the_resolved_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host, fake_resolver) is loopback


@pytest.mark.parametrize(("url", "fragment"), [
    ("https://example.com/hook", "not this machine"),
    ("ftp://127.0.0.1/x", "expected http:// or https://"),
    ("http://", "invalid URL"),
])
def test_bad_or_remote_urls_are_refused(url: str, fragment: str) -> None:
    with pytest.raises(WasimError, match=fragment):
        url_target(url, resolver=fake_resolver)


def test_allow_remote_lets_a_remote_url_through() -> None:
    assert url_target("https://example.com/hook", allow_remote=True).url == \
        "https://example.com/hook"


def test_app_targets_are_detected_as_asgi_or_wsgi(tmp_path: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "apps_for_detection.py").write_text(
        "async def asgi_app(scope, receive, send): pass\n"
        "def wsgi_app(environ, start_response): pass\n"
        "class Asgi:\n    async def __call__(self, scope, receive, send): pass\n"
        "asgi_obj = Asgi()\nnot_an_app = 3\n")
    monkeypatch.chdir(tmp_path)
    assert app_target("apps_for_detection:asgi_app").kind == "asgi"
    assert app_target("apps_for_detection:wsgi_app").kind == "wsgi"
    assert app_target("apps_for_detection:asgi_obj", "/hook").label == \
        "asgi:apps_for_detection:asgi_obj/hook"
    assert app_target("wsgi:apps_for_detection:asgi_obj").kind == "wsgi"
    with pytest.raises(WasimError, match="not an ASGI or WSGI app"):
        app_target("apps_for_detection:not_an_app")
    with pytest.raises(WasimError, match="has no attribute 'wsgi_ap'") as info:
        app_target("apps_for_detection:wsgi_ap")
    assert "wsgi_app" in (info.value.hint or "")
    with pytest.raises(WasimError, match="cannot import 'no_such_module'"):
        app_target("no_such_module:app")
    with pytest.raises(WasimError, match="expected MODULE:ATTRIBUTE"):
        app_target("just_a_module")


def test_secret_looking_headers_are_redacted() -> None:
    # Redacted by default: only headers known to be harmless stay in clear (X-Brand is not one).
    headers = httpx.Headers({"Authorization": "Bearer abc", "X-Api-Key": "k", "X-Brand": "b",
                             "Content-Type": "application/json"})
    assert dict(redact_headers(headers)) == {"authorization": "Bearer [redacted]",
                                             "x-api-key": "[redacted]", "x-brand": "[redacted]",
                                             "content-type": "application/json"}


@pytest.mark.parametrize(("text", "ranges"), [
    ("2xx", ((200, 299),)), ("200,202", ((200, 200), (202, 202))),
    ("200-299,304", ((200, 299), (304, 304))),
])
def test_success_codes_parse(text: str, ranges: tuple[tuple[int, int], ...]) -> None:
    assert parse_success(text) == ranges


def test_bad_headers_and_codes_are_clear_errors() -> None:
    with pytest.raises(WasimError, match="Name: value"):
        parse_header("no colon here")
    with pytest.raises(WasimError, match="cannot read the status"):
        parse_success("ok")


def test_an_asgi_apps_lifespan_runs_around_the_deliveries() -> None:
    from click.testing import CliRunner

    from simulator.cli import cli
    from tests.apps import lifespan_app

    lifespan_app.events.clear()
    result = CliRunner().invoke(cli, ["fire", "--app", "tests.apps.lifespan_app:app", "--path",
                                      "/webhook", "-n", "2", "--no-history"])
    assert result.exit_code == 0, result.output
    assert lifespan_app.events == ["startup", "callback", "callback", "shutdown"]


def test_a_failing_startup_is_a_one_line_error() -> None:
    from click.testing import CliRunner

    from simulator.cli import cli

    result = CliRunner().invoke(cli, ["fire", "--app", "tests.apps.lifespan_app:broken",
                                      "--no-history"])
    assert result.exit_code == 2, result.output
    assert "--app: the app's startup failed" in result.stderr
    assert "RuntimeError: cannot reach the database. Fix the app's lifespan" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
