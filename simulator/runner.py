"""The one orchestration: scenario -> plan of exact bytes -> deliveries -> results, as a stream.

Planning is pure and seeded: the same scenario and seed give the same sends, bodies and order.
Running is an async iterator of results that the CLI, the TUI and the pytest plugin all
consume; time and sleep are injectable, so tests compress delays instead of waiting them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx

from simulator.delivery import (
    REDACTED,
    Attempt,
    Deliverer,
    DeliveryOptions,
    DeliveryResult,
    Event,
    LoopLag,
    Target,
    delivery_options_from,
)
from simulator.errors import WasimError
from simulator.meta import batch
from simulator.models import Button, Tap, TemplateMessage, User
from simulator.records import Failure as Failure  # re-exported: the records moved below
from simulator.records import Latency as Latency
from simulator.records import Plan as Plan
from simulator.records import PlannedSend as PlannedSend
from simulator.records import SendKind as SendKind
from simulator.records import SendResult as SendResult
from simulator.records import Summary as Summary
from simulator.records import percentile as percentile
from simulator.render import CallbackTemplate, find_template, render_tap
from simulator.scenarios import (
    MAX_SENDS_PER_PLAN,
    ChaosSpec,
    Expectations,
    Scenario,
    StepSpec,
    plan_size,
    target_where,
)
from simulator.settings import Layer, given, resolve
from simulator.taps import SEEDED_EPOCH_RANGE, TapFactory, TapOptions

if TYPE_CHECKING:
    from simulator.sendapi import MockApi

Sleep = Callable[[float], Awaitable[None]]


def plan_scenario(scenario: Scenario, seed: int | None = None,
                  start: int | None = None, run: str = "") -> Plan:
    """Decide every send of a run: users, taps, times, chaos and the exact bodies.

    `run` (simulator.world.new_run_id) makes it new traffic: the same users, names and
    choices, new message, trace and Kaleyra ids; "" gives the seed's ids byte for byte."""
    seed = seed if seed is not None else (scenario.seed if scenario.seed is not None else 0)
    if plan_size(scenario) > MAX_SENDS_PER_PLAN:  # loaded files are checked; built ones here
        raise WasimError(f"the plan could reach {plan_size(scenario):,} sends; a run plans at "
                         f"most {MAX_SENDS_PER_PLAN:,}", where=str(scenario.path),
                         hint="Lower repeat, who or the cast, or split the scenario.")
    business, template, cast = scenario.business, scenario.template, scenario.cast
    now = [0]
    factory = TapFactory(
        TapOptions(seed=seed, business_country=business.country, buttons=template.buttons,
                   ref=template.ref, ref1=template.ref1, ref2=template.ref2,
                   platform=cast.platform, business_number=business.display_phone_number,
                   phone_number_id=business.phone_number_id, waba_id=business.waba_id,
                   identity=cast.identity, quirks=cast.quirks, enterprise=cast.enterprise,
                   run=run),
        clock=lambda: now[0])
    rnd = factory.rnd
    base = start if start is not None else \
        factory.streams["clock"].randrange(*SEEDED_EPOCH_RANGE)
    users: list[User] = []
    for code, count in cast.countries:
        users.extend(factory.new_user(code) for _ in range(count))
    for listed in cast.users:
        code = factory.wa.whatsapp_country_of(listed.wa_id) or "IN"
        users.append(factory.new_user(code, number=listed.wa_id, name=listed.name))
    sent = {u.wa_id: factory.send_template(u) for u in users}
    message_of = _messages_of(scenario, factory, sent)
    names = {u.name: u for u in users}
    by_number = {u.wa_id: u for u in users}
    buttons = {b.text: b for b in template.buttons}
    callback = CallbackTemplate(find_template(template.callback), fake=factory.fake)

    taps: list[tuple[float, StepSpec, Tap, Event]] = []
    clock = 0.0
    for step in scenario.steps:
        begin = clock + step.after
        chosen = _choose(step, users, by_number, names, rnd)
        moments: list[tuple[float, User, Button]] = []
        if step.verify is not None:  # one handshake, no user: a stand-in tap names the send
            user = users[0]
            tap = factory.tap(user, sent[user.wa_id], template.buttons[0])
            event = Event(f"evt_verify{len(taps)}", b"", seed, button="verify handshake")
            taps.append((begin, step, tap, event))
            clock = begin + step.spread
            continue
        if step.sends:  # other kinds (simulator.kinds): rendered here, not from the template
            taps.extend(_kind_sends(scenario, step, chosen, begin, base, now, factory,
                                    message_of, seed))
            clock = begin + step.spread
            continue
        for user in chosen:
            for _ in range(step.repeat):
                button = step.pick_button(buttons, rnd) if step.tap_reply is None else \
                    Button(step.tap_reply.button, step.tap_reply.button)  # aimed while running
                if button is None:
                    continue
                offset = rnd.uniform(0, step.spread) if step.spread else 0.0
                moments.append((begin + offset, user, button))
        moments.sort(key=lambda m: m[0])  # stable: equal times keep the cast's order
        for at, user, button in moments:
            now[0] = base + int(at)
            tap = factory.tap(user, message_of(user, step), button)
            taps.append((at, step, tap, Event.from_body(render_tap(callback, tap), seed)))
        clock = begin + step.spread
    return Plan(scenario, seed, factory.business, tuple(users), sent,
                _with_chaos(scenario, taps, rnd), callback, run)


def _messages_of(scenario: Scenario, factory: TapFactory, sent: Mapping[str, TemplateMessage]
                 ) -> Callable[[User, StepSpec], TemplateMessage]:
    """The brand's message a step of a user is about: the template message (`sent`), or
    another of the scenario's `messages:`, drawn for that user when first answered (its own
    wamid and Kaleyra id, new per run like the first's; the first's draws stay as they
    were, so a scenario without `messages:` plans the same bytes)."""
    first = scenario.messages[0] if scenario.messages else None
    others: dict[tuple[str, str], TemplateMessage] = {}

    def message_of(user: User, step: StepSpec) -> TemplateMessage:
        if step.message is None or step.message == first:
            return sent[user.wa_id]
        key = (user.wa_id, step.message)
        if key not in others:
            others[key] = factory.send_template(user)
        return others[key]

    return message_of


def _kind_sends(scenario: Scenario, step: StepSpec, chosen: list[User], begin: float,
                base: int, now: list[int], factory: TapFactory,
                message_of: Callable[[User, StepSpec], TemplateMessage], seed: int
                ) -> list[tuple[float, StepSpec, Tap, Event]]:
    """Each chosen user's sends of other kinds, a second apart, with status disorder."""
    from simulator.kinds import kind_body
    from simulator.kinds.steps import disorder

    rnd = factory.rnd
    out: list[tuple[float, User, tuple[str, Any]]] = []
    for user in chosen:
        for _ in range(step.repeat):
            offset = rnd.uniform(0, step.spread) if step.spread else 0.0
            sequence = list(step.sends)
            chaos = scenario.chaos.status_disorder
            if chaos and any(kind == "status" for kind, _ in sequence) \
                    and rnd.random() < chaos:
                sequence, _ = disorder(sequence, rnd)
            out.extend((begin + offset + k, user, item) for k, item in enumerate(sequence))
    out.sort(key=lambda m: m[0])
    planned = []
    for at, user, (kind, args) in out:
        now[0] = base + int(at)
        tap = factory.tap(user, message_of(user, step))
        body = kind_body(kind, tap, args, factory.streams[f"kind:{kind}"])
        planned.append((at, step, tap, Event.from_body(body, seed)))
    return planned


def _choose(step: StepSpec, users: list[User], by_number: Mapping[str, User],
            names: Mapping[str, User], rnd: Any) -> list[User]:
    who = step.who
    if who.kind == "all":
        return list(users)
    if who.kind == "users":
        return [by_number.get(w) or names[w] for w in who.users]
    count = who.count if who.kind == "count" else round(len(users) * who.share)
    picked = set(rnd.sample(range(len(users)), min(count, len(users))))
    return [u for i, u in enumerate(users) if i in picked]  # keep the cast's order


def _with_chaos(scenario: Scenario, taps: list[tuple[float, StepSpec, Tap, Event]],
                rnd: Any) -> tuple[PlannedSend, ...]:
    chaos = scenario.chaos
    if chaos.shuffle > 1:
        # Reorder within each window but keep the schedule: the same moments, other bodies.
        for begin in range(0, len(taps), chaos.shuffle):
            window = taps[begin:begin + chaos.shuffle]
            order = list(range(len(window)))
            rnd.shuffle(order)
            taps[begin:begin + chaos.shuffle] = [
                (window[i][0], *window[j][1:]) for i, j in enumerate(order)]
    batches: dict[int, tuple[Tap, ...]] = {}
    if chaos.batch:
        taps, batches = _batched(taps, chaos, rnd)
    sends: list[tuple[float, SendKind, StepSpec, Tap, Event, bool]] = []
    for at, step, tap, event in taps:
        if step.verify is not None or step.tap_reply is not None:
            # Decided while running (or not a callback at all): no copies of these.
            sends.append((at, "verify" if step.verify is not None else "tap", step, tap,
                          event, False))
            continue
        sends.append((at, "tap", step, tap, event, False))
        if step.duplicate:
            sends.append((at, "duplicate", step, tap, event, step.duplicate_concurrently))
        elif chaos.duplicate and rnd.random() < chaos.duplicate:
            sends.append((at, "duplicate", step, tap, event, chaos.duplicate_concurrently))
        if chaos.redeliver and rnd.random() < chaos.redeliver:
            sends.append((at + chaos.redeliver_after, "redelivery", step, tap, event, False))
    sends.sort(key=lambda s: s[0])  # stable: a duplicate stays right behind its original
    return tuple(
        PlannedSend(i, at, step.name, kind, event, tap,
                    scenario.expect.merged(step.expect), together, batches.get(id(event), ()))
        for i, (at, kind, step, tap, event, together) in enumerate(sends))


def _batched(taps: list[tuple[float, StepSpec, Tap, Event]], chaos: ChaosSpec, rnd: Any
             ) -> tuple[list[tuple[float, StepSpec, Tap, Event]], dict[int, tuple[Tap, ...]]]:
    """Batch chaos: a share of taps open a batch with the taps after them, sent as one body
    (Meta's batching) when the last of them is due; the first tap names the send. Also the
    taps in each batched body, by the id() of its event (steps decided while running, and
    handshakes, are never batched)."""
    out = []
    members: dict[int, tuple[Tap, ...]] = {}
    index = 0
    while index < len(taps):
        group = []
        if rnd.random() < chaos.batch:
            for item in taps[index:index + chaos.batch_size]:
                if item[1].verify is not None or item[1].tap_reply is not None:
                    break
                group.append(item)
        if len(group) > 1:
            body = batch([t[3].body for t in group], chaos.batch_shape, where="chaos.batch")
            _, step, tap, first = group[0]
            event = Event.from_body(body, first.seed)
            members[id(event)] = tuple(t[2] for t in group)
            out.append((group[-1][0], step, tap, event))
            index += len(group)
        else:
            out.append(taps[index])
            index += 1
    return out, members


# --- expectations ----------------------------------------------------------------------------


def check_expectations(expect: Expectations, result: DeliveryResult) -> tuple[Failure, ...]:
    """Each rule the delivery broke, as a Failure; empty when the handler did as expected."""
    last = result.attempts[-1]
    failures = []
    if expect.status is not None and (last.status is None or not any(
            low <= last.status <= high for low, high in expect.status)):
        wanted = ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in expect.status)
        got = last.status if last.status is not None else f"no answer ({last.error})"
        failures.append(Failure("status", f"expected {wanted}, got {got}"))
    # The handler's answer time: wasim's own waiting and loop lag are not the handler's.
    if expect.max_latency_ms is not None and last.status is not None \
            and last.answer_ms > expect.max_latency_ms:
        own = f" (wasim's own {last.wasim_ms:.0f} ms not counted)" if last.wasim_ms >= 1 else ""
        failures.append(Failure("max_latency", f"answered in {last.answer_ms:.0f} ms{own}, "
                                               f"limit {expect.max_latency_ms:.0f} ms"))
    for text in expect.body_contains:
        if text not in last.response_body:
            failures.append(Failure("body_contains", f"the response has no {text!r}"))
    if expect.json_equals:
        try:
            answer = json.loads(last.response_body)
        except ValueError:
            failures.append(Failure("json", "the response body is not JSON"))
        else:
            for path, wanted in expect.json_equals:
                found, value = json_path(answer, path)
                if not found:
                    failures.append(Failure("json", f"{path} is missing"))
                elif value != wanted and any(REDACTED in v for _, v in last.request_headers):
                    # The answer to a request that carried a secret is not quoted: this
                    # message reaches reports on disk, and an echo can be spelled any way.
                    failures.append(Failure("json", f"{path} is not {json.dumps(wanted)} (not "
                                                    "quoted: a secret was sent)"))
                elif value != wanted:
                    failures.append(Failure("json", f"{path} is {json.dumps(value)}, expected "
                                                    f"{json.dumps(wanted)}"))
    return tuple(failures)


def json_path(document: Any, path: str) -> tuple[bool, Any]:
    """Follow `$.a.b[0]` into a document: (found, value)."""
    node = document
    for part in path.lstrip("$").replace("[", ".").replace("]", "").split("."):
        if not part:
            continue
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return False, None
    return True, node


# --- running ---------------------------------------------------------------------------------


async def run_plan(
    plan: Plan,
    delivery: Callable[[PlannedSend], DeliveryOptions],
    *,
    speed: float = 1.0,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_attempt: Callable[[Attempt], None] | None = None,
    client: httpx.AsyncClient | None = None,
    replies: MockApi | None = None,
    reply_sleep: Sleep | None = None,
    timer: Callable[[], float] = time.perf_counter,
    lag: Callable[[float, float], float] | None = None,
    on_send: Callable[[bytes], None] | None = None,
) -> AsyncIterator[SendResult]:
    """Dispatch every send at its moment (divided by `speed`), yielding results as they end.

    Each answer's time is measured with `timer`, less wasim's own lag in it (`lag`, by
    default a LoopLag sampling this loop), so latency rules judge the handler alone.

    `client` is the seam every face shares: None sends for real (each target's own client,
    loopback-guarded); a client on `httpx.MockTransport` lets a unit test answer instead.
    `replies` is the send API the app answers through: `expect: reply` is checked against
    what it records, and `tap_reply` steps tap the app's own messages; the windows are
    measured with `clock` and waited with `reply_sleep` (default: `sleep`). `on_send` is
    called with each delivery's body as its first request leaves (Deliverer's).
    """
    from simulator.replies import (
        ReplyBook,
        check_reply,
        exact_hint,
        first_and_last,
        require_api,
        resolve_tap_reply,
        share_world,
        users_of,
    )

    require_api(plan.scenario, replies, "a send API (wasim run --api-port 0, wasim.api())")
    if replies is not None:  # the send API's statuses carry this run's business and users
        share_world(replies, plan)
    deliverers: dict[int, Deliverer] = {}
    limits: dict[str, asyncio.Semaphore] = {}
    results: asyncio.Queue[SendResult | BaseException] = asyncio.Queue()
    book = ReplyBook(replies, clock=clock, sleep=reply_sleep or sleep).start() \
        if replies is not None else None
    firsts, lasts = first_and_last(plan.sends)
    probe = LoopLag(timer=timer).start() if lag is None else None
    own_lag = lag if lag is not None else probe.during if probe is not None else None

    def deliverer_for(send: PlannedSend) -> Deliverer:
        options = delivery(send)
        key = id(options)
        if key not in deliverers:
            deliverers[key] = Deliverer(options, on_attempt=on_attempt, sleep=sleep,
                                        client=client, timer=timer, lag=own_lag,
                                        on_send=on_send)
        return deliverers[key]

    # With replies watched, a user's next tap waits until their previous one was delivered
    # and its replies were decided (a person reads the answer before tapping again), so each
    # reply lands in the window of the tap that caused it, however fast the run.
    user_done: dict[str, tuple[str, asyncio.Future[None]]] = {}

    def after_previous(send: PlannedSend) -> tuple[list[asyncio.Future[None]],
                                                   asyncio.Future[None]]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        before = []
        for user in dict.fromkeys(users_of(send)):
            previous = user_done.get(user)
            if previous is not None and previous[0] != send.event.id:
                before.append(previous[1])
            user_done[user] = (send.event.id, done)
        return before, done

    async def one(send: PlannedSend, limit: asyncio.Semaphore | None,
                  before: Sequence[asyncio.Future[None]] = (),
                  done: asyncio.Future[None] | None = None) -> None:
        try:
            await _one(send, limit, before, done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            results.put_nowait(exc)
        finally:
            if done is not None and not done.done():
                done.set_result(None)

    async def _one(send: PlannedSend, limit: asyncio.Semaphore | None,
                   before: Sequence[asyncio.Future[None]],
                   done: asyncio.Future[None] | None) -> None:
        if before:
            await asyncio.gather(*before)
        reply_to = plan.step(send.step).tap_reply is not None
        if book is not None and send.kind != "verify":
            if reply_to:
                resolved = await resolve_tap_reply(book, plan, send)
                if isinstance(resolved, Failure):
                    resolved = exact_hint(plan, [resolved])[0]
                    results.put_nowait(SendResult(send, _not_sent(send, resolved),
                                                  (resolved.at(send),)))
                    return
                send = resolved
            book.open(send.event.id, users_of(send),
                      [tap.message_id for tap in (send.batch or (send.tap,))])
        async with limit if limit is not None else contextlib.nullcontext():
            started = clock()
            if send.kind == "verify":
                outcome, broken = await _verify(plan, send, delivery(send), client, clock)
            else:
                outcome = await deliverer_for(send).deliver(send.event)
                broken = list(check_expectations(send.expect, outcome))
        if book is not None and send.expect.reply is not None and send.kind != "verify":
            first = send.index in firsts or reply_to
            last = send.index in lasts or reply_to
            # The user's next tap waits until this one's replies are decided: a reply the app
            # sends after its 200 still belongs to this tap, at any speed (--fast included).
            broken += exact_hint(plan, await check_reply(book, send, send.expect.reply,
                                                         started, first=first, last=last))
        if done is not None and not done.done():
            done.set_result(None)  # the user's next tap may go now
        results.put_nowait(SendResult(send, outcome, tuple(f.at(send) for f in broken)))

    async def dispatch() -> None:
        started = clock()
        tasks = []
        for send in plan.sends:
            if math.isfinite(speed):
                wait = started + send.at / speed - clock()
                if wait > 0:
                    await sleep(wait)
            limit = None if send.together else limits.setdefault(
                send.step, asyncio.Semaphore(plan.step(send.step).concurrency))
            if limit is not None and limit.locked():
                # Wait for a free slot before the next send's clock starts, so a slow
                # handler delays later sends the way a real platform's queue would.
                async with limit:
                    pass
            if book is not None and send.kind != "verify":
                before, done = after_previous(send)  # in dispatch order: who tapped last
                tasks.append(asyncio.ensure_future(one(send, limit, before, done)))
            else:
                tasks.append(asyncio.ensure_future(one(send, limit)))
            await asyncio.sleep(0)  # let it take its slot before the next one looks
        await asyncio.gather(*tasks)

    dispatcher = asyncio.ensure_future(dispatch())
    try:
        for _ in plan.sends:
            item = await results.get()
            if isinstance(item, BaseException):
                raise item
            yield item
        await dispatcher
    finally:
        dispatcher.cancel()
        if probe is not None:
            probe.stop()
        if book is not None:
            book.close()
        for deliverer in deliverers.values():
            await deliverer.aclose()


def _not_sent(send: PlannedSend, why: Failure) -> DeliveryResult:
    """The delivery of a send that could not be made (a tap with nothing to tap on)."""
    return DeliveryResult(send.event, (Attempt(
        send.event, f"{send.event.id}-not-sent", 1, time.time(), "", "POST", "", (),
        error=f"not sent: {why.message}"),))


async def _verify(plan: Plan, send: PlannedSend, options: DeliveryOptions,
                  client: httpx.AsyncClient | None, clock: Callable[[], float]
                  ) -> tuple[DeliveryResult, list[Failure]]:
    """A `verify` step: Meta's GET handshake, as a delivery of its GETs and the rule."""
    from simulator.meta import verify_handshake

    spec = plan.step(send.step).verify
    assert spec is not None  # only verify sends come here
    began, wall = clock(), time.time()
    handshake = await verify_handshake(options, spec.token, client=client)
    each = (clock() - began) * 1000 / max(len(handshake.checks), 1)
    attempts = tuple(
        Attempt(send.event, f"{send.event.id}-{send.index}", number, wall, options.target.label,
                "GET", options.target.url, (), status=check.status,
                response_body="the challenge, echoed" if check.echoed else "",
                latency_ms=each, error=check.error,
                error_kind="connect" if check.error and "nothing is listening" in check.error
                else None, delivered=check.status is not None,
                final=number == len(handshake.checks))
        for number, check in enumerate(handshake.checks, start=1))
    result = DeliveryResult(send.event, attempts)
    right = handshake.checks[0]
    failures = []
    if spec.expect == "pass" and not handshake.passed and right.status is not None:
        failures.append(Failure("verify", "; ".join(c.line() for c in handshake.checks
                                                   if not c.passed)))
    elif spec.expect == "refused" and right.status is not None and right.passed:
        failures.append(Failure("verify", f"the handler echoed the challenge for the token "
                                          f"{spec.token!r}; it must refuse it"))
    return result, failures


async def deliver_events(
    events: Iterable[Event],
    options: DeliveryOptions,
    *,
    replay_of: Mapping[str, str] | None = None,
    on_attempt: Callable[[Attempt], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    client: httpx.AsyncClient | None = None,
    edit_of: Mapping[str, str] | None = None,
) -> AsyncIterator[DeliveryResult]:
    """Deliver events one after another (fire, replay), yielding each delivery as it ends.

    `replay_of` maps an event id to the delivery it replays, `edit_of` an edited event's id
    to the delivery whose bytes were edited; both are recorded on every attempt.
    """
    async with Deliverer(options, on_attempt=on_attempt, sleep=sleep,
                         client=client) as deliverer:
        for event in events:
            yield await deliverer.deliver(event, replay_of=(replay_of or {}).get(event.id),
                                          edit_of=(edit_of or {}).get(event.id))


def scenario_settings(scenario: Scenario, index: int | None, given: Mapping[str, Any],
                      flag: Callable[[str], str], *, own_target: bool = False,
                      ) -> tuple[dict[str, Any], Callable[[str], str]]:
    """The settings of step `index` (None: no step): scenario, then the step, then `given`.

    `given` are the settings of the person (flags, the API, the TUI's dialog), named by
    `flag`; the scenario's are named by their `file:line`. One rule for every face.
    `own_target`: the caller has its own target (the Python API's app object), which
    replaces the scenario's url and app.
    """
    layers: list[Layer] = [(scenario.target, target_where(scenario, "target"))]
    if index is not None and index < len(scenario.steps):
        layers.append((scenario.steps[index].target,
                       target_where(scenario, f"steps[{index}].target")))
    layers.append((given, flag))
    settings, where = resolve(*layers)
    if own_target:
        settings = {k: v for k, v in settings.items() if k not in ("url", "app")}
    return settings, where


def scenario_delivery(plan: Plan, overrides: Mapping[str, Any],
                      flag: Callable[[str], str],
                      fallback: Target | None = None, *,
                      allow_remote: bool = False) -> Callable[[PlannedSend], DeliveryOptions]:
    """DeliveryOptions per step: scenario target, then the step's, then command-line overrides.

    Every step's options are built (and so checked) at once, before anything is sent.
    `fallback` is the caller's own target, which replaces the scenario's url and app.
    `allow_remote` is the person's permission; nothing in the scenario can give it.
    """
    scenario = plan.scenario
    built: dict[str, DeliveryOptions] = {}
    cache: dict[tuple[tuple[str, str], ...], DeliveryOptions] = {}
    for index, step in enumerate(scenario.steps):
        settings, where = scenario_settings(scenario, index, overrides, flag,
                                            own_target=fallback is not None)
        settings = _expected_is_delivered(settings, scenario.expect.merged(step.expect))
        key = tuple(sorted((k, repr(v)) for k, v in settings.items()))
        if key not in cache:
            cache[key] = delivery_options_from(settings, where, target=fallback,
                                               allow_remote=allow_remote,
                                               person=given(overrides).keys())
        built[step.name] = cache[key]
    return lambda send: built[send.step]


def _expected_is_delivered(settings: Mapping[str, Any], expect: Expectations
                           ) -> dict[str, Any]:
    """The settings with the step's expected statuses counted as delivered too: a handler that
    answers what the scenario expects (pywa's 422 to a missing signature header) neither
    fails the delivery nor gets retried. An explicit `success` setting is kept as given."""
    out = dict(settings)
    if expect.status is None or out.get("success"):
        return out
    signature = str(out.get("signature", "valid")).strip().lower()
    negative = signature != "valid"  # a bad value is delivery_options_from's to report
    default = "401,403" if negative else "2xx"  # delivery_options_from's own default
    expected = ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in expect.status)
    out["success"] = f"{default},{expected}"
    return out


# --- summing up ------------------------------------------------------------------------------

