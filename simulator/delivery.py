"""Deliver callbacks the way Kaleyra's callback profiles do: to a URL or into an app in-process.

Every attempt comes back as a value (an Attempt), never as an exception: a refused
connection, a timeout, a 500 and a crash inside the app are all data for the history, the
CLI and the TUI. Only bad configuration raises, and it raises before anything is sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib
import inspect
import ipaddress
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import httpx

from simulator.errors import WasimError, did_you_mean
from simulator.inputs import MAX_RETRIES, MAX_WAIT, parse_number

TargetKind = Literal["url", "asgi", "wsgi"]
ErrorKind = Literal["connect", "timeout", "protocol", "auth"]
Sleep = Callable[[float], Awaitable[None]]

DEFAULT_TIMEOUT = 10.0
RESPONSE_BODY_LIMIT = 64 * 1024  # bytes of each response body kept in the history
APP_BASE_URL = "http://app.wasim.local"  # what httpx sees when calling an app in-process
REDACTED = "[redacted]"
# Meta redelivers for days with growing gaps; this keeps the shape (six retries, each wait
# longer) at a scale a developer can sit through.
PLATFORM_RETRY_DELAYS = (1.0, 5.0, 30.0, 120.0, 600.0, 1800.0)
_SECRET_HEADER = re.compile(r"auth|token|secret|key|signature|cookie|password|session", re.I)


@dataclass(frozen=True)
class Target:
    """Where callbacks go: a URL over the network, or an ASGI/WSGI app called in-process."""

    kind: TargetKind
    url: str  # the full URL; for an app, APP_BASE_URL + the path inside the app
    app_spec: str | None = None  # "module:attribute" for app targets
    app: Any = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        """How the target is shown and recorded: the URL, or `asgi:module:app/path`."""
        if self.kind == "url":
            return self.url
        return f"{self.kind}:{self.app_spec}{httpx.URL(self.url).raw_path.decode()}"


@dataclass(frozen=True)
class Auth:
    """Kaleyra's callback-profile authentication: Basic, or a bearer token fetched first."""

    basic: tuple[str, str] | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before each retry; no delays means no retries."""

    delays: tuple[float, ...] = ()

    @classmethod
    def exponential(cls, retries: int, backoff: float) -> RetryPolicy:
        """`retries` retries waiting backoff, 2*backoff, 4*backoff... (each at most a day)."""
        return cls(tuple(min(backoff * 2.0**i, MAX_WAIT) for i in range(retries)))


@dataclass(frozen=True)
class DeliveryOptions:
    """How to deliver: the callback profile (method, headers, auth) and the platform's patience."""

    target: Target
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    auth: Auth = Auth()
    timeout: float = DEFAULT_TIMEOUT
    success: tuple[tuple[int, int], ...] = ((200, 299),)  # inclusive status ranges
    retry: RetryPolicy = RetryPolicy()

    def is_success(self, status: int) -> bool:
        """Whether `status` counts as delivered."""
        return any(low <= status <= high for low, high in self.success)


@dataclass(frozen=True)
class Event:
    """One callback to deliver: its exact bytes, and who tapped what, for people to read."""

    id: str
    body: bytes
    seed: int | None = None
    user: str = ""
    name: str = ""
    button: str = ""
    message_id: str = ""

    @classmethod
    def from_body(cls, body: bytes, seed: int | None = None) -> Event:
        """An event for `body`; the same bytes always get the same id (a duplicate is itself)."""
        digest = hashlib.blake2b(body, digest_size=6).hexdigest()
        user, name, button, message_id = _who_tapped(body)
        return cls(f"evt_{digest}", body, seed, user, name, button, message_id)


def _who_tapped(body: bytes) -> tuple[str, str, str, str]:
    """Best-effort (wa_id, name, button, message id) of a callback body; blanks if unknown."""
    try:
        value = json.loads(body)["meta_object"]["value"]
        message = value["messages"][0]
        contact = value.get("contacts", [{}])[0]
        button = message.get("button", {}).get("text") or message.get("type", "")
        return (str(message.get("from", "")), str(contact.get("profile", {}).get("name", "")),
                str(button), str(message.get("id", "")))
    except (ValueError, LookupError, TypeError, AttributeError):
        return "", "", "", ""


Outcome = Literal["delivered", "failed", "unreachable"]


@dataclass(frozen=True)
class Attempt:
    """One HTTP exchange (or failure to have one), as recorded in the history."""

    event: Event
    delivery_id: str  # one send of the event, with its retries; a replay is a new delivery
    number: int  # 1 for the first attempt of a delivery
    started_at: float  # unix time
    target: str  # Target.label
    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]  # secrets already redacted
    status: int | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    response_body: str = ""
    response_truncated: bool = False
    latency_ms: float = 0.0
    error: str | None = None
    error_kind: ErrorKind | None = None
    delivered: bool = False
    final: bool = True  # no retry follows this attempt
    replay_of: str | None = None  # the delivery this one replays

    @property
    def outcome(self) -> Outcome:
        """Delivered, failed (answered badly or timed out), or unreachable (no connection)."""
        if self.delivered:
            return "delivered"
        return "unreachable" if self.error_kind == "connect" else "failed"


@dataclass(frozen=True)
class DeliveryResult:
    """All attempts of one delivery, and how it ended."""

    event: Event
    attempts: tuple[Attempt, ...]

    @property
    def delivered(self) -> bool:
        """Whether the last attempt got a success status."""
        return bool(self.attempts) and self.attempts[-1].delivered

    @property
    def unreachable(self) -> bool:
        """Whether no attempt ever reached the target."""
        return all(a.error_kind == "connect" for a in self.attempts)


def redact_headers(headers: httpx.Headers | list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Headers with secret values replaced, keeping an auth scheme (`Bearer [redacted]`)."""
    items = headers.multi_items() if isinstance(headers, httpx.Headers) else headers
    out = []
    for name, value in items:
        if _SECRET_HEADER.search(name):
            scheme = value.split(" ", 1)[0] if " " in value else None
            value = f"{scheme} {REDACTED}" if scheme and name.lower() == "authorization" \
                else REDACTED
        out.append((name, value))
    return tuple(out)


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine, judged from the name alone (no DNS lookup)."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def url_target(url: str, allow_remote: bool = False) -> Target:
    """A network target, refusing anything but this machine unless `allow_remote`."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise WasimError(f"invalid URL {url!r}: {exc}", where="--url",
                         hint="For example --url http://127.0.0.1:8000/webhook.") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise WasimError(f"invalid URL {url!r}: expected http:// or https:// and a host",
                         where="--url", hint="For example --url http://127.0.0.1:8000/webhook.")
    if not allow_remote and not is_loopback(parsed.host):
        raise WasimError(f"refusing to send callbacks to {parsed.host}, which is not this "
                         "machine", where="--url",
                         hint="wasim only fires at localhost by default, so a typo cannot spam "
                              "a real endpoint; add --allow-remote if you mean it.")
    return Target("url", str(parsed))


def app_target(spec: str, path: str = "/") -> Target:
    """An in-process target from `[asgi:|wsgi:]module:attribute`, imported from the cwd."""
    kind: TargetKind | None = None
    text = spec
    for prefix in ("asgi:", "wsgi:"):
        if spec.startswith(prefix):
            kind, text = prefix[:-1], spec[len(prefix):]  # type: ignore[assignment]
    module_name, _, attribute = text.partition(":")
    if not module_name or not attribute:
        raise WasimError(f"expected MODULE:ATTRIBUTE, got {spec!r}", where="--app",
                         hint="For example --app main:app (asgi: or wsgi: in front to say which).")
    # Like uvicorn and flask, import from the folder wasim runs in.
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise WasimError(f"cannot import {module_name!r}: {exc}", where="--app",
                         hint="Run wasim from your project's folder, or give the dotted path "
                              "(package.module:app).") from None
    except Exception as exc:  # the app's own import-time failure, reported, not re-raised
        raise WasimError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}",
                         where="--app", hint="Fix the error in your module first.") from None
    app: Any = module
    for part in attribute.split("."):
        if not hasattr(app, part):
            names = [n for n in dir(app) if not n.startswith("_")]
            raise WasimError(f"{module_name!r} has no attribute {attribute!r}", where="--app",
                             hint=did_you_mean(part, names)
                             or "Name the app object, e.g. main:app.")
        app = getattr(app, part)
    if not callable(app):
        raise WasimError(f"{spec} is a {type(app).__name__}, not an ASGI or WSGI app",
                         where="--app", hint="Point at the app object, e.g. main:app.")
    if kind is None:
        kind = "asgi" if is_asgi(app) else "wsgi"
    if not path.startswith("/"):
        path = "/" + path
    return Target(kind, APP_BASE_URL + path, text, app)


def is_asgi(app: Any) -> bool:
    """Whether `app` is an ASGI app (its call is a coroutine function) rather than WSGI."""
    if inspect.isfunction(app) or inspect.ismethod(app):
        return inspect.iscoroutinefunction(app)
    return inspect.iscoroutinefunction(type(app).__call__)


class _AsyncWSGITransport(httpx.AsyncBaseTransport):
    """Runs a WSGI app in a worker thread, so one async delivery path serves both kinds."""

    def __init__(self, app: Any) -> None:
        self._sync = httpx.WSGITransport(app=app, raise_app_exceptions=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        sync_request = httpx.Request(request.method, request.url, headers=request.headers,
                                     content=body)
        response = await asyncio.to_thread(self._sync.handle_request, sync_request)
        content = await asyncio.to_thread(response.read)
        return httpx.Response(response.status_code, headers=response.headers, content=content)


class _LifespanASGITransport(httpx.ASGITransport):
    """httpx's ASGI transport, plus the app's lifespan: startup before the first request,
    shutdown when the client closes, as a server would run them.

    Real handlers open their database or queue in a lifespan handler; without it, a FastAPI
    app answers every callback with a 500 that no real deployment would give.
    """

    def __init__(self, app: Any) -> None:
        super().__init__(app=app, raise_app_exceptions=False)
        self._lock = asyncio.Lock()
        self._lifespan: _Lifespan | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._lifespan is None:
            async with self._lock:
                if self._lifespan is None:
                    self._lifespan = await _Lifespan.start(self.app)
        return await super().handle_async_request(request)

    async def aclose(self) -> None:
        if self._lifespan is not None:
            await self._lifespan.stop()
            self._lifespan = None


class _Lifespan:
    """One run of an ASGI app's lifespan protocol (ASGI 3.0, lifespan 2.0)."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.started: asyncio.Future[None] = loop.create_future()
        self.stopped: asyncio.Future[None] = loop.create_future()
        self.task: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, app: Any) -> _Lifespan:
        """Send lifespan.startup and wait for the app to finish starting."""
        lifespan = cls()
        lifespan.task = asyncio.ensure_future(lifespan._run(app))
        lifespan.inbox.put_nowait({"type": "lifespan.startup"})
        await lifespan.started
        return lifespan

    async def stop(self) -> None:
        """Send lifespan.shutdown and wait (briefly) for the app to finish."""
        if self.task is None or self.task.done():
            return
        self.inbox.put_nowait({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(asyncio.shield(self.stopped), 5)
        except TimeoutError:
            self.task.cancel()

    async def _run(self, app: Any) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": {}}
        try:
            await app(scope, self.inbox.get, self._send)
        except Exception as exc:  # the ASGI spec: an app that raises here has no lifespan
            del exc  # nothing to report: requests go ahead without one, as servers do
            if not self.started.done():
                self.started.set_result(None)
        finally:
            for future in (self.started, self.stopped):
                if not future.done():
                    future.set_result(None)

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete" and not self.started.done():
            self.started.set_result(None)
        elif kind == "lifespan.startup.failed" and not self.started.done():
            # Starlette sends the whole traceback; its last line is the error itself.
            lines = [line for line in str(message.get("message", "")).splitlines()
                     if line.strip()]
            self.started.set_exception(WasimError(
                f"the app's startup failed: {lines[-1].strip() if lines else 'no reason given'}",
                where="--app", hint="Fix the app's lifespan (startup) handler."))
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed") \
                and not self.stopped.done():
            self.stopped.set_result(None)


def make_client(target: Target, timeout: float) -> httpx.AsyncClient:
    """The httpx client for a target: the network, or the app's in-process transport."""
    transport: httpx.AsyncBaseTransport | None = None
    if target.kind == "asgi":
        transport = _LifespanASGITransport(target.app)
    elif target.kind == "wsgi":
        transport = _AsyncWSGITransport(target.app)
    base = APP_BASE_URL if target.kind != "url" else ""
    return httpx.AsyncClient(transport=transport, base_url=base, timeout=timeout,
                             follow_redirects=False, trust_env=False)


class TokenCache:
    """Kaleyra's "Advanced Authentication": fetch a bearer token, reuse it until it expires."""

    def __init__(self, auth: Auth, clock: Callable[[], float]) -> None:
        self.auth = auth
        self.clock = clock
        self.token: str | None = None
        self.expires_at = 0.0

    def valid(self) -> bool:
        # Renew a little early, so a token does not expire between check and use.
        return self.token is not None and self.clock() < self.expires_at - 5

    def forget(self) -> None:
        self.token = None

    async def get(self, client: httpx.AsyncClient, timeout: float) -> str:
        """The current token, fetching one if there is none; raises AuthFailure."""
        if self.valid():
            assert self.token is not None
            return self.token
        auth = self.auth
        assert auth.token_url is not None
        form = {"grant_type": "client_credentials", "client_id": auth.client_id or "",
                "client_secret": auth.client_secret or ""}
        try:
            response = await asyncio.wait_for(client.post(auth.token_url, data=form), timeout)
        except (httpx.TransportError, TimeoutError) as exc:
            raise AuthFailure(f"token URL {auth.token_url} unreachable: "
                               f"{_describe_transport_error(exc, timeout)}") from None
        if response.status_code != 200:
            raise AuthFailure(f"token URL {auth.token_url} answered {response.status_code}")
        try:
            payload = response.json()
            token = payload.get("access_token") or payload.get("token")
            lifetime = float(payload.get("expires_in", 3600))
        except (ValueError, AttributeError, TypeError):
            raise AuthFailure(f"token URL {auth.token_url} did not answer JSON with an "
                               "access_token") from None
        if not isinstance(token, str) or not token:
            raise AuthFailure(f"token URL {auth.token_url} answered no access_token")
        self.token, self.expires_at = token, self.clock() + lifetime
        return token


class AuthFailure(Exception):
    """The token endpoint failed; recorded on the attempt, never shown with secrets."""


def _describe_transport_error(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        return "connection refused"
    return f"{type(exc).__name__}: {exc}"


class Deliverer:
    """Sends events to one target with one set of options, recording every attempt."""

    def __init__(
        self,
        options: DeliveryOptions,
        *,
        on_attempt: Callable[[Attempt], None] | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.options = options
        self.on_attempt = on_attempt
        self.sleep = sleep
        self.clock = clock
        self._client = client
        self._own_client = client is None
        self.tokens = TokenCache(options.auth, clock) if options.auth.token_url else None
        self._deliveries = 0

    @property
    def client(self) -> httpx.AsyncClient:
        """The httpx client, made on first use."""
        if self._client is None:
            self._client = make_client(self.options.target, self.options.timeout)
        return self._client

    async def aclose(self) -> None:
        """Close the client if this deliverer made it."""
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> Deliverer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _new_delivery_id(self, event: Event) -> str:
        self._deliveries += 1
        stamp = hashlib.blake2b(f"{event.id}{self.clock()}{self._deliveries}".encode(),
                                digest_size=4).hexdigest()
        return f"dlv_{stamp}"

    async def deliver(self, event: Event, replay_of: str | None = None) -> DeliveryResult:
        """Send `event`, retrying per the policy; every attempt is reported as it ends."""
        delivery_id = self._new_delivery_id(event)
        attempts: list[Attempt] = []
        delays = self.options.retry.delays
        refreshed = False
        number = 0
        while True:
            number += 1
            attempt = await self._attempt(event, delivery_id, number, replay_of)
            # A 401 with a cached token: the token may have been revoked. Fetch a new one and
            # resend at once, once, as the platform does; it does not use up a retry.
            if attempt.status == 401 and self.tokens is not None and not refreshed:
                refreshed = True
                self.tokens.forget()
                attempts.append(replace(attempt, final=False))
                self._report(attempts[-1])
                continue
            retries_used = number - 1 - (1 if refreshed else 0)
            retry = not attempt.delivered and retries_used < len(delays)
            attempt = replace(attempt, final=not retry)
            attempts.append(attempt)
            self._report(attempt)
            if not retry:
                return DeliveryResult(event, tuple(attempts))
            await self.sleep(delays[retries_used])

    def _report(self, attempt: Attempt) -> None:
        if self.on_attempt is not None:
            self.on_attempt(attempt)

    async def _attempt(self, event: Event, delivery_id: str, number: int,
                       replay_of: str | None) -> Attempt:
        options = self.options
        headers = httpx.Headers({"Content-Type": "application/json"})
        for name, value in options.headers:
            headers[name] = value
        auth = options.auth
        if auth.basic is not None:
            headers["Authorization"] = basic_auth_header(*auth.basic)
        base = Attempt(event=event, delivery_id=delivery_id, number=number,
                       started_at=self.clock(), target=options.target.label,
                       method=options.method, url=options.target.url,
                       request_headers=(), replay_of=replay_of)
        started = time.perf_counter()
        if self.tokens is not None:
            try:
                token = await self.tokens.get(self.client, options.timeout)
            except AuthFailure as exc:
                return replace(base, request_headers=redact_headers(headers), error=str(exc),
                               error_kind="auth",
                               latency_ms=(time.perf_counter() - started) * 1000)
            headers["Authorization"] = f"Bearer {token}"
        request = self.client.build_request(options.method, options.target.url,
                                            headers=headers, content=event.body)
        recorded = redact_headers(request.headers)
        started = time.perf_counter()
        try:
            response = await asyncio.wait_for(self._send(request), options.timeout)
        except (TimeoutError, httpx.TimeoutException):
            return replace(base, request_headers=recorded, error_kind="timeout",
                           error=f"no answer within {options.timeout:g} s (--timeout)",
                           latency_ms=(time.perf_counter() - started) * 1000)
        except httpx.ConnectError:
            return replace(base, request_headers=recorded, error_kind="connect",
                           error="connection refused: nothing is listening",
                           latency_ms=(time.perf_counter() - started) * 1000)
        except httpx.TransportError as exc:
            return replace(base, request_headers=recorded, error_kind="protocol",
                           error=f"{type(exc).__name__}: {exc}",
                           latency_ms=(time.perf_counter() - started) * 1000)
        latency = (time.perf_counter() - started) * 1000
        content = response.content
        return replace(
            base,
            request_headers=recorded,
            status=response.status_code,
            response_headers=tuple(response.headers.multi_items()),
            response_body=content[:RESPONSE_BODY_LIMIT].decode("utf-8", "replace"),
            response_truncated=len(content) > RESPONSE_BODY_LIMIT,
            latency_ms=latency,
            delivered=options.is_success(response.status_code),
        )

    async def _send(self, request: httpx.Request) -> httpx.Response:
        response = await self.client.send(request)
        await response.aread()
        return response


def parse_success(text: str) -> tuple[tuple[int, int], ...]:
    """Read `--success` such as `2xx`, `200,202` or `200-299,304` into status ranges."""
    ranges = []
    for part in (p.strip().lower() for p in text.split(",")):
        match = re.fullmatch(r"([1-5])xx|(\d{3})(?:-(\d{3}))?", part)
        if not match:
            raise WasimError(f"cannot read the status {part!r}", where="--success",
                             hint="Use codes, ranges or classes: 200,202 or 200-299 or 2xx.")
        if match.group(1):
            low = int(match.group(1)) * 100
            ranges.append((low, low + 99))
            continue
        low, high = int(match.group(2)), int(match.group(3) or match.group(2))
        if not 100 <= low <= high <= 599:
            raise WasimError(f"{part!r} is not a status or a range of statuses from low to "
                             "high", where="--success",
                             hint="Statuses are 100-599; write ranges low-high, e.g. 200-299.")
        ranges.append((low, high))
    return tuple(ranges)


def parse_header(text: str) -> tuple[str, str]:
    """Read `--header "Name: value"`."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+",
                                                       name.strip()):
        raise WasimError(f"expected \"Name: value\", got {text!r}", where="--header",
                         hint='For example --header "X-Brand: acme".')
    return name.strip(), value.strip()


def basic_auth_header(user: str, password: str) -> str:
    """The Authorization value for HTTP Basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def parse_basic_auth(text: str) -> tuple[str, str]:
    """Read `--basic-auth USER:PASSWORD` (the password is never echoed back)."""
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise WasimError("expected USER:PASSWORD", where="--basic-auth",
                         hint="For example --basic-auth kaleyra:s3cret (or set WASIM_BASIC_AUTH).")
    return user, password


DELIVERY_KEYS = ("url", "app", "path", "method", "headers", "basic_auth", "token_url",
                 "client_id", "client_secret", "timeout", "success", "retries", "backoff",
                 "retry_schedule", "allow_remote")


def delivery_options_from(settings: Mapping[str, Any], where: Callable[[str], str], *,
                          target: Target | None = None) -> DeliveryOptions:
    """DeliveryOptions from flat settings (flags or a scenario's `target:`), checking each.

    `where(key)` names the place a setting came from, for errors: a flag or `file:line`.
    Missing keys take their defaults; `target` stands in when neither url nor app is set.
    """
    def get(key: str, default: Any = None) -> Any:
        value = settings.get(key)
        return default if value is None else value

    url, app = get("url"), get("app")
    allow_remote = bool(get("allow_remote", False))
    if url and app:
        raise WasimError("give a url or an app, not both", where=where("app"))
    try:
        if url:
            target = url_target(str(url), allow_remote)
        elif app:
            target = app_target(str(app), str(get("path", "/")))
    except WasimError as exc:
        exc.where = where("url" if url else "app")
        raise
    if target is None:
        raise WasimError("no target", where=where("url"),
                         hint="Say where to send: --url http://127.0.0.1:8000/webhook, or "
                              "--app main:app; `wasim receive` starts a test webhook.")
    token_url = get("token_url")
    if token_url and not get("client_id"):
        raise WasimError("a token URL needs a client id (and secret)", where=where("client_id"))
    if token_url and get("basic_auth"):
        raise WasimError("choose Basic auth or a token URL, not both", where=where("basic_auth"))
    if token_url and not str(token_url).startswith("/"):
        try:
            token_url = url_target(str(token_url), allow_remote).url
        except WasimError as exc:
            exc.where = where("token_url")
            raise
    basic = get("basic_auth")
    auth = Auth(
        basic=_at(where("basic_auth"), parse_basic_auth, str(basic)) if basic else None,
        token_url=token_url,
        client_id=get("client_id"),
        client_secret=get("client_secret"),
    )
    schedule = get("retry_schedule")
    if schedule is None:
        retries = _number(get("retries", 0), where("retries"), low=0, high=MAX_RETRIES,
                          integer=True, what="a number of retries")
        backoff = _number(get("backoff", 1.0), where("backoff"), low=0, high=MAX_WAIT,
                          what="seconds")
        retry = RetryPolicy.exponential(int(retries), backoff)
    else:
        retry = _at(where("retry_schedule"), parse_retry_schedule, str(schedule))
    timeout = _number(get("timeout", DEFAULT_TIMEOUT), where("timeout"), low=0, low_open=True,
                      high=MAX_WAIT, what="seconds")
    method = str(get("method", "POST")).upper()
    if method not in ("POST", "PUT", "PATCH"):
        raise WasimError(f"method {method!r} is not POST, PUT or PATCH", where=where("method"))
    raw_headers = get("headers", ())
    if isinstance(raw_headers, Mapping):
        headers = tuple((str(k), str(v)) for k, v in raw_headers.items())
    else:
        headers = tuple(_at(where("headers"), parse_header, str(h)) for h in raw_headers)
    return DeliveryOptions(
        target=target,
        method=method,
        headers=headers,
        auth=auth,
        timeout=float(timeout),
        success=_at(where("success"), parse_success, str(get("success", "2xx"))),
        retry=retry,
    )


def _number(value: Any, where: str, *, what: str, **limits: Any) -> float:
    """A setting that must be a number (flags and YAML give numbers; text is refused)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise WasimError(f"{str(value)[:40]!r} is not {what}", where=where,
                         hint="Write it as a plain number, e.g. 2 or 0.5.")
    return parse_number(value, where, what=what, **limits)


def _at(where: str, parse: Callable[[str], Any], text: str) -> Any:
    """Run a parser whose errors name a flag, re-pointing them at `where`."""
    try:
        return parse(text)
    except WasimError as exc:
        exc.where = where
        raise


def parse_retry_schedule(text: str) -> RetryPolicy:
    """Read `--retry-schedule`: waits in seconds (1,5,30) or `platform`."""
    if text.strip().lower() == "platform":
        return RetryPolicy(PLATFORM_RETRY_DELAYS)
    parts = text.split(",")
    if len(parts) > MAX_RETRIES:
        raise WasimError(f"{len(parts):,} waits is more than {MAX_RETRIES} retries",
                         where="--retry-schedule", hint="Give at most 100 waits, e.g. 1,5,30.")
    return RetryPolicy(tuple(parse_number(part, "--retry-schedule", low=0, high=MAX_WAIT,
                                          what="seconds") for part in parts))
