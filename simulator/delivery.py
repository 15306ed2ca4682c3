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
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import httpx

from simulator import __version__
from simulator.errors import WasimError, did_you_mean

TargetKind = Literal["url", "asgi", "wsgi"]
ErrorKind = Literal["connect", "timeout", "protocol", "auth"]
Sleep = Callable[[float], Awaitable[None]]
# socket.getaddrinfo's shape: (host, port, family, type) -> [(family, type, proto, name, addr)].
# Injected in tests, so `evil.localhost` can resolve to 203.0.113.5 without DNS or /etc/hosts;
# None everywhere means socket.getaddrinfo.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

DEFAULT_TIMEOUT = 10.0
RESPONSE_BODY_LIMIT = 64 * 1024  # bytes of each response body kept in the history
APP_BASE_URL = "http://app.wasim.local"  # what httpx sees when calling an app in-process
REDACTED = "[redacted]"
# Meta redelivers for days with growing gaps; this keeps the shape (six retries, each wait
# longer) at a scale a developer can sit through.
PLATFORM_RETRY_DELAYS = (1.0, 5.0, 30.0, 120.0, 600.0, 1800.0)
# Headers stored in clear in the history; every other value is redacted. An allow-list, not a
# pattern of secret-looking names: `X-Credential` or `X-Passwd` cannot be foreseen, harmless
# headers can.
SAFE_HEADERS = frozenset({
    "accept", "accept-encoding", "accept-language", "accept-ranges", "age", "cache-control",
    "connection", "content-encoding", "content-language", "content-length", "content-type",
    "date", "etag", "expires", "host", "keep-alive", "last-modified", "pragma",
    "retry-after", "server", "traceparent", "transfer-encoding", "user-agent", "vary",
    "x-correlation-id", "x-request-id"})
# Of an Authorization value only a scheme from this list is kept: a bare token is one word too.
_AUTH_SCHEMES = {"basic": "Basic", "bearer": "Bearer", "digest": "Digest", "token": "Token"}
# What may go in a header value on the wire (RFC 9110 field-value, visible ASCII and spaces).
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")


@dataclass(frozen=True)
class Target:
    """Where callbacks go: a URL over the network, or an ASGI/WSGI app called in-process."""

    kind: TargetKind
    url: str  # the full URL; for an app, APP_BASE_URL + the path inside the app
    app_spec: str | None = None  # "module:attribute" for app targets
    app: Any = field(default=None, compare=False, repr=False)

    # user:password from the URL, moved out of it (sent as Basic auth) so that the URL can be
    # shown and recorded as it is.
    userinfo: tuple[str, str] | None = field(default=None, compare=False, repr=False)

    @property
    def label(self) -> str:
        """How the target is shown and recorded: the URL, or `asgi:module:app/path`."""
        if self.kind == "url":
            return hide_userinfo(self.url)
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
        """`retries` retries waiting backoff, 2*backoff, 4*backoff..."""
        return cls(tuple(backoff * 2**i for i in range(retries)))


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
    # The person's permission (--allow-remote, the API argument), never a file's: without it,
    # every connection is checked again at send time (see _LoopbackOnlyTransport).
    allow_remote: bool = False
    resolver: Resolver | None = field(default=None, compare=False, repr=False)

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
        # A username user has no number on the wire: their BSUID names them instead.
        user = message.get("from") or message.get("from_user_id", "")
        return (str(user), str(contact.get("profile", {}).get("name", "")),
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


def redact_headers(headers: httpx.Headers | Sequence[tuple[str, str]]
                   ) -> tuple[tuple[str, str], ...]:
    """Headers as the history may keep them: only SAFE_HEADERS in clear, the rest redacted.

    An Authorization value keeps its scheme when it is a known one (`Bearer [redacted]`);
    anything else, a bare token included, becomes `[redacted]` whole.
    """
    items = headers.multi_items() if isinstance(headers, httpx.Headers) else headers
    out = []
    for name, value in items:
        lower = name.lower()
        if lower in ("authorization", "proxy-authorization"):
            scheme = _AUTH_SCHEMES.get(value.split(" ", 1)[0].lower()) if " " in value else None
            value = f"{scheme} {REDACTED}" if scheme else REDACTED
        elif lower not in SAFE_HEADERS:
            value = REDACTED
        out.append((name, value))
    return tuple(out)


_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s]*@")


def hide_userinfo(text: str) -> str:
    """`text` with the `user:password@` of every URL in it removed, for output and records."""
    return _USERINFO.sub(r"\1", text)


def is_loopback_address(address: str) -> bool:
    """Whether an IP address is this machine: 127.0.0.0/8 or ::1 (also as ::ffff:127.x)."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def resolve_host(host: str, port: int | None = None,
                 resolver: Resolver | None = None) -> tuple[str, ...]:
    """Every address `host` resolves to (an IP literal is itself); WasimError if none.

    Blocking (it is getaddrinfo): async code calls it through asyncio.to_thread.
    """
    name = host.strip("[]")
    literal = _ip_literal(name)
    if literal is not None:
        return (literal,)
    try:
        # socket.getaddrinfo looked up now, not bound at import: a test may patch it.
        infos = (resolver or socket.getaddrinfo)(name, port, 0, socket.SOCK_STREAM)
        addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    except (OSError, UnicodeError, ValueError, LookupError, TypeError):
        addresses = ()
    if not addresses:
        raise WasimError(f"cannot resolve the host {name!r}",
                         hint="Check the name; wasim decides what is this machine by the "
                              "addresses a name resolves to.")
    return addresses


def _ip_literal(host: str) -> str | None:
    """`host` as an IP address if it is one (no lookup needed), else None."""
    try:
        return str(ipaddress.ip_address(host.strip("[]").split("%", 1)[0]))
    except ValueError:
        return None


async def _resolve_off_loop(host: str, port: int | None,
                            resolver: Resolver | None) -> tuple[str, ...]:
    """resolve_host without blocking the event loop (an IP literal needs no thread)."""
    literal = _ip_literal(host)
    if literal is not None:
        return (literal,)
    return await asyncio.to_thread(resolve_host, host, port, resolver)


def is_loopback(host: str, resolver: Resolver | None = None) -> bool:
    """Whether `host` is this machine: every address it resolves to is loopback.

    Judged by the addresses, not the name: `evil.localhost` may resolve anywhere.
    """
    try:
        return all(is_loopback_address(a) for a in resolve_host(host, None, resolver))
    except WasimError:
        return False


def _refuse_remote(host: str, addresses: Sequence[str]) -> str | None:
    """Why `host` is not this machine (the first address that is not loopback), or None."""
    for address in addresses:
        if not is_loopback_address(address):
            shown = host if host.strip("[]") == address else f"{host} ({address})"
            return f"refusing to send callbacks to {shown}, which is not this machine"
    return None


_REMOTE_HINT = ("wasim only fires at this machine (names that resolve to 127.0.0.0/8 or ::1) by "
                "default, so a typo or a shared file cannot reach a real endpoint; add "
                "--allow-remote if you mean it.")


def url_target(url: str, allow_remote: bool = False, *,
               resolver: Resolver | None = None) -> Target:
    """A network target, refusing anything but this machine unless `allow_remote`.

    The host is resolved (with `resolver`) and every address must be loopback; a name that
    does not resolve is a bad input (exit 2), found before anything is sent. Credentials in
    the URL (`user:password@`) are moved out of it, into Target.userinfo, and never shown.
    """
    shown = hide_userinfo(url)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        reason = hide_userinfo(str(exc)) if "@" not in url else "cannot parse it"
        raise WasimError(f"invalid URL {shown!r}: {reason}", where="--url",
                         hint="For example --url http://127.0.0.1:8000/webhook.") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise WasimError(f"invalid URL {shown!r}: expected http:// or https:// and a host",
                         where="--url", hint="For example --url http://127.0.0.1:8000/webhook.")
    if not allow_remote:
        try:
            addresses = resolve_host(parsed.host, parsed.port, resolver)
        except WasimError as exc:
            exc.where = "--url"
            raise
        refusal = _refuse_remote(parsed.host, addresses)
        if refusal:
            raise WasimError(refusal, where="--url", hint=_REMOTE_HINT)
    userinfo = (parsed.username, parsed.password) if parsed.userinfo else None
    return Target("url", str(parsed.copy_with(userinfo=b"")) if userinfo else str(parsed),
                  userinfo=userinfo)


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


# The one header set every face sends (fire, replay, run, load, --app, the plugin, the TUI):
# Host, Content-Length, these, and the callback profile's own headers and auth.
BASE_HEADERS = (("Content-Type", "application/json"), ("User-Agent", f"wasim/{__version__}"))


def callback_headers(options: DeliveryOptions, token: str | None = None) -> httpx.Headers:
    """The request headers of a callback under `options` (with a fetched bearer `token`)."""
    headers = httpx.Headers(BASE_HEADERS)
    for name, value in options.headers:
        headers[name] = value
    if options.auth.basic is not None:
        headers["Authorization"] = basic_auth_header(*options.auth.basic)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


class _LoopbackOnlyTransport(httpx.AsyncBaseTransport):
    """Connects only to this machine, deciding at send time on the address it connects to.

    A name checked when the target was set can resolve elsewhere by the time a request leaves
    (DNS rebinding, an edited /etc/hosts). So each request resolves its host again, off the
    event loop, refuses unless every address is loopback, and then connects to the checked
    address itself (the URL's host swapped for it; Host header and TLS SNI keep the name), so
    the check and the connection cannot see two different answers.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, resolver: Resolver | None) -> None:
        self._inner = inner
        self._resolver = resolver

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        try:
            addresses = await _resolve_off_loop(host, request.url.port, self._resolver)
        except WasimError as exc:
            raise httpx.ConnectError(exc.what, request=request) from None
        refusal = _refuse_remote(host, addresses)
        if refusal:
            raise RemoteRefused(refusal, request=request)
        if addresses[0] == host:  # an IP literal: nothing to pin
            return await self._inner.handle_async_request(request)
        extensions = dict(request.extensions)
        if request.url.scheme == "https":
            extensions.setdefault("sni_hostname", host)
        pinned = httpx.Request(request.method, request.url.copy_with(host=addresses[0]),
                               headers=request.headers, stream=request.stream,
                               extensions=extensions)
        return await self._inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def checked_address(host: str, port: int | None, allow_remote: bool,
                          resolver: Resolver | None = None) -> str:
    """The address to connect to for `host`: itself if remote is allowed, else the loopback
    address it resolves to now (resolved off the event loop); raises WasimError otherwise.

    For code that opens its own sockets: connecting to the returned address, not the name,
    leaves no gap between the check and the connection for a rebinding name to use.
    """
    if allow_remote:
        return host
    addresses = await _resolve_off_loop(host, port, resolver)
    refusal = _refuse_remote(host, addresses)
    if refusal:
        raise WasimError(refusal, where="--url", hint=_REMOTE_HINT)
    return addresses[0]


class RemoteRefused(httpx.ConnectError):
    """A request's host resolved to an address that is not this machine; nothing was sent."""


def make_client(target: Target, timeout: float, *, allow_remote: bool = False,
                resolver: Resolver | None = None) -> httpx.AsyncClient:
    """The httpx client for a target: the network, or the app's in-process transport.

    Over the network, unless `allow_remote`, every connection is to this machine only.
    """
    transport: httpx.AsyncBaseTransport | None = None
    if target.kind == "asgi":
        transport = _LifespanASGITransport(target.app)
    elif target.kind == "wsgi":
        transport = _AsyncWSGITransport(target.app)
    elif not allow_remote:
        transport = _LoopbackOnlyTransport(httpx.AsyncHTTPTransport(), resolver)
    base = APP_BASE_URL if target.kind != "url" else ""
    client = httpx.AsyncClient(transport=transport, base_url=base, timeout=timeout,
                               follow_redirects=False, trust_env=False)
    for name in list(client.headers):  # httpx's defaults (Accept...): not in BASE_HEADERS
        del client.headers[name]
    return client


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
            raise AuthFailure(f"token URL {_shown(auth.token_url)} unreachable: "
                               f"{_describe_transport_error(exc, timeout)}") from None
        if response.status_code != 200:
            raise AuthFailure(f"token URL {_shown(auth.token_url)} answered "
                               f"{response.status_code}")
        try:
            payload = response.json()
            token = payload.get("access_token") or payload.get("token")
            lifetime = float(payload.get("expires_in", 3600))
        except (ValueError, AttributeError, TypeError):
            raise AuthFailure(f"token URL {_shown(auth.token_url)} did not answer JSON with an "
                               "access_token") from None
        if not isinstance(token, str) or not token:
            raise AuthFailure(f"token URL {_shown(auth.token_url)} answered no access_token")
        _check_token(token, auth.token_url)
        self.token, self.expires_at = token, self.clock() + lifetime
        return token


class AuthFailure(Exception):
    """The token endpoint failed; recorded on the attempt, never shown with secrets."""


def _shown(url: str) -> str:
    """A URL as error messages may show it: no credentials, no control characters."""
    return repr(hide_userinfo(url))[1:-1]


def _check_token(token: str, token_url: str) -> None:
    """Refuse a token that cannot go in a header, without ever printing the token."""
    if not _HEADER_VALUE.fullmatch(token) or len(token) > 16384:
        raise AuthFailure(f"token URL {_shown(token_url)} answered an access_token that cannot "
                          "be sent in a header (control characters, non-ASCII or over 16 KiB)")


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
            self._client = make_client(self.options.target, self.options.timeout,
                                       allow_remote=self.options.allow_remote,
                                       resolver=self.options.resolver)
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
            attempt = self._scrubbed(await self._attempt(event, delivery_id, number, replay_of))
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

    def _secrets(self) -> list[str]:
        """The values this deliverer sends that must not come back into a record."""
        options, auth = self.options, self.options.auth
        found = [value for name, value in options.headers if name.lower() not in SAFE_HEADERS]
        if auth.basic is not None:
            found += [auth.basic[1], basic_auth_header(*auth.basic).split(" ", 1)[1]]
        if auth.client_secret:
            found.append(auth.client_secret)
        if self.tokens is not None and self.tokens.token:
            found.append(self.tokens.token)
        # Longest first, so a secret containing a shorter one is replaced whole.
        return sorted({s for s in found if len(s) >= 4}, key=len, reverse=True)

    def _scrubbed(self, attempt: Attempt) -> Attempt:
        """The attempt with any secret the target echoed back (in its body, headers or an
        error) replaced by [redacted], before anyone records or shows it."""
        secrets = self._secrets()

        def scrub(text: str) -> str:
            for secret in secrets:
                text = text.replace(secret, REDACTED)
            return text

        if not secrets:
            return attempt
        return replace(
            attempt, response_body=scrub(attempt.response_body),
            response_headers=tuple((n, scrub(v)) for n, v in attempt.response_headers),
            error=scrub(attempt.error) if attempt.error is not None else None)

    def _report(self, attempt: Attempt) -> None:
        if self.on_attempt is not None:
            self.on_attempt(attempt)

    async def _attempt(self, event: Event, delivery_id: str, number: int,
                       replay_of: str | None) -> Attempt:
        options = self.options
        headers = callback_headers(options)
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
            headers = callback_headers(options, token)
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
        else:
            low = int(match.group(2))
            ranges.append((low, int(match.group(3) or low)))
    return tuple(ranges)


def parse_header(text: str) -> tuple[str, str]:
    """Read `--header "Name: value"`."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+",
                                                       name.strip()):
        # Not echoed: a header given without its colon may be all secret.
        raise WasimError('expected "Name: value" (a header name, a colon, the value)',
                         where="--header", hint='For example --header "X-Brand: acme".')
    return name.strip(), value.strip()


def check_header(name: str, value: str, where: str) -> tuple[str, str]:
    """A header that can go on the wire as given; errors name it but never show its value."""
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
        raise WasimError(f"{repr(name)[:60]} is not a header name", where=where,
                         hint="Header names are letters, digits and -.")
    if not _HEADER_VALUE.fullmatch(value):
        raise WasimError(f"the value of the header {name} has control characters or non-ASCII "
                         "text, which cannot be sent in a header", where=where)
    return name, value


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
                 "retry_schedule")


def delivery_options_from(settings: Mapping[str, Any], where: Callable[[str], str], *,
                          target: Target | None = None, allow_remote: bool = False,
                          resolver: Resolver | None = None) -> DeliveryOptions:
    """DeliveryOptions from flat settings (flags or a scenario's `target:`), checking each.

    `where(key)` names the place a setting came from, for errors: a flag or `file:line`.
    Missing keys take their defaults; `target` stands in when neither url nor app is set.
    `allow_remote` is the person's permission (the flag, the API argument), passed apart
    from the settings because files fill those: a file can never lift the remote guard.
    Hosts (webhook and token URL) are resolved with `resolver`; every address must be
    loopback unless `allow_remote`.
    """
    def get(key: str, default: Any = None) -> Any:
        value = settings.get(key)
        return default if value is None else value

    if settings.get("allow_remote") is not None:
        # Only a caller's mistake gets here (files are refused at load time), never honoured.
        raise WasimError("allow_remote is not a delivery setting", where=where("allow_remote"),
                         hint="Only the person running wasim allows remote targets: "
                              "--allow-remote, or allow_remote= in the Python API.")
    url, app = get("url"), get("app")
    if url and app:
        raise WasimError("give a url or an app, not both", where=where("app"))
    try:
        if url:
            target = url_target(str(url), allow_remote, resolver=resolver)
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
            checked = url_target(str(token_url), allow_remote, resolver=resolver)
        except WasimError as exc:
            exc.where = where("token_url")
            raise
        if checked.userinfo:
            raise WasimError("the token URL carries credentials (user:password@)",
                             where=where("token_url"),
                             hint="Give them as --client-id and --client-secret instead.")
        token_url = checked.url
    basic = get("basic_auth")
    basic_pair = _at(where("basic_auth"), parse_basic_auth, str(basic)) if basic else None
    if target.userinfo is not None:
        # httpx would send them as Basic auth; wasim does the same, from the header it records
        # redacted, so the URL itself never carries them into output or the history.
        if basic_pair is not None or token_url:
            raise WasimError("the URL carries credentials (user:password@) and other auth is "
                             "given too", where=where("url"), hint="Keep one of them.")
        basic_pair = target.userinfo
    auth = Auth(
        basic=basic_pair,
        token_url=token_url,
        client_id=get("client_id"),
        client_secret=get("client_secret"),
    )
    schedule = get("retry_schedule")
    if schedule is None:
        retries, backoff = get("retries", 0), get("backoff", 1.0)
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise WasimError(f"retries must be a whole number >= 0, got {retries!r}",
                             where=where("retries"))
        if not isinstance(backoff, int | float) or isinstance(backoff, bool) or backoff < 0:
            raise WasimError(f"backoff must be seconds >= 0, got {backoff!r}",
                             where=where("backoff"))
        retry = RetryPolicy.exponential(retries, float(backoff))
    else:
        retry = _at(where("retry_schedule"), parse_retry_schedule, str(schedule))
    timeout = get("timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout <= 0:
        raise WasimError(f"timeout must be seconds > 0, got {timeout!r}", where=where("timeout"))
    method = str(get("method", "POST")).upper()
    if method not in ("POST", "PUT", "PATCH"):
        raise WasimError(f"method {method!r} is not POST, PUT or PATCH", where=where("method"))
    raw_headers = get("headers", ())
    if isinstance(raw_headers, Mapping):
        pairs = [(str(k), str(v)) for k, v in raw_headers.items()]
    elif isinstance(raw_headers, list | tuple):
        pairs = [_at(where("headers"), parse_header, str(h)) for h in raw_headers]
    else:
        raise WasimError("headers must be a mapping of name: value", where=where("headers"))
    headers = tuple(check_header(name, value, where("headers")) for name, value in pairs)
    return DeliveryOptions(
        target=target,
        method=method,
        headers=headers,
        auth=auth,
        timeout=float(timeout),
        success=_at(where("success"), parse_success, str(get("success", "2xx"))),
        retry=retry,
        allow_remote=allow_remote,
        resolver=resolver,
    )


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
    try:
        delays = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise WasimError(f"cannot read {text!r}", where="--retry-schedule",
                         hint="Give seconds separated by commas, e.g. 1,5,30, or "
                              "'platform'.") from None
    if any(not d >= 0 for d in delays):
        raise WasimError("waits must be 0 seconds or more", where="--retry-schedule")
    return RetryPolicy(delays)
