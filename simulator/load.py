"""Load: unique, valid callbacks at a target rate or as fast as possible, with live figures.

The network path is a small HTTP/1.1 client on asyncio's Protocol API with kept-alive
connections: httpx (used everywhere else) spends ~900 us of Python per request, which caps a
load run near 1,100 requests/s on this kind of machine; this client spends a few tens. It
speaks only what a webhook needs: one request at a time per connection; answers framed by
Content-Length, chunked or the server's close; interim 1xx answers skipped. In-process apps
and https targets go through httpx as usual, streamed.

The target may be hostile: an answer costs at most 64 KiB of headers and 64 KiB of body
(the rest is counted and dropped as it arrives), --timeout bounds each request whole, body
included, and garbage is a "protocol" error on that connection. A reset or close mid-request
is a failed request ("reset"); only refused connections mean nothing is listening (exit 3).
Headers are checked before anything is sent, so no value can start a header line of its own.

Memory stays flat however long the run: latencies go into a fixed log-scale histogram,
and the history is off (or keeps 1 attempt in N).

One module (about 1,300 lines) on purpose: its HTTP stack is its own, for speed (see above),
and the slots, the stats and the worker processes are tuned together. The fast client itself
(`_AnswerReader`, `_Connection`) lives in simulator.rawhttp, which the send API's status
sender shares; the worker processes (`run_workers`, `SourceSpec`) are next to split off.
"""

from __future__ import annotations

import asyncio
import base64
import math
import random
import re
import ssl
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple, TypeVar

import httpx

from simulator.delivery import (
    APP_BASE_URL,
    Attempt,
    AuthFailure,
    DeliveryOptions,
    ErrorKind,
    Event,
    RemoteRefused,
    TokenCache,
    check_header,
    checked_address,
    default_port,
    describe_transport_error,
    make_client,
    nothing_listening,
    redact_headers,
)
from simulator.errors import ExitCode, WasimError
from simulator.meta import SIGNATURE_HEADER, wrap
from simulator.models import Tap
from simulator.providers import draw_user_message_id, draw_uuid4
from simulator.rawhttp import (  # the fast client, below load and the status sender
    _connect,
    _Connection,
    _expire,
    _Failure,
    _Head,
    _signer,
)
from simulator.render import CallbackTemplate, find_template, render_tap
from simulator.taps import TapFactory, TapOptions
from simulator.timeline import Timeline
from simulator.wamid import USER_ID_LENGTHS, decode_wamid

T = TypeVar("T")

# --- latency histogram ---------------------------------------------------------------------

_BUCKETS_PER_E = 100  # about 1% wide buckets: p99 is exact to within 1%


class LatencyHistogram:
    """Latencies in fixed log-scale buckets: constant memory, percentiles within 1%."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.total = 0
        self.max_us = 0.0

    def record(self, microseconds: float) -> None:
        """Count one latency."""
        us = microseconds if microseconds > 1 else 1.0
        self.counts[int(math.log(us) * _BUCKETS_PER_E)] += 1
        self.total += 1
        if us > self.max_us:
            self.max_us = us

    def merge(self, other: LatencyHistogram) -> None:
        """Add `other`'s samples to these (a worker's, at the end of a split run)."""
        self.counts.update(other.counts)
        self.total += other.total
        self.max_us = max(self.max_us, other.max_us)

    def as_data(self) -> dict[str, Any]:
        """Plain, picklable data: the bucket counts, total and max."""
        return {"counts": dict(self.counts), "total": self.total, "max_us": self.max_us}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> LatencyHistogram:
        """The histogram `as_data` described."""
        histogram = cls()
        histogram.counts.update({int(k): int(v) for k, v in data["counts"].items()})
        histogram.total, histogram.max_us = int(data["total"]), float(data["max_us"])
        return histogram

    def percentile(self, p: float) -> float | None:
        """The p-th percentile in milliseconds (bucket midpoint), None before any sample."""
        if not self.total:
            return None
        rank = max(1, math.ceil(p / 100 * self.total))
        seen = 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen >= rank:
                return math.exp((bucket + 0.5) / _BUCKETS_PER_E) / 1000
        return self.max_us / 1000


# --- where the bodies come from --------------------------------------------------------------


class CallbackSource:
    """An endless stream of unique, valid callbacks: a new tap (and message id) each call."""

    def __init__(self, factory: TapFactory, template: CallbackTemplate,
                 pick: Callable[[], tuple[Any, Any, Any]] | None = None) -> None:
        self.factory = factory
        self.template = template
        self._pick = pick
        self.count = 0
        self.envelope = "kaleyra"  # "meta": each body in Meta's envelope (run_load sets it)
        self.pool = LEAN_POOL
        self.kind: tuple[str, Any, random.Random] | None = None  # from_kind: name, args, draws
        self._lean: list[_Skeleton] | None = []
        streams = factory.streams
        # The draws a splice makes: the same families as TapFactory.tap's, so a partition's
        # ids are its own; the order of taps is one more family.
        self._ids = (streams["message_id"], streams["trace_id"])
        self._order = streams["load_order"]
        self._ready: deque[bytes] = deque()  # bodies drawn ahead by prepare(), sent first
        # Called with each body as it leaves (`load --replies` notes the tap it carries).
        self.on_body: Callable[[bytes], None] | None = None

    @classmethod
    def from_taps(cls, options: TapOptions, template: str = "button_tap") -> CallbackSource:
        """New users from `options.countries` tapping `options.buttons`, like `render`."""
        factory = TapFactory(options)
        return cls(factory, CallbackTemplate(find_template(template), fake=factory.fake))

    @classmethod
    def from_kind(cls, options: TapOptions, kind: str, args: Any = None) -> CallbackSource:
        """New users sending callbacks of `kind` (`wasim fire --kind`), with `args` (KindArgs)."""
        from simulator.kinds import BUTTON, KindArgs, get_kind

        if kind == BUTTON:
            return cls.from_taps(options)
        get_kind(kind)
        source = cls.from_taps(options)
        source.kind = (kind, args if args is not None else KindArgs(),
                       source.factory.streams[f"kind:{kind}"])
        return source

    @classmethod
    def from_scenario(cls, scenario: Any, seed: int | None = None,
                      partition: int = 0) -> CallbackSource:
        """The scenario's business, template and cast, tapping as its first step chooses.

        `partition` k (a worker of a split run) draws its own taps and ids from the seed.
        """
        from simulator.runner import plan_scenario

        plan = plan_scenario(scenario, seed=seed)
        if not plan.users:
            raise WasimError("the scenario's cast is empty", where=str(scenario.path))
        template = scenario.template
        factory = TapFactory(TapOptions(
            seed=plan.seed, buttons=template.buttons, ref=template.ref, ref1=template.ref1,
            ref2=template.ref2, platform=scenario.cast.platform,
            business_number=plan.business.display_phone_number,
            phone_number_id=plan.business.phone_number_id, waba_id=plan.business.waba_id,
            identity=scenario.cast.identity, quirks=scenario.cast.quirks,
            enterprise=scenario.cast.enterprise, wall_clock=True, partition=partition))
        step = scenario.steps[0]
        buttons = {b.text: b for b in template.buttons}
        users, rnd = plan.users, factory.rnd
        # The brand message each user's taps answer: the one the first step names (`message:`,
        # as the run planned it), else the template message.
        answered = dict(plan.sent)
        answered.update({send.tap.user.wa_id: send.tap.template for send in plan.sends
                         if send.step == step.name})

        def pick() -> tuple[Any, Any, Any]:
            user = users[rnd.randrange(len(users))]
            # Weighted as `wasim run` weights the step; load always taps (no no_tap).
            button = step.pick_button(buttons, rnd, may_skip=False)
            return user, answered[user.wa_id], button

        callback = CallbackTemplate(find_template(template.callback), fake=factory.fake)
        return cls(factory, callback, pick)

    def next(self) -> tuple[Tap, bytes]:
        """The next tap and its exact bytes."""
        self.count += 1
        if self._pick is None:
            tap = next(self.factory.taps(1))
        else:
            user, sent, button = self._pick()
            tap = self.factory.tap(user, sent, button)
        return tap, self._render(tap)

    def _render(self, tap: Tap, rnd: random.Random | None = None) -> bytes:
        if self.kind is None:
            body = render_tap(self.template, tap)
        else:
            from simulator.kinds import kind_body

            name, args, draws = self.kind
            body = kind_body(name, tap, args, rnd or draws)
        return wrap(body) if self.envelope == "meta" else body

    def prepare(self, count: int) -> None:
        """Draw the first `count` bodies (at most the pool) now, before the clock starts.

        Filling the pool costs tens of microseconds a body; done during the run, it would
        show as wasim's own lag in the first second. The bodies are sent first, in order.
        """
        while self._lean is not None and len(self._lean) < min(count, self.pool):
            self._ready.append(self._draw())

    def body(self) -> bytes:
        """The next callback's bytes, by the lean path once the pool is full.

        The first `pool` callbacks are drawn as `next()` draws them (the same bytes as
        `render` for the same seed), and each leaves a skeleton: its bytes cut where the
        message id, timestamp and trace id go. Every later callback is one of those users
        (and buttons) tapping again: a skeleton with a new message id, timestamp and trace
        id spliced in. That is a few microseconds instead of a few tens, and what lets one
        core push tens of thousands of unique callbacks a second. A template whose bytes
        the splice cannot reproduce (checked on every skeleton) renders in full each time.
        """
        body = self._ready.popleft() if self._ready else self._draw()
        if self.on_body is not None:
            self.on_body(body)
        return body

    def _draw(self) -> bytes:
        if self._lean is None or len(self._lean) < self.pool:
            # A kind draws its own values (texts, media ids) per callback: the skeleton is
            # built with the same draws as the callback it comes from.
            state = self.kind[2].getstate() if self.kind is not None else None
            tap, body = self.next()
            if self._lean is not None:
                replay = random.Random()

                def render(marked: Tap) -> bytes:
                    if state is None:
                        return self._render(marked)
                    replay.setstate(state)
                    return self._render(marked, replay)

                skeleton = _Skeleton.make(tap, body, render)
                if skeleton is None:
                    self._lean = None  # this template cannot be spliced: render every one
                else:
                    self._lean.append(skeleton)
            return body
        self.count += 1
        lean = self._lean
        skeleton = lean[self._order.randrange(len(lean))] if len(lean) > 1 else lean[0]
        return skeleton.splice(self._ids, self.factory.clock)


# How many users (with their button and template message) one source keeps as skeletons: a
# few hundred KiB, and enough that a webhook sees a crowd rather than a handful of phones.
LEAN_POOL = 1024
_MARK = re.compile(rb"@@wasim-lean:([0-2])@@")
_MARKS = ("message_id", "timestamp", "trace_id")


class _Skeleton(NamedTuple):
    """One tap's bytes cut where its per-callback fields go, ready to splice."""

    literals: tuple[bytes, ...]
    fields: tuple[int, ...]  # which field (index into _MARKS) follows literals[i]
    wamid_head: bytes  # the wamid's raw bytes before the hex id (the user's number)
    platform: str

    @classmethod
    def make(cls, tap: Tap, body: bytes, render: Callable[[Tap], bytes]) -> _Skeleton | None:
        """`tap`'s skeleton, or None when splicing would not give `body` back exactly."""
        marked = replace(tap, message_id="@@wasim-lean:0@@", timestamp="@@wasim-lean:1@@",
                         trace_id="@@wasim-lean:2@@")
        try:
            text = render(marked)
        except (WasimError, ValueError, TypeError):  # a builder that reads the values
            return None
        pieces = _MARK.split(text)
        fields = tuple(int(i) for i in pieces[1::2])
        if 0 not in fields:
            return None  # no message id in the body: reuse would repeat callbacks
        platform = tap.user.platform if tap.user.platform in USER_ID_LENGTHS else "android"
        customer = tap.user.wa_id.encode("ascii")
        length = USER_ID_LENGTHS[platform]
        head = b"\x1c\x18" + bytes((len(customer),)) + customer + b"\x15\x02\x00" \
            + bytes((0x12, 0x18, length))
        skeleton = cls(tuple(pieces[0::2]), fields, head, platform)
        values = (tap.message_id, tap.timestamp, tap.trace_id)
        if skeleton.join(tuple(_escaped(v) for v in values)) != body:
            return None
        if not tap.message_id.startswith("wamid.") or skeleton.wamid(
                decode_wamid(tap.message_id).message_id) != tap.message_id:
            return None
        return skeleton

    def wamid(self, hex_id: str) -> str:
        """The wamid of this user's message with `hex_id`."""
        raw = self.wamid_head + hex_id.encode("ascii") + b"\x00"
        return "wamid." + base64.b64encode(raw).decode("ascii")

    def join(self, values: tuple[bytes, ...]) -> bytes:
        """The body with `values` (escaped, in _MARKS order) in their places."""
        literals, out = self.literals, [self.literals[0]]
        for i, field_index in enumerate(self.fields):
            out.append(values[field_index])
            out.append(literals[i + 1])
        return b"".join(out)

    def splice(self, ids: tuple[random.Random, random.Random],
               clock: Callable[[], int]) -> bytes:
        """A new callback: this user's tap with a new message id, timestamp and trace id."""
        message = self.wamid(draw_user_message_id(ids[0], self.platform))
        return self.join((_escaped(message), str(clock()).encode("ascii"),
                          draw_uuid4(ids[1]).encode("ascii")))


def _escaped(value: str) -> bytes:
    """`value` inside a JSON string as the wire encoder writes it (ids: only `/` changes)."""
    return value.replace("/", "\\/").encode("ascii")


# --- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadOptions:
    """How hard to push: a rate (open loop) or as fast as possible, for how long."""

    rate: float | None = None  # requests per second; None: as fast as `concurrency` allows
    duration: float | None = 10.0  # seconds; None: until `count`
    count: int | None = None  # stop after this many requests
    concurrency: int = 64  # connections (requests in flight at most)
    history_sample: int = 0  # keep 1 attempt in N in the history; 0: none
    phase: float = 0.0  # open loop: seconds the schedule starts late (worker k of N: k/rate)
    # keep figures a second (LoadStats.timeline) for an HTML report's charts: about 1 us a
    # request (benchmarks/timeline.py), so only when asked
    timeline: bool = False

    def __post_init__(self) -> None:
        check_number(self.rate, "rate", low=0, above=True)
        check_number(self.duration, "duration", low=0, high=MAX_SECONDS, above=True,
                     unit=" seconds")
        check_number(self.count, "count", low=1, high=MAX_COUNT)
        check_number(self.concurrency, "concurrency", low=1, high=MAX_CONCURRENCY)
        check_number(self.history_sample, "history_sample", low=0)


# Past these a value is a typo (10000h, an extra row of zeros), not a load test: refused,
# rather than a run that never ends or a million idle coroutines.
MAX_SECONDS = 30 * 24 * 3600.0  # --duration and --timeout
MAX_COUNT = 1_000_000_000
MAX_CONCURRENCY = 10_000  # far past where more connections stop adding requests per second


def check_number(value: float | None, field: str, *, low: float, high: float = math.inf,
                 above: bool = False, unit: str = "") -> None:
    """Refuse NaN, infinity and out-of-range values of a numeric input, naming its field (the
    face says where: `--rate`, `rate=`)."""
    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        inside = False
    else:
        inside = (value > low if above else value >= low) and value <= high
    if not inside:
        span = (f"above {_plain(low)}" if above else f"of at least {_plain(low)}") \
            + (f" and at most {_plain(high)}" if high != math.inf else "") + unit
        if isinstance(value, float):
            raise WasimError(f"expected a finite number {span}, got {value:g}", field=field)
        shown = str(value) if len(str(value)) < 30 else "a number with " \
            f"{len(str(value))} digits"
        raise WasimError(f"expected a whole number {span}, got {shown}", field=field)


def _plain(number: float) -> str:
    return f"{int(number):,}" if number == int(number) else f"{number:g}"


@dataclass
class LoadStats:
    """Running figures of a load run."""

    started: float = 0.0
    elapsed: float = 0.0
    sent: int = 0
    ok: int = 0
    late: int = 0  # open loop: requests sent more than LATE_S after their slot
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    # wasim's own lateness, apart from the target's latency: how late each request left its
    # slot (open loop), and how late the event loop ran a timer (any run).
    lag: LatencyHistogram = field(default_factory=LatencyHistogram)
    loop_lag: LatencyHistogram = field(default_factory=LatencyHistogram)
    late_busy: int = 0  # late because every connection was still waiting for an answer
    late_loop: int = 0  # late though a connection was free: wasim's loop was busy
    rate_asked: float | None = None
    connections: int = 0
    crashed: list[str] = field(default_factory=list)  # workers that died mid-run, in words
    # requests, failures and latencies a second, for the HTML report's charts
    timeline: Timeline = field(default_factory=Timeline)

    def merge(self, other: LoadStats) -> None:
        """Add another worker's figures to these (the elapsed time is the longest)."""
        self.elapsed = max(self.elapsed, other.elapsed)
        for name in ("sent", "ok", "late", "late_busy", "late_loop", "connections"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        if other.rate_asked is not None:
            self.rate_asked = (self.rate_asked or 0.0) + other.rate_asked
        self.statuses.update(other.statuses)
        self.errors.update(other.errors)
        for name in ("latency", "lag", "loop_lag"):
            getattr(self, name).merge(getattr(other, name))
        self.timeline.merge(other.timeline)

    def as_data(self, timeline: bool = True) -> dict[str, Any]:
        """Plain, picklable data for another process to merge (`from_data`); the live ticks
        leave the timeline out (only the end's figures draw charts)."""
        return {"timeline": self.timeline.as_data() if timeline else None,
                "elapsed": self.elapsed, "sent": self.sent, "ok": self.ok, "late": self.late,
                "late_busy": self.late_busy, "late_loop": self.late_loop,
                "rate_asked": self.rate_asked, "connections": self.connections,
                "statuses": dict(self.statuses), "errors": dict(self.errors),
                "latency": self.latency.as_data(), "lag": self.lag.as_data(),
                "loop_lag": self.loop_lag.as_data()}

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> LoadStats:
        """The figures `as_data` described."""
        stats = cls(elapsed=float(data["elapsed"]), sent=int(data["sent"]), ok=int(data["ok"]),
                    late=int(data["late"]), late_busy=int(data["late_busy"]),
                    late_loop=int(data["late_loop"]), rate_asked=data["rate_asked"],
                    connections=int(data["connections"]))
        stats.statuses.update({int(k): int(v) for k, v in data["statuses"].items()})
        stats.errors.update({str(k): int(v) for k, v in data["errors"].items()})
        for name in ("latency", "lag", "loop_lag"):
            setattr(stats, name, LatencyHistogram.from_data(data[name]))
        if data.get("timeline") is not None:
            stats.timeline = Timeline.from_data(data["timeline"])
        return stats

    def behind(self) -> str | None:
        """Who fell behind: "wasim", "target", or None when nobody did.

        Open loop: a request that left late either found every connection still waiting for
        the target (the target's latency times the rate is more than the connections), or
        found a connection free and the event loop too busy to send on time (wasim's own
        CPU). As fast as possible: the event loop running late means wasim's CPU, not the
        target, set the pace (and the latencies include that wait).
        """
        loop_p99 = self.loop_lag.percentile(99) or 0.0
        busy_loop = loop_p99 > LOOP_LAG_LIMIT_MS
        if self.rate_asked is None:
            return "wasim" if busy_loop else None
        if self.late <= LATE_SHARE * self.sent and not busy_loop:
            return None  # a few late requests in a run are noise, not falling behind
        if self.late_loop >= self.late_busy or busy_loop:
            return "wasim"
        return "target"

    def verdict(self) -> str | None:
        """Who fell behind, in words, with what to do; None when nobody did."""
        who = self.behind()
        loop = self.loop_lag.percentile(99) or 0.0
        if who == "wasim":
            what = "wasim fell behind the rate" if self.rate_asked is not None \
                else "wasim's CPU set the pace, not the target's"
            return (f"{what}: its event loop ran {loop:.1f} ms late at p99 (short of CPU; "
                    "the target's latencies include that wait); use more --workers, a lower "
                    "--rate, or a quieter machine")
        if who == "target":
            p99 = self.latency.percentile(99) or 0.0
            return (f"the target fell behind the rate: all {self.connections} connections were "
                    f"waiting for answers (p99 {p99:.1f} ms); wasim's loop was on time "
                    f"(p99 {loop:.1f} ms late)")
        return None

    @property
    def failed(self) -> int:
        """Requests that got no success status."""
        return self.sent - self.ok

    @property
    def error_rate(self) -> float:
        """Share of requests that failed."""
        return self.failed / self.sent if self.sent else 0.0

    @property
    def rate(self) -> float:
        """Requests per second so far."""
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def line(self) -> str:
        """The live figures, one line."""
        def ms(p: float) -> str:
            value = self.latency.percentile(p)
            return f"{value:.2f}" if value is not None else "-"

        return (f"{self.elapsed:6.1f}s  sent {self.sent:,}  {self.rate:,.0f}/s  "
                f"errors {self.failed:,} ({self.error_rate:.2%})  p50 {ms(50)}  p95 {ms(95)}  "
                f"p99 {ms(99)} ms")

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain data, for the JSON report."""
        return {
            "duration_s": round(self.elapsed, 3), "sent": self.sent, "ok": self.ok,
            "failed": self.failed, "error_rate": round(self.error_rate, 6),
            "rate_per_s": round(self.rate, 1), "late": self.late,
            "late_busy": self.late_busy, "late_loop": self.late_loop,
            "fell_behind": self.behind(), "verdict": self.verdict(),
            "crashed_workers": list(self.crashed),
            "schedule_lag_ms": {f"p{p}": self.lag.percentile(p) for p in (50, 99)}
            | {"max": self.lag.max_us / 1000 if self.lag.total else None},
            "loop_lag_ms": {f"p{p}": self.loop_lag.percentile(p) for p in (50, 99)}
            | {"max": self.loop_lag.max_us / 1000 if self.loop_lag.total else None},
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "latency_ms": {f"p{p}": self.latency.percentile(p) for p in (50, 95, 99)}
            | {"max": self.latency.max_us / 1000 if self.latency.total else None},
        }


class _Tokens:
    """The run's bearer token, shared by every connection, as delivery.TokenCache keeps it.

    Fetched once before the first request. When the target answers 401 the token may have
    been revoked: fetched again, once for all the requests that met it, and each of those
    is sent again once. Renewed before it expires as well. A token endpoint that fails is
    asked again at most once a second.
    """

    def __init__(self, delivery: DeliveryOptions, head: _Head) -> None:
        self.delivery = delivery
        self.head = head
        self.cache = TokenCache(delivery.auth, time.time)
        self.generation = 0
        self.lock = asyncio.Lock()
        self.failed_at = -math.inf
        self.refreshed = 0  # tokens fetched after the first

    async def start(self, given: tuple[str, float] | None = None) -> None:
        """The first token (or `given`, already fetched); a refusal is one error."""
        if given is not None:
            self.cache.token, self.cache.expires_at = given
        else:
            try:
                await self._fetch()
            except AuthFailure as exc:  # said once, before the run, not per request
                raise WasimError(f"cannot get a token: {exc}", field="token_url") from None
        self.head.set_token(self.cache.token)

    async def _fetch(self) -> None:
        delivery = self.delivery
        async with make_client(delivery.target, delivery.timeout,
                               allow_remote=delivery.allow_remote,
                               resolver=delivery.resolver,
                               remote_hosts=delivery.remote_hosts) as client:
            await self.cache.get(client, delivery.timeout)

    def expiring(self) -> bool:
        """Whether the token is about to expire (TokenCache renews 5 s early)."""
        return self.cache.token is not None and not self.cache.valid()

    async def refresh(self, seen: int) -> bool:
        """A new token after a 401 under token `seen`; True when there is a newer one."""
        async with self.lock:
            if self.generation != seen:
                return True  # another request met the 401 first and fetched it
            if time.monotonic() - self.failed_at < 1.0:
                return False
            self.cache.forget()
            try:
                await self._fetch()
            except AuthFailure:
                self.failed_at = time.monotonic()
                return False
            self.generation += 1
            self.refreshed += 1
            self.head.set_token(self.cache.token)
            return True


async def fetch_token(delivery: DeliveryOptions) -> tuple[str, float] | None:
    """The bearer token of `delivery` and when it expires (unix time), or None without one.

    Fetched once by the process that starts the workers, so a refusal is said once.
    """
    if delivery.auth.token_url is None:
        return None
    tokens = _Tokens(delivery, _Head(delivery, httpx.URL(delivery.target.url)))
    await tokens.start()
    assert tokens.cache.token is not None
    return tokens.cache.token, tokens.cache.expires_at


def _tls_context() -> ssl.SSLContext:
    """The TLS settings of every https connection: the authorities httpx trusts.

    certifi's bundle, or the one SSL_CERT_FILE names (a test's own authority, a company's
    proxy), as httpx does; the certificate and host name are always checked.
    """
    import os

    import certifi

    return ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE") or certifi.where())


async def run_load(
    source: CallbackSource,
    delivery: DeliveryOptions,
    options: LoadOptions,
    *,
    on_tick: Callable[[LoadStats], None] | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
    on_start: Callable[[], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    should_stop: Callable[[], bool] | None = None,
    token: tuple[str, float] | None = None,
    client: httpx.AsyncClient | None = None,
) -> LoadStats:
    """Send unique callbacks until the duration or count runs out; the figures at the end.

    `on_start` is called once everything that can refuse the run (headers, the token) has
    passed, just before the first request: a refusal is then the only thing said.
    `token` is a bearer token already fetched (and when it expires, unix time): a worker
    process gets its parent's. `client` is the httpx client for an app or an https target
    when the caller has one (the runner's seam); otherwise one is made for the run.
    """
    stats = LoadStats(started=clock(), rate_asked=options.rate,
                      connections=options.concurrency)
    target = delivery.target
    url = httpx.URL(target.url)
    fast = target.kind == "url" and url.scheme in ("http", "https") and client is None
    check_load(delivery, options)
    head = _Head(delivery, url)
    auth = _Tokens(delivery, head) if delivery.auth.token_url is not None else None
    if auth is not None:
        await auth.start(token)
    source.envelope = delivery.envelope
    # The signature is the one per-request header: each body has its own (see _signer).
    sign = _signer(delivery)
    recorded = redact_headers(head.headers + ([(SIGNATURE_HEADER, "")] if sign else []))
    slots = _Slots(options, clock, stats.started, stats)
    stop = asyncio.Event()

    success: dict[int, bool] = {}  # is_success per status seen, not per request
    first_error: list[str] = []  # why the first request failed, for the unreachable verdict
    timeline = options.timeline

    def done_one(body: bytes, status: int | None, error: tuple[str, str] | None,
                 began: float, ended: float) -> None:
        stats.sent += 1
        stats.latency.record((ended - began) * 1e6)
        ok = False
        if status is not None:
            stats.statuses[status] += 1
            known = success.get(status)
            if known is None:
                known = success[status] = delivery.is_success(status)
            if known:
                ok = True
                stats.ok += 1
        if timeline:
            stats.timeline.record(ended, (ended - began) * 1e6, not ok)
        if error is not None:
            stats.errors[error[0]] += 1
            if not first_error:
                first_error.append(error[1])
        if options.history_sample and on_attempt is not None \
                and stats.sent % options.history_sample == 0:
            event = Event.from_body(body, source.factory.options.seed)
            on_attempt(Attempt(
                event=event, delivery_id=f"load_{stats.sent}", number=1,
                started_at=time.time(), target=target.label, method=delivery.method,
                url=target.url, request_headers=recorded, status=status,
                latency_ms=(ended - began) * 1000,
                error=error[1] if error else None,
                error_kind=_KINDS.get(error[0], "protocol") if error else None,
                delivered=status is not None and delivery.is_success(status)))

    own_client = False
    if fast:
        port = default_port(url)
        # Every connection goes to the address checked now, not to the name (DNS rebinding).
        host = await checked_address(url.host, port, delivery.allow_remote, delivery.resolver,
                                     delivery.remote_hosts)
        tls = _tls_context() if url.scheme == "https" else None
        worker = _fast_worker(source, head, host, port, delivery.timeout, slots, done_one,
                              clock, sign, tls, url.host, auth)
    else:
        if client is None:
            own_client = True
            client = make_client(target, delivery.timeout, allow_remote=delivery.allow_remote,
                                 resolver=delivery.resolver,
                                 remote_hosts=delivery.remote_hosts)
        worker = _httpx_worker(source, client, head, delivery, slots, done_one, clock, sign,
                               auth)
    source.prepare(options.count or source.pool)
    if on_start is not None:
        on_start()
    slots.restart(clock())  # the schedule starts now: on_start may have waited, for others

    async def ticker() -> None:
        beat = 0
        while not stop.is_set():
            await asyncio.sleep(0.1)
            beat += 1
            if should_stop is not None and should_stop():
                slots.deadline = clock()  # no new requests; those in flight finish
            if auth is not None and auth.expiring():
                await auth.refresh(auth.generation)  # before the target says 401
            if beat % 5 == 0:
                stats.elapsed = clock() - stats.started
                if on_tick is not None:
                    on_tick(stats)

    tick = asyncio.ensure_future(ticker())
    probe = asyncio.ensure_future(_probe_loop(stop, clock, asyncio.sleep, stats.loop_lag))
    try:
        await asyncio.gather(*(worker() for _ in range(options.concurrency)))
    finally:
        stop.set()
        tick.cancel()
        probe.cancel()
        if own_client and client is not None:
            await client.aclose()
    stats.elapsed = clock() - stats.started
    if stats.sent and not stats.statuses and set(stats.errors) == {"connect"}:
        raise nothing_listening(str(url), first_error[0] if first_error else None)
    return stats


def run_fast(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on uvloop when it is installed (a fifth less CPU a request), else asyncio."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def check_load(delivery: DeliveryOptions, options: LoadOptions) -> None:
    """Refuse what would break the run, before anything is sent: headers, timeout, sockets."""
    for name, value in delivery.headers:
        check_header(name, value, None)
    check_number(delivery.timeout, "timeout", low=0, high=MAX_SECONDS, above=True,
                 unit=" seconds")
    if delivery.target.kind == "url" and delivery.target.url.startswith(("http://",
                                                                         "https://")):
        _check_open_files(min(options.concurrency, options.count or options.concurrency))


# How load's error kinds are recorded on a sampled attempt (the history's vocabulary).
_KINDS: dict[str, ErrorKind] = {"connect": "connect", "timeout": "timeout"}


def _check_open_files(connections: int) -> None:
    """Refuse more connections than this process may open, before the first one fails."""
    try:
        import resource
    except ImportError:  # not on this platform: the connections will say so themselves
        return
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    spare = 64  # for the interpreter, the terminal and the history
    if soft != resource.RLIM_INFINITY and connections > soft - spare:
        raise WasimError(f"{connections} connections need more open files than this process "
                         f"may have ({soft})", field="concurrency",
                         hint=f"Use at most {max(1, soft - spare)}, or raise `ulimit -n`.")


# A request that leaves this much after its slot is "late"; a timer the event loop runs this
# much late means the loop (wasim's CPU), not the target, is what holds the requests back.
LATE_S = 0.010
LATE_SHARE = 0.01  # more late requests than this share: someone fell behind
LOOP_LAG_LIMIT_MS = 10.0
LOOP_PROBE_S = 0.02  # how often the loop's lateness is sampled


class _Slots:
    """Hands out request slots: numbered, with a due time in open-loop mode, until done."""

    def __init__(self, options: LoadOptions, clock: Callable[[], float], started: float,
                 stats: LoadStats | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
        self.options = options
        self.clock = clock
        self.sleep = sleep
        self.started = started
        self.issued = 0
        self.stats = stats if stats is not None else LoadStats(started=started)
        self.deadline = started + options.duration if options.duration else math.inf

    @property
    def late(self) -> int:
        """Requests that left more than LATE_S after their slot."""
        return self.stats.late

    def restart(self, now: float) -> None:
        """Start the schedule (and the duration) at `now`, before any slot is taken."""
        options = self.options
        self.started = self.stats.started = now
        self.deadline = now + options.duration if options.duration else math.inf

    def take(self) -> float | None:
        """The due time of the next request (0 for "now"), or None when the run is over."""
        options = self.options
        if options.count is not None and self.issued >= options.count:
            return None
        if self.clock() >= self.deadline:
            return None
        self.issued += 1
        if options.rate is None:
            return 0.0
        due = self.started + options.phase + (self.issued - 1) / options.rate
        return due if due < self.deadline else None

    async def next_turn(self) -> bool:
        """Wait for the next request's slot; False when the run is over.

        Open loop, it also measures how late the request leaves: a worker that comes to its
        slot after the due time was held by its previous request (the target); one that
        waited and woke up late was held by the event loop (wasim).
        """
        due = self.take()
        if due is None:
            return False
        if not due:
            return True
        now = self.clock()
        busy = now >= due
        if not busy:
            await self.sleep(due - now)
            now = self.clock()
        lag = now - due
        stats = self.stats
        stats.lag.record(lag * 1e6 if lag > 0 else 0.0)
        if lag > LATE_S:
            stats.late += 1
            if busy:
                stats.late_busy += 1
            else:
                stats.late_loop += 1
        return True


async def _probe_loop(stop: asyncio.Event, clock: Callable[[], float],
                      sleep: Callable[[float], Awaitable[Any]], lag: LatencyHistogram,
                      period: float = LOOP_PROBE_S) -> None:
    """Sample how late the event loop runs a timer: wasim's own lag, not the target's."""
    while not stop.is_set():
        before = clock()
        await sleep(period)
        late = clock() - before - period
        lag.record(late * 1e6 if late > 0 else 0.0)


class _Expiry:
    """The deadlines of a run's requests, checked in one sweep every few milliseconds.

    A timer per request (call_at, then cancel) was a tenth of the fast client's time; the
    sweep costs one pass over the connections per tick, and a request expires at most a
    tick late.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.tick = min(0.05, timeout / 20)
        self.cells: list[list[Any]] = []  # per worker: [deadline, future or None]
        self.task: asyncio.Future[None] | None = None
        self.workers = 0

    def join(self) -> list[Any]:
        """A worker's cell; the sweep runs while any worker does."""
        cell: list[Any] = [0.0, None]
        self.cells.append(cell)
        self.workers += 1
        if self.task is None:
            self.task = asyncio.ensure_future(self._sweep())
        return cell

    def leave(self) -> None:
        """A worker is done; the last one stops the sweep."""
        self.workers -= 1
        if not self.workers and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick)
            now = loop.time()
            for cell in self.cells:
                if cell[1] is not None and now >= cell[0]:
                    _expire(cell[1], self.timeout)


def _fast_worker(source: CallbackSource, head: _Head, host: str, port: int, timeout: float,
                 slots: _Slots, done: Callable[..., None],
                 clock: Callable[[], float],
                 sign: Callable[[bytes], bytes | None] | None = None,
                 tls: ssl.SSLContext | None = None,
                 server_name: str | None = None,
                 auth: _Tokens | None = None) -> Callable[[], Any]:
    expiry = _Expiry(timeout)

    async def worker() -> None:
        loop = asyncio.get_running_loop()
        connection: _Connection | None = None
        cell = expiry.join()
        try:
            while await slots.next_turn():
                body = source.body()
                began = clock()
                cell[0] = loop.time() + timeout  # connecting, sending and the whole answer
                try:
                    if connection is None or connection.closed:
                        connection = None
                        connection = await _connect(loop, host, port, timeout, tls,
                                                    server_name)
                    signature = sign(body) if sign is not None else None
                    end = b"\r\n\r\n" if signature is None \
                        else b"\r\nX-Hub-Signature-256: " + signature + b"\r\n\r\n"
                    tail = b"".join((str(len(body)).encode(), end, body))
                    generation = auth.generation if auth is not None else 0
                    future = connection.send(head.prefix + tail)
                    cell[1] = future
                    try:
                        answer = await future
                    finally:
                        cell[1] = None
                    if answer.status == 401 and auth is not None \
                            and await auth.refresh(generation):
                        # The token may have been revoked: sent once more with the new one.
                        if answer.close or connection.closed:
                            connection.close()
                            connection = await _connect(loop, host, port, timeout, tls,
                                                        server_name)
                        future = connection.send(head.prefix + tail)
                        cell[1] = future
                        try:
                            answer = await future
                        finally:
                            cell[1] = None
                    if answer.close:
                        connection.close()
                        connection = None
                    done(body, answer.status, None, began, clock())
                except _Failure as failure:
                    done(body, None, (failure.kind, str(failure)), began, clock())
                    if connection is not None:
                        connection.close()
                        connection = None
                    if failure.kind in ("connect", "socket"):
                        await asyncio.sleep(0.05)  # a refused port answers at once: don't spin
        finally:
            expiry.leave()
            if connection is not None:
                connection.close()

    return worker


def _httpx_worker(source: CallbackSource, client: httpx.AsyncClient,
                  head: _Head | list[tuple[bytes, bytes]], delivery: DeliveryOptions,
                  slots: _Slots, done: Callable[..., None], clock: Callable[[], float],
                  sign: Callable[[bytes], bytes | None] | None = None,
                  auth: _Tokens | None = None) -> Callable[[], Any]:
    url = delivery.target.url
    if url.startswith(APP_BASE_URL):
        url = url[len(APP_BASE_URL):] or "/"

    async def exchange(body: bytes) -> int:
        generation = auth.generation if auth is not None else 0
        status = await exchange_once(body)
        if status == 401 and auth is not None and await auth.refresh(generation):
            status = await exchange_once(body)  # once more, with the new token
        return status

    async def exchange_once(body: bytes) -> int:
        headers = head.raw if isinstance(head, _Head) else head
        signature = sign(body) if sign is not None else None
        sent = headers if signature is None \
            else [*headers, (SIGNATURE_HEADER.encode(), signature)]
        async with client.stream(delivery.method, url, content=body,
                                 headers=sent) as response:
            # Read to the end, so the connection can carry the next request, keeping none
            # of it: an endless or gigantic body costs time (bounded below), not memory.
            async for _ in response.aiter_raw():
                pass
            return response.status_code

    async def worker() -> None:
        while await slots.next_turn():
            item = source.body()
            began = clock()
            try:
                status = await asyncio.wait_for(exchange(item), delivery.timeout)
            except (TimeoutError, httpx.TimeoutException):
                done(item, None, ("timeout", f"no answer within {delivery.timeout:g} s"), began,
                     clock())
            except httpx.ConnectError as exc:
                # The guard's refusal (a name that moved off this machine) in its own words.
                done(item, None, ("connect", str(exc) if isinstance(exc, RemoteRefused)
                                  else "connection refused"), began, clock())
                await asyncio.sleep(0.05)
            except (httpx.ReadError, httpx.WriteError) as exc:
                reason = f" ({exc})" if str(exc) else ""
                done(item, None, ("reset", f"the connection was reset mid-request{reason}"),
                     began, clock())
            except httpx.TransportError as exc:
                done(item, None, ("protocol", describe_transport_error(exc)), began, clock())
            else:
                done(item, status, None, began, clock())

    return worker


# --- workers: one process per core -----------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """Where callbacks come from, as plain data: each worker process builds its own source.

    Worker k draws from partition k of the seed (TapOptions.partition): its own users and
    ids, the same business and campaign; partition 0 is what one process alone draws.
    """

    taps: TapOptions | None = None
    scenario: str | None = None  # a scenario file or built-in name, loaded again per worker
    seed: int | None = None
    identity: tuple[tuple[str, float], ...] | None = None  # --identity over the scenario's
    kind: str | None = None  # `--kind`: callbacks of this kind (not with a scenario)
    kind_args: Any = None  # its KindArgs
    template_env: tuple[str, ...] = ()  # the variables the scenario may read (--template-env)

    def build(self, partition: int = 0) -> CallbackSource:
        """The source of worker `partition`."""
        if self.scenario is not None:
            from simulator.scenarios import load_scenario, template_env

            loaded = load_scenario(self.scenario, seed=self.seed,
                                   env=template_env(self.template_env))
            if self.identity is not None:
                loaded = replace(loaded, cast=replace(loaded.cast, identity=self.identity))
            return CallbackSource.from_scenario(loaded, seed=self.seed, partition=partition)
        if self.taps is None:
            raise WasimError("a load source needs tap options or a scenario")
        taps = replace(self.taps, partition=partition)
        if self.kind is not None:
            return CallbackSource.from_kind(taps, self.kind, self.kind_args)
        return CallbackSource.from_taps(taps)


@dataclass(frozen=True)
class WorkerJob:
    """What one worker process runs: plain, picklable values only."""

    index: int
    spec: SourceSpec
    settings: dict[str, Any]  # resolved delivery settings (settings.SETTINGS keys)
    allow_remote: bool
    options: LoadOptions
    token: tuple[str, float] | None = None  # fetched once by the parent


def split_options(options: LoadOptions, workers: int) -> list[LoadOptions]:
    """Each worker's share: rate/N, the connections and the count split as evenly as can be.

    Never more workers than connections (or than requests): a worker with nothing to do is
    not started.
    """
    workers = max(1, min(workers, options.concurrency, options.count or workers))
    shares = []
    for k in range(workers):
        connections = options.concurrency // workers + (k < options.concurrency % workers)
        count = None if options.count is None \
            else options.count // workers + (k < options.count % workers)
        rate = None if options.rate is None else options.rate / workers
        # Worker k's slots fall between the others', so together they leave evenly spaced.
        phase = 0.0 if options.rate is None else k / options.rate
        shares.append(replace(options, rate=rate, concurrency=connections, count=count,
                              phase=phase))
    return shares


def _error_data(exc: WasimError) -> dict[str, Any]:
    return {"what": exc.what, "where": exc.where, "hint": exc.hint,
            "exit_code": int(exc.exit_code), "field": exc.field}


def _error_from(data: dict[str, Any]) -> WasimError:
    return WasimError(data["what"], where=data["where"], hint=data["hint"],
                      exit_code=ExitCode(data["exit_code"]), field=data["field"])


def _worker_main(job: WorkerJob, queue: Any, go: Any, stop: Any) -> None:
    """One worker process: build its source, wait for the others, run, report its figures."""
    import multiprocessing

    from simulator.delivery import delivery_options_from
    from simulator.settings import flag_of

    parent = multiprocessing.parent_process()

    def parent_alive() -> bool:
        return parent is None or parent.is_alive()

    index = job.index
    try:
        source = job.spec.build(index)
        delivery = delivery_options_from(job.settings, flag_of, allow_remote=job.allow_remote)

        def ready() -> None:
            queue.put(("ready", index, None))
            while not go.wait(0.5):  # every worker starts its schedule at the same moment
                if not parent_alive():
                    raise WasimError("the load's main process is gone")

        def should_stop() -> bool:
            return bool(stop.is_set()) or not parent_alive()

        def tick(stats: LoadStats) -> None:
            queue.put(("tick", index, stats.as_data(timeline=False)))

        def attempt(record: Attempt) -> None:
            # Each worker counts its own requests: its index keeps the ids apart.
            record = replace(record, delivery_id=f"{record.delivery_id}_w{index}")
            queue.put(("attempt", index, record))

        stats = run_fast(run_load(source, delivery, job.options, on_tick=tick,
                                  on_attempt=attempt if job.options.history_sample else None,
                                  on_start=ready, should_stop=should_stop,
                                  token=job.token))
    except WasimError as exc:
        queue.put(("error", index, _error_data(exc)))
    else:
        queue.put(("done", index, stats.as_data()))


def run_workers(spec: SourceSpec, settings: dict[str, Any], options: LoadOptions,
                workers: int, *, allow_remote: bool = False,
                on_tick: Callable[[LoadStats], None] | None = None,
                on_attempt: Callable[[Attempt], None] | None = None,
                on_start: Callable[[], None] | None = None,
                clock: Callable[[], float] = time.perf_counter,
                grace: float = 2.0) -> LoadStats:
    """Run the load in `workers` processes; their figures merged, one live display.

    Processes are spawned (no fork of a running event loop); each gets plain options and
    builds its own source from partition k of the seed. They start together once every one
    is ready. A refusal in any (a bad token URL, nothing listening) stops them all and is
    raised as one error; a worker that dies is reported in `crashed` and stops the run;
    Ctrl+C stops every worker (requests in flight finish or time out) and is re-raised.
    """
    import multiprocessing
    import queue as queues
    import signal

    from simulator.delivery import delivery_options_from
    from simulator.settings import flag_of

    shares = split_options(options, workers)
    # Refused here, once, before any process starts: bad settings, a token that cannot be had.
    delivery = delivery_options_from(settings, flag_of, allow_remote=allow_remote)
    check_load(delivery, options)
    token = run_fast(fetch_token(delivery))
    context = multiprocessing.get_context("spawn")
    inbox = context.Queue()
    go, stop = context.Event(), context.Event()
    jobs = [WorkerJob(k, spec, dict(settings), allow_remote, share, token)
            for k, share in enumerate(shares)]
    processes = [context.Process(target=_worker_main, args=(job, inbox, go, stop),
                                 name=f"wasim-load-{job.index}", daemon=True) for job in jobs]
    # Ctrl+C reaches the whole process group: the workers ignore it (an ignored signal
    # stays ignored across exec) and stop when this process tells them, with their figures.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for process in processes:
            process.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    latest: dict[int, LoadStats] = {}
    finished: set[int] = set()
    ready: set[int] = set()
    dead_since: dict[int, float] = {}
    crashed: list[str] = []
    error: WasimError | None = None
    started = clock()
    last_tick = started

    def merged() -> LoadStats:
        total = LoadStats(started=started)
        for part in latest.values():
            total.merge(part)
        total.elapsed = max(total.elapsed, clock() - started) if go.is_set() else 0.0
        return total

    def receive(timeout: float) -> None:
        nonlocal error, started
        try:
            kind, index, data = inbox.get(timeout=timeout)
        except queues.Empty:
            return
        if kind == "ready":
            ready.add(index)
            if len(ready) == len(processes):
                if on_start is not None:
                    on_start()
                started = clock()
                go.set()
        elif kind == "tick":
            latest[index] = LoadStats.from_data(data)
        elif kind == "attempt":
            if on_attempt is not None:
                on_attempt(data)
        elif kind == "done":
            latest[index] = LoadStats.from_data(data)
            finished.add(index)
        elif kind == "error":
            finished.add(index)
            if error is None:
                error = _error_from(data)
            stop.set()
            go.set()

    try:
        while len(finished) + len(crashed) < len(processes):
            receive(0.1)
            now = clock()
            for k, process in enumerate(processes):
                if k in finished or process.exitcode is None or \
                        any(f"worker {k} " in c for c in crashed):
                    continue
                # A worker's last message may still be on its way when it exits: wait a
                # little for it before calling the exit a crash.
                if now - dead_since.setdefault(k, now) > 1.0:
                    crashed.append(f"worker {k} died (exit code {process.exitcode})")
                    stop.set()
                    go.set()
            if go.is_set() and latest and on_tick is not None and now - last_tick >= 0.5:
                last_tick = now
                on_tick(merged())
    except KeyboardInterrupt:
        stop.set()
        go.set()
        deadline = clock() + float(settings.get("timeout", 10.0)) + grace
        while len(finished) < len(processes) and clock() < deadline \
                and any(p.is_alive() for p in processes):
            receive(0.1)
        raise
    finally:
        for process in processes:
            process.join(timeout=grace)
            if process.is_alive():
                process.terminate()
                process.join(timeout=grace)
        inbox.close()
        inbox.join_thread()
    if error is not None:
        raise error
    stats = merged()
    stats.elapsed = max(part.elapsed for part in latest.values()) if latest else 0.0
    stats.crashed = crashed
    stats.started = started
    if stats.sent and not stats.statuses and set(stats.errors) == {"connect"}:
        raise nothing_listening(str(settings.get("url", "")))
    return stats
