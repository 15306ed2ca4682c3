"""Deliver callbacks the way Kaleyra's callback profiles do: to a URL or into an app in-process.

Every attempt comes back as a value (an Attempt), never as an exception: a refused
connection, a timeout, a 500 and a crash inside the app are all data for the history, the
CLI and the TUI. Only bad configuration raises, and it raises before anything is sent.

Still one module (about 1,150 lines): the Deliverer, its token cache and the parsing of the
settings into DeliveryOptions change together. The transports (ASGI/WSGI apps, the network
through the loopback guard) live in simulator.transports and the guard in simulator.loopback;
the next to move down are the records (Event, Attempt, DeliveryResult) to simulator.records.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib
import json
import math
import re
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import httpx

from simulator import __version__
from simulator.errors import ExitCode, WasimError, did_you_mean, named
from simulator.inputs import MAX_RETRIES, MAX_WAIT, parse_number
from simulator.loopback import REMOTE_HINT as _REMOTE_HINT
from simulator.loopback import SCOPE_HINT as _SCOPE_HINT
from simulator.loopback import Resolver as Resolver  # re-exported: the guard moved below
from simulator.loopback import checked_address as checked_address
from simulator.loopback import host_key as host_key
from simulator.loopback import is_loopback as is_loopback
from simulator.loopback import is_loopback_address as is_loopback_address
from simulator.loopback import permitted
from simulator.loopback import refuse_remote as _refuse_remote
from simulator.loopback import resolve_host as resolve_host
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
from simulator.transports import APP_BASE_URL as APP_BASE_URL  # re-exported: moved below
from simulator.transports import APP_FAILURE as _APP_FAILURE
from simulator.transports import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from simulator.transports import RESPONSE_BODY_LIMIT as RESPONSE_BODY_LIMIT
from simulator.transports import AppFailure as _AppFailure
from simulator.transports import LifespanASGITransport as _LifespanASGITransport
from simulator.transports import RemoteRefused as RemoteRefused
from simulator.transports import Target as Target
from simulator.transports import TargetKind as TargetKind
from simulator.transports import client_for as _client_for
from simulator.transports import hide_userinfo as hide_userinfo
from simulator.transports import is_asgi as is_asgi
from simulator.transports import make_client as make_client
from simulator.transports import read_bounded as read_bounded
from simulator.transports import transport_for as _transport_for

ErrorKind = Literal["connect", "timeout", "protocol", "auth"]
Sleep = Callable[[float], Awaitable[None]]
TOKEN_ANSWER_LIMIT = 64 * 1024  # a token answer is a small JSON object; more is a failure
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
    # every connection is checked again at send time (see transports.LoopbackOnlyTransport).
    allow_remote: bool = False
    # The hosts that permission covers: the ones the person named (delivery_options_from
    # fills it). Any other host must still be this machine. None: every host (for code that
    # builds options itself from the person's own values).
    remote_hosts: frozenset[str] | None = None
    resolver: Resolver | None = field(default=None, compare=False, repr=False)
    envelope: str = "kaleyra"  # or "meta": Meta's webhook envelope (simulator.meta)
    app_secret: str | None = field(default=None, repr=False)  # signs X-Hub-Signature-256
    signature: str = "valid"  # or a negative case: missing, wrong-secret, reserialized...
    # Settings of the table (simulator.settings) with no field above, checked and typed there:
    # a setting added to the table arrives here without editing this class.
    extra: tuple[tuple[str, Any], ...] = ()

    def setting(self, key: str, fallback: Any = None) -> Any:
        """The value of setting `key` that has no field of its own (see `extra`)."""
        return dict(self.extra).get(key, fallback)

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
    # wasim's own share of latency_ms: waiting for a free connection and its event loop
    # running late (LoopLag); not the handler's time, so no latency rule counts it.
    wasim_ms: float = 0.0
    response_bytes: int = 0  # bytes kept of the answer, before any secret was redacted
    duplicate_of: str | None = None  # the delivery whose bytes this one sends again, as a dup
    edit_of: str | None = None  # the delivery whose bytes were edited into this event

    @property
    def answer_ms(self) -> float:
        """The handler's answer time: the latency less wasim's own share of it."""
        return max(0.0, self.latency_ms - self.wasim_ms)

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


# A query parameter whose name ends in one of these words (after a separator or alone):
# token, access_token, hub.verify_token, key, api_key, X-Amz-Signature, sig, client_secret...
_SECRET_PARAM = re.compile(r"(?i)(?:^|[_.\-])(?:token|key|apikey|secret|signature|sig|password|"
                           r"passwd|pwd|pass|auth|credentials?|session|jwt)$")
_URL_IN_TEXT = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s'\"<>]*")
_QUERY_PAIR = re.compile(r"([?&;])([^=&#;\s]*)=([^&#;\s]*)")


def hide_url_secrets(text: str) -> str:
    """`text` with every URL's `user:password@` removed and the values of query parameters
    named like credentials (`?token=`, `&api_key=`, `&sig=`...) redacted, for records."""
    from urllib.parse import unquote

    def pair(match: re.Match[str]) -> str:
        if _SECRET_PARAM.search(unquote(match.group(2))):
            return f"{match.group(1)}{match.group(2)}={REDACTED}"
        return match.group()

    def url(match: re.Match[str]) -> str:
        head, mark, rest = match.group().partition("?")
        return head + _QUERY_PAIR.sub(pair, mark + rest) if mark else head

    return _URL_IN_TEXT.sub(url, hide_userinfo(text))


def url_target(url: str, allow_remote: bool = False, *,
               resolver: Resolver | None = None, hosts: frozenset[str] | None = None) -> Target:
    """A network target, refusing anything but this machine unless `allow_remote`.

    The host is resolved (with `resolver`) and every address must be loopback; a name that
    does not resolve is a bad input (exit 2), found before anything is sent. Credentials in
    the URL (`user:password@`) are moved out of it, into Target.userinfo, and never shown.
    `hosts` narrows `allow_remote` to those hosts (host_key), e.g. for a URL a file names.
    """
    shown = hide_userinfo(url)
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        reason = hide_userinfo(str(exc)) if "@" not in url else "cannot parse it"
        raise WasimError(f"invalid URL {shown!r}: {reason}", field="url",
                         hint="For example http://127.0.0.1:8000/webhook.") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise WasimError(f"invalid URL {shown!r}: expected http:// or https:// and a host",
                         field="url", hint="For example http://127.0.0.1:8000/webhook.")
    if not permitted(parsed.host, allow_remote, hosts):
        try:
            addresses = resolve_host(parsed.host, parsed.port, resolver)
        except WasimError as exc:
            exc.where, exc.field = None, "url"
            raise
        refusal = _refuse_remote(parsed.host, addresses)
        if refusal:
            if allow_remote:
                raise WasimError(refusal.replace("which is not this machine", "which is not "
                                                 "this machine nor a host you named"),
                                 field="url", hint=_SCOPE_HINT)
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
                         hint="For example main:app (asgi: or wsgi: in front to say which).")
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


def nothing_listening(url: str, error: str | None = None) -> WasimError:
    """The one error for a target where every connection was refused (exit 3), or where the
    guard refused the address a name resolved to as the request left (`error`, exit 2)."""
    if error is not None and error.startswith(_REFUSAL):
        return WasimError(f"{error} (its name was resolved again as the request left)",
                          hint=_REMOTE_HINT)
    parsed = httpx.URL(url)
    return WasimError(f"Nothing is listening on {parsed.host}:{default_port(parsed)}.",
                      hint="Is your webhook running? `wasim receive` starts a test one.",
                      exit_code=ExitCode.UNREACHABLE)


_REFUSAL = "refusing to send callbacks to"
# What broke, in words, when the library's exception says nothing (a reset says "").
_BROKE = {
    httpx.ReadError: "the connection broke while the answer was read (reset or closed by "
                     "the target)",
    httpx.WriteError: "the connection broke while the request was sent (reset or closed by "
                      "the target)",
    httpx.RemoteProtocolError: "the target closed the connection or answered something that "
                               "is not HTTP",
    httpx.LocalProtocolError: "the request could not be sent as HTTP",
    httpx.ProxyError: "the proxy failed",
    httpx.UnsupportedProtocol: "the URL's scheme is not http or https",
}


def describe_transport_error(exc: BaseException) -> str:
    """`ReadError: the connection broke ... (ConnectionResetError: ...)`: the class and a
    reason a person can act on, never the class alone."""
    name = type(exc).__name__
    said = " ".join(str(exc).split())
    underneath, cause, depth = "", exc.__cause__ or exc.__context__, 0
    while cause is not None and depth < 5:  # httpcore's own ReadError says nothing either
        text = " ".join(str(cause).split())
        if text:
            underneath = f"{type(cause).__name__}: {text}"
            break
        cause, depth = cause.__cause__ or cause.__context__, depth + 1
    reason = said or next((text for kind, text in _BROKE.items() if isinstance(exc, kind)),
                          "the exchange failed")
    if underneath and underneath not in reason:
        reason += f" ({underneath})"
    return f"{name}: {reason}"


def _describe_transport_error(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, RemoteRefused):
        return str(exc)
    if isinstance(exc, httpx.ConnectError):
        return REFUSED
    return describe_transport_error(exc)


LOOP_PERIOD = 0.005  # how often LoopLag samples the event loop: its resolution, in seconds
LOOP_HICCUP = 0.001  # a timer this late means the loop was held up, not just scheduling


class LoopLag:
    """How late this event loop runs a timer: wasim's own lag, sampled every `period` s, so
    a handler's answer time can be told apart from the time wasim took to read it (as
    `wasim load` reports its loop lag apart). `timer` and `sleep` are injectable."""

    def __init__(self, *, timer: Callable[[], float] = time.perf_counter,
                 sleep: Sleep = asyncio.sleep, period: float = LOOP_PERIOD,
                 keep: int = 4096) -> None:
        self.timer = timer
        self.sleep = sleep
        self.period = period
        self._samples: deque[tuple[float, float]] = deque(maxlen=keep)  # (woke, seconds late)
        self._due: float | None = None
        self._task: asyncio.Future[None] | None = None

    def start(self) -> LoopLag:
        """Sample on the running loop until stop(); returns self."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        return self

    def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            self._due = self.timer() + self.period
            await self.sleep(self.period)
            now = self.timer()
            self._samples.append((now, max(0.0, now - self._due)))

    def during(self, start: float, end: float) -> float:
        """Seconds the loop ran late between two timer readings, at most: the latest any
        sample woke then (or the sample overdue at `end`), plus one period when the loop was
        held up (a hold-up that began just after a sample is seen one period short)."""
        worst = 0.0
        for woke, late in reversed(self._samples):
            if woke < start:
                break
            worst = max(worst, late)
        if self._due is not None and self._task is not None:
            worst = max(worst, end - self._due)
        return worst + self.period if worst > LOOP_HICCUP else worst


class Deliverer:
    """Sends events to one target with one set of options, recording every attempt.

    `timer` times each exchange; `lag` gives wasim's own event-loop lag between two timer
    readings (LoopLag.during), kept apart from the handler's answer time (Attempt.wasim_ms).
    `on_send` is called with the body as each delivery's first request leaves (a face that
    times the app's reply from the tap, as the TUI's run panel does).
    """

    def __init__(
        self,
        options: DeliveryOptions,
        *,
        on_attempt: Callable[[Attempt], None] | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        client: httpx.AsyncClient | None = None,
        timer: Callable[[], float] = time.perf_counter,
        lag: Callable[[float, float], float] | None = None,
        on_send: Callable[[bytes], None] | None = None,
    ) -> None:
        self.options = options
        self.on_attempt = on_attempt
        self.on_send = on_send
        self.sleep = sleep
        self.clock = clock
        self.timer = timer
        self.lag = lag
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
                                       options.resolver, options.remote_hosts)
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
        error, in the spellings a server is likely to use) replaced by [redacted], before
        anyone shows it. The history keeps no answer body at all after a secret was sent
        (simulator.history.to_record): no list of spellings is complete."""
        secrets = self._secrets()
        if not secrets:
            return attempt
        spellings = sorted({v for s in secrets for v in _spellings(s)}, key=len, reverse=True)
        pattern = re.compile("|".join(map(re.escape, spellings)), re.IGNORECASE)

        def scrub(text: str) -> str:
            return pattern.sub(REDACTED, text)

        body = scrub(attempt.response_body)
        if attempt.response_truncated:  # cut at the limit: a secret's start may end the body
            body = _without_cut_secret(body, spellings)
        return replace(
            attempt, response_body=body,
            response_headers=tuple((n, scrub(v)) for n, v in attempt.response_headers),
            error=scrub(attempt.error) if attempt.error is not None else None,
            app_error=scrub(attempt.app_error) if attempt.app_error is not None else None)

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
        started = self.timer()
        if self.tokens is not None:
            try:
                token = await self.tokens.get(client, options.timeout)
            except AuthFailure as exc:
                return replace(base, request_headers=redact_headers(headers), error=str(exc),
                               error_kind="auth",
                               latency_ms=(self.timer() - started) * 1000)
            headers = callback_headers(options, token, event.body)
        sent_at: list[float] = []

        async def trace(name: str, info: Mapping[str, Any]) -> None:
            # The request leaves once a connection is free: the wait before is wasim's.
            if name.endswith("send_request_headers.started") and not sent_at:
                sent_at.append(self.timer())

        if options.method in ("GET", "HEAD"):
            # A GET carries no body (a V1 status is its URL's query): no JSON content type
            # either, which a JSON body parser (Express's bodyParser.json()) would refuse.
            headers.pop("Content-Type", None)
        request = client.build_request(options.method, options.target.url,
                                            headers=headers,
                                            content=None if options.method in ("GET", "HEAD")
                                            else event.body, extensions={"trace": trace})
        recorded = redact_headers(request.headers)
        if self.on_send is not None and number == 1:
            # Once a delivery, after the app's startup and any token fetch: a retry is the
            # same tap, and a reply the app sends while answering comes after this.
            self.on_send(event.body)
        started = self.timer()
        try:
            # One deadline for the whole exchange, the body included: a slow or endless
            # answer ends at --timeout, and no more than the history keeps is ever held.
            response, content, truncated = await asyncio.wait_for(self._send(request),
                                                                  options.timeout)
        except (TimeoutError, httpx.TimeoutException):
            return replace(base, request_headers=recorded, error_kind="timeout",
                           error=f"no answer within {options.timeout:g} s (the timeout)",
                           latency_ms=(self.timer() - started) * 1000)
        except httpx.ConnectError as exc:
            # The guard's refusal (a name that moved off this machine) says so, in its words.
            return replace(base, request_headers=recorded, error_kind="connect",
                           error=str(exc) if isinstance(exc, RemoteRefused) else REFUSED,
                           latency_ms=(self.timer() - started) * 1000)
        except httpx.TransportError as exc:
            return replace(base, request_headers=recorded, error_kind="protocol",
                           error=describe_transport_error(exc),
                           latency_ms=(self.timer() - started) * 1000)
        ended = self.timer()
        latency = (ended - started) * 1000
        begun = sent_at[0] if sent_at else started
        # An in-process app runs on wasim's own loop: its hold-ups are the app's, so only a
        # network target's answer is told apart from the loop's lag.
        lag = self.lag(begun, ended) if self.lag is not None and \
            self._app_transport is None else 0.0
        wasim_ms = min(latency, (begun - started + lag) * 1000)
        attempt = replace(
            base,
            request_headers=recorded,
            status=response.status_code,
            response_headers=tuple(response.headers.multi_items()),
            response_body=content.decode("utf-8", "replace"),
            response_truncated=truncated,
            response_bytes=len(content),
            latency_ms=latency,
            wasim_ms=wasim_ms,
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


def _spellings(secret: str) -> set[str]:
    """How a server is likely to echo `secret`: as is, JSON-escaped, percent-encoded,
    HTML-escaped or base64 (any case: the match ignores it)."""
    import html
    from urllib.parse import quote, quote_plus

    raw = secret.encode("utf-8", "surrogatepass")
    found = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
             quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret),
             html.escape(secret)}
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        found |= {text, text.rstrip("=")}
    return {s for s in found if s}


def _without_cut_secret(body: str, spellings: Sequence[str]) -> str:
    """`body` less a tail that is the start of a spelling of a secret (3 characters or more)."""
    folded = body.casefold()
    cut = 0
    for spelling in spellings:
        cut = max(cut, _overlap(folded[-(len(spelling) - 1):] if len(spelling) > 1 else "",
                                spelling.casefold()))
    return body[:-cut] + REDACTED if cut >= 3 else body


def _overlap(tail: str, prefix_of: str) -> int:
    """The length of the longest end of `tail` that starts `prefix_of` (linear: KMP)."""
    text = prefix_of + "\0" + tail
    border = [0] * len(text)
    for i in range(1, len(text)):
        k = border[i - 1]
        while k and text[i] != text[k]:
            k = border[k - 1]
        border[i] = k + (text[i] == text[k])
    return border[-1] if tail else 0


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
                         field="headers", hint='For example "X-Brand: acme".')
    return name.strip(), value.strip()


def check_header(name: str, value: str, where: str | None) -> tuple[str, str]:
    """A header that can go on the wire as given; errors name it but never show its value
    (at `where`, or at the field `headers` for the face to place)."""
    if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
        raise WasimError(f"{repr(name)[:60]} is not a header name", where=where,
                         field="headers", hint="Header names are letters, digits and -.")
    if not _HEADER_VALUE.fullmatch(value):
        raise WasimError(f"the value of the header {name} has control characters or non-ASCII "
                         "text, which cannot be sent in a header", where=where,
                         field="headers")
    return name, value


def basic_auth_header(user: str, password: str) -> str:
    """The Authorization value for HTTP Basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def parse_basic_auth(text: str) -> tuple[str, str]:
    """Read `--basic-auth USER:PASSWORD` (the password is never echoed back)."""
    user, sep, password = text.partition(":")
    if not sep or not user:
        raise WasimError("expected USER:PASSWORD", field="basic_auth",
                         hint="For example kaleyra:s3cret.")
    return user, password


DELIVERY_KEYS = ("url", "app", "path", "method", "headers", "basic_auth", "token_url",
                 "client_id", "client_secret", "timeout", "success", "retries", "backoff",
                 "retry_schedule", "envelope", "app_secret", "signature")


def delivery_options_from(settings: Mapping[str, Any], where: Callable[[str], str], *,
                          target: Target | None = None, allow_remote: bool = False,
                          resolver: Resolver | None = None,
                          person: Collection[str] | None = None) -> DeliveryOptions:
    """DeliveryOptions from flat settings (flags or a scenario's `target:`), checking each.

    `where(key)` names the place a setting came from, for errors: a flag or `file:line`.
    Missing keys take their defaults; `target` stands in when neither url nor app is set.
    `allow_remote` is the person's permission (the flag, the API argument), passed apart
    from the settings because files fill those: a file can never lift the remote guard.
    Hosts (webhook and token URL) are resolved with `resolver`; every address must be
    loopback unless `allow_remote`, and even then unless the person named the host:
    `person` are the keys of `settings` the person gave (flags, the environment, the API;
    None: all of them), and `target` is theirs too. So a file can name only this machine or
    the person's own hosts, and credentials the person gave go nowhere else.
    """
    from simulator.settings import check_settings, default, table

    def get(key: str, fallback: Any = None) -> Any:
        """The setting, or the table's default (simulator.settings) when it is not given."""
        value = settings.get(key)
        return default(key, fallback) if value is None else value

    if settings.get("allow_remote") is not None:
        # Only a caller's mistake gets here (files are refused at load time), never honoured.
        raise WasimError("allow_remote is not a delivery setting", where=where("allow_remote"),
                         hint=f"Only the person running wasim allows remote targets: "
                              f"{named('allow_remote')}.")
    # Every value's type and bounds, from the table (simulator.settings), before any use.
    settings = check_settings(settings, where)
    url, app = get("url"), get("app")
    if url and app:
        raise WasimError("give a url or an app, not both", where=where("app"))
    hosts = _named_hosts(settings, person, target)
    try:
        if url:
            target = url_target(str(url), allow_remote, resolver=resolver, hosts=hosts)
        elif app:
            target = app_target(str(app), str(get("path")))
    except WasimError as exc:
        exc.where = where("url" if url else "app")
        raise
    if target is None:
        raise WasimError("no target", where=where("url"),
                         hint=f"Say where to send: {named('url')} http://127.0.0.1:8000/webhook, "
                              f"or {named('app')} main:app; `wasim receive` starts a test "
                              "webhook.")
    token_url = get("token_url")
    if token_url and not get("client_id"):
        raise WasimError("a token URL needs a client id (and secret)", where=where("client_id"))
    if token_url and get("basic_auth"):
        raise WasimError("choose Basic auth or a token URL, not both", where=where("basic_auth"))
    if token_url and not str(token_url).startswith("/"):
        try:
            checked = url_target(str(token_url), allow_remote, resolver=resolver, hosts=hosts)
        except WasimError as exc:
            exc.where = where("token_url")
            raise
        if checked.userinfo:
            raise WasimError("the token URL carries credentials (user:password@)",
                             where=where("token_url"),
                             hint=f"Give them as {named('client_id')} and "
                                  f"{named('client_secret')} instead.")
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
        retry = RetryPolicy.exponential(int(get("retries")), float(get("backoff")))
    else:
        retry = _at(where("retry_schedule"), parse_retry_schedule, str(schedule))
    if allow_remote:
        mine = set(settings) if person is None else set(person)
        # Credentials the person gave go only where the person sent them: a file may name
        # one of their hosts, but on a shared host (webhook.site, a PaaS domain) another
        # path can be someone else's.
        _given_for(url if "url" not in mine else None, _WEBHOOK_CREDENTIALS, settings, mine,
                   where, "url", hosts, resolver)
        _given_for(token_url if "token_url" not in mine else None, _TOKEN_CREDENTIALS,
                   settings, mine, where, "token_url", hosts, resolver)
    app_secret = get("app_secret")
    if app_secret is not None:
        app_secret = check_secret(app_secret, where("app_secret"))
    signature = parse_signature(get("signature", "valid"), where("signature"))
    if signature not in ("valid", "missing") and app_secret is None:
        raise WasimError(f"the {signature} signature case needs the app secret",
                         where=where("signature"),
                         hint=f"Give {named('app_secret')} too.")
    timeout = get("timeout")
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
        remote_hosts=hosts,
        resolver=resolver,
        envelope=parse_envelope(get("envelope", "kaleyra"), where("envelope")),
        app_secret=app_secret,
        signature=signature,
        # The table's settings this function has no field for (a setting added to the table):
        # checked above, with their defaults, for the code that reads them.
        extra=tuple((key, get(key)) for key in table() if key not in DELIVERY_KEYS
                    and get(key) is not None),
    )


# The webhook gets Basic auth, the headers, a signature under the app secret, and the bearer
# token the client secret bought.
_WEBHOOK_CREDENTIALS = ("basic_auth", "headers", "app_secret", "client_secret")
_TOKEN_CREDENTIALS = ("client_id", "client_secret")


def _given_for(url: Any, credentials: Sequence[str], settings: Mapping[str, Any],
               mine: set[str], where: Callable[[str], str], key: str,
               hosts: frozenset[str], resolver: Resolver | None) -> None:
    """Refuse when `url` came from a file, is not this machine, and would receive a
    credential the person gave (flags, the environment, the API)."""
    if not url or str(url).startswith("/"):
        return
    given = [name for name in credentials if name in mine and settings.get(name)
             and (name != "headers" or any(_is_secret_header(h) for h in settings[name]))]
    host = httpx.URL(str(url)).host
    # A host outside `hosts` was found to be this machine already (url_target).
    if not given or host_key(host) not in hosts or is_loopback(host, resolver):
        return
    raise WasimError(f"{named(given[0])} (yours) would go to {_shown(str(url))}, which a "
                     "file names", where=where(key),
                     hint=f"Credentials you give go only to a URL you give: add {named(key)} "
                          "yourself if you mean that host.")


def _is_secret_header(header: Any) -> bool:
    """Whether a header setting (a "Name: value" text or a pair) is not a harmless one."""
    name = header[0] if isinstance(header, tuple | list) else str(header).partition(":")[0]
    return str(name).strip().lower() not in SAFE_HEADERS


def _named_hosts(settings: Mapping[str, Any], person: Collection[str] | None,
                 target: Target | None) -> frozenset[str]:
    """The hosts the person named (their url and token_url, their own target): what
    --allow-remote covers."""
    keys = set(settings) if person is None else set(person)
    urls = [str(settings[key]) for key in ("url", "token_url")
            if key in keys and settings.get(key) and not str(settings[key]).startswith("/")]
    if target is not None and target.kind == "url":
        urls.append(target.url)
    named_ = set()
    for url in urls:
        try:
            named_.add(host_key(httpx.URL(url).host))
        except (httpx.InvalidURL, TypeError, ValueError):
            continue  # url_target says what is wrong with it
    named_.discard("")
    return frozenset(named_)


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
