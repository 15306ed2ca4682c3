"""Load: unique, valid callbacks at a target rate or as fast as possible, with live figures.

The network path is a small HTTP/1.1 client on asyncio's Protocol API with kept-alive
connections: httpx (used everywhere else) spends ~900 us of Python per request, which caps a
load run near 1,100 requests/s on this kind of machine; this client spends a few tens. It
speaks only what a webhook needs: one request at a time per connection, Content-Length or
chunked answers. In-process apps and https targets go through httpx as usual.

Memory stays flat however long the run: latencies go into a fixed log-scale histogram,
and the history is off (or keeps 1 attempt in N).
"""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulator.delivery import (
    APP_BASE_URL,
    Attempt,
    AuthFailure,
    DeliveryOptions,
    Event,
    TokenCache,
    callback_headers,
    make_client,
    redact_headers,
)
from simulator.errors import ExitCode, WasimError
from simulator.models import Tap
from simulator.render import CallbackTemplate, find_template, render_tap
from simulator.taps import TapFactory, TapOptions

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

    @classmethod
    def from_taps(cls, options: TapOptions, template: str = "button_tap") -> CallbackSource:
        """New users from `options.countries` tapping `options.buttons`, like `render`."""
        factory = TapFactory(options)
        return cls(factory, CallbackTemplate(find_template(template), fake=factory.fake))

    @classmethod
    def from_scenario(cls, scenario: Any, seed: int | None = None) -> CallbackSource:
        """The scenario's business, template and cast, tapping as its first step chooses."""
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
            enterprise=scenario.cast.enterprise, wall_clock=True))
        step = scenario.steps[0]
        labels = [b.text for b in template.buttons]
        weights = [1.0] * len(labels)
        if step.button is not None:
            weights = [1.0 if label == step.button else 0.0 for label in labels]
        elif step.choices:
            chosen = dict(step.choices)
            weights = [chosen.get(label, 0.0) for label in labels]
        users, rnd = plan.users, factory.rnd

        def pick() -> tuple[Any, Any, Any]:
            user = users[rnd.randrange(len(users))]
            button = rnd.choices(template.buttons, weights=weights)[0]
            return user, plan.sent[user.wa_id], button

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
        return tap, render_tap(self.template, tap)


# --- the fast client -------------------------------------------------------------------------


class _Failure(Exception):
    """A request that got no HTTP answer: refused, reset, timed out or garbled."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Connection(asyncio.Protocol):
    """One kept-alive HTTP/1.1 connection, one request in flight at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            try:
                answer = _parse_response(self.buffer)
            except ValueError as exc:
                waiter.set_exception(_Failure("protocol", f"garbled answer: {exc}"))
                return
            if answer is not None:
                self.waiter = None
                waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(_Failure("connect", "the connection was closed mid-answer"))

    def send(self, data: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        """Write a request; the future resolves to (status, body, server closes)."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        """Close the connection."""
        if self.transport is not None:
            self.transport.close()


def _parse_response(buffer: bytearray) -> tuple[int, bytes, bool] | None:
    """A complete answer at the start of `buffer` (consumed), or None to wait for more."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    if not head.startswith(b"http/1."):
        raise ValueError("not an HTTP/1.x status line")
    status = int(head[9:12])
    close = b"\r\nconnection: close" in head
    start = head.find(b"\r\ncontent-length:")
    if start >= 0:
        stop = head.find(b"\r\n", start + 2)
        length = int(head[start + 17: stop if stop >= 0 else None])
        total = end + 4 + length
        if len(buffer) < total:
            return None
        body = bytes(buffer[end + 4: total])
        del buffer[:total]
        return status, body, close
    if b"\r\ntransfer-encoding: chunked" in head:
        pos, body_parts = end + 4, list[bytes]()
        while True:
            line_end = buffer.find(b"\r\n", pos)
            if line_end < 0:
                return None
            size = int(bytes(buffer[pos:line_end]).split(b";")[0], 16)
            if size == 0:
                trailer_end = buffer.find(b"\r\n\r\n", line_end)
                if trailer_end < 0 and buffer[line_end:line_end + 4] != b"\r\n\r\n":
                    return None
                done = (trailer_end if trailer_end >= 0 else line_end) + 4
                del buffer[:done]
                return status, b"".join(body_parts), close
            if len(buffer) < line_end + 2 + size + 2:
                return None
            body_parts.append(bytes(buffer[line_end + 2: line_end + 2 + size]))
            pos = line_end + 2 + size + 2
    if status in (204, 304) or 100 <= status < 200:
        del buffer[:end + 4]
        return status, b"", close
    raise ValueError("an answer with neither Content-Length nor chunked encoding")


# --- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadOptions:
    """How hard to push: a rate (open loop) or as fast as possible, for how long."""

    rate: float | None = None  # requests per second; None: as fast as `concurrency` allows
    duration: float | None = 10.0  # seconds; None: until `count`
    count: int | None = None  # stop after this many requests
    concurrency: int = 64  # connections (requests in flight at most)
    history_sample: int = 0  # keep 1 attempt in N in the history; 0: none


@dataclass
class LoadStats:
    """Running figures of a load run."""

    started: float = 0.0
    elapsed: float = 0.0
    sent: int = 0
    ok: int = 0
    late: int = 0  # open loop: requests sent more than 10 ms after their slot
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

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
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "latency_ms": {f"p{p}": self.latency.percentile(p) for p in (50, 95, 99)}
            | {"max": self.latency.max_us / 1000 if self.latency.total else None},
        }


async def run_load(
    source: CallbackSource,
    delivery: DeliveryOptions,
    options: LoadOptions,
    *,
    on_tick: Callable[[LoadStats], None] | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> LoadStats:
    """Send unique callbacks until the duration or count runs out; the figures at the end."""
    stats = LoadStats(started=clock())
    target = delivery.target
    url = httpx.URL(target.url)
    fast = target.kind == "url" and url.scheme == "http"
    token = None
    if delivery.auth.token_url is not None:
        async with make_client(target, delivery.timeout) as client:
            cache = TokenCache(delivery.auth, time.time)
            try:
                token = await cache.get(client, delivery.timeout)
            except AuthFailure as exc:  # said once, before the run, not per request
                raise WasimError(f"cannot get a token: {exc}", where="--token-url") from None
    # The same header set as every other face (delivery.callback_headers).
    headers = callback_headers(delivery, token).multi_items()
    recorded = redact_headers(headers)
    slots = _Slots(options, clock, stats.started)
    stop = asyncio.Event()

    def done_one(tap_body: tuple[Tap, bytes], status: int | None, error: tuple[str, str] | None,
                 began: float, ended: float) -> None:
        stats.sent += 1
        stats.latency.record((ended - began) * 1e6)
        if status is not None:
            stats.statuses[status] += 1
            if delivery.is_success(status):
                stats.ok += 1
        if error is not None:
            stats.errors[error[0]] += 1
        if options.history_sample and on_attempt is not None \
                and stats.sent % options.history_sample == 0:
            event = Event.from_body(tap_body[1], source.factory.options.seed)
            on_attempt(Attempt(
                event=event, delivery_id=f"load_{stats.sent}", number=1,
                started_at=time.time(), target=target.label, method=delivery.method,
                url=target.url, request_headers=recorded, status=status,
                latency_ms=(ended - began) * 1000,
                error=error[1] if error else None,
                error_kind=error[0] if error else None,  # type: ignore[arg-type]
                delivered=status is not None and delivery.is_success(status)))

    if fast:
        prefix = (f"{delivery.method} {url.raw_path.decode()} HTTP/1.1\r\n"
                  f"Host: {url.netloc.decode()}\r\n"
                  + "".join(f"{k}: {v}\r\n" for k, v in headers)
                  + "Content-Length: ").encode("latin-1")
        port = url.port or 80
        host = url.host
        worker = _fast_worker(source, prefix, host, port, delivery.timeout, slots, done_one,
                              clock)
    else:
        client = make_client(target, delivery.timeout)
        worker = _httpx_worker(source, client, dict(headers), delivery, slots, done_one, clock)

    async def ticker() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.5)
            stats.elapsed = clock() - stats.started
            if on_tick is not None:
                on_tick(stats)

    tick = asyncio.ensure_future(ticker())
    try:
        await asyncio.gather(*(worker() for _ in range(options.concurrency)))
    finally:
        stop.set()
        tick.cancel()
        if not fast:
            await client.aclose()
    stats.elapsed = clock() - stats.started
    stats.late = slots.late
    if stats.sent and not stats.statuses and set(stats.errors) == {"connect"}:
        raise WasimError(f"Nothing is listening on {url.host}:{url.port or 80}.",
                         hint="Is your webhook running? `wasim receive` starts a test one.",
                         exit_code=ExitCode.UNREACHABLE)
    return stats


class _Slots:
    """Hands out request slots: numbered, with a due time in open-loop mode, until done."""

    def __init__(self, options: LoadOptions, clock: Callable[[], float], started: float) -> None:
        self.options = options
        self.clock = clock
        self.started = started
        self.issued = 0
        self.late = 0  # requests that left more than 10 ms after their slot
        self.deadline = started + options.duration if options.duration else math.inf

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
        due = self.started + (self.issued - 1) / options.rate
        return due if due < self.deadline else None

    async def next_turn(self) -> bool:
        """Wait for the next request's slot; False when the run is over."""
        due = self.take()
        if due is None:
            return False
        wait = due - self.clock()
        if wait > 0:
            await asyncio.sleep(wait)
        elif due and wait < -0.010:
            self.late += 1
        return True


def _fast_worker(source: CallbackSource, prefix: bytes, host: str, port: int, timeout: float,
                 slots: _Slots, done: Callable[..., None],
                 clock: Callable[[], float]) -> Callable[[], Any]:
    async def worker() -> None:
        loop = asyncio.get_running_loop()
        connection: _Connection | None = None
        while await slots.next_turn():
            item = source.next()
            body = item[1]
            began = clock()
            try:
                if connection is None or connection.closed:
                    connection = None
                    try:
                        _, connection = await asyncio.wait_for(
                            loop.create_connection(_Connection, host, port), timeout)
                    except (OSError, TimeoutError):
                        raise _Failure("connect", "connection refused") from None
                live = connection
                assert live is not None  # made just above, or kept from the last request
                future = live.send(b"".join((prefix, str(len(body)).encode(),
                                                   b"\r\n\r\n", body)))
                timer = loop.call_later(timeout, _expire, future, timeout)
                try:
                    status, _, close = await future
                finally:
                    timer.cancel()
                if close:
                    live.close()
                    connection = None
                done(item, status, None, began, clock())
            except _Failure as failure:
                done(item, None, (failure.kind, str(failure)), began, clock())
                if connection is not None:
                    connection.close()
                    connection = None
                if failure.kind == "connect":
                    await asyncio.sleep(0.05)  # a refused port answers at once: don't spin
        if connection is not None:
            connection.close()

    return worker


def _expire(future: asyncio.Future[Any], timeout: float) -> None:
    if not future.done():
        future.set_exception(_Failure("timeout", f"no answer within {timeout:g} s"))


def _httpx_worker(source: CallbackSource, client: httpx.AsyncClient, headers: dict[str, str],
                  delivery: DeliveryOptions, slots: _Slots, done: Callable[..., None],
                  clock: Callable[[], float]) -> Callable[[], Any]:
    url = delivery.target.url
    if url.startswith(APP_BASE_URL):
        url = url[len(APP_BASE_URL):] or "/"

    async def worker() -> None:
        while await slots.next_turn():
            item = source.next()
            began = clock()
            try:
                response = await asyncio.wait_for(
                    client.request(delivery.method, url, content=item[1], headers=headers),
                    delivery.timeout)
            except (TimeoutError, httpx.TimeoutException):
                done(item, None, ("timeout", f"no answer within {delivery.timeout:g} s"), began,
                     clock())
            except httpx.ConnectError:
                done(item, None, ("connect", "connection refused"), began, clock())
                await asyncio.sleep(0.05)
            except httpx.TransportError as exc:
                done(item, None, ("protocol", str(exc)), began, clock())
            else:
                done(item, response.status_code, None, began, clock())

    return worker
