"""Deliver callbacks the way Kaleyra's callback profiles do: to a URL or into an app in-process.

Every attempt comes back as a value (an Attempt), never as an exception: a refused
connection, a timeout, a 500 and a crash inside the app are all data for the history, the
CLI and the TUI. Only bad configuration raises, and it raises before anything is sent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import importlib
import inspect
import io
import ipaddress
import json
import math
import re
import socket
import sys
import threading
import time
import traceback
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import httpx

from simulator import __version__
from simulator.errors import ExitCode, WasimError, did_you_mean
from simulator.inputs import MAX_RETRIES, MAX_WAIT, parse_number
from simulator.meta import (
    META_USER_AGENT,
    SIGNATURE_HEADER,
    check_secret,
    parse_envelope,
    parse_signature,
    signature_for,
    wrap,
)
from simulator.tapped import read_body

TargetKind = Literal["url", "asgi", "wsgi"]
ErrorKind = Literal["connect", "timeout", "protocol", "auth"]
Sleep = Callable[[float], Awaitable[None]]
# socket.getaddrinfo's shape: (host, port, family, type) -> [(family, type, proto, name, addr)].
# Injected in tests, so `evil.localhost` can resolve to 203.0.113.5 without DNS or /etc/hosts;
# None everywhere means socket.getaddrinfo.
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

DEFAULT_TIMEOUT = 10.0
RESPONSE_BODY_LIMIT = 64 * 1024  # bytes of each response body kept in the history
TOKEN_ANSWER_LIMIT = 64 * 1024  # a token answer is a small JSON object; more is a failure
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
    # The person's permission (--allow-remote, the API argument), never a file's: without it,
    # every connection is checked again at send time (see _LoopbackOnlyTransport).
    allow_remote: bool = False
    resolver: Resolver | None = field(default=None, compare=False, repr=False)
    envelope: str = "kaleyra"  # or "meta": Meta's webhook envelope (simulator.meta)
    app_secret: str | None = field(default=None, repr=False)  # signs X-Hub-Signature-256
    signature: str = "valid"  # or a negative case: missing, wrong-secret, reserialized...

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
    """Best-effort (user, name, button, message id) of a callback body; blanks if unknown."""
    tapped = read_body(body)
    return tapped.user, tapped.name, tapped.button or tapped.message_type, tapped.message_id


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
    app_error: str | None = None  # an in-process app's traceback, when the app raised
    duplicate_of: str | None = None  # the delivery whose bytes this one sends again, as a dup
    edit_of: str | None = None  # the delivery whose bytes were edited into this event

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
        raise WasimError(f"invalid URL {shown!r}: {reason}", field="url",
                         hint="For example --url http://127.0.0.1:8000/webhook.") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise WasimError(f"invalid URL {shown!r}: expected http:// or https:// and a host",
                         field="url", hint="For example --url http://127.0.0.1:8000/webhook.")
    if not allow_remote:
        try:
            addresses = resolve_host(parsed.host, parsed.port, resolver)
        except WasimError as exc:
            exc.where, exc.field = None, "url"
            raise
        refusal = _refuse_remote(parsed.host, addresses)
        if refusal:
            raise WasimError(refusal, field="url", hint=_REMOTE_HINT)
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
        raise WasimError(f"expected MODULE:ATTRIBUTE, got {spec!r}", field="app",
                         hint="For example --app main:app (asgi: or wsgi: in front to say which).")
    # Like uvicorn and flask, import from the folder wasim runs in.
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise WasimError(f"cannot import {module_name!r}: {exc}", field="app",
                         hint="Run wasim from your project's folder, or give the dotted path "
                              "(package.module:app).") from None
    except Exception as exc:  # the app's own import-time failure, reported, not re-raised
        raise WasimError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}",
                         field="app", hint="Fix the error in your module first.") from None
    app: Any = module
    for part in attribute.split("."):
        if not hasattr(app, part):
            names = [n for n in dir(app) if not n.startswith("_")]
            raise WasimError(f"{module_name!r} has no attribute {attribute!r}", field="app",
                             hint=did_you_mean(part, names)
                             or "Name the app object, e.g. main:app.")
        app = getattr(app, part)
    if not callable(app):
        raise WasimError(f"{spec} is a {type(app).__name__}, not an ASGI or WSGI app",
                         field="app", hint="Point at the app object, e.g. main:app.")
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


_APP_FAILURE = "wasim.app_failure"  # response extension: what went wrong inside an app
_CUT_OFF = "wasim.cut_off"  # response extension: the transport stopped reading the app's body
_TRACEBACK_LIMIT = 16 * 1024  # characters of an app's traceback kept in the history
AppStage = Literal["before", "during", "after"]


@dataclass(frozen=True)
class _AppFailure:
    """Why an in-process app did not answer properly, and when: before its answer began,
    during its body (a broken answer), or after it had answered in full (its status stands)."""

    error: str
    traceback: str | None = None
    stage: AppStage = "before"


def _own_frame(exc: BaseException) -> str:
    """Where in the person's own code `exc` was raised: the innermost frame outside the
    standard library, installed packages and wasim (`webhook.py:41 in webhook`), or ""."""
    import sysconfig

    places = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib",
                                                     "platlib")}
    foreign = (*(str(Path(p).resolve()) for p in places if p),
               str(Path(__file__).resolve().parent))
    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        where = str(Path(frame.filename).resolve()) if frame.filename else ""
        if where and not where.startswith(foreign) and not frame.filename.startswith("<"):
            found = f"{frame.filename}:{frame.lineno} in {frame.name}"
    return found


def _app_failure(exc: BaseException, stage: AppStage) -> _AppFailure:
    """An app's exception as data: one line for the attempt (what, and where in the app's own
    code), the traceback for the history."""
    text = "".join(traceback.format_exception(exc))
    if len(text) > _TRACEBACK_LIMIT:
        # The end of a traceback says what failed and where; its start is wasim's own frames.
        text = f"[... {len(text) - _TRACEBACK_LIMIT} characters cut ...]\n" \
               + text[-_TRACEBACK_LIMIT:]
    last = " ".join(traceback.format_exception_only(exc)[-1].split())
    if len(last) > 300:
        last = last[:300] + "..."
    when = {"before": " before answering", "during": " while sending its body",
            "after": " after answering"}[stage]
    frame = _own_frame(exc)
    where = f" (at {frame})" if frame else ""
    return _AppFailure(f"the app raised{when}: {last}{where}", text, stage)


def _app_response(status: int | None, headers: list[tuple[bytes, bytes]], body: bytes,
                  failure: _AppFailure | None, cut_off: bool) -> httpx.Response:
    """What the Deliverer reads back from an in-process app; no status means a 500."""
    extensions: dict[str, Any] = {}
    if failure is not None:
        extensions[_APP_FAILURE] = failure
    if cut_off:
        extensions[_CUT_OFF] = True
    if status is None:  # the app never answered: a server answers 500 for it
        status, headers, body = 500, [], b""
    return httpx.Response(status, headers=headers, stream=_KeptBody(body),
                          extensions=extensions)


class _KeptBody(httpx.AsyncByteStream):
    """What a transport kept of an app's body, read by the Deliverer as if from a socket
    (httpx reads a plain bytes `content` at once, leaving nothing to stream)."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.body:
            yield self.body


class _AsyncWSGITransport(httpx.AsyncBaseTransport):
    """Runs a WSGI app as a threaded server does, one thread per request, keeping at most
    RESPONSE_BODY_LIMIT + 1 bytes of its answer; an app that raises answers 500."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        environ = _wsgi_environ(request, await request.aread())
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[httpx.Response] = loop.create_future()

        def settle(response: httpx.Response) -> None:
            if not answer.done():  # the attempt may have timed out and stopped waiting
                answer.set_result(response)

        def work() -> None:
            response = _call_wsgi(self.app, environ)
            # An abandoned thread can outlive the loop; then nobody is waiting for the answer.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, response)

        # A daemon thread of its own, not asyncio.to_thread: the default executor's threads are
        # joined when the interpreter exits, so an app sleeping past --timeout kept wasim alive
        # until it woke. On timeout this thread is abandoned, and exit does not wait for it.
        threading.Thread(target=work, name="wasim-wsgi-app", daemon=True).start()
        return await answer


def _wsgi_environ(request: httpx.Request, body: bytes) -> dict[str, Any]:
    """The WSGI environ for a request, as httpx's own WSGITransport builds it."""
    url = request.url
    environ: dict[str, Any] = {
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": url.path,
        "QUERY_STRING": url.query.decode("ascii"),
        "SERVER_NAME": url.host,
        "SERVER_PORT": str(url.port or {"http": 80, "https": 443}[url.scheme]),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    for raw_name, raw_value in request.headers.raw:
        key = raw_name.decode("latin-1").upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        environ[key] = raw_value.decode("latin-1")
    return environ


def _call_wsgi(app: Any, environ: dict[str, Any]) -> httpx.Response:
    """Call a WSGI app and read at most RESPONSE_BODY_LIMIT + 1 bytes; never raises."""
    limit = RESPONSE_BODY_LIMIT + 1
    started: list[tuple[Any, Any]] = []
    kept = bytearray()

    def keep(data: bytes) -> None:
        if not isinstance(data, bytes):
            raise TypeError(f"a WSGI body is bytes, not {type(data).__name__}")
        kept.extend(data[:limit - len(kept)])

    def start_response(status: Any, headers: Any, exc_info: Any = None) -> Callable[[bytes], None]:
        if started and exc_info is None:
            raise RuntimeError("start_response was called twice without exc_info")
        started[:] = [(status, headers)]
        return keep

    cut_off = False
    try:
        result = app(environ, start_response)
        try:
            for chunk in result:
                keep(chunk)
                if len(kept) >= limit:  # heard enough: drop the rest, as a client hanging up
                    cut_off = True
                    break
        finally:
            close = getattr(result, "close", None)
            if callable(close):
                close()
        if not started:
            return _app_response(None, [], b"", _AppFailure(
                "the app returned without calling start_response"), False)
        status, headers = _wsgi_answer(*started[-1])
    except BaseException as exc:  # a WSGI server turns whatever the app raises into a 500
        return _app_response(None, [], b"", _app_failure(exc, "before"), False)
    return _app_response(status, headers, bytes(kept), None, cut_off)


def _wsgi_answer(status: Any, headers: Any) -> tuple[int, list[tuple[bytes, bytes]]]:
    """The status code and raw headers a WSGI app gave start_response; ValueError if bad."""
    code = str(status).split(" ", 1)[0]
    if not isinstance(status, str) or not re.fullmatch(r"[1-9]\d\d", code):
        raise ValueError(f"the app's status {status!r} is not like '200 OK'")
    raw = []
    for pair in headers:
        name, value = pair
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError(f"the app's header {pair!r} is not two strings")
        raw.append((name.encode("latin-1"), value.encode("latin-1")))
    return int(code), raw


class _LifespanASGITransport(httpx.AsyncBaseTransport):
    """Calls an ASGI app in-process the way a server does: its lifespan startup before the
    first request, shutdown when the client closes, and each request bounded (see _ASGIExchange).

    Real handlers open their database or queue in a lifespan handler; without it, a FastAPI
    app answers every callback with a 500 that no real deployment would give.
    """

    def __init__(self, app: Any, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.app = app
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._lifespan: _Lifespan | None = None

    async def start_lifespan(self) -> None:
        """Run the app's startup once (bounded by the timeout); raises WasimError if it fails."""
        if self._lifespan is None:
            async with self._lock:
                if self._lifespan is None:
                    self._lifespan = await _Lifespan.start(self.app, self.timeout)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.start_lifespan()
        assert self._lifespan is not None
        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(k.lower(), v) for (k, v) in request.headers.raw],
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "server": (url.host, url.port),
            "client": ("127.0.0.1", 123),
            "root_path": "",
            # As servers do: each request sees a copy of what the lifespan put in its state.
            "state": dict(self._lifespan.state),
        }
        return await _ASGIExchange(self.app, scope, await request.aread()).run()

    async def aclose(self) -> None:
        if self._lifespan is not None:
            await self._lifespan.stop()
            self._lifespan = None


class _ASGIExchange:
    """One request into an ASGI app, read as a client reads a server: at most
    RESPONSE_BODY_LIMIT + 1 bytes of the answer are kept, then the client hangs up.

    Every `send` is a checkpoint (it yields to the loop), so the attempt's deadline can
    cancel an app that streams forever; after the hang-up `send` raises, as a closed socket
    does, so even an app that ignores its cancellation stops there.
    """

    def __init__(self, app: Any, scope: dict[str, Any], body: bytes) -> None:
        self.app = app
        self.scope = scope
        self.request_body: bytes | None = body
        self.status: int | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.kept = bytearray()
        self.complete = False  # the app sent its last body message
        self.hung_up = False  # we stopped listening: enough kept, or the attempt gave up
        self.failure: _AppFailure | None = None
        self.settled = asyncio.Event()  # complete, hung up, or the app returned
        self.listening = asyncio.Event()  # set when the client goes: receive() says disconnect

    async def run(self) -> httpx.Response:
        """Call the app; its answer (a 500 if it never gave one), or cancelled by the deadline."""
        task = asyncio.ensure_future(self._call())
        try:
            await self.settled.wait()
            if not self.hung_up:
                # A complete answer: let the app return (its background work runs after the
                # answer), as httpx's own transport did; the deadline still bounds it. Not
                # `await task`: that would pass our cancellation into the app before we hang up.
                await asyncio.wait({task})
        finally:
            if not task.done():
                self._hang_up()
                task.cancel()  # not awaited: an app that ignores cancellation must not hang us
        return _app_response(self.status, self.headers, bytes(self.kept), self.failure,
                             self.hung_up)

    def _hang_up(self) -> None:
        self.hung_up = True
        self.listening.set()
        self.settled.set()

    async def _call(self) -> None:
        try:
            await self.app(self.scope, self._receive, self._send)
        except asyncio.CancelledError as exc:
            if self.hung_up:
                raise  # ours: the attempt gave up, or has heard enough
            self.failure = _app_failure(exc, "before" if self.status is None else "during")
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the app's failure is its answer, not our crash
            if not self.hung_up:
                stage: AppStage = "before" if self.status is None else \
                    "after" if self.complete else "during"
                if stage == "after" and self.status is not None and self.status >= 500:
                    # Starlette's ServerErrorMiddleware answers 500 for a handler that raised,
                    # then raises again: the handler itself never answered.
                    stage = "before"
                self.failure = _app_failure(exc, stage)
        else:
            if self.status is None:
                self.failure = _AppFailure("the app returned without sending a response")
            elif not self.complete and not self.hung_up:
                self.failure = _AppFailure("the app returned before finishing its body",
                                           stage="during")
        finally:
            self.settled.set()

    async def _receive(self) -> dict[str, Any]:
        await asyncio.sleep(0)  # a checkpoint, so an app polling receive() can be cancelled
        if self.request_body is not None:
            body, self.request_body = self.request_body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.listening.wait()  # as a server does: the next message is the client leaving
        return {"type": "http.disconnect"}

    async def _send(self, message: Mapping[str, Any]) -> None:
        await asyncio.sleep(0)  # a checkpoint: see the class docstring
        if self.hung_up:
            raise OSError("the client closed the connection")
        kind = message.get("type")
        if kind == "http.response.start":
            if self.status is not None:
                raise RuntimeError("http.response.start was sent twice")
            status = message.get("status")
            if not isinstance(status, int) or isinstance(status, bool) \
                    or not 100 <= status <= 999:
                raise RuntimeError(f"status {status!r} is not an HTTP status")
            headers = []
            for pair in message.get("headers", ()):
                name, value = pair
                if not isinstance(name, bytes) or not isinstance(value, bytes):
                    raise RuntimeError(f"the header {pair!r} is not two byte strings")
                headers.append((name, value))
            self.status, self.headers = status, headers
        elif kind == "http.response.body":
            if self.status is None:
                raise RuntimeError("http.response.body was sent before http.response.start")
            if self.complete:
                raise RuntimeError("http.response.body was sent after the last one")
            body = message.get("body", b"")
            if not isinstance(body, bytes):
                raise RuntimeError(f"a body is bytes, not {type(body).__name__}")
            self.kept += body[:RESPONSE_BODY_LIMIT + 1 - len(self.kept)]
            if not message.get("more_body", False):
                self.complete = True
                self.listening.set()
                self.settled.set()
            elif len(self.kept) > RESPONSE_BODY_LIMIT:
                self._hang_up()  # heard enough: the rest is dropped, not buffered
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r}")


class _Lifespan:
    """One run of an ASGI app's lifespan protocol (ASGI 3.0, lifespan 2.0)."""

    def __init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.started: asyncio.Future[None] = loop.create_future()
        self.stopped: asyncio.Future[None] = loop.create_future()
        self.task: asyncio.Task[None] | None = None
        self.state: dict[str, Any] = {}

    @classmethod
    async def start(cls, app: Any, timeout: float = DEFAULT_TIMEOUT) -> _Lifespan:
        """Send lifespan.startup and wait (at most `timeout`) for the app to finish starting."""
        lifespan = cls()
        task = lifespan.task = asyncio.ensure_future(lifespan._run(app))
        lifespan.inbox.put_nowait({"type": "lifespan.startup"})
        try:
            await asyncio.wait_for(asyncio.shield(lifespan.started), timeout)
        except TimeoutError:
            task.cancel()
            raise WasimError(f"the app's startup did not finish within {timeout:g} s",
                             field="app",
                             hint="Fix the app's lifespan (startup) handler, or give it more "
                                  "time with --timeout.") from None
        except BaseException:
            task.cancel()  # a failed startup, or the run was stopped while it waited
            raise
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
                 "state": self.state}
        try:
            await app(scope, self.inbox.get, self._send)
        except (asyncio.CancelledError, KeyboardInterrupt):
            raise
        except BaseException as exc:  # the ASGI spec: an app that raises here has no lifespan
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
                field="app", hint="Fix the app's lifespan (startup) handler."))
        elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed") \
                and not self.stopped.done():
            self.stopped.set_result(None)


# The one header set every face sends (fire, replay, run, load, --app, the plugin, the TUI):
# Host, Content-Length, these, and the callback profile's own headers and auth.
BASE_HEADERS = (("Content-Type", "application/json"), ("User-Agent", f"wasim/{__version__}"))


def callback_headers(options: DeliveryOptions, token: str | None = None,
                     body: bytes | None = None) -> httpx.Headers:
    """The request headers of a callback under `options` (with a fetched bearer `token`).

    With an app secret and the `body` that leaves, X-Hub-Signature-256 signs those bytes.
    """
    headers = httpx.Headers(BASE_HEADERS)
    if options.envelope == "meta":
        headers["User-Agent"] = META_USER_AGENT
    if body is not None:
        signature = signature_for(options.app_secret, body, options.signature)
        if signature is not None:
            headers[SIGNATURE_HEADER] = signature
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
        raise WasimError(refusal, field="url", hint=_REMOTE_HINT)
    return addresses[0]


class RemoteRefused(httpx.ConnectError):
    """A request's host resolved to an address that is not this machine; nothing was sent."""


def make_client(target: Target, timeout: float, *, allow_remote: bool = False,
                resolver: Resolver | None = None) -> httpx.AsyncClient:
    """The httpx client for a target: the network, or the app's in-process transport.

    Over the network, unless `allow_remote`, every connection is to this machine only.
    """
    return _client_for(target, timeout, _transport_for(target, timeout, allow_remote, resolver))


def _transport_for(target: Target, timeout: float, allow_remote: bool = False,
                   resolver: Resolver | None = None) -> httpx.AsyncBaseTransport | None:
    if target.kind == "asgi":
        return _LifespanASGITransport(target.app, timeout)
    if target.kind == "wsgi":
        return _AsyncWSGITransport(target.app)
    if not allow_remote:
        return _LoopbackOnlyTransport(httpx.AsyncHTTPTransport(), resolver)
    return None


def _client_for(target: Target, timeout: float,
                transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    base = APP_BASE_URL if target.kind != "url" else ""
    client = httpx.AsyncClient(transport=transport, base_url=base, timeout=timeout,
                               follow_redirects=False, trust_env=False)
    # httpx's defaults (Accept, Accept-Encoding, its User-Agent...) are not in BASE_HEADERS:
    # every face sends the same set. Asking for no coding also keeps compressed answers rare;
    # _BodyDecoder still bounds the gzip or deflate a target sends unasked.
    for name in list(client.headers):
        del client.headers[name]
    return client


class _BodyDecoder:
    """Undoes gzip or deflate without ever producing more than asked: a few kB can inflate
    to gigabytes. Any other coding is kept as it was sent."""

    def __init__(self, coding: str) -> None:
        coding = coding.strip().lower()
        # 32 + MAX_WBITS reads a zlib or a gzip header, whichever is there.
        self._zlib = zlib.decompressobj(32 + zlib.MAX_WBITS) \
            if coding in ("gzip", "x-gzip", "deflate") else None
        self.broken = False  # the coded stream is corrupt: nothing more can be read from it

    def decode(self, data: bytes, room: int) -> bytes:
        """At most `room` bytes of what `data` decodes to."""
        if self._zlib is None:
            return data[:room]
        try:
            return self._zlib.decompress(data, room)
        except zlib.error:
            self.broken = True
            return b""


async def read_bounded(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """At most `limit` bytes of a streamed response's (decoded) body, and whether there was
    more; reading stops there, so the rest is never received into memory."""
    if response.is_stream_consumed:  # read already (a test's MockTransport): in memory anyway
        return response.content[:limit], len(response.content) > limit
    decoder = _BodyDecoder(response.headers.get("content-encoding", ""))
    kept = bytearray()
    async for chunk in response.aiter_raw():
        kept += decoder.decode(chunk, limit + 1 - len(kept))
        if len(kept) > limit:
            return bytes(kept[:limit]), True
        if decoder.broken:
            break
    return bytes(kept), bool(response.extensions.get(_CUT_OFF))


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
            # The deadline covers the whole fetch, body included: an endless answer ends here.
            status, body, truncated = await asyncio.wait_for(
                self._fetch(client, auth.token_url, form), timeout)
        except (httpx.TransportError, TimeoutError) as exc:
            raise AuthFailure(f"token URL {_shown(auth.token_url)} unreachable: "
                               f"{_describe_transport_error(exc, timeout)}") from None
        if status != 200:
            raise AuthFailure(f"token URL {_shown(auth.token_url)} answered {status}")
        if truncated:
            raise AuthFailure(f"token URL {_shown(auth.token_url)} answered more than "
                              f"{TOKEN_ANSWER_LIMIT // 1024} KiB; a token answer is a small "
                              "JSON object")
        token, lifetime = _read_token_answer(body, _shown(auth.token_url))
        _check_token(token, auth.token_url)
        self.token, self.expires_at = token, self.clock() + lifetime
        return token

    @staticmethod
    async def _fetch(client: httpx.AsyncClient, url: str,
                     form: dict[str, str]) -> tuple[int, bytes, bool]:
        response = await client.send(client.build_request("POST", url, data=form), stream=True)
        try:
            body, truncated = await read_bounded(response, TOKEN_ANSWER_LIMIT)
        finally:
            await response.aclose()
        return response.status_code, body, truncated


def _read_token_answer(body: bytes, url: str) -> tuple[str, float]:
    """The token and its lifetime in seconds from a token answer; AuthFailure if unusable.

    The answer is the target's word, so anything goes: not JSON, nested too deep to read,
    numbers too long to convert, a token a header cannot carry. Each is a one-line failure.
    """
    try:
        payload = json.loads(body)
    except RecursionError:
        raise AuthFailure(f"token URL {url} answered JSON nested too deeply to read") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise AuthFailure(f"token URL {url} did not answer JSON with an access_token") from None
    except ValueError:  # e.g. a number over Python's digit limit
        raise AuthFailure(f"token URL {url} answered JSON that cannot be read (a number "
                          "too long?)") from None
    if not isinstance(payload, dict):
        raise AuthFailure(f"token URL {url} did not answer JSON with an access_token")
    token = payload.get("access_token") or payload.get("token")
    if not isinstance(token, str) or not token:
        raise AuthFailure(f"token URL {url} answered no access_token")
    # A bearer token goes into a header: visible ASCII only. Never echoed (it is a secret).
    if not re.fullmatch(r"[\x21-\x7e]+", token):
        raise AuthFailure(f"token URL {url} answered an access_token with characters a "
                          "header cannot carry")
    raw = payload.get("expires_in", 3600)
    try:
        lifetime = float(raw) if not isinstance(raw, bool) else math.nan
    except (ValueError, TypeError, OverflowError):
        lifetime = math.nan
    if not (math.isfinite(lifetime) and lifetime >= 0):
        shown = type(raw).__name__ if not isinstance(raw, str | int | float) \
            else repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:40] + "..."
        raise AuthFailure(f"token URL {url} answered expires_in {shown}, not seconds")
    return token, lifetime


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


REFUSED = "connection refused: nothing is listening"


def default_port(url: httpx.URL) -> int:
    """The port a URL connects to: its own, else the scheme's (443 for https, 80 for http)."""
    return url.port or (443 if url.scheme == "https" else 80)


def nothing_listening(url: str) -> WasimError:
    """The one error for a target where every connection was refused (exit 3)."""
    parsed = httpx.URL(url)
    return WasimError(f"Nothing is listening on {parsed.host}:{default_port(parsed)}.",
                      hint="Is your webhook running? `wasim receive` starts a test one.",
                      exit_code=ExitCode.UNREACHABLE)


def _describe_transport_error(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        return REFUSED
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
        self._app_transport: _LifespanASGITransport | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The httpx client, made on first use."""
        if self._client is None:
            options = self.options
            transport = _transport_for(options.target, options.timeout, options.allow_remote,
                                       options.resolver)
            self._client = _client_for(options.target, options.timeout, transport)
            if isinstance(transport, _LifespanASGITransport):
                self._app_transport = transport
        return self._client

    async def aclose(self) -> None:
        """Close the client if this deliverer made it."""
        if self._client is not None and self._own_client:
            await self._client.aclose()
            self._client = None
            self._app_transport = None

    async def __aenter__(self) -> Deliverer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _new_delivery_id(self, event: Event) -> str:
        self._deliveries += 1
        stamp = hashlib.blake2b(f"{event.id}{self.clock()}{self._deliveries}".encode(),
                                digest_size=4).hexdigest()
        return f"dlv_{stamp}"

    async def deliver(self, event: Event, replay_of: str | None = None, *,
                      duplicate_of: str | None = None,
                      edit_of: str | None = None) -> DeliveryResult:
        """Send `event`, retrying per the policy; every attempt is reported as it ends.

        `replay_of`, `duplicate_of` and `edit_of` name the delivery this one comes from.
        """
        if self.options.envelope == "meta":
            wrapped = wrap(event.body)
            if wrapped != event.body:
                event = Event.from_body(wrapped, event.seed)
        delivery_id = self._new_delivery_id(event)
        attempts: list[Attempt] = []
        delays = self.options.retry.delays
        refreshed = False
        number = 0
        while True:
            number += 1
            attempt = self._scrubbed(await self._attempt(event, delivery_id, number, replay_of))
            if duplicate_of or edit_of:
                attempt = replace(attempt, duplicate_of=duplicate_of, edit_of=edit_of)
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
        if options.app_secret:
            found.append(options.app_secret)
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
        headers = callback_headers(options, body=event.body)
        base = Attempt(event=event, delivery_id=delivery_id, number=number,
                       started_at=self.clock(), target=options.target.label,
                       method=options.method, url=options.target.url,
                       request_headers=(), replay_of=replay_of)
        client = self.client
        if self._app_transport is not None:
            # The app's startup has its own bound, outside the attempt's: a hung startup is
            # the app's error (one line, exit 2), not a timeout each retry would repeat.
            await self._app_transport.start_lifespan()
        started = time.perf_counter()
        if self.tokens is not None:
            try:
                token = await self.tokens.get(client, options.timeout)
            except AuthFailure as exc:
                return replace(base, request_headers=redact_headers(headers), error=str(exc),
                               error_kind="auth",
                               latency_ms=(time.perf_counter() - started) * 1000)
            headers = callback_headers(options, token, event.body)
        request = client.build_request(options.method, options.target.url,
                                            headers=headers, content=event.body)
        recorded = redact_headers(request.headers)
        started = time.perf_counter()
        try:
            # One deadline for the whole exchange, the body included: a slow or endless
            # answer ends at --timeout, and no more than the history keeps is ever held.
            response, content, truncated = await asyncio.wait_for(self._send(request),
                                                                  options.timeout)
        except (TimeoutError, httpx.TimeoutException):
            return replace(base, request_headers=recorded, error_kind="timeout",
                           error=f"no answer within {options.timeout:g} s (the timeout)",
                           latency_ms=(time.perf_counter() - started) * 1000)
        except httpx.ConnectError:
            return replace(base, request_headers=recorded, error_kind="connect",
                           error=REFUSED,
                           latency_ms=(time.perf_counter() - started) * 1000)
        except httpx.TransportError as exc:
            return replace(base, request_headers=recorded, error_kind="protocol",
                           error=f"{type(exc).__name__}: {exc}",
                           latency_ms=(time.perf_counter() - started) * 1000)
        latency = (time.perf_counter() - started) * 1000
        attempt = replace(
            base,
            request_headers=recorded,
            status=response.status_code,
            response_headers=tuple(response.headers.multi_items()),
            response_body=content.decode("utf-8", "replace"),
            response_truncated=truncated,
            latency_ms=latency,
            delivered=options.is_success(response.status_code),
        )
        failure = response.extensions.get(_APP_FAILURE)
        if isinstance(failure, _AppFailure):
            attempt = replace(attempt, error=failure.error, app_error=failure.traceback)
            if failure.stage == "during":  # a broken answer, as a client sees a reset
                attempt = replace(attempt, error_kind="protocol", delivered=False)
        return attempt

    async def _send(self, request: httpx.Request) -> tuple[httpx.Response, bytes, bool]:
        """Send and read at most RESPONSE_BODY_LIMIT bytes of the answer, then hang up."""
        response = await self.client.send(request, stream=True)
        try:
            content, truncated = await read_bounded(response, RESPONSE_BODY_LIMIT)
        finally:
            await response.aclose()  # drops the rest of the body with the connection
        return response, content, truncated


def parse_success(text: str) -> tuple[tuple[int, int], ...]:
    """Read `--success` such as `2xx`, `200,202` or `200-299,304` into status ranges."""
    ranges = []
    for part in (p.strip().lower() for p in text.split(",")):
        match = re.fullmatch(r"([1-5])xx|(\d{3})(?:-(\d{3}))?", part)
        if not match:
            raise WasimError(f"cannot read the status {part!r}", field="success",
                             hint="Use codes, ranges or classes: 200,202 or 200-299 or 2xx.")
        if match.group(1):
            low = int(match.group(1)) * 100
            ranges.append((low, low + 99))
            continue
        low, high = int(match.group(2)), int(match.group(3) or match.group(2))
        if not 100 <= low <= high <= 599:
            raise WasimError(f"{part!r} is not a status or a range of statuses from low to "
                             "high", field="success",
                             hint="Statuses are 100-599; write ranges low-high, e.g. 200-299.")
        ranges.append((low, high))
    return tuple(ranges)


def parse_header(text: str) -> tuple[str, str]:
    """Read `--header "Name: value"`."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip() or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+",
                                                       name.strip()):
        # Not echoed: a header given without its colon may be all secret.
        raise WasimError('expected "Name: value" (a header name, a colon, the value)',
                         field="headers", hint='For example --header "X-Brand: acme".')
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
        raise WasimError("expected USER:PASSWORD", field="basic_auth",
                         hint="For example --basic-auth kaleyra:s3cret (or set WASIM_BASIC_AUTH).")
    return user, password


DELIVERY_KEYS = ("url", "app", "path", "method", "headers", "basic_auth", "token_url",
                 "client_id", "client_secret", "timeout", "success", "retries", "backoff",
                 "retry_schedule", "envelope", "app_secret", "signature")


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
    from simulator.settings import default

    def get(key: str, fallback: Any = None) -> Any:
        """The setting, or the table's default (simulator.settings) when it is not given."""
        value = settings.get(key)
        return default(key, fallback) if value is None else value

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
            target = app_target(str(app), str(get("path")))
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
        retries = _number(get("retries"), where("retries"), low=0, high=MAX_RETRIES,
                          integer=True, what="a number of retries")
        backoff = _number(get("backoff"), where("backoff"), low=0, high=MAX_WAIT,
                          what="seconds")
        retry = RetryPolicy.exponential(int(retries), backoff)
    else:
        retry = _at(where("retry_schedule"), parse_retry_schedule, str(schedule))
    app_secret = get("app_secret")
    if app_secret is not None:
        app_secret = check_secret(app_secret, where("app_secret"))
    signature = parse_signature(get("signature", "valid"), where("signature"))
    if signature not in ("valid", "missing") and app_secret is None:
        raise WasimError(f"the {signature} signature case needs the app secret",
                         where=where("signature"),
                         hint="Give --app-secret (or WASIM_APP_SECRET) too.")
    timeout = _number(get("timeout"), where("timeout"), low=0, low_open=True,
                      high=MAX_WAIT, what="seconds")
    method = str(get("method")).upper()
    if method not in ("POST", "PUT", "PATCH"):
        raise WasimError(f"method {method!r} is not POST, PUT or PATCH", where=where("method"))
    raw_headers = get("headers")
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
        # A negative signature case succeeds when the handler refuses it, as Meta's docs ask.
        success=_at(where("success"), parse_success,
                    str(settings.get("success")
                        or ("2xx" if signature == "valid" else "401,403"))),
        retry=retry,
        allow_remote=allow_remote,
        resolver=resolver,
        envelope=parse_envelope(get("envelope", "kaleyra"), where("envelope")),
        app_secret=app_secret,
        signature=signature,
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
                         field="retry_schedule", hint="Give at most 100 waits, e.g. 1,5,30.")
    return RetryPolicy(tuple(parse_number(part, "retry_schedule", low=0, high=MAX_WAIT,
                                          what="seconds") for part in parts))
