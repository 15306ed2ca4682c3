"""The records a scenario run shares (plan, planned send, failure, send result, summary), as
plain data with their one-line text forms, below every module that makes or reads them: the
runner makes them, replies and the send API check add failures, reports and the faces present
them. Nothing here sends, sleeps or prints."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from simulator.delivery import DeliveryResult, Event, hide_url_secrets
from simulator.models import Business, Tap, TemplateMessage, User
from simulator.render import CallbackTemplate
from simulator.scenarios import Expectations, Scenario, StepSpec

SendKind = Literal["tap", "duplicate", "redelivery", "verify"]


@dataclass(frozen=True)
class PlannedSend:
    """One delivery the run will make: when, why, and the exact bytes."""

    index: int  # position in the plan (the order sends are dispatched in)
    at: float  # seconds from the start of the run
    step: str
    kind: SendKind
    event: Event
    tap: Tap
    expect: Expectations
    together: bool = False  # dispatched at once beside the previous send (concurrent copy)
    batch: tuple[Tap, ...] = ()  # every tap in the body when chaos batched several (in order)


@dataclass(frozen=True)
class Plan:
    """Everything a run will send, decided up front from the scenario and the seed."""

    scenario: Scenario
    seed: int
    business: Business
    users: tuple[User, ...]
    sent: Mapping[str, TemplateMessage]  # each user's copy of the template, by wa_id
    sends: tuple[PlannedSend, ...]
    # Renders the taps decided while running (tap_reply steps aim at the app's own messages).
    callback: CallbackTemplate | None = field(default=None, compare=False, repr=False)
    # This run's id (simulator.world.new_run_id): its message, trace and Kaleyra ids are new
    # traffic. "" reproduces the seed's run byte for byte (`wasim run --exact`).
    run: str = ""

    @property
    def duration(self) -> float:
        """Seconds from the first send to the last, at real speed."""
        return max((s.at for s in self.sends), default=0.0)

    def step(self, name: str) -> StepSpec:
        """The step called `name`."""
        return next(s for s in self.scenario.steps if s.name == name)


@dataclass(frozen=True)
class Failure:
    """One broken expectation, as a value: the rule, what happened, and where in the run.

    Presenters (the CLI's summary, simulator.reports, the pytest plugin, the TUI) turn it into
    text; `str(failure)` is the one-line form `rule: message`.
    """

    rule: str  # status, max_latency, body_contains, json, reply, tap_reply, verify
    message: str  # what happened, for people: "expected 200, got 500"
    step: str = ""  # the step's name ("" before it is placed)
    index: int | None = None  # the send's position in the plan
    event: str = ""  # the delivered event's id

    def __str__(self) -> str:
        return f"{self.rule}: {self.message}"

    @property
    def where(self) -> str:
        """`#index step` of the send that broke the rule, or "" when not placed."""
        if self.index is None:
            return self.step
        return f"#{self.index} {self.step}".rstrip()

    def at(self, send: PlannedSend) -> Failure:
        """This failure placed at `send`."""
        return replace(self, step=send.step, index=send.index, event=send.event.id)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for the JSON report."""
        return {"rule": self.rule, "message": self.message, "step": self.step,
                "index": self.index, "event": self.event}


@dataclass(frozen=True)
class SendResult:
    """What happened to one planned send: its delivery and the expectations it broke."""

    planned: PlannedSend
    result: DeliveryResult
    broken: tuple[Failure, ...] = ()  # the expectations it broke, placed at this send

    @property
    def failures(self) -> tuple[str, ...]:
        """The broken expectations as `rule: message` lines."""
        return tuple(str(failure) for failure in self.broken)

    @property
    def ok(self) -> bool:
        """Delivered, and every expectation held."""
        return self.result.delivered and not self.broken


@dataclass(frozen=True)
class Latency:
    """Latency figures of the answers (ms, nearest rank); None before any answer."""

    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None


def percentile(values: Sequence[float], p: float) -> float | None:
    """The p-th percentile of `values` (nearest rank), None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Summary:
    """What a scenario run came to, as values: counts, failures and latency figures.

    Filled one send at a time (`add`), for the live view and the end of the run; presenters
    (simulator.reports, the CLI, the plugin, the TUI) turn it into text or documents.
    """

    scenario: str = ""
    seed: int | None = None
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    unreachable: int = 0
    attempts: int = 0
    failures: list[Failure] = field(default_factory=list)  # every broken rule, in end order
    latencies: list[float] = field(default_factory=list)  # the handler's answer times
    failing: list[SendResult] = field(default_factory=list)
    wasim_ms: float = 0.0  # the most wasim's own share of one answer's time came to

    def add(self, outcome: SendResult) -> None:
        """Count one finished send."""
        self.sent += 1
        self.attempts += len(outcome.result.attempts)
        if outcome.result.delivered:
            self.delivered += 1
        else:
            self.failed += 1
            self.unreachable += outcome.result.unreachable
        last = outcome.result.attempts[-1]
        if last.status is not None:
            self.latencies.append(last.answer_ms)
            self.wasim_ms = max(self.wasim_ms, last.wasim_ms)
        self.failures.extend(outcome.broken)
        if not outcome.ok:
            self.failing.append(outcome)

    @property
    def expectation_failures(self) -> Counter[str]:
        """How many times each rule broke."""
        return Counter(failure.rule for failure in self.failures)

    @property
    def ok(self) -> bool:
        """Everything delivered and every expectation held."""
        return not self.failed and not self.failures

    def percentile(self, p: float) -> float | None:
        """The p-th percentile latency in ms (nearest rank), None before any answer."""
        return percentile(self.latencies, p)

    @property
    def latency(self) -> Latency:
        """The latency figures of the answers so far."""
        return Latency(len(self.latencies), self.percentile(50), self.percentile(95),
                       self.percentile(99), max(self.latencies, default=None))

    def lines(self) -> list[str]:
        """The end-of-run summary as a few lines for people (simulator.reports draws it)."""
        return summary_lines(self)

    def as_dict(self) -> dict[str, Any]:
        """The summary as plain data, for the JSON report."""
        return {"scenario": self.scenario, "seed": self.seed, "sent": self.sent,
                "delivered": self.delivered, "failed": self.failed,
                "unreachable": self.unreachable, "attempts": self.attempts,
                "expectation_failures": dict(self.expectation_failures),
                "latency_ms": {f"p{p}": self.percentile(p) for p in (50, 95, 99)},
                "ok": self.ok}


# --- text forms: the summary lines for people (simulator.reports re-exports them) ---------

SHOWN_FAILING = 5  # failing sends listed under the summary; the reports have them all


def failure_line(failure: Failure) -> str:
    """`rule: message`, the one-line form of a broken expectation."""
    return str(failure)


def send_line(outcome: SendResult) -> str:
    """One failing send for people: where, who tapped what, and why."""
    planned = outcome.planned
    reasons = [failure_line(f) for f in outcome.broken]
    if not outcome.result.delivered:
        reasons.insert(0, delivery_reason(outcome))
    why = "; ".join(reasons)
    return (f"#{planned.index} {planned.step} {planned.kind} {planned.event.user} "
            f"{planned.event.button!r}: {why}")


def delivery_reason(outcome: SendResult) -> str:
    """Why a send counts as not delivered, never empty: the last answer (or error)."""
    result = outcome.result
    last = result.attempts[-1]
    if last.status is not None:
        what = f"answered {last.status}, not a status that counts as delivered"
        if last.error:
            what += f" ({hide_url_secrets(last.error)})"
    else:
        what = hide_url_secrets(last.error) if last.error else last.outcome
    return f"delivery: {what}, after {len(result.attempts)} attempt(s)"


def summary_lines(summary: Summary) -> list[str]:
    """The end-of-run summary, a few lines for people."""
    lines = [f"{summary.scenario} (seed {summary.seed}): {summary.sent} sent, "
             f"{summary.delivered} delivered, {summary.failed} failed, "
             f"{summary.attempts} attempt(s)"]
    counts = summary.expectation_failures
    if counts or summary.failing:
        rules = ", ".join(f"{rule} {count}" for rule, count in sorted(counts.items()))
        lines.append(f"expectations failed: {rules}" if rules else
                     "expectations: all held, but not every send was delivered:")
        lines.extend(f"  {send_line(outcome)}" for outcome in summary.failing[:SHOWN_FAILING])
        if len(summary.failing) > SHOWN_FAILING:
            lines.append(f"  ... and {len(summary.failing) - SHOWN_FAILING} more")
    else:
        lines.append("expectations: all held" if summary.sent else "nothing was sent")
    latency = summary.latency
    if latency.count:
        lines.append("latency " + "  ".join(
            f"p{p} {figure:.1f} ms" for p, figure in (("50", latency.p50), ("95", latency.p95),
                                                       ("99", latency.p99))
            if figure is not None)
            + (f"  (the handler's answer; wasim's own queueing and lag, up to "
               f"{summary.wasim_ms:.1f} ms, not counted)" if summary.wasim_ms >= 1 else ""))
    return lines
