"""One run's lifecycle, for every face: a plan, the person's settings layers over the
scenario's, the send API check, the run, the summary and the verdict. The faces (the CLI's
`run`, the headless demo, the TUI, the Python API) keep only presentation: what they print
or draw for each result (`on_result`, `on_attempt`) and how they say the verdict.

`Play` is built before anything is sent (every step's delivery options are checked there,
so a face may read them first: `wasim run --wait-for-url` waits on the first target);
`await Play.run(...)` plays the plan. Its `summary` and `results` fill as sends end, so an
interrupted run still has what it learned. `play(...)` does both at once.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from simulator.delivery import Attempt, DeliveryOptions, Target
from simulator.errors import ExitCode
from simulator.records import Plan, PlannedSend, SendResult, Summary
from simulator.replies import require_api
from simulator.runner import run_plan, scenario_delivery
from simulator.settings import Layer, resolve

if TYPE_CHECKING:
    import httpx

    from simulator.sendapi import MockApi

Sleep = Callable[[float], Awaitable[None]]


class Play:
    """A plan ready to run: its delivery per step, its send API, its summary as it fills."""

    def __init__(self, plan: Plan, *layers: Layer,
                 delivery: Callable[[PlannedSend], DeliveryOptions] | None = None,
                 fallback: Target | None = None, allow_remote: bool = False,
                 client: httpx.AsyncClient | None = None, replies: MockApi | None = None,
                 api_hint: str | None = None) -> None:
        """Resolve the person's `layers` (lowest first, e.g. (flags, flag_name)) over the
        scenario's targets into every step's DeliveryOptions, checked now; `delivery` stands in
        for them when the face built its own. `client` is the seam of every delivery (None:
        real ones); `replies` the send API the app answers through; `api_hint` how this face
        starts one, named when the scenario needs it and none runs (WasimError, exit 2)."""
        self.plan = plan
        if delivery is None:
            given, where = resolve(*layers) if layers else ({}, str)
            delivery = scenario_delivery(plan, given, where, fallback,
                                         allow_remote=allow_remote)
        self.delivery = delivery
        self.client = client
        self.replies = replies
        if api_hint is not None:
            require_api(plan.scenario, replies, api_hint)
        self.summary = Summary(plan.scenario.name, plan.seed)
        self.results: list[SendResult] = []  # in the order the sends ended
        self.started: float | None = None
        self.ended: float | None = None

    async def run(self, *, speed: float = 1.0, sleep: Sleep = asyncio.sleep,
                  reply_sleep: Sleep | None = None,
                  clock: Callable[[], float] = time.monotonic,
                  on_attempt: Callable[[Attempt], None] | None = None,
                  on_result: Callable[[SendResult], Any] | None = None,
                  on_send: Callable[[bytes], None] | None = None) -> Summary:
        """Play the plan at `speed` (inf: no waiting), counting each send into the summary
        before `on_result` sees it; the summary. `on_send` sees each tap's body as it leaves
        (the TUI's reply tracking)."""
        self.started = clock()
        try:
            async for outcome in run_plan(self.plan, self.delivery, speed=speed, sleep=sleep,
                                          clock=clock, on_attempt=on_attempt,
                                          client=self.client, replies=self.replies,
                                          reply_sleep=reply_sleep, on_send=on_send):
                self.results.append(outcome)
                self.summary.add(outcome)
                if on_result is not None:
                    on_result(outcome)
        finally:
            self.ended = clock()
        return self.summary

    @property
    def duration(self) -> float:
        """Seconds the run took so far (0 before it started)."""
        if self.started is None:
            return 0.0
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    @property
    def unreachable(self) -> bool:
        """Something was sent and every send found nothing listening."""
        return bool(self.results) and self.summary.unreachable == len(self.results)

    @property
    def verdict(self) -> ExitCode:
        """0 when everything was delivered and every expectation held, 3 when nothing was
        listening at all, else 1."""
        if self.unreachable:
            return ExitCode.UNREACHABLE
        return ExitCode.OK if self.summary.ok else ExitCode.FAILED


async def play(plan: Plan, *layers: Layer, client: httpx.AsyncClient | None = None,
               replies: MockApi | None = None,
               on_result: Callable[[SendResult], Any] | None = None,
               speed: float = math.inf, **options: Any) -> Play:
    """Build and run a `Play` in one call (`options`: Play's and run's other keywords)."""
    run_keys = ("sleep", "reply_sleep", "clock", "on_attempt", "on_send")
    running = Play(plan, *layers, client=client, replies=replies,
                   **{k: v for k, v in options.items() if k not in run_keys})
    await running.run(speed=speed, on_result=on_result,
                      **{k: v for k, v in options.items() if k in run_keys})
    return running
