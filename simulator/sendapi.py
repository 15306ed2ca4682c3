"""A local Kaleyra WhatsApp send API (V1 and V2): records what an app sends, answers as Kaleyra.

A real HTTP server on this machine. It accepts every request shape real clients send
(send-api.md section 4), validates each message, records it with its ids (a Kaleyra UUID and
the wamid of the brand's message) and answers in one canonical shape per version. Status
callbacks (sent, delivered, read; failed or not-sent on demand) follow every send, through
the same delivery machinery as every other callback, so the loopback guard holds.

One module (about 1,750 lines): the mock, its V1/V2 parsers and its HTTP handler share the
SentMessage record and the error shapes Kaleyra answers with; the parsers (V1 multipart, V2
JSON) are the next to split off into a module of their own, then the status callbacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import email.parser
import email.policy
import hashlib
import hmac
import itertools
import json
import math
import random
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.message import Message
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from simulator.aioserver import Answer, AsyncServer, Head, header
from simulator.delivery import (
    Deliverer,
    DeliveryOptions,
    DeliveryResult,
    Event,
    url_target,
)
from simulator.errors import WasimError, named
from simulator.inputs import is_ascii_digits
from simulator.kinds.base import Facts, KindArgs
from simulator.kinds.status import DEFAULT_ERROR, error_object
from simulator.kinds.status import build as build_status
from simulator.models import Business, Button, Tap, TemplateMessage, User
from simulator.providers import draw_uuid4
from simulator.taps import TapFactory
from simulator.terminal import visible
from simulator.throughput import RATE_LIMITED, ThroughputLimiter
from simulator.wamid import encode_wamid
from simulator.wire import to_wire
from simulator.world import (
    DEFAULT_STATUS_DELAYS,
    World,
    business_ids,
    real_wait,
    status_offsets,
)

if TYPE_CHECKING:
    import httpx  # the client seam's type only: httpx is imported by the delivery code

if TYPE_CHECKING:
    from simulator.status_sender import StatusSender

SERVICE = "wasim send api"
# Made-up but well-formed (send-api.md 1.2 and 2.1): a SID as Kaleyra shapes them, and a key
# of `A` + 32 hex characters. Printed at start, so nobody has to guess them.
DEFAULT_SID = "HXIN2026000001IN"
DEFAULT_API_KEY = "A0f1e2d3c4b5a69788796a5b4c3d2e1f0"
DEFAULT_PORT = 8700
MAX_BODY = 16 * 1024 * 1024  # a media upload can be several MB; more is refused (413) unread
MAX_KEPT = 10_000  # sent messages and status deliveries kept in memory, the oldest dropped
KEEP_BYTES = 64 * 1024 * 1024  # request bytes the kept messages may hold together
MAX_PENDING = 10_000  # messages whose statuses are still to be sent; past this, none are
MAX_CONNECTIONS = 128  # open connections at once
# Status callbacks on their way at once. A burst of sends used to start every status at
# once: thousands of requests queued on httpx's pool of 100 connections, which then timed
# out by the thousand and delivered none (benchmarks/sendapi.py). Past this they wait here.
STATUS_SENDERS = 16
# Statuses due now but not yet on their way, past which a send's answer waits (at most
# STATUS_HOLD seconds) for them: new sends would otherwise take the loop from the statuses,
# which then fell minutes behind a burst (benchmarks/sendapi.py).
STATUS_BACKLOG = 500
STATUS_HOLD = 0.05
MAX_RECIPIENTS = 100  # comma-separated `to` numbers in one V1 request
MAX_PAYLOADS = 3  # "a maximum of three dynamic payloads to the Quick Reply buttons" (DOC)
_IDLE_TIMEOUT = 30.0
_REQUEST_DEADLINE = 60.0  # a request's head and body must have arrived within this
# Bodies all connections may hold at once (see BoundedServer.max_buffered); past it, a 503.
MAX_BUFFERED = 4 * MAX_BODY
MAX_DELAY = 24 * 3600.0

Version = Literal["v1", "v2"]
Recipient = Literal["number", "bsuid"]
# Whom a send may go to (wire-format.md section 10): an E.164 number, `+` optional, or a
# business-scoped user id, `CC.` + up to 128 letters and digits (`CC.ENT.` for a parent).
# pywa 4.5 replies to the BSUID when a callback carries one; a username-only user has no
# number at all, so an app can only answer them there.
_NUMBER = re.compile(r"\+?([0-9]{8,15})")
_BSUID = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")
Fault = Literal["WA500", "E110", "429"]
Outcome = Literal["read", "failed", "not-sent"]
FAULTS: dict[str, tuple[int, str, str]] = {
    "WA500": (500, "WA500", "Please try again later."),
    "E110": (400, "E110", "Please check your balance, You have a low balance!"),
    "429": (429, "429", "Too Many Requests"),
}
OUTCOMES = ("read", "failed", "not-sent")
# Meta's error for a message it could not deliver (wire-format.md section 6: failed statuses
# carry Meta's errors[]); 131026 "Message undeliverable" is the commonest. The catalogue's
# own object, as `render --kind status` sends it: nothing on the wire says "simulated".
FAILED_ERROR = error_object(DEFAULT_ERROR)
# Meta's error for a template the account does not have: Kaleyra accepts the send (202) and
# forwards Meta's failure in a FAILED status (send-api.md 5.5).
TEMPLATE_MISSING = 132001
_V1_TYPES = ("text", "template", "mediatemplate", "authenticationtemplate", "media", "location",
             "interactive", "button", "list", "order_details")
_V2_MEDIA = ("image", "video", "audio", "document", "sticker")
_V2_TYPES = ("text", "template", "interactive", "reaction", "location", "contacts", *_V2_MEDIA)


@dataclass(frozen=True)
class FailRule:
    """`--fail NUMBER=CODE` or `--fail 5%=CODE`: messages to that recipient (or to a seeded
    share of recipients, the same ones every run) fail with Meta's error CODE. Kaleyra accepts
    the send (202) and a FAILED status carries the error (send-api.md 5.5)."""

    code: int
    recipient: str = ""
    """Digits (no `+`) or a BSUID; empty for a share."""
    share: float = 0.0
    """0 to 1, for a rule without a recipient."""

    def applies(self, to: str, seed: int | str | None, index: int) -> bool:
        """Whether a message to `to` fails by this rule (the `index`th, under `seed`)."""
        if self.recipient:
            return to == self.recipient
        digest = hashlib.sha256(f"{seed or 0}:{index}:{to}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self.share


def parse_fail(text: str, where: str = "--fail") -> FailRule:
    """`NUMBER=CODE` (E.164, `+` optional, or a BSUID) or `SHARE%=CODE` (0-100), CODE one of
    Meta's error codes wasim knows (131026, 131047, 132001...)."""
    from simulator.kinds.status import ERRORS

    target, sep, code_text = text.strip().partition("=")
    known = ", ".join(str(c) for c in ERRORS)
    example = "for example --fail 919876543210=131026 or --fail 5%=131047"
    if not sep or not target.strip() or not code_text.strip():
        raise WasimError(f"{_one_line(text[:60])!r} is not NUMBER=CODE or SHARE%=CODE",
                         where=where, hint=f"Write the recipient or a share, then the error: "
                                           f"{example}.")
    code_text = code_text.strip()
    if not is_ascii_digits(code_text) or int(code_text) not in ERRORS:
        raise WasimError(f"error code {_one_line(code_text[:20])!r} is not one wasim knows",
                         where=where, hint=f"Use one of {known}.")
    code = int(code_text)
    target = target.strip()
    if target.endswith("%"):
        try:
            share = float(target[:-1])
        except ValueError:
            share = math.nan
        if not 0 <= share <= 100:  # NaN fails too
            raise WasimError(f"share {_one_line(target[:20])!r} is not 0% to 100%", where=where,
                             hint=example[0].upper() + example[1:] + ".")
        return FailRule(code, share=share / 100)
    try:
        recipient, _ = parse_recipient(target, where)
    except ApiError:
        raise WasimError(f"{_one_line(target[:40])!r} is neither a number nor a BSUID",
                         where=where, hint="Give E.164 digits (+ optional), a BSUID such as "
                                           f"IN.1410018717833190, or a share: {example}.") from None
    return FailRule(code, recipient=recipient)


def parse_templates(text: str, where: str = "--templates") -> tuple[str, ...]:
    """`--templates NAME,NAME`: the template names the account has (others fail, 132001)."""
    names = tuple(n.strip() for n in text.split(","))
    bad = next((n for n in names if not re.fullmatch(r"[A-Za-z0-9_]{1,512}", n)), None)
    if bad is not None:
        raise WasimError(f"{_one_line(bad[:40])!r} is not a template name", where=where,
                         hint="Give names of letters, digits and _, comma-separated: "
                              f"{named('templates')} order_update,catalogue.")
    return names


@dataclass(frozen=True)
class ApiOptions:
    """How the mock listens, whom it accepts, and how statuses follow a send."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    """0 binds any free port."""
    sid: str = DEFAULT_SID
    api_key: str = DEFAULT_API_KEY
    business_numbers: tuple[str, ...] = ()
    """Digits; empty accepts any sender number."""
    v1_status: int = 202
    """202 as clients of /v1 check for; 200 is documented too."""
    statuses: tuple[str, ...] = ("sent", "delivered", "read")
    """The statuses that follow a send, in order (failed/not-sent come from `outcome`)."""
    status_delays: tuple[float, ...] = DEFAULT_STATUS_DELAYS
    """Seconds of world time before each status, from the previous one (the last repeats):
    the statuses' timestamps are this far apart whatever `speed` is."""
    speed: float = math.inf
    """How many times faster than world time statuses really go out (1: real seconds;
    inf, the library default: at once, in order, stamped seconds apart)."""
    phone_number_id: str | None = None
    """The business's phone_number_id in statuses (frameworks filter on it); None: derived
    from the sender number."""
    waba_id: str | None = None
    """The WABA id in statuses; None: derived from the sender number."""
    keep: int = MAX_KEPT
    max_body: int = MAX_BODY
    keep_bytes: int = KEEP_BYTES
    templates: tuple[str, ...] | None = None
    """The template names the account has (a scenario's); None accepts any name."""
    fail: tuple[FailRule, ...] = ()
    """Failure rules: the first that applies to a message's recipient sets its error."""
    v1_id: Literal["bare", "suffixed"] = "bare"
    """The V1 answer's top-level `id`: the bare UUID (Kaleyra's SMS sample) or `<uuid>:0`,
    what V1 statuses carry (courier keys statuses on it; send-api.md 5.1 and 8.1)."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise WasimError(f"port {self.port} is not a TCP port", field="port",
                             hint="Give a port from 1 to 65535, or 0 for any free port.")
        if not self.sid or not self.sid.isalnum():
            raise WasimError(f"SID {self.sid!r} is not letters and digits", field="sid",
                             hint=f"Kaleyra SIDs look like {DEFAULT_SID}.")
        if not self.api_key or not self.api_key.isprintable() or " " in self.api_key:
            raise WasimError("the API key is empty or has spaces or control characters",
                             field="api_key", hint=f"Keys look like {DEFAULT_API_KEY}.")
        for number in self.business_numbers:
            if not is_ascii_digits(number) or not 8 <= len(number) <= 15:
                raise WasimError(f"business number {number!r} is not 8-15 digits",
                                 field="business_number", hint="Give E.164 digits, e.g. "
                                 "919876543210 (a leading + is dropped).")
        if any(not (d >= 0 and math.isfinite(d)) or d > MAX_DELAY for d in self.status_delays):
            raise WasimError("a status delay is not 0 to 86400 seconds", field="status_delay")
        if not self.speed > 0:
            raise WasimError(f"speed {self.speed} is not above 0", field="speed")
        for name in ("phone_number_id", "waba_id"):
            value = getattr(self, name)
            if value is not None and not (is_ascii_digits(value) and 15 <= len(value) <= 16):
                raise WasimError(f"{name} {value!r} is not 15-16 digits", field=name,
                                 hint="Give the id Meta shows for your number, e.g. "
                                      "104605889412733.")
        if (self.phone_number_id or self.waba_id) and len(self.business_numbers) > 1:
            raise WasimError("one phone_number_id for several business numbers",
                             field="phone_number_id",
                             hint=f"Give one {named('business_number')} with "
                                  f"{named('phone_number_id')}, or none (then every sender "
                                  "gets these ids).")
        if self.keep < 1:
            raise WasimError(f"keep {self.keep} would keep nothing", where="keep")
        if self.v1_id not in ("bare", "suffixed"):
            raise WasimError(f"V1 id style {self.v1_id!r} is not bare or suffixed",
                             field="v1_id", hint="Use bare (<uuid>) or suffixed (<uuid>:0).")
        if self.keep_bytes < 0 or self.max_body < 0:
            raise WasimError("keep_bytes and max_body are sizes in bytes, 0 or more",
                             where="keep_bytes")


@dataclass(frozen=True)
class SentMessage:
    """One message an app sent through the mock, to one recipient, with the ids it got."""

    number: int
    """1, 2, 3... in arrival order."""
    version: Version
    received_at: float
    business: str
    """The sender number, digits."""
    to: str
    """The recipient: a number's digits (no `+`) or a BSUID (`IN.1410018717833190`)."""
    type: str
    """The request's type (V1 `type`, V2 `messaging_object.type`)."""
    text: str
    """The body text, caption or template name: what a person would read first."""
    template: str = ""
    """The template name, for template sends."""
    params: tuple[str, ...] = ()
    buttons: tuple[Button, ...] = ()
    """Quick-reply payloads (label = payload) or interactive buttons/rows (title, id)."""
    context_id: str = ""
    """The wamid this message replies to (V2 `context.message_id`), if any."""
    message_id: str = ""
    """Kaleyra's UUID of the send (the answer's `id` / `data.message_id`)."""
    recipient_id: str = ""
    """V1 `<uuid>:<n>` per recipient; V2 the UUID. What a later tap's `reply_to` carries."""
    wamid: str = ""
    """Meta's id of this message (fromMe true, 18 hex): statuses and a later tap's context."""
    ref: str = ""
    ref1: str = ""
    ref2: str = ""
    callback_url: str = ""
    """V1 only: where its GET status callbacks go."""
    to_kind: Recipient = "number"
    """Which `to` is: a phone number or a business-scoped user id."""
    user_id: str = ""
    """The recipient's BSUID as the world knows them ("" for a user without one)."""
    phone_number_id: str = ""
    """The sender's phone_number_id, as its statuses and the taps on it carry it."""
    waba_id: str = ""
    """The sender's WABA id."""
    error: int = 0
    """Meta's error code this message fails with (132001: the account has no such
    template), 0 for none: it never reaches the phone, a FAILED status follows instead."""
    request: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """The fields as parsed (V1) or the messaging_object (V2)."""

    def describe(self) -> str:
        """One line: number, version, to whom, what."""
        what = f"template {self.template}" if self.template else f"{self.type} {self.text!r}"
        extra = f" [{', '.join(b.payload for b in self.buttons)}]" if self.buttons else ""
        fails = f", fails {self.error}" if self.error else ""
        return _one_line(f"#{self.number} {self.version} {self.business} -> {self.to}: "
                         f"{what}{extra} ({self.recipient_id}{fails})")


@dataclass(frozen=True)
class StatusDelivery:
    """One status callback the mock sent after a message, and how its delivery went."""

    message: SentMessage
    status: str
    url: str
    body: bytes
    result: DeliveryResult | None
    error: str = ""
    """Why it was not sent at all (e.g. a remote callback_url refused), else empty."""

    @property
    def delivered(self) -> bool:
        """Whether the target accepted it."""
        return self.result is not None and self.result.delivered

    def describe(self) -> str:
        """One line: which status of which message went where, and how it went."""
        if self.result is not None:
            last = self.result.attempts[-1]
            how = f"{last.status}" if last.status is not None else (last.error or "failed")
        else:
            how = self.error or "not sent"
        return _one_line(f"status {self.status} of #{self.message.number} -> {self.url}: {how}")


class ApiError(Exception):
    """A request the mock refuses: the HTTP status and Kaleyra's body."""

    def __init__(self, status: int, code: str, message: str,
                 error: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.body: dict[str, Any] = {"code": code, "message": message, "error": dict(error or {})}


def _bad(field_name: str, reason: str) -> ApiError:
    """400 WA400 naming the field at fault (courier's `{"error":{"to":"invalid number"}}`)."""
    return ApiError(400, "WA400", "Refer to correct payload format.", {field_name: reason})


def parse_recipient(value: str, where: str) -> tuple[str, Recipient]:
    """A send's `to`: (digits, "number") for an E.164 number, `+` optional, or (the id,
    "bsuid") for a business-scoped user id; anything else is 400 WA400 naming `where`."""
    text = value.strip()
    number = _NUMBER.fullmatch(text)
    if number is not None:
        return number.group(1), "number"
    if _BSUID.fullmatch(text):
        return text, "bsuid"
    raise _bad(where, "invalid number: give an E.164 number (8-15 digits, + optional) or a "
                      "BSUID (CC. + letters and digits)")


Sleep = Callable[[float], Awaitable[None]]


class MockApi:
    """The mock send API on a real socket: records sends, answers, fires status callbacks.

    `webhook` is where V2 statuses go (DeliveryOptions, e.g. from `delivery_options_from`,
    which checks the loopback guard); V1 statuses go to each message's `callback_url`.
    `sleep` and `clock` are injectable so tests never wait on the wall clock.
    """

    def __init__(self, options: ApiOptions = ApiOptions(), *,
                 webhook: DeliveryOptions | None = None,
                 on_sent: Callable[[SentMessage], None] | None = None,
                 on_status: Callable[[StatusDelivery], None] | None = None,
                 sleep: Sleep = asyncio.sleep, clock: Callable[[], float] = time.time,
                 seed: int | str | None = None, world: World | None = None,
                 client: httpx.AsyncClient | None = None) -> None:
        self.options = options
        # The business and users every face shares (simulator.world): the run's business
        # ids, and each user's one BSUID.
        self.world = world if world is not None else World()
        if options.phone_number_id or options.waba_id:
            number = options.business_numbers[0] if options.business_numbers else ""
            derived = business_ids(number) if number else ("", "")
            business = Business(number, options.phone_number_id or derived[0],
                                options.waba_id or derived[1])
            if number:
                self.world.add_business(business)
            else:
                self.world.default = business
        self.webhook = webhook
        # The seam every delivery shares (runner.run_plan's): None sends the status callbacks
        # for real; a client on httpx.MockTransport (no sockets, so any loop may use it) lets
        # a test answer them.
        self._client = client
        self._on_sent = on_sent
        self._on_status = on_status
        self._sleep = sleep
        self._clock = clock
        self._random = random.Random(seed)
        self._seed = seed
        self._changed = threading.Condition()
        self._sent: deque[tuple[SentMessage, int]] = deque(maxlen=options.keep)
        self._kept_bytes = 0
        self._statuses: deque[StatusDelivery] = deque(maxlen=options.keep)
        self._count = 0
        self._status_count = 0
        self._fault: tuple[str, int | None] | None = None
        # A business number is bound to one API version (send-api.md 1.3, WA-401): the
        # first message accepted from it decides which, as onboarding would.
        self._versions: dict[str, Version] = {}
        self._outcome: tuple[str, int | None] = ("read", None)
        self._lifecycle = threading.Lock()
        self._saved_env: dict[str, str | None] | None = None  # export_env(): what to restore
        self._server: AsyncServer | None = None
        self._loop_ident: int | None = None  # the loop thread's: what runs on it never blocks
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._pending: set[Any] = set()
        # Each message's status timeline (status, unix second) and how many are still to go.
        self._timeline: dict[int, list[tuple[str, int]]] = {}
        self._remaining: dict[int, int] = {}
        self._webhook_deliverer: Deliverer | None = None
        self._watchers: list[Callable[[], None]] = []
        # Meta's per-number throughput (--throughput): past it, a send fails with 130429.
        self.throughput: ThroughputLimiter | None = None
        self._slots: asyncio.Semaphore | None = None  # statuses on their way at once
        self._status_sender: StatusSender | None = None
        self._scheduled = itertools.count(1)  # messages given statuses (any thread)
        self._started = 0  # of those, started on the loop (the loop's thread only)
        self._waiting = 0  # statuses waiting for a sender (the loop's thread only)
        self._held: list[asyncio.Future[None]] = []  # answers waiting for them (hold_back)

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> MockApi:
        """Bind, then serve and send statuses from one loop on a daemon thread; return self.

        One thread for every connection and every status: the threaded server it replaces
        lost half its time handing the GIL around (simulator.aioserver says more)."""
        with self._lifecycle:
            if self._server is None:
                sock = self._bind()
                loop = asyncio.new_event_loop()
                server = AsyncServer(sock, _App(self), max_connections=MAX_CONNECTIONS,
                                     max_buffered=max(MAX_BUFFERED, self.options.max_body),
                                     idle_timeout=lambda: _IDLE_TIMEOUT,
                                     request_deadline=lambda: _REQUEST_DEADLINE)
                thread = threading.Thread(target=loop.run_forever,
                                          name=f"wasim-api-{self.port}", daemon=True)
                thread.start()
                self._loop_ident = thread.ident
                self._loop, self._loop_thread = loop, thread
                try:
                    asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=30)
                except BaseException:
                    sock.close()
                    loop.call_soon_threadsafe(loop.stop)
                    thread.join()
                    loop.close()
                    self._loop = self._loop_thread = None
                    raise
                self._server = server
        return self

    def export_env(self) -> None:
        """Put env() in this process's environment, for an in-process app, until stop()."""
        import os

        with self._lifecycle:
            if self._saved_env is None:
                self._saved_env = {name: os.environ.get(name) for name in self.env()}
        os.environ.update(self.env())

    def stop(self) -> None:
        """Stop serving and cancel statuses not yet sent; safe to call twice. What
        export_env() set is put back as it was: the next run in this process starts clean."""
        import os

        with self._lifecycle:
            saved, self._saved_env = self._saved_env, None
        for name, value in (saved or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        with self._lifecycle:
            server, self._server = self._server, None
            loop, self._loop = self._loop, None
            loop_thread, self._loop_thread = self._loop_thread, None
        if loop is not None and loop_thread is not None:
            future = asyncio.run_coroutine_threadsafe(self._shutdown_loop(server), loop)
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                future.result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            loop_thread.join()
            loop.close()

    async def _shutdown_loop(self, server: AsyncServer | None) -> None:
        if server is not None:
            await server.close()
        for task in list(self._pending):
            task.cancel()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._status_sender is not None:
            self._status_sender.close()
            self._status_sender = None
        if self._webhook_deliverer is not None:
            await self._webhook_deliverer.aclose()
            self._webhook_deliverer = None

    def __enter__(self) -> MockApi:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def _bind(self) -> socket.socket:
        host, port = self.options.host, self.options.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as http.server does
            sock.bind((host, port))
            sock.listen(1024)  # a burst of connections must not overflow the backlog
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise WasimError(f"cannot listen on {host} port {port}: {exc.strerror or exc}",
                             field="port", hint=f"Pick another port with {named('port')}, or "
                                                  f"{named('port')} 0 for any free one.") from None
        self._bound_port = sock.getsockname()[1]
        return sock

    @property
    def port(self) -> int:
        """The port actually bound (the configured one before start)."""
        return getattr(self, "_bound_port", self.options.port)

    @property
    def base_url(self) -> str:
        """What a handler uses in place of https://api.kaleyra.io, e.g. http://127.0.0.1:8700."""
        host = self.options.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def v1_url(self) -> str:
        """The V1 send URL for this mock's SID."""
        return f"{self.base_url}/v1/{self.options.sid}/messages"

    def v2_url(self, business_number: str) -> str:
        """The V2 send URL for `business_number` (digits) and this mock's SID."""
        return f"{self.base_url}/v2/{self.options.sid}/whatsapp/{business_number}/messages"

    def env(self) -> dict[str, str]:
        """Environment settings that point a handler at this mock (see the README)."""
        return {"KALEYRA_BASE_URL": self.base_url, "KALEYRA_SID": self.options.sid,
                "KALEYRA_API_KEY": self.options.api_key}

    # --- faults and outcomes on demand ---------------------------------------------------

    def set_fault(self, fault: str | None, count: int | None = None) -> None:
        """Answer the next `count` sends (all, if None) with `fault`: WA500, E110 or 429."""
        if fault is not None and fault not in FAULTS:
            raise WasimError(f"unknown fault {fault!r}", where="fault",
                             hint=f"Use one of {', '.join(FAULTS)}, or None to clear it.")
        with self._changed:
            self._fault = None if fault is None else (fault, count)

    def set_outcome(self, outcome: str, count: int | None = None) -> None:
        """End the next `count` messages (all, if None) as read, failed or not-sent."""
        if outcome not in OUTCOMES:
            raise WasimError(f"unknown outcome {outcome!r}", where="outcome",
                             hint=f"Use one of {', '.join(OUTCOMES)}.")
        with self._changed:
            self._outcome = (outcome, count)

    def _take_fault(self) -> str | None:
        with self._changed:
            if self._fault is None:
                return None
            fault, count = self._fault
            if count is not None:
                self._fault = (fault, count - 1) if count > 1 else None
            return fault

    def _take_outcome(self) -> str:
        with self._changed:
            outcome, count = self._outcome
            if count is not None:
                self._outcome = (outcome, count - 1) if count > 1 else ("read", None)
            return outcome

    # --- what was sent -------------------------------------------------------------------

    @property
    def sent(self) -> list[SentMessage]:
        """A copy of the messages kept so far, oldest first."""
        with self._changed:
            return [message for message, _ in self._sent]

    @property
    def statuses(self) -> list[StatusDelivery]:
        """A copy of the status callbacks sent so far, oldest first."""
        with self._changed:
            return list(self._statuses)

    @property
    def count(self) -> int:
        """How many messages were recorded so far: the number of the newest one."""
        with self._changed:
            return self._count

    def sent_after(self, number: int) -> list[SentMessage]:
        """The kept messages numbered after `number`, oldest first (reads only those)."""
        with self._changed:
            newer = []
            for message, _ in reversed(self._sent):
                if message.number <= number:
                    break
                newer.append(message)
        return newer[::-1]

    def sent_to(self, number: str, after: int = 0) -> list[SentMessage]:
        """The kept messages to `number` (digits, `+` allowed, or a BSUID) numbered after
        `after`."""
        wanted = number.lstrip("+")
        return [m for m in self.sent if m.to == wanted and m.number > after]

    def watch(self, changed: Callable[[], None]) -> Callable[[], None]:
        """Call `changed` (from the server's thread) after every recorded message; returns
        the function that stops it. For waiting on the record without polling."""
        with self._changed:
            self._watchers.append(changed)

        def stop() -> None:
            with self._changed:
                if changed in self._watchers:
                    self._watchers.remove(changed)
        return stop

    def find(self, message_id: str) -> SentMessage | None:
        """The kept message with this UUID, `<uuid>:<n>` or wamid, if any."""
        for message in self.sent:
            if message_id in (message.message_id, message.recipient_id, message.wamid):
                return message
        return None

    def wait_for_sent(self, count: int, timeout: float = 5.0) -> list[SentMessage]:
        """Block until `count` messages were sent in total; return those kept."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._count >= count, timeout):
                raise TimeoutError(f"{self._count} of {count} messages sent within "
                                   f"{timeout:g} s to {self.base_url}")
            return [message for message, _ in self._sent]

    def wait_for_statuses(self, count: int, timeout: float = 5.0) -> list[StatusDelivery]:
        """Block until `count` status callbacks were sent in total; return those kept."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._status_count >= count, timeout):
                raise TimeoutError(f"{self._status_count} of {count} status callbacks within "
                                   f"{timeout:g} s")
            return list(self._statuses)

    def assert_replied(self, to: str | None = None, *, type: str | None = None,
                       contains: str | None = None, template: str | None = None,
                       context_id: str | None = None, count: int | None = 1) -> list[SentMessage]:
        """Assert the app sent `count` messages (any number if None, at least one) matching
        every given filter; return them. The failure lists everything that was sent."""
        __tracebackhide__ = True  # a failing test shows its own line, not wasim's
        wanted = to.lstrip("+") if to is not None else None
        found = [m for m in self.sent
                 if (wanted is None or m.to == wanted)
                 and (type is None or m.type == type)
                 and (contains is None or contains.lower() in m.text.lower())
                 and (template is None or m.template == template)
                 and (context_id is None or m.context_id == context_id)]
        ok = bool(found) if count is None else len(found) == count
        if not ok:
            filters = ", ".join(f"{k}={v!r}" for k, v in (
                ("to", to), ("type", type), ("contains", contains), ("template", template),
                ("context_id", context_id)) if v is not None) or "any message"
            expected = "at least one" if count is None else f"exactly {count}"
            listing = "\n".join(f"  {m.describe()}" for m in self.sent) or "  (nothing)"
            raise AssertionError(f"expected {expected} reply matching {filters}, got "
                                 f"{len(found)}; the app sent:\n{listing}")
        return found

    # --- handling a request --------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str],
               body: bytes) -> tuple[int, dict[str, Any]]:
        """Answer one request: (status, JSON body). Never raises for what a client sends."""
        parts = urlsplit(target)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        try:
            if len(segments) == 3 and segments[0] == "v1" and segments[2] == "messages":
                if method not in ("GET", "POST"):
                    raise ApiError(405, "WA405", "Use POST or GET.")
                return self._v1(segments[1], parts.query, headers, body)
            if (len(segments) == 5 and segments[0] == "v2" and segments[2] == "whatsapp"
                    and segments[4] == "messages"):
                if method != "POST":
                    raise ApiError(405, "WA405", "Use POST.")
                return self._v2(segments[1], segments[3], headers, body)
            if segments[:1] == ["v2"] and segments[2:] == ["whatsapp"] and method == "GET":
                # A client's "test connection" (send-api.md 1.3, OBS): 401 means bad credentials.
                self._auth(segments[1], header(headers, "api-key"))
                return 200, {"code": "WA200", "message": "OK", "error": {}}
            if not segments and method in ("GET", "HEAD"):
                return 200, {"service": SERVICE, "sid": self.options.sid,
                             "sent": self._count}
            raise ApiError(404, "WA404", "No such endpoint: use /v1/{sid}/messages or "
                                         "/v2/{sid}/whatsapp/{number}/messages.")
        except ApiError as exc:
            return exc.status, exc.body

    def _auth(self, sid: str, key: str | None) -> None:
        # In constant time, and both compared whatever the first gives: how long a refusal
        # takes says nothing about how much of a guess was right.
        sid_ok = hmac.compare_digest(sid.encode(), self.options.sid.encode())
        key_ok = hmac.compare_digest((key or "").encode(), self.options.api_key.encode())
        if not (sid_ok & key_ok) or key is None:
            raise ApiError(401, "RBC001", "Incorrect SID or API key.")

    def refuse_early(self, method: str, target: str,
                     headers: Mapping[str, str]) -> tuple[int, dict[str, Any]] | None:
        """The 401 for a request whose SID or api-key is wrong before its body is read, or
        None when the body must be read first (a V1 form may carry the key as a field)."""
        parts = urlsplit(target)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        given = header(headers, "api-key")
        try:
            if len(segments) == 3 and segments[0] == "v1" and segments[2] == "messages":
                query_key = dict(parse_qsl(parts.query, keep_blank_values=True)).get("api-key")
                key = given or query_key or None
                if key is not None or not hmac.compare_digest(
                        segments[1].encode(), self.options.sid.encode()):
                    self._auth(segments[1], key or "")
            elif len(segments) >= 3 and segments[0] == "v2" and segments[2] == "whatsapp":
                self._auth(segments[1], given)  # V2 takes the key in the header only
        except ApiError as exc:
            return exc.status, exc.body
        return None

    def _auth_in_body(self, sid: str, body: bytes) -> None:
        """401 unless the body names the right api-key somewhere: found by a scan of the
        bytes, before a big form is parsed (parsed, it takes many times its size)."""
        candidates = (match.group(1) for pattern in _BODY_KEYS
                      for match in pattern.finditer(body))
        for raw in itertools.islice(candidates, 100):
            key = _decoded_key(raw)
            if key is not None and hmac.compare_digest(key.encode(),
                                                       self.options.api_key.encode()):
                return
        self._auth(sid, None)

    def _business(self, number: str, where: str) -> str:
        digits = number.strip().lstrip("+")
        if not is_ascii_digits(digits) or not 8 <= len(digits) <= 15:
            raise _bad(where, "invalid number")
        allowed = self.options.business_numbers
        if allowed and digits not in allowed:
            raise ApiError(401, "WA401", "Phone number is not present or does not belong to "
                                         "the account.")
        return digits

    def _bind_version(self, business: str, version: Version) -> None:
        """Refuse a send through the other API version than the number's (401 WA-401)."""
        with self._changed:
            bound = self._versions.get(business, version)
        if bound != version:
            raise ApiError(401, "WA-401", "The phone number you're using is associated with "
                                          "different Version of our WA API. Please use the "
                                          "appropriate endpoint.",
                           {"phone_number": f"{business} sends through {bound.upper()}"})

    def _known_template(self, message: SentMessage) -> SentMessage:
        """Mark a template the account does not have (with a scenario: one it does not name)
        to fail with Meta's 132001: Kaleyra accepts the send and reports the failure later."""
        known = self.options.templates
        if message.template and known is not None and message.template not in known:
            return _with(message, error=TEMPLATE_MISSING)
        return message

    def _fault_now(self) -> None:
        fault = self._take_fault()
        if fault is not None:
            status, code, message = FAULTS[fault]
            raise ApiError(status, code, message)

    # --- V1 ------------------------------------------------------------------------------

    def _v1(self, sid: str, query: str, headers: Mapping[str, str],
            body: bytes) -> tuple[int, dict[str, Any]]:
        fields = dict(parse_qsl(query, keep_blank_values=True))
        if not (header(headers, "api-key") or fields.get("api-key")):
            self._auth_in_body(sid, body)
        try:
            fields.update(parse_v1_body(body, header(headers, "content-type") or ""))
        except RecursionError:
            raise _bad("body", "a body nested too deeply to read") from None
        except ValueError as exc:
            fields.setdefault("api-key", "")
            self._auth(sid, header(headers, "api-key") or fields.get("api-key"))
            raise _bad("body", str(exc)) from None
        self._auth(sid, header(headers, "api-key") or fields.get("api-key") or None)
        self._fault_now()
        channel = fields.get("channel", "whatsapp")
        if channel.lower() != "whatsapp":
            raise _bad("channel", "must be whatsapp")
        business = self._business(fields.get("from", ""), "from")
        self._bind_version(business, "v1")
        given = [r for r in fields.get("to", "").split(",") if r.strip()]
        if not given or len(given) > MAX_RECIPIENTS:
            raise _bad("to", f"invalid number: give 1 to {MAX_RECIPIENTS} recipients")
        recipients = [parse_recipient(r, "to") for r in given]
        parsed = self._known_template(_v1_message(fields))
        callback_url = fields.get("callback_url", "")
        if callback_url and urlsplit(callback_url).scheme not in ("http", "https"):
            raise _bad("callback_url", "must be an http(s) URL")
        message_id = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
        refs = (fields.get("ref", ""), fields.get("ref1", ""), fields.get("ref2", ""))
        data = []
        for index, (recipient, kind) in enumerate(recipients):
            message = self._record(len(body), _with(
                parsed, version="v1", business=business, to=recipient, to_kind=kind,
                message_id=message_id, recipient_id=f"{message_id}:{index}",
                ref=refs[0], ref1=refs[1], ref2=refs[2], callback_url=callback_url,
                request=fields))
            data.append({"message_id": message.recipient_id, "recipient": recipient,
                         "status": "queued"})
        first = f"{message_id}:0" if self.options.v1_id == "suffixed" else message_id
        answer = {"id": first, "from": fields.get("from", ""), "type": parsed.type,
                  "channel": "whatsapp", "source": "API",
                  "createdDateTime": time.strftime("%Y-%m-%d %H:%M:%S+00:00",
                                                   time.gmtime(self._clock())),
                  "totalCount": len(recipients), "data": data, "error": {}}
        return self.options.v1_status, answer

    # --- V2 ------------------------------------------------------------------------------

    def _v2(self, sid: str, number: str, headers: Mapping[str, str],
            body: bytes) -> tuple[int, dict[str, Any]]:
        self._auth(sid, header(headers, "api-key"))
        business = self._business(number, "phone_number")
        self._bind_version(business, "v2")
        self._fault_now()
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            raise _bad("body", "not JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("messaging_object"),
                                                            dict):
            raise _bad("messaging_object", "missing: wrap the Meta message as "
                                           '{"messaging_object": {...}, "extra_info": {...}}')
        extra = document.get("extra_info") or {}
        if not isinstance(extra, dict):
            raise _bad("extra_info", "must be an object")
        parsed = self._known_template(v2_message(document["messaging_object"]))
        message_id = str(uuid.UUID(int=self._random.getrandbits(128), version=4))
        message = self._record(len(body), _with(
            parsed, version="v2", business=business, message_id=message_id,
            recipient_id=message_id, ref=_text(extra.get("ref")), ref1=_text(extra.get("ref1")),
            ref2=_text(extra.get("ref2")), request=document["messaging_object"]))
        # data.message_id is what the reference's client requires (send-api.md 5.4); a
        # published Python client reads a top-level `id`: both carry Kaleyra's UUID.
        return 202, {"code": "WA202", "message": "Request Accepted.", "id": message.message_id,
                     "data": {"message_id": message.message_id}}

    # --- recording and statuses ----------------------------------------------------------

    def _failing(self, message: SentMessage) -> SentMessage:
        """The message with the error of the first failure rule that applies to it. A rule
        naming a number also applies to a message sent to that user's BSUID (pywa replies
        there when the callback carried one)."""
        if message.error:
            return message
        for index, rule in enumerate(self.options.fail):
            if rule.applies(message.to, self._seed, index):
                return _with(message, error=rule.code)
            if is_ascii_digits(rule.recipient) and message.to_kind == "bsuid" and message.to == \
                    self.world.user(message.business, rule.recipient).user_id:
                return _with(message, error=rule.code)
        return message

    def _record(self, size: int, message: SentMessage) -> SentMessage:
        message = self._failing(message)
        if self.throughput is not None and not message.error \
                and not self.throughput.allow(message.business):
            message = _with(message, error=RATE_LIMITED)  # 202 now, a FAILED status later
        wamid = encode_wamid(_wamid_customer(message), True,
                             f"{self._random.getrandbits(72):018X}")
        business = self.world.business(message.business)
        user = self.world.user(business.display_phone_number, message.to)
        with self._changed:
            self._versions.setdefault(message.business, message.version)  # bound once sent
            self._count += 1
            message = _with(message, number=self._count, received_at=self._clock(),
                              wamid=wamid, user_id=user.user_id,
                              phone_number_id=business.phone_number_id,
                              waba_id=business.waba_id)
            if len(self._sent) == self._sent.maxlen:
                self._kept_bytes -= self._sent[0][1]
            self._sent.append((message, size))
            self._kept_bytes += size
            # The newest is always kept (it is under max_body); the oldest go first.
            while self._kept_bytes > self.options.keep_bytes and len(self._sent) > 1:
                self._kept_bytes -= self._sent.popleft()[1]
            self._changed.notify_all()
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher()
        if self._on_sent is not None:
            _call_watcher(self._on_sent, message, "on_sent")
        self._schedule(message)
        return message

    def _schedule(self, message: SentMessage) -> None:
        loop = self._loop
        if loop is None:
            return
        if message.version == "v2" and self.webhook is None:
            return
        if message.version == "v1" and not message.callback_url:
            return
        # A message Meta refuses (a missing template) fails whatever outcome is asked for.
        outcome = "refused" if message.error else self._take_outcome()
        if len(self._pending) >= MAX_PENDING:
            # A flood of sends with long status delays must not grow without bound: these
            # statuses are recorded as not sent, not silently lost.
            for status in self.plan(outcome):
                self._keep_status(StatusDelivery(message, status, "", b"", None,
                                                 f"over {MAX_PENDING} messages awaiting "
                                                 "statuses"))
            return

        statuses = self.plan(outcome)
        offsets = status_offsets(len(statuses), self.options.status_delays)
        with self._changed:
            # Stamped when planned: seconds apart in world time, whatever the speed.
            self._timeline[message.number] = [
                (status, int(message.received_at + offset))
                for status, offset in zip(statuses, offsets, strict=True)]
            self._remaining[message.number] = len(statuses)
            while len(self._timeline) > self.options.keep:
                oldest = next(iter(self._timeline))
                del self._timeline[oldest]
                self._remaining.pop(oldest, None)

        def start() -> None:
            self._started += 1
            task = loop.create_task(self._follow(message, outcome))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        number = next(self._scheduled)
        if threading.get_ident() == self._loop_ident:
            start()  # the server's own request: on the loop already (the server holds back)
            return
        loop.call_soon_threadsafe(start)
        self._hold_back(number)

    def _backlog(self, scheduled: int) -> int:
        return scheduled - self._started + self._waiting

    def _hold_back(self, scheduled: int) -> None:
        """Let the statuses catch up before this send is answered, when too many are due
        (a send from another thread than the loop's: a test's direct handle())."""
        deadline = 0.0
        while self._backlog(scheduled) > STATUS_BACKLOG:
            now = time.monotonic()
            if not deadline:
                deadline = now + STATUS_HOLD
            elif now >= deadline:
                return  # a webhook that hangs must not stall the sends: it only slows them
            time.sleep(0.001)

    def hold_back(self) -> Awaitable[None] | None:
        """On the loop: what a send's answer waits for while too many statuses are due and
        not yet on their way (at most STATUS_HOLD seconds), or None when none are."""
        if self._waiting <= STATUS_BACKLOG:
            return None
        loop = asyncio.get_running_loop()
        caught_up: asyncio.Future[None] = loop.create_future()
        self._held.append(caught_up)
        # A webhook that hangs must not stall the sends: it only slows them.
        loop.call_later(STATUS_HOLD, _settle, caught_up)
        return caught_up

    def _release_held(self) -> None:
        """A status left the queue: wake the held answers once it is short enough."""
        if self._held and self._waiting <= STATUS_BACKLOG:
            held, self._held = self._held, []
            for caught_up in held:
                _settle(caught_up)

    def plan(self, outcome: str) -> list[str]:
        """The statuses a message gets for `outcome` (read: the configured ones; refused: a
        failure Meta reports at once, with no sent before it)."""
        if outcome == "not-sent":
            return ["not-sent"]
        if outcome == "refused":  # Meta refused it at once: it was never sent
            return ["failed"]
        if outcome == "failed":
            return ["sent", "failed"] if "sent" in self.options.statuses else ["failed"]
        return list(self.options.statuses)

    async def _follow(self, message: SentMessage, outcome: str) -> None:
        delays = self.options.status_delays or (0.0,)
        if self._slots is None:
            self._slots = asyncio.Semaphore(STATUS_SENDERS)
        with self._changed:
            timeline = list(self._timeline.get(message.number, ()))
        for index, (status, at) in enumerate(timeline):
            wait = real_wait(delays[min(index, len(delays) - 1)], self.options.speed)
            if wait:
                await self._sleep(wait)
            self._waiting += 1
            async with self._slots:
                self._waiting -= 1
                self._release_held()
                await self._send_status(message, status, at)

    def status_times(self, message: SentMessage) -> dict[str, int]:
        """The unix second each status of `message` carries (planned when it was sent)."""
        with self._changed:
            return dict(self._timeline.get(message.number, ()))

    def read_at(self, message: SentMessage) -> int:
        """The unix second `message` was read (its last status), planned or, when no status
        goes out, as the default timeline would have it: a tap on it comes after."""
        times = self.status_times(message)
        if times:
            return max(times.values())
        offsets = status_offsets(len(self.options.statuses), self.options.status_delays)
        return int(message.received_at + (offsets[-1] if offsets else 0.0))

    def status_wait(self, message: SentMessage) -> float:
        """Real seconds from the send until its last status is due (0 at infinite speed)."""
        offsets = status_offsets(len(self.status_times(message)), self.options.status_delays)
        return real_wait(offsets[-1], self.options.speed) if offsets else 0.0

    def drain(self, timeout: float) -> bool:
        """Wait (at most `timeout` s) until every status planned so far went out; whether
        they all did. A run ends after the statuses of the app's replies, not before."""
        with self._changed:
            return self._changed.wait_for(
                lambda: all(left <= 0 for left in self._remaining.values()), timeout)

    def wait_read(self, message: SentMessage, timeout: float) -> bool:
        """Wait (at most `timeout` s) until every status of `message` went out: a user taps
        what they have read. Whether they all did."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._remaining.get(message.number, 0) <= 0, timeout)

    def pending_wait(self) -> float:
        """Real seconds the slowest message still waits for its statuses (an upper bound)."""
        with self._changed:
            slowest = max((len(t) for n, t in self._timeline.items()
                           if self._remaining.get(n, 0) > 0), default=0)
        offsets = status_offsets(slowest, self.options.status_delays)
        return real_wait(offsets[-1], self.options.speed) if offsets else 0.0

    def statuses_done(self, message: SentMessage) -> bool:
        """Whether every status of `message` went out (or it gets none)."""
        with self._changed:
            return self._remaining.get(message.number, 0) <= 0

    async def _send_status(self, message: SentMessage, status: str, now: int) -> None:
        if message.version == "v2":
            assert self.webhook is not None  # checked in _schedule
            body = to_wire(v2_status_document(message, status, now, self._random,
                                              world=self.world))
            if self._webhook_deliverer is None:
                self._webhook_deliverer = Deliverer(self.webhook, sleep=self._sleep,
                                                    clock=self._clock, client=self._client)
                from simulator.status_sender import StatusSender, fast_sender_for

                # Raw kept-alive connections: 10x cheaper; a given client (a test's seam)
                # takes every status itself.
                if self._client is None and fast_sender_for(self.webhook):
                    self._status_sender = StatusSender(self.webhook, self._webhook_deliverer,
                                                       clock=self._clock)
            sender = self._status_sender or self._webhook_deliverer
            result = await sender.deliver(_status_event(body))
            # The bytes that left: in Meta's envelope when the webhook asks for it, and the
            # ones its X-Hub-Signature-256 signed, not the Kaleyra document they came from.
            label = result.attempts[0].target if result.attempts else self.webhook.target.label
            self._keep_status(StatusDelivery(message, status, label, result.event.body, result))
            return
        url = v1_status_url(message, status, now)
        try:
            target = url_target(url, self.webhook.allow_remote if self.webhook else False,
                                resolver=self.webhook.resolver if self.webhook else None,
                                hosts=self.webhook.remote_hosts if self.webhook else None)
        except WasimError as exc:
            self._keep_status(StatusDelivery(message, status, url, b"", None, str(exc)))
            return
        options = DeliveryOptions(target=target, method="GET",
                                  timeout=self.webhook.timeout if self.webhook else 10.0,
                                  allow_remote=self.webhook.allow_remote if self.webhook
                                  else False,
                                  remote_hosts=self.webhook.remote_hosts if self.webhook
                                  else None)
        async with Deliverer(options, sleep=self._sleep, clock=self._clock,
                             client=self._client) as deliverer:
            result = await deliverer.deliver(Event.from_body(url.encode()))
        self._keep_status(StatusDelivery(message, status, target.label, b"", result))

    def _keep_status(self, delivery: StatusDelivery) -> None:
        with self._changed:
            number = delivery.message.number
            if number in self._remaining:
                self._remaining[number] -= 1
            self._status_count += 1
            self._statuses.append(delivery)
            self._changed.notify_all()
        if self._on_status is not None:
            _call_watcher(self._on_status, delivery, "on_status")


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _with(message: SentMessage, **changes: Any) -> SentMessage:
    """`dataclasses.replace(message, **changes)` without its walk over every field, which
    was a third of a send's cost (benchmarks/sendapi.py, profiled). SentMessage has no
    __post_init__ and no init=False field, so a copy of its __dict__ is the same message."""
    copy = object.__new__(SentMessage)
    copy.__dict__.update(message.__dict__, **changes)
    return copy


def _status_event(body: bytes) -> Event:
    """A status callback's event: the id Event.from_body gives the bytes, and no tap (a
    status names none, so from_body's JSON parse, a tenth of a status's cost, finds none)."""
    return Event(f"evt_{hashlib.blake2b(body, digest_size=6).hexdigest()}", body)


def _wamid_customer(message: SentMessage) -> str:
    """The digits a wamid of a message to its recipient encodes: the number, or for a BSUID
    (a GAP: no wamid of a message to a number-less user is public) digits derived from it."""
    if message.to_kind == "number":
        return message.to
    return str(int.from_bytes(hashlib.sha256(message.to.encode()).digest()[:6], "big"))[:12]


def _call_watcher(watcher: Callable[[Any], None], value: Any, name: str) -> None:
    """Call someone else's callback: what it raises must neither stop the mock nor vanish."""
    try:
        watcher(value)
    except Exception as exc:  # someone else's code: reported below
        print(visible(f"wasim api: {name} failed: {type(exc).__name__}: {exc}"),
              file=sys.stderr)


# Where a V1 body may name its api-key: a form field, a multipart part, a JSON member.
_BODY_KEYS = (
    re.compile(rb"(?:^|&)api-key=([^&\s]{0,1024})"),
    re.compile(rb'name="?api-key"?[^\r\n]{0,200}\r?\n(?:[^\r\n]{1,1000}\r?\n){0,20}\r?\n'
               rb"([^\r\n]{0,1024})\r?\n"),
    re.compile(rb'"api-key"\s{0,100}:\s{0,100}("(?:[^"\\]|\\.){0,1024}")'),
)


def _decoded_key(raw: bytes) -> str | None:
    """An api-key as one of _BODY_KEYS found it: JSON-quoted, form-encoded or plain."""
    try:
        if raw.startswith(b'"'):
            value = json.loads(raw)
            return value if isinstance(value, str) else None
        return unquote(raw.decode("utf-8").replace("+", " "))
    except (ValueError, UnicodeDecodeError):
        return None


def _text(value: Any) -> str:
    """A scalar as text; anything else as empty."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return ""


_one_line = visible  # a message can break neither the line nor the terminal


# --- parsing V1 --------------------------------------------------------------------------


def parse_v1_body(body: bytes, content_type: str) -> dict[str, str]:
    """A V1 body's fields, read from the bytes whatever the Content-Type says (JSON, then
    multipart, then urlencoded), since Kaleyra's own samples label multipart as JSON."""
    stripped = body.strip()
    if not stripped:
        return {}
    if stripped.startswith(b"{"):
        try:
            document = json.loads(stripped)
        except (ValueError, RecursionError):
            raise ValueError("a JSON body that does not parse") from None
        if not isinstance(document, dict):
            raise ValueError("a JSON body that is not an object")
        return {str(k): v if isinstance(v, str) else json.dumps(v) if isinstance(
            v, dict | list) else _text(v) for k, v in document.items() if v is not None}
    boundary = _boundary(content_type, stripped)
    if boundary is not None:
        return _multipart(body, boundary)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("a body that is neither JSON, multipart nor UTF-8 form data") from None
    return dict(parse_qsl(text, keep_blank_values=True))


def _boundary(content_type: str, body: bytes) -> str | None:
    """The multipart boundary: from the header if it names one, else the body's first line."""
    for part in content_type.split(";"):
        name, _, value = part.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"')
    if body.startswith(b"--"):
        first = body.split(b"\r\n", 1)[0].split(b"\n", 1)[0][2:].strip()
        if first and len(first) <= 200:
            return first.decode("latin-1")
    return None


def _multipart(body: bytes, boundary: str) -> dict[str, str]:
    """Form fields of a multipart body; a file part becomes its file name (its bytes are
    counted, not kept: a handler's upload is not the point of the record)."""
    head = f'Content-Type: multipart/form-data; boundary="{boundary}"\r\n\r\n'.encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("a multipart body with no parts")
    fields: dict[str, str] = {}
    parts = message.get_payload()
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, Message):
            continue
        name = _part_name(part)
        if not name:
            continue
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        content = payload if isinstance(payload, bytes) else b""
        if filename is not None:
            fields[name] = f"{filename} ({len(content)} bytes)"
        else:
            fields[name] = content.decode("utf-8", "replace")
    return fields


def _part_name(part: Message) -> str:
    disposition = part.get_param("name", header="content-disposition")
    return disposition if isinstance(disposition, str) else ""


def parse_params(text: str) -> tuple[str, ...]:
    """Template body params from either CSV style Kaleyra documents: `a,b` or `"A","B"`."""
    if not text.strip():
        return ()
    row = next(csv.reader([text], skipinitialspace=True))
    return tuple(cell.strip() for cell in row)


def _json_field(fields: Mapping[str, str], name: str) -> Any:
    """A form field that carries JSON (`action`, `header`, `location`), parsed."""
    raw = fields.get(name, "")
    if not raw:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise _bad(name, "not valid JSON") from None


def _v1_message(fields: Mapping[str, str]) -> SentMessage:
    """The message a V1 request describes (type-specific checks), without ids yet."""
    kind = fields.get("type", "").strip().lower()
    if kind not in _V1_TYPES:
        raise _bad("type", f"unknown type {kind!r}; use one of {', '.join(_V1_TYPES)}")
    payload_keys = sorted(k for k in fields if k.startswith("payload") and k[7:].isdigit())
    if any(not 1 <= int(k[7:]) <= MAX_PAYLOADS for k in payload_keys):
        raise _bad("payload", f"at most {MAX_PAYLOADS} quick-reply payloads (payload1..3)")
    payloads = tuple(Button(fields[k], fields[k]) for k in payload_keys if fields[k])
    base = SentMessage(0, "v1", 0.0, "", "", kind, "", request=fields)
    if kind == "text":
        body = fields.get("body", "")
        if not body:
            raise _bad("body", "a text message needs a body")
        return _with(base, text=body)
    if kind in ("template", "mediatemplate", "authenticationtemplate"):
        name = fields.get("template_name", "")
        if not name:
            raise _bad("template_name", "a template message needs template_name")
        params = parse_params(fields.get("params", ""))
        if kind == "authenticationtemplate":
            if not fields.get("verification_code"):
                raise _bad("verification_code", "an authentication template needs a code")
            params = (fields["verification_code"],)
        return _with(base, text=name, template=name, params=params, buttons=payloads)
    if kind == "media":
        if not (fields.get("media") or fields.get("media_url")):
            raise _bad("media", "a media message needs media or media_url")
        return _with(base, text=fields.get("caption", "") or fields.get("media_url", "")
                       or fields.get("media", ""))
    if kind == "location":
        location = _json_field(fields, "location")
        if location is None and fields.get("latitude"):
            location = {"latitude": fields["latitude"], "longitude": fields.get("longitude")}
        if not isinstance(location, dict) or "latitude" not in location:
            raise _bad("location", "a location needs latitude and longitude")
        return _with(base, text=_text(location.get("name")) or
                       f"{location.get('latitude')},{location.get('longitude')}")
    # interactive buttons / list / order_details: `action` is JSON inside a form field
    action = _json_field(fields, "action")
    if not isinstance(action, dict):
        raise _bad("action", "an interactive message needs an action object (JSON)")
    body = fields.get("body", "")
    if not body:
        raise _bad("body", "an interactive message needs a body")
    if kind == "order_details":
        return _with(base, text=body)
    buttons = _interactive_buttons(action, "action")
    return _with(base, type="interactive", text=body, buttons=buttons)


def _interactive_buttons(action: Mapping[str, Any], where: str) -> tuple[Button, ...]:
    """The reply buttons (at most 3) or list rows (at most 10 sections) of an action."""
    if "buttons" in action:
        buttons = action["buttons"]
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
            raise _bad(f"{where}.buttons", "give 1 to 3 reply buttons")
        found = []
        for index, button in enumerate(buttons):
            reply = button.get("reply") if isinstance(button, dict) else None
            if not isinstance(reply, dict) or not _text(reply.get("id")) or not _text(
                    reply.get("title")):
                raise _bad(f"{where}.buttons[{index}]", "needs reply.id and reply.title")
            found.append(Button(_text(reply["title"]), _text(reply["id"])))
        return tuple(found)
    sections = action.get("sections")
    if not isinstance(sections, list) or not 1 <= len(sections) <= 10:
        raise _bad(f"{where}.sections", "give buttons, or 1 to 10 list sections")
    rows: list[Button] = []
    for index, section in enumerate(sections):
        section_rows = section.get("rows") if isinstance(section, dict) else None
        if not isinstance(section_rows, list) or not 1 <= len(section_rows) <= 10:
            raise _bad(f"{where}.sections[{index}].rows", "give 1 to 10 rows")
        for row in section_rows:
            if not isinstance(row, dict) or not _text(row.get("id")) or not _text(
                    row.get("title")):
                raise _bad(f"{where}.sections[{index}].rows", "every row needs id and title")
            rows.append(Button(_text(row["title"]), _text(row["id"])))
    if len(rows) > 10:
        raise _bad(f"{where}.sections", "at most 10 rows in all")
    return tuple(rows)


# --- parsing V2 --------------------------------------------------------------------------


def v2_message(meta: Mapping[str, Any]) -> SentMessage:
    """The message a V2 `messaging_object` (a Meta Cloud API message) describes."""
    to, to_kind = _v2_recipient(meta)
    kind = _text(meta.get("type")) or "text"
    if kind not in _V2_TYPES:
        raise _bad("messaging_object.type", f"unknown type {kind!r}")
    content = meta.get(kind)
    if not isinstance(content, dict):
        raise _bad(f"messaging_object.{kind}", "missing or not an object")
    context = meta.get("context")
    context_id = _text(context.get("message_id")) if isinstance(context, dict) else ""
    base = SentMessage(0, "v2", 0.0, "", to, kind, "", context_id=context_id, request=meta,
                       to_kind=to_kind)
    where = f"messaging_object.{kind}"
    if kind == "text":
        body = _text(content.get("body"))
        if not body:
            raise _bad(f"{where}.body", "a text message needs a body")
        return _with(base, text=body)
    if kind == "template":
        return _v2_template(base, content, where)
    if kind in _V2_MEDIA:
        if not (_text(content.get("id")) or _text(content.get("link"))):
            raise _bad(where, "media needs an id or a link")
        return _with(base, text=_text(content.get("caption")) or _text(content.get("link"))
                       or _text(content.get("id")))
    if kind == "interactive":
        action = content.get("action")
        if not isinstance(action, dict):
            raise _bad(f"{where}.action", "missing or not an object")
        shown = content.get("body")
        text = _text(shown.get("text")) if isinstance(shown, dict) else ""
        if not text:
            raise _bad(f"{where}.body.text", "an interactive message needs a body")
        return _with(base, text=text, buttons=_interactive_buttons(action, f"{where}.action"))
    if kind == "reaction":
        if not _text(content.get("message_id")):
            raise _bad(f"{where}.message_id", "a reaction names the message it reacts to")
        return _with(base, text=_text(content.get("emoji")),
                       context_id=context_id or _text(content.get("message_id")))
    return _with(base, text=_text(content.get("name")) or kind)


def _v2_recipient(meta: Mapping[str, Any]) -> tuple[str, Recipient]:
    """Whom a V2 message goes to: `to` (a number or a BSUID), or Meta's `recipient` (a BSUID,
    which pywa 4.5 sends for a BSUID user, with `to` null, absent or the number). A number in
    `to` wins, so the wamid embeds it as Meta's do; else the BSUID."""
    given = meta.get("recipient")
    if given is None or given == "":
        return parse_recipient(_text(meta.get("to")), "messaging_object.to")
    bsuid = _text(given).strip()
    if not _BSUID.fullmatch(bsuid):
        raise _bad("messaging_object.recipient", "a recipient is a BSUID (CC. + letters and "
                                                 "digits)")
    to = meta.get("to")
    if to is None or to == "":
        return bsuid, "bsuid"
    return parse_recipient(_text(to), "messaging_object.to")


def _v2_template(base: SentMessage, content: Mapping[str, Any], where: str) -> SentMessage:
    """A template send: its name, body params and quick-reply payloads (at most three)."""
    name = _text(content.get("name"))
    if not name:
        raise _bad(f"{where}.name", "a template needs a name")
    components = content.get("components") or []
    if not isinstance(components, list):
        raise _bad(f"{where}.components", "must be a list")
    params: list[str] = []
    buttons: list[Button] = []
    for index, component in enumerate(components):
        if not isinstance(component, dict):
            raise _bad(f"{where}.components[{index}]", "must be an object")
        parameters = component.get("parameters") or []
        if not isinstance(parameters, list):
            raise _bad(f"{where}.components[{index}].parameters", "must be a list")
        kind = _text(component.get("type")).lower()
        if kind == "body":
            params += [_text(p.get("text")) for p in parameters if isinstance(p, dict)]
        elif kind == "button" and _text(component.get("sub_type")).lower() == "quick_reply":
            payload = next((_text(p.get("payload")) for p in parameters
                            if isinstance(p, dict) and p.get("type") == "payload"), "")
            if not payload:
                raise _bad(f"{where}.components[{index}]", "a quick reply needs a payload")
            buttons.append(Button(payload, payload))
    if len(buttons) > MAX_PAYLOADS:
        raise _bad(f"{where}.components", f"at most {MAX_PAYLOADS} quick-reply payloads")
    return _with(base, text=name, template=name, params=tuple(params), buttons=tuple(buttons))


# --- status callbacks --------------------------------------------------------------------


def _category(message: SentMessage) -> str:
    """Meta's pricing category: templates are marketing here, session messages service."""
    return "marketing" if message.template else "service"


def recipient_of(message: SentMessage, world: World | None = None) -> User:
    """The user a message reached, as every face knows them (simulator.world): a known
    user as they tapped, else one derived from the number, with their one BSUID."""
    world = world if world is not None else World()
    user = world.user(message.business, message.to)
    if message.to_kind == "number" and user.wa_id != message.to:
        user = replace(user, wa_id=message.to)  # the form the app sent to, as Meta echoes it
    return user


def status_tap(message: SentMessage, at: int, trace_id: str,
               world: World | None = None) -> Tap:
    """The facts a status of `message` is built from: its business (the run's ids), its
    recipient (one BSUID), its wamid, Kaleyra id and refs, the status's moment and trace."""
    business = Business(message.business, message.phone_number_id, message.waba_id) \
        if message.phone_number_id and message.waba_id else \
        (world or World()).business(message.business)
    return Tap(business=business, user=recipient_of(message, world),
               template=sent_template(message), button=Button("", ""), message_id="",
               timestamp=str(at), trace_id=trace_id)


def v2_status_document(message: SentMessage, status: str, now: int,
                       rnd: random.Random, *, world: World | None = None) -> dict[str, Any]:
    """A Kaleyra V2 status callback (wire-format.md section 6) for `message`, built by the
    status kind's own builder (`render --kind status` and the mock agree field for field),
    with the recipient's 2026 `contacts` entry and one conversation per window."""
    world = world if world is not None else World()
    trace_id = draw_uuid4(rnd)
    drawn = f"{rnd.getrandbits(128):032x}"
    category = _category(message)
    conversation = world.conversation(message.business, message.user_id or message.to,
                                      category, now, drawn)
    tap = status_tap(message, now, trace_id, world)
    code = (message.error or DEFAULT_ERROR) if status == "failed" else None
    args = KindArgs(status=status, error=code, conversation_id=conversation.id,
                    expiration=conversation.expires, category=category)
    return build_status(Facts(tap, rnd), args)


def v1_status_url(message: SentMessage, status: str, now: int) -> str:
    """The V1 status GET: the message's callback_url, its own query kept, Kaleyra's appended."""
    parts = urlsplit(message.callback_url)
    added: list[tuple[str, str]] = [("id", message.recipient_id), ("status", status),
                                    ("timestamp", str(now)), ("mobile", message.to)]
    added += [(name, value) for name, value in (("ref", message.ref), ("ref1", message.ref1),
                                                 ("ref2", message.ref2)) if value]
    if status == "failed":
        error = error_object(message.error or DEFAULT_ERROR)
        added += [("error_code", str(error["code"])), ("error", str(error["title"]))]
    query = f"{parts.query}&{urlencode(added)}" if parts.query else urlencode(added)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


# --- ids that line up --------------------------------------------------------------------


def business_of(message: SentMessage) -> Business:
    """The business that sent `message`, with the ids its statuses carried."""
    if message.phone_number_id and message.waba_id:
        return Business(message.business, message.phone_number_id, message.waba_id)
    return Business(message.business, *business_ids(message.business))


def sent_template(message: SentMessage) -> TemplateMessage:
    """The TemplateMessage a tap under `message` replies to: its wamid, reply_to and refs."""
    return TemplateMessage(message.wamid, message.recipient_id, message.ref, message.ref1,
                           message.ref2)


def reply_tap_options(message: SentMessage) -> dict[str, str]:
    """TapOptions overrides (also `wasim render`'s flags) for a tap replying to `message`."""
    return {"business_number": message.business, "user_number": message.to,
            "context_id": message.wamid, "reply_to": message.recipient_id,
            "ref": message.ref, "ref1": message.ref1, "ref2": message.ref2}


def reply_tap(factory: TapFactory, message: SentMessage,
              button: Button | str | None = None) -> Tap:
    """The shopper's tap replying to `message`: `context.id` is its wamid, `reply_to` its
    Kaleyra id, the refs echoed, and the business the number that sent it. A message to a
    BSUID gets a tap from a user with that BSUID (their number drawn: the app never had it).

    `button` is one of the message's buttons (by label or payload), or the first of them.
    """
    chosen: Button | None
    if isinstance(button, Button):
        chosen = button
    elif button is None:
        chosen = message.buttons[0] if message.buttons else None
    else:
        chosen = next((b for b in message.buttons if button in (b.text, b.payload)), None)
        if chosen is None:
            offered = ", ".join(b.payload for b in message.buttons) or "none"
            raise WasimError(f"message #{message.number} has no button {button!r}",
                             where="button", hint=f"Its buttons: {offered}.")
    user = factory.new_user(number=message.to) if message.to_kind == "number" else \
        replace(factory.new_user(), user_id=message.to)
    if message.user_id:  # the one BSUID the mock's record and statuses carry
        user = replace(user, user_id=message.user_id)
    tap = factory.tap(user, sent_template(message), chosen)
    return replace(tap, business=business_of(message))


def action_of(message: SentMessage) -> Mapping[str, Any]:
    """The interactive message's `action` object (V2 `interactive.action`, V1 `action` JSON)."""
    request = message.request
    if message.version == "v2":
        interactive = request.get("interactive")
        action = interactive.get("action") if isinstance(interactive, dict) else None
    else:
        raw = request.get("action")
        try:
            action = json.loads(raw) if isinstance(raw, str) else None
        except (ValueError, RecursionError):
            action = None
    return action if isinstance(action, dict) else {}


def is_list(message: SentMessage) -> bool:
    """Whether the message is an interactive list (rows to pick), not reply buttons."""
    return message.type == "interactive" and "sections" in action_of(message)


def reply_kind(message: SentMessage) -> str:
    """The kind of callback a tap on the message's buttons sends: `button` (a template's quick
    reply), `button_reply` (an interactive reply button) or `list_reply` (a list row)."""
    if message.type != "interactive":
        return "button"  # a template's quick reply
    return "list_reply" if is_list(message) else "button_reply"


def row_description(message: SentMessage, row_id: str) -> str | None:
    """The description the app gave list row `row_id`, if it gave one (Meta echoes it)."""
    sections = action_of(message).get("sections")
    for section in sections if isinstance(sections, list) else []:
        rows = section.get("rows") if isinstance(section, dict) else None
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and str(row.get("id")) == row_id:
                description = row.get("description")
                return description if isinstance(description, str) else None
    return None


_ROW_DESCRIPTION = "meta_object.value.messages[0].interactive.list_reply.description"


def reply_body(message: SentMessage, tap: Tap, quick_reply: Callable[[Tap], bytes],
               rnd: random.Random | None = None) -> bytes:
    """The callback bytes of `tap` (on `tap.button`) replying to the app's `message`: a
    template's quick reply is `type: button` (rendered by `quick_reply`, the callback
    template); a reply button of an interactive message is `type: interactive` with
    `button_reply {id, title}`, a list row `list_reply {id, title[, description]}`
    (wire-format.md 5), with `context` naming the message."""
    kind = reply_kind(message)
    if kind == "button":
        return quick_reply(tap)
    from simulator.kinds import kind_body
    from simulator.kinds.base import KindArgs
    from simulator.overrides import Override, parse_path

    button = tap.button
    description = row_description(message, button.payload) if kind == "list_reply" else None
    args = KindArgs(reply_id=button.payload, reply_title=button.text,
                    reply_description=description)
    # A row the app gave no description has none in Meta's reply either (the builder would
    # draw one).
    drop = (Override("remove", parse_path(_ROW_DESCRIPTION, "list row"), None,
                     _ROW_DESCRIPTION),) if kind == "list_reply" and description is None \
        else ()
    return kind_body(kind, tap, args, rnd or random.Random(0), drop)


# --- the HTTP server ---------------------------------------------------------------------


class _App:
    """The send API as the asyncio server's application (simulator.aioserver)."""

    def __init__(self, api: MockApi) -> None:
        self.api = api

    def limit(self) -> int:
        """The largest body accepted."""
        return self.api.options.max_body

    def early(self, head: Head) -> Answer | None:
        """A wrong SID or key is refused before the body is read."""
        refused = self.api.refuse_early(head.method, head.target, head.headers)
        return None if refused is None else _json_answer(*refused)

    def answer(self, head: Head, body: bytes) -> Answer:
        """What MockApi.handle says."""
        return _json_answer(*self.api.handle(head.method, head.target, head.headers, body))

    def hold(self) -> Awaitable[None] | None:
        """Wait, before answering, while too many statuses are due and not on their way."""
        return self.api.hold_back()


def _json_answer(status: int, document: Mapping[str, Any]) -> Answer:
    return Answer(status, json.dumps(document).encode())


def start_on_flag(api: MockApi, flag: str) -> MockApi:
    """Start `api`; a port that cannot be bound is named by the flag the person typed."""
    try:
        return api.start()
    except WasimError as exc:
        if exc.where is None and exc.field == "port":
            exc.where = flag  # not the API's own --port
            exc.hint = f"Pick another port with {flag}, or {flag} 0 for any free one."
        raise


def api_options(*, port: int = DEFAULT_PORT, sid: str | None = None, api_key: str | None = None,
                business_numbers: Sequence[str] = (), status_delays: Sequence[float] = (),
                host: str = "127.0.0.1", templates: Sequence[str] | None = None,
                speed: float = math.inf, phone_number_id: str | None = None,
                waba_id: str | None = None, fail: Sequence[FailRule] = (),
                v1_id: str = "bare", max_body: int = MAX_BODY) -> ApiOptions:
    """ApiOptions from loose values (numbers with or without `+`); no delays given: the
    default timeline (1 s, 2 s, 5 s of world time), really waited at `speed`."""
    numbers = tuple(n.strip().lstrip("+") for n in business_numbers)
    return ApiOptions(host=host, port=port, sid=sid or DEFAULT_SID,
                      api_key=api_key or DEFAULT_API_KEY, business_numbers=numbers,
                      status_delays=tuple(status_delays) or DEFAULT_STATUS_DELAYS,
                      templates=tuple(templates) if templates is not None else None,
                      speed=speed, phone_number_id=phone_number_id or None,
                      waba_id=waba_id or None, fail=tuple(fail),
                      v1_id="suffixed" if v1_id == "suffixed" else "bare", max_body=max_body)


__all__ = [
    "ApiError",
    "ApiOptions",
    "FailRule",
    "MockApi",
    "SentMessage",
    "StatusDelivery",
    "action_of",
    "api_options",
    "is_list",
    "parse_fail",
    "parse_params",
    "parse_templates",
    "parse_v1_body",
    "reply_body",
    "reply_kind",
    "reply_tap",
    "reply_tap_options",
    "row_description",
    "sent_template",
    "start_on_flag",
    "v1_status_url",
    "v2_message",
    "v2_status_document",
]
