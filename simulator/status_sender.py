"""Status callbacks of the send API on kept-alive raw connections: the load's fast client.

httpx spends about a millisecond of Python a request, most of it in its pool's bookkeeping
(benchmarks/sendapi.py, profiled): three statuses a send capped the send API near 300 sends
a second. A plain http:// webhook (no token endpoint) gets them here instead, on the
load's HTTP/1.1 client (simulator/load.py: bounded answers, the same headers as every face,
the signature over the bytes that leave), from a small pool of kept-alive connections to the
address the loopback guard checked. One attempt is made here; a status the webhook does
not accept (or a connection that fails) goes on to the full Deliverer, which retries per
the policy, and that attempt is recorded first among the delivery's attempts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace

import httpx

from simulator.delivery import (
    Attempt,
    Deliverer,
    DeliveryOptions,
    DeliveryResult,
    ErrorKind,
    Event,
    check_header,
    checked_address,
    default_port,
    redact_headers,
)
from simulator.errors import WasimError
from simulator.meta import SIGNATURE_HEADER, wrap
from simulator.rawhttp import _Answer, _connect, _Connection, _expire, _Failure, _Head, _signer

MAX_IDLE = 32  # kept-alive connections at most (the send API sends STATUS_SENDERS at once)


def fast_sender_for(options: DeliveryOptions) -> bool:
    """Whether statuses under `options` can take the fast path: a plain http:// URL with no
    token endpoint, and headers the raw client can write."""
    if options.target.kind != "url" or not options.target.url.startswith("http://"):
        return False
    if options.auth.token_url is not None:
        return False
    try:
        for name, value in options.headers:
            check_header(name, value, "--header")
    except WasimError:
        return False
    return True


class StatusSender:
    """Delivers status callbacks to one webhook: one fast attempt, then the Deliverer's."""

    def __init__(self, options: DeliveryOptions, fallback: Deliverer, *,
                 clock: Callable[[], float] = time.time) -> None:
        self.options = options
        self.fallback = fallback
        self.clock = clock
        self.url = httpx.URL(options.target.url)
        self.head = _Head(options, self.url)
        self.sign = _signer(options)
        self.recorded = redact_headers(self.head.headers + (
            [(SIGNATURE_HEADER, "")] if self.sign is not None else []))
        self.label = options.target.label  # computed once: it parses the URL each time
        self._address: str | None = None
        self._idle: list[_Connection] = []
        self._count = 0
        self._inflight: dict[asyncio.Future[_Answer], float] = {}  # answer -> loop deadline
        self._sweeper: asyncio.Task[None] | None = None

    def _sweeping(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        """Fail the answers not in by their deadline (to within a tenth of the timeout);
        ends when none is awaited."""
        loop = asyncio.get_running_loop()
        interval = min(0.5, self.options.timeout / 10)
        while self._inflight:
            await asyncio.sleep(interval)
            now = loop.time()
            for future in [f for f, deadline in self._inflight.items() if now >= deadline]:
                _expire(future, self.options.timeout)

    async def deliver(self, event: Event) -> DeliveryResult:
        """Send `event` (wrapped and signed as the Deliverer would); its attempts."""
        if self.options.envelope == "meta":
            wrapped = wrap(event.body)
            if wrapped != event.body:
                event = Event.from_body(wrapped, event.seed)
        try:
            attempt = await self._attempt(event)
        except WasimError:  # the guard refused the address now: the Deliverer says why
            return await self.fallback.deliver(event)
        if attempt.delivered:
            return DeliveryResult(event, (attempt,))
        # Not accepted: the full policy (retries, their delays) from here, this one first.
        result = await self.fallback.deliver(event)
        later = tuple(replace(a, number=a.number + 1) for a in result.attempts)
        return DeliveryResult(result.event, (replace(attempt, final=False), *later))

    async def _attempt(self, event: Event) -> Attempt:
        options = self.options
        self._count += 1
        started_at = self.clock()
        body = event.body
        signature = self.sign(body) if self.sign is not None else None
        end = b"\r\n\r\n" if signature is None \
            else b"\r\n" + SIGNATURE_HEADER.encode() + b": " + signature + b"\r\n\r\n"
        request = b"".join((self.head.prefix, str(len(body)).encode(), end, body))
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        # One deadline for connecting, sending and the whole answer, kept by one sweep for
        # every status on its way: not a task and a wait_for (half a status's cost), nor a
        # timer set and cancelled per status (a tenth of a send's, profiled).
        deadline = loop.time() + options.timeout
        connection: _Connection | None = None
        error: tuple[ErrorKind, str] | None = None
        answer: _Answer | None = None
        try:
            connection = self._idle_connection()
            if connection is None:
                connection = await asyncio.wait_for(self._connect(),
                                                    max(deadline - loop.time(), 0.0))
            future = connection.send(request)
            self._inflight[future] = deadline
            self._sweeping(loop)
            try:
                answer = await future
            finally:
                del self._inflight[future]
        except TimeoutError:
            error = ("timeout", f"no answer within {options.timeout:g} s (the timeout)")
        except _Failure as failure:
            if failure.kind == "timeout":
                error = ("timeout", f"no answer within {options.timeout:g} s (the timeout)")
            else:
                error = ("connect" if failure.kind in ("connect", "socket") else "protocol",
                         str(failure))
        if answer is None or connection is None:
            if connection is not None:
                connection.close()
            kind, text = error or ("protocol", "no answer")
            return Attempt(event=event, delivery_id=f"dlv_status_{self._count}", number=1,
                           started_at=started_at, target=self.label, method=options.method,
                           url=options.target.url, request_headers=self.recorded,
                           error_kind=kind, error=text, latency_ms=_ms(started))
        if answer.close or connection.closed:
            connection.close()
        elif len(self._idle) < MAX_IDLE:
            self._idle.append(connection)
        else:
            connection.close()
        return Attempt(event=event, delivery_id=f"dlv_status_{self._count}", number=1,
                       started_at=started_at, target=self.label, method=options.method,
                       url=options.target.url, request_headers=self.recorded,
                       status=answer.status, latency_ms=_ms(started),
                       delivered=options.is_success(answer.status))

    def _idle_connection(self) -> _Connection | None:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        return None

    async def _connect(self) -> _Connection:
        port = default_port(self.url)
        if self._address is None:
            # Checked once, then connected to by address (as the load does: no rebinding).
            self._address = await checked_address(self.url.host, port,
                                                  self.options.allow_remote,
                                                  self.options.resolver)
        return await _connect(asyncio.get_running_loop(), self._address, port,
                              self.options.timeout)

    def close(self) -> None:
        """Close the kept-alive connections (and stop the sweep)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for connection in self._idle:
            connection.close()
        self._idle.clear()


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


__all__ = ["StatusSender", "fast_sender_for"]
