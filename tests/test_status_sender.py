"""The send API's statuses on the fast path: a burst is delivered whole, signed as the
Deliverer signs, and a status the webhook refuses goes on to the retry policy."""

from __future__ import annotations

import asyncio

import httpx

from simulator.api_console import ApiConsole
from simulator.delivery import DeliveryOptions, RetryPolicy, url_target
from simulator.meta import SIGNATURE_HEADER, signature_for
from simulator.receiver import Receiver, ReceiverOptions
from simulator.sendapi import ApiOptions, MockApi
from simulator.status_sender import fast_sender_for

SEND = {"messaging_object": {"to": "919876543210", "type": "text", "text": {"body": "hi"}}}


def _burst(api: MockApi, count: int, clients: int = 8) -> None:
    """`count` sends from `clients` clients at once, as fast as the mock answers."""
    async def client(share: int) -> None:
        async with httpx.AsyncClient(timeout=60) as http:
            for _ in range(share):
                answer = await http.post(api.v2_url("918600853878"),
                                         headers={"api-key": api.options.api_key}, json=SEND)
                assert answer.status_code == 202

    async def go() -> None:
        await asyncio.gather(*(client(count // clients + (k < count % clients))
                               for k in range(clients)))

    asyncio.run(go())


def test_a_burst_of_sends_gets_every_status_delivered(receiver: Receiver) -> None:
    # 400 sends at once used to start 1,200 requests on httpx's 100 connections, which all
    # timed out: no status at all reached the webhook.
    webhook = DeliveryOptions(target=url_target(receiver.url))
    assert fast_sender_for(webhook)
    with MockApi(ApiOptions(port=0), webhook=webhook) as api:
        _burst(api, 400)
        statuses = api.wait_for_statuses(1200, timeout=120)
    assert all(s.delivered for s in statuses)
    assert len(receiver.arrivals) == 1200
    # Each message's statuses arrived in their order.
    order: dict[int, list[str]] = {}
    for status in statuses:
        order.setdefault(status.message.number, []).append(status.status)
    assert set(map(tuple, order.values())) == {("sent", "delivered", "read")}


def test_statuses_are_signed_over_the_bytes_that_left() -> None:
    secret = "s3cret-app"
    with Receiver(ReceiverOptions(port=0, app_secret=secret)) as hook:
        webhook = DeliveryOptions(target=url_target(hook.url), app_secret=secret,
                                  envelope="meta")
        with MockApi(ApiOptions(port=0), webhook=webhook) as api:
            _burst(api, 3)
            statuses = api.wait_for_statuses(9, timeout=60)
        arrivals = hook.arrivals
    assert all(s.delivered for s in statuses)
    assert all(a.status == 200 and not a.problems for a in arrivals), arrivals
    for arrival in arrivals:
        headers = {name.lower(): value for name, value in arrival.headers}
        assert headers[SIGNATURE_HEADER.lower()] == signature_for(secret, arrival.body, "valid")


def test_a_refused_status_goes_on_to_the_retry_policy() -> None:
    with Receiver(ReceiverOptions(port=0, status=500)) as hook:
        webhook = DeliveryOptions(target=url_target(hook.url),
                                  retry=RetryPolicy((0.0, 0.0)))

        async def no_wait(_: float) -> None:
            return None

        with MockApi(ApiOptions(port=0, statuses=("sent",)), webhook=webhook,
                     sleep=no_wait) as api:
            _burst(api, 1)
            (status,) = api.wait_for_statuses(1, timeout=60)
    assert status.result is not None and not status.delivered
    attempts = status.result.attempts
    # The fast attempt first, then the Deliverer's first try and its two retries.
    assert [a.number for a in attempts] == [1, 2, 3, 4]
    assert [a.status for a in attempts] == [500] * 4
    assert [a.final for a in attempts] == [False, False, False, True]
    assert len(hook.arrivals) == 4


def test_wasim_api_prints_a_line_per_message_until_the_traffic_is_a_load() -> None:
    now = [100.0]
    lines: list[str] = []
    console = ApiConsole(lines.append, per_second=20, clock=lambda: now[0])
    for index in range(5):
        console.message(f"message {index}")
    assert lines == [f"message {index}" for index in range(5)]
    for index in range(5, 500):  # a burst within the same second
        console.message(f"message {index}")
        console.status(f"status {index}")
    assert len(lines) == 20  # the lines stop at 20 that second
    now[0] += 1.0
    console.message("next second")
    assert lines[20].startswith("... 500 messages and 495 statuses that second")
    assert "500 messages, 495 statuses in all" in lines[20]
    assert lines[21] == "next second"  # quiet again: a line each
    console.stop()
    assert len(lines) == 22  # nothing was held back: no summary at the end
