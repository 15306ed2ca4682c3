"""Build Kaleyra callbacks in a test, deliver them to your handler and assert on what came back.

One module (about 1,000 lines) because it is the Python API's one surface, `Simulator` (the
`wasim` fixture), with the records a test asserts on (Callback, Delivery, ScenarioRun); the
records are the next to split off, and the scenario run to the shared run lifecycle.

This is the API behind wasim's pytest plugin (the `wasim` fixture is a `Simulator` seeded from
the test's node id); it works without pytest too: `Simulator(seed=7)`. Every outcome is a
value; the `assert_*` helpers raise AssertionError with what was sent (user, button, message
id, event id), what came back (status, the start of the body, the error) and the seed that
reproduces it.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx

from simulator.delivery import (
    APP_BASE_URL,
    Attempt,
    Deliverer,
    DeliveryOptions,
    DeliveryResult,
    Event,
    Target,
    delivery_options_from,
    is_asgi,
    url_target,
)
from simulator.errors import WasimError, did_you_mean
from simulator.inputs import parse_business_wamid, parse_phone
from simulator.meta import Handshake, parse_envelope, verify_handshake
from simulator.models import Button, Tap, TemplateMessage, User
from simulator.overrides import Override, parse_path
from simulator.play import Play
from simulator.providers import reseeded
from simulator.render import CallbackTemplate, find_template, render_tap
from simulator.runner import (
    Plan,
    SendResult,
    Summary,
    deliver_events,
    plan_scenario,
)
from simulator.scenarios import Scenario, load_scenario, parse_scenario
from simulator.tapped import read_body
from simulator.taps import (
    DEFAULT_BUTTONS,
    IDENTITIES,
    QUIRKS,
    TapFactory,
    TapOptions,
    live_clock,
    parse_shares,
)
from simulator.wamid import USER_ID_LENGTHS

if TYPE_CHECKING:
    from simulator.sendapi import MockApi, SentMessage

__all__ = ["Callback", "Deliveries", "Delivery", "ScenarioRun", "Simulator"]

EXCERPT = 500  # characters of a response body quoted in a failure message
SHOWN = 3  # failing sends or callbacks listed in one failure message
IDEMPOTENCY_HINT = ("Kaleyra delivers at least once, so the same callback can arrive again: "
                    "act once per messages[0].id.")

T = TypeVar("T")


# --- what was sent ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Callback:
    """One rendered button-tap callback: the tap it came from and the exact bytes on the wire."""

    tap: Tap
    body: bytes
    seed: int
    kind: str = "button"  # which kind of callback (simulator.kinds), e.g. "text", "status"

    @cached_property
    def event(self) -> Event:
        """The delivery event: an id derived from the bytes, and who tapped what."""
        return Event.from_body(self.body, self.seed)

    @property
    def document(self) -> dict[str, Any]:
        """The callback parsed as JSON (a fresh copy on every read)."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def user(self) -> User:
        """The user who tapped."""
        return self.tap.user

    @property
    def button(self) -> Button:
        """The button tapped: its label and payload."""
        return self.tap.button

    @property
    def message_id(self) -> str:
        """The wamid of the tap (`messages[0].id`), as in the body."""
        return self.event.message_id or self.tap.message_id

    @property
    def context_id(self) -> str:
        """The wamid of the template message the tap replies to (`messages[0].context.id`)."""
        return self.tap.template.wamid

    def describe(self) -> str:
        """Who tapped which button (or sent which kind), with the ids to find it by, read
        from the bytes."""
        event = self.event
        if self.kind != "button":
            from simulator.kinds import summarize

            who = event.user or self.tap.user.wa_id or self.tap.user.user_id
            return (f"{self.kind} {summarize(self.document)!r} for {who}, message "
                    f"{event.message_id or self.document.get('message_id', '?')}, "
                    f"event {event.id}")
        label = event.button or self.tap.button.text
        payload = read_body(self.event.body).payload or self.tap.button.payload
        who = f"{event.user} ({event.name})" if event.name else event.user or "?"
        return (f"{label!r} (payload {payload!r}) tapped by {who}, message "
                f"{event.message_id or '?'}, event {event.id}")


# --- what came back --------------------------------------------------------------------------


def _answer(attempt: Attempt) -> str:
    """The answer of one attempt, for people: status, time and the start of the body."""
    if attempt.status is None:
        return f"nothing: {attempt.error}"
    body = " ".join(attempt.response_body.split())
    if len(body) > EXCERPT:
        body = body[:EXCERPT] + " [...]"
    return f"{attempt.status} in {attempt.latency_ms:.1f} ms" + (f": {body}" if body else "")


def _statuses(results: Iterable[DeliveryResult]) -> str:
    return ", ".join(str(r.attempts[-1].status or r.attempts[-1].error_kind) for r in results)


@dataclass(frozen=True)
class Delivery:
    """One delivery of a callback (with any retries): the answer, and self-explaining asserts."""

    callback: Callback
    result: DeliveryResult
    seed_note: str  # "wasim seed N (from ...)", quoted in every failure message

    @property
    def last(self) -> Attempt:
        """The final attempt."""
        return self.result.attempts[-1]

    @property
    def delivered(self) -> bool:
        """Whether the final answer counts as delivered (2xx unless `success=` says otherwise)."""
        return self.result.delivered

    @property
    def status(self) -> int | None:
        """The final HTTP status; None when nothing answered (refused, timed out)."""
        return self.last.status

    @property
    def text(self) -> str:
        """The response body (the first 64 KiB), as text."""
        return self.last.response_body

    def json(self) -> Any:
        """The response body parsed as JSON."""
        return json.loads(self.last.response_body)

    @property
    def headers(self) -> dict[str, str]:
        """The response headers, names in lower case."""
        return {name.lower(): value for name, value in self.last.response_headers}

    @property
    def latency_ms(self) -> float:
        """How long the final attempt took to answer."""
        return self.last.latency_ms

    @property
    def error(self) -> str | None:
        """Why nothing usable came back (refused, timeout), or None."""
        return self.last.error

    def explain(self) -> str:
        """What was sent, where, what came back, and the seed: the body of a failure message."""
        attempts = self.result.attempts
        tries = f" (attempt {len(attempts)} of {len(attempts)})" if len(attempts) > 1 else ""
        return "\n".join([
            f"  sent:     {self.callback.describe()}",
            f"  to:       {self.last.target}",
            f"  answered: {_answer(self.last)}{tries}",
            f"  {self.seed_note}",
        ])

    def assert_status(self, *expected: int) -> Delivery:
        """Fail unless the final status is one of `expected`; returns self for chaining."""
        __tracebackhide__ = True
        if self.status not in expected:
            wanted = " or ".join(str(code) for code in expected)
            got = self.status if self.status is not None else "no answer"
            raise AssertionError(f"expected status {wanted}, got {got}\n{self.explain()}")
        return self

    def assert_delivered(self) -> Delivery:
        """Fail unless the callback was delivered (a success status); returns self."""
        __tracebackhide__ = True
        if not self.delivered:
            got = f"status {self.status}" if self.status is not None else "no answer"
            raise AssertionError(f"the callback was not delivered: {got}\n{self.explain()}")
        return self

    def line(self) -> str:
        """One line for the test report: event, user, button, target and answer."""
        event = self.callback.event
        return f"{event.id} {event.user} {event.button!r} -> {self.last.target}: " \
               f"{_answer(self.last)[:120]}"


class Deliveries(tuple[Delivery, ...]):
    """The deliveries of one callback sent several times (duplicates), in the order sent."""

    __slots__ = ()

    def assert_delivered(self) -> Deliveries:
        """Fail unless every copy was delivered; returns self."""
        __tracebackhide__ = True
        for number, delivery in enumerate(self, 1):
            if not delivery.delivered:
                got = delivery.status if delivery.status is not None else "no answer"
                raise AssertionError(f"copy {number} of {len(self)} was not delivered: {got}\n"
                                     f"{delivery.explain()}")
        return self

    def assert_status(self, *expected: int) -> Deliveries:
        """Fail unless every copy got one of the `expected` statuses; returns self."""
        __tracebackhide__ = True
        for delivery in self:
            delivery.assert_status(*expected)
        return self

    def assert_acted_once(self, actions: int | Sized, what: str = "acted") -> Deliveries:
        """Fail unless the handler acted once, however many copies arrived.

        `actions` is what the handler did (a list of side effects, or their count).
        """
        __tracebackhide__ = True
        if self:
            results = [d.result for d in self]
            _check_acted_once(actions, what, [(self[0].callback.describe(), results)],
                              results, self[0].seed_note)
        return self


def _check_acted_once(actions: int | Sized, what: str,
                      sent: Sequence[tuple[str, Sequence[DeliveryResult]]],
                      results: Sequence[DeliveryResult], seed_note: str) -> None:
    """Raise AssertionError unless `actions` counts once per distinct delivered callback.

    `sent` describes the callbacks worth showing, each with its deliveries.
    """
    __tracebackhide__ = True
    count = actions if isinstance(actions, int) else len(actions)
    delivered = {r.event.id for r in results if r.delivered}
    if delivered and count == len(delivered):
        return
    copies = Counter(r.event.id for r in results)
    distinct = len(copies)
    noun = "callback" if distinct == 1 else "callbacks"
    if not delivered:
        head = (f"none of the {len(results)} deliveries of {distinct} {noun} got a success "
                f"status ({_statuses(results)}), so whether the handler acts once cannot be told")
    else:
        per_callback = set(copies.values())
        if distinct == 1:
            times = f"delivered {len(results)} times"
        elif len(per_callback) == 1:
            times = f"each delivered {per_callback.pop()} times"
        else:
            times = f"delivered {len(results)} times in all"
        head = (f"the handler {what} {count} time{'s' if count != 1 else ''} on {distinct} "
                f"{noun}, {times} with the same bytes; expected {len(delivered)} (once per "
                f"callback)")
        if count > len(delivered):
            head += f".\n{IDEMPOTENCY_HINT}"
    lines = [head]
    for described, item_results in sent[:SHOWN]:
        lines.append(f"  sent:     {described}")
        lines.append(f"  answered: {_statuses(item_results)}")
    if len(sent) > SHOWN:
        lines.append(f"  ... and {len(sent) - SHOWN} more callbacks")
    if not isinstance(actions, int):
        shown = repr(actions)
        lines.append(f"  recorded: {shown[:300] + ' [...]' if len(shown) > 300 else shown}")
    lines.append(f"  {seed_note}")
    raise AssertionError("\n".join(lines))


def _describe_event(event: Event) -> str:
    who = f"{event.user} ({event.name})" if event.name else event.user or "?"
    return f"{event.button!r} tapped by {who}, message {event.message_id}, event {event.id}"


@dataclass(frozen=True)
class ScenarioRun:
    """A scenario run from a test: its summary, every send in plan order, and assertions."""

    scenario: Scenario
    plan: Plan
    results: tuple[SendResult, ...]
    summary: Summary

    @property
    def ok(self) -> bool:
        """Everything delivered and every expectation of the scenario held."""
        return self.summary.ok

    @property
    def seed_note(self) -> str:
        """The scenario and seed that replay this run byte for byte."""
        return f"scenario {self.scenario.name!r}, seed {self.plan.seed} (the same seed " \
               "sends the same users and ids)"

    def assert_ok(self) -> ScenarioRun:
        """Fail unless every send was delivered and met the scenario's `expect:`; returns self."""
        __tracebackhide__ = True
        if self.ok:
            return self
        summary = self.summary
        lines = [summary.lines()[0]]
        failing = [r for r in self.results if not r.ok]
        for outcome in failing[:SHOWN]:
            send, last = outcome.planned, outcome.result.attempts[-1]
            why = "; ".join(outcome.failures) or "not delivered"
            lines.append(f"  #{send.index} {send.step} ({send.kind}) "
                         f"{_describe_event(send.event)}: {why}")
            lines.append(f"      answered {_answer(last)}")
        if len(failing) > SHOWN:
            lines.append(f"  ... and {len(failing) - SHOWN} more failing sends")
        lines.append(f"  {self.seed_note}")
        raise AssertionError("\n".join(lines))

    def assert_acted_once(self, actions: int | Sized, what: str = "acted") -> ScenarioRun:
        """Fail unless the handler acted once per distinct callback, duplicates included.

        `actions` is what the handler did (a list of side effects, or their count).
        """
        __tracebackhide__ = True
        by_event: dict[str, list[SendResult]] = {}
        for outcome in self.results:
            by_event.setdefault(outcome.planned.event.id, []).append(outcome)
        # The callbacks delivered more than once are the ones a handler can double-act on.
        shown = [sends for sends in by_event.values() if len(sends) > 1] \
            or list(by_event.values())
        sent = [(f"{_describe_event(sends[0].planned.event)} (step {sends[0].planned.step!r})",
                 [s.result for s in sends]) for sends in shown]
        _check_acted_once(actions, what, sent, [r.result for r in self.results], self.seed_note)
        return self


# --- the simulator ---------------------------------------------------------------------------


async def _no_wait(seconds: float) -> None:
    # Retries still happen, at once: a test should not sit out a backoff schedule.
    await asyncio.sleep(0)


def _app_target(app: Any, path: str, kind: Literal["asgi", "wsgi"] | None) -> Target:
    """A target for an app object (not an import spec): ASGI or WSGI, called in-process."""
    if not callable(app):
        raise WasimError(f"app is a {type(app).__name__}, not an ASGI or WSGI app",
                         where="wasim.target(app=...)", hint="Pass the app object itself.")
    detected = kind or ("asgi" if is_asgi(app) else "wsgi")
    if not path.startswith("/"):
        path = "/" + path
    name = getattr(app, "__qualname__", None) or type(app).__name__  # `app`, or `FastAPI`
    return Target(detected, APP_BASE_URL + path, name, app)


def _with_where(exc: WasimError, where: str) -> WasimError:
    """The error as pytest shows it (only str(exc)): the place folded into the message.

    The core names the field it is about; the call the test made is where it came from.
    """
    if exc.where is None:
        # `wasim.target()` about the field `url` is `wasim.target(url=...)`.
        exc.where = (f"{where[:-1]}{exc.field}=...)" if exc.field and where.endswith("()")
                     else where)
    exc.args = (exc.one_line(_keyword),)
    return exc


def _keyword(field: str) -> str:
    """How this face names an input: a keyword argument (`timeout=`, `allow_remote=True`)."""
    return "allow_remote=True" if field == "allow_remote" else f"{field}="


class Simulator:
    """Plays Kaleyra toward your webhook: seeded button-tap callbacks, delivered and checked.

    The same seed gives the same users and ids (and bytes, with a seeded clock). Each user
    gets one template message (one `context.id` and `reply_to`) that all their taps reply to,
    as in real traffic.
    `country` is the users' country (or several, drawn in turn), `platform` the phones'
    (android, ios, web, or mix: one per user), `template` a built-in callback template or a
    `.json.j2` file, `identity` how users are identified (bsuid, phone, username, or shares
    such as "bsuid=90,username=10"; `enterprise` the share with a parent_user_id; `quirks`
    number quirks such as "mx521=0.5,br8=0.3"). Taps carry the moment they are made
    (`wall_clock`), moved so the first is `now` if given; `wall_clock=False` uses a seeded
    clock instead (starting at `now`), for byte-identical runs; `clock` is what the live
    clock reads (a test injects its own). `origin` says where the seed came from, for
    failure messages.
    """

    def __init__(self, seed: int, *, country: str | Sequence[str] = "IN",
                 platform: str = "mix", template: str = "button_tap",
                 wall_clock: bool = True, now: int | None = None, identity: str = "bsuid",
                 enterprise: float = 0.0, quirks: str = "", business_country: str = "IN",
                 origin: str = "", envelope: str = "kaleyra",
                 client: httpx.AsyncClient | None = None,
                 clock: Callable[[], float] = time.time, faker: Any = None) -> None:
        self.seed = seed
        self.clock = clock
        # The one seam of every delivery (as in runner.run_plan): None sends for real, a
        # client on httpx.MockTransport answers in a unit test.
        self.client = client
        self.origin = origin  # where the seed came from, e.g. "the node id tests/x.py::test_y"
        countries = (country,) if isinstance(country, str) else tuple(country)
        if platform not in (*USER_ID_LENGTHS, "mix"):
            raise _with_where(WasimError(f"unknown platform {platform!r}",
                                         hint=f"Use one of {', '.join(USER_ID_LENGTHS)} or "
                                              "mix."), "wasim(platform=...)")
        try:
            shares = parse_shares(identity, IDENTITIES, "wasim(identity=...)")
            quirk_shares = parse_shares(quirks, QUIRKS, "wasim(quirks=...)") if quirks else ()
        except WasimError as exc:
            raise _with_where(exc, "wasim()") from None
        self.tap_options = TapOptions(seed=seed, countries=countries, platform=platform,
                                      wall_clock=wall_clock, start=now, identity=shares,
                                      enterprise=enterprise, quirks=quirk_shares,
                                      business_country=business_country)
        self.template_name = template
        self.deliveries: list[Delivery] = []  # every delivery made, for the failure report
        self.runs: list[ScenarioRun] = []
        self.apis: list[MockApi] = []  # send APIs started by api(), for the failure report
        self._factory: TapFactory | None = None
        # A Faker from make_faker() that no one else uses any more (the pytest plugin passes
        # one back from a finished test): reseeded on first use, it draws as a new one would.
        self._spare_faker = faker
        self._template: CallbackTemplate | None = None
        self._sent: dict[str, TemplateMessage] = {}
        self._target: Target | None = None
        # envelope="meta": every delivery in Meta's webhook envelope (simulator.meta).
        self.envelope = parse_envelope(envelope, "wasim(envelope=...)")
        self._settings: dict[str, Any] = {} if self.envelope == "kaleyra" \
            else {"envelope": self.envelope}
        self._allow_remote = False  # only target(allow_remote=True) sets it, never a scenario

    def spent_faker(self) -> Any:
        """The Faker this simulator made, for a new Simulator(faker=...) once this one is
        done with (None if it made none)."""
        return self._factory.fake if self._factory is not None else self._spare_faker

    @property
    def seed_note(self) -> str:
        """`wasim seed N (from ...)`: the line that makes a failure reproducible."""
        return f"wasim seed {self.seed}" + (f" (from {self.origin})" if self.origin else "")

    # --- building callbacks --------------------------------------------------------------

    @property
    def factory(self) -> TapFactory:
        """The seeded tap factory, made on first use (a test may only run scenarios)."""
        if self._factory is None:
            try:
                options = self.tap_options
                spare, self._spare_faker = self._spare_faker, None
                self._factory = TapFactory(
                    options, reseeded(spare, options.seed) if spare is not None else None,
                    clock=live_clock(options.start, now=self.clock)
                    if options.wall_clock else None)
            except WasimError as exc:
                raise _with_where(exc, "wasim(country=...)") from None
        return self._factory

    def _callback_template(self) -> CallbackTemplate:
        if self._template is None:
            try:
                self._template = CallbackTemplate(find_template(self.template_name),
                                                  fake=self.factory.fake)
            except WasimError as exc:
                raise _with_where(exc, "wasim(template=...)") from None
        return self._template

    def user(self, country: str | None = None, *, name: str | None = None,
             number: str | None = None, identity: str | None = None) -> User:
        """A new user (from `country`, or one of the simulator's), to tap several times.

        `identity` (bsuid, phone, username) overrides the simulator's for this user.
        """
        try:
            return self._new_user(country, name, number, "wasim.user()", identity)
        except WasimError as exc:
            raise _with_where(exc, "wasim.user()") from None

    def _new_user(self, country: str | None, name: str | None, number: str | None,
                  where: str, identity: str | None = None) -> User:
        factory = self.factory
        if number is None:
            user = factory.new_user(country, name=name)
        else:
            wa_id = parse_phone(number, where)
            code = country or factory.wa.whatsapp_country_of(wa_id) or factory.countries[0]
            user = factory.new_user(code, number=wa_id, name=name)
        return user if identity is None else factory.with_identity(user, identity)

    def tap(self, button: str | None = None, *, payload: str | None = None,
            user: User | str | None = None, name: str | None = None,
            country: str | None = None, context_id: str | None = None,
            changes: Mapping[str, Any] | None = None, remove: Sequence[str] = (),
            identity: str | None = None) -> Callback:
        """A user taps `button` (a label) under a template message. A button of the template
        (Shop now, Remind me later, Stop promotions) carries its payload (SHOP_NOW...), as
        the TUI and `render` send it; any other label's payload defaults to the label.

        `user` is a User from `user()` (their taps share one template message), a phone
        number, or None for a new user (`name`, `country`, `identity`: bsuid, phone or
        username). `context_id` is the wamid of a
        template message your app sent. `changes` sets fields by path
        (`{"messages[0].button.text": "Buy"}`) and `remove` drops them, for negative tests.
        """
        try:
            return self._tap(button, payload, user, name, country, context_id, changes or {},
                             remove, identity)
        except WasimError as exc:
            raise _with_where(exc, "wasim.tap()") from None

    def _tap(self, button: str | None, payload: str | None, user: User | str | None,
             name: str | None, country: str | None, context_id: str | None,
             changes: Mapping[str, Any], remove: Sequence[str],
             identity: str | None = None) -> Callback:
        factory = self.factory
        customer = None
        if context_id is not None:
            customer = parse_business_wamid(context_id, "wasim.tap(context_id=...)").customer
        if isinstance(user, User):
            tapper = user
        else:
            tapper = self._new_user(country, name, user if user is not None else customer,
                                    "wasim.tap(user=...)", identity)
        if customer is not None and customer != tapper.wa_id:
            raise WasimError(f"the template message {context_id} went to {customer}, not to "
                             f"{tapper.wa_id}", where="wasim.tap(context_id=...)",
                             hint="Leave out user=: the wamid names the user.")
        sent = self._sent.get(tapper.wa_id)
        if sent is None or (context_id is not None and sent.wamid != context_id):
            sent = factory.send_template(tapper)
            if context_id is not None:
                sent = TemplateMessage(context_id, sent.reply_to, sent.ref, sent.ref1, sent.ref2)
            self._sent[tapper.wa_id] = sent  # the user's later taps reply to the same message
        chosen = None
        if button is not None or payload is not None:
            label = button if button is not None \
                else factory.streams["button_label"].choice(DEFAULT_BUTTONS).text
            # The template's own button taps with its payload; another label with itself.
            known = {b.text: b.payload for b in DEFAULT_BUTTONS}
            chosen = Button(label, payload if payload is not None else known.get(label, label))
        overrides = tuple(
            [Override("set", parse_path(path, f"wasim.tap(changes={{{path!r}: ...}})"), value,
                      path, f"wasim.tap(changes={{{path!r}: ...}})")
             for path, value in changes.items()]
            + [Override("remove", parse_path(path, f"wasim.tap(remove=[{path!r}])"), None, path,
                        f"wasim.tap(remove=[{path!r}])") for path in remove])
        tap = factory.tap(tapper, sent, chosen)
        return Callback(tap, render_tap(self._callback_template(), tap, overrides), self.seed)

    # --- every other kind (simulator.kinds): the same bytes as `wasim render --kind` ----------

    def send(self, kind: str, *, user: User | str | None = None,
             changes: Mapping[str, Any] | None = None, remove: Sequence[str] = (),
             **args: Any) -> Callback:
        """A callback of `kind` (see `wasim render --kind list`) from `user` (a User, a
        number, or a new user); `args` are the fields the kind declares (`wasim render --kind
        list`), checked as a scenario's `send:` is; None leaves one drawn."""
        where = f"wasim.send({kind!r})"
        try:
            from simulator.kinds import KindArgs, get_kind, kind_body

            spec = get_kind(kind, where)
            values: dict[str, Any] = {}
            for key, value in args.items():
                declared = spec.get_field(key)
                if value is None:  # not given (the helpers pass every keyword): drawn
                    continue
                if declared is None:
                    names = [f.name for f in spec.fields]
                    raise WasimError(f"kind {kind} has no field {key!r}", where=where,
                                     hint=did_you_mean(key, names)
                                     or f"Its fields: {', '.join(names) or 'none'}.")
                try:
                    values[key] = declared.parse(value)
                except ValueError as exc:
                    raise WasimError(str(exc), where=f"{where}({key}=...)") from None
            kind_args = KindArgs.of(values)
            broken = spec.broken(kind_args, lambda declared: f"{declared.name}=")
            if broken is not None:
                raise WasimError(broken[1], where=f"{where}({broken[0]}=...)", hint=broken[2])
            factory = self.factory
            sender = user if isinstance(user, User) else self._new_user(
                None, None, user, f"{where}(user=...)")
            sent = self._sent.get(sender.wa_id)
            if sent is None:
                sent = self._sent[sender.wa_id] = factory.send_template(sender)
            overrides = tuple(
                [Override("set", parse_path(path, f"{where}(changes=...)"), value, path)
                 for path, value in (changes or {}).items()]
                + [Override("remove", parse_path(path, f"{where}(remove=...)"), None, path)
                   for path in remove])
            tap = factory.tap(sender, sent, None)
            body = kind_body(kind, tap, kind_args, factory.streams[f"kind:{kind}"], overrides)
        except WasimError as exc:
            raise _with_where(exc, where) from None
        return Callback(tap, body, self.seed, kind)

    def text(self, body: str | None = None, *, forwarded: str | None = None,
             **common: Any) -> Callback:
        """The user types `body` (or a drawn text); `forwarded`: "forwarded" or
        "frequently_forwarded"."""
        return self.send("text", text=body, forwarded=forwarded, **common)

    def react(self, emoji: str | None = None, **common: Any) -> Callback:
        """The user reacts to the brand's message with `emoji` ("" removes the reaction)."""
        return self.send("reaction", emoji=emoji, **common)

    def status(self, status: str = "sent", *, error: int | None = None,
               contacts: bool = True, **common: Any) -> Callback:
        """A status of the brand's message to the user: sent, delivered, read, failed (with
        Meta's `error` code) or not-sent."""
        return self.send("status", status=status, error=error, contacts=contacts, **common)

    def location(self, lat: float | None = None, lng: float | None = None, *,
                 place_name: str | None = None, address: str | None = None,
                 url: str | None = None, **common: Any) -> Callback:
        """The user shares a location (a pin, or a named place)."""
        return self.send("location", lat=lat, lng=lng, place_name=place_name, address=address,
                         url=url, **common)

    def media(self, kind: str = "image", *, caption: str | None = None,
              **common: Any) -> Callback:
        """The user sends media: image, video, audio, voice, document or sticker."""
        return self.send(kind, caption=caption, **common)

    def list_reply(self, id: str | None = None, title: str | None = None, *,
                   description: str | None = None, **common: Any) -> Callback:
        """The user picks a row of the brand's list message."""
        return self.send("list_reply", reply_id=id, reply_title=title,
                         reply_description=description, **common)

    def button_reply(self, id: str | None = None, title: str | None = None,
                     **common: Any) -> Callback:
        """The user taps a reply button of the brand's interactive message."""
        return self.send("button_reply", reply_id=id, reply_title=title, **common)

    # --- delivering ----------------------------------------------------------------------

    def target(self, *, app: Any = None, url: str | None = None, path: str = "/",
               kind: Literal["asgi", "wsgi"] | None = None, allow_remote: bool | None = None,
               **settings: Any) -> None:
        """Where and how every later delivery goes, like `wasim fire`'s options.

        `app` is an ASGI (FastAPI, Starlette) or WSGI (Flask, Django) app called in-process
        at `path`; `url` a webhook over HTTP (this machine only unless `allow_remote`).
        `settings` are the delivery settings of simulator.settings.SETTINGS by key (the
        table checks their types and bounds): headers, basic_auth ("USER:PASSWORD"),
        token_url, client_id, client_secret, timeout, method, success ("2xx", "200,202"),
        retries, backoff, retry_schedule, envelope ("meta" sends Meta's envelope),
        app_secret (signs X-Hub-Signature-256) and signature (a negative case: missing,
        wrong-secret, reserialized, bad-format). Retries happen without waiting. Scenarios
        run by `run_scenario` use these settings too.
        """
        from simulator.settings import TARGET_KEYS, check_settings

        where = "wasim.target()"
        if "envelope" not in settings and self.envelope != "kaleyra":
            settings["envelope"] = self.envelope
        for key in TARGET_KEYS:  # given by app=, url= and path= above
            if key in settings:
                raise _with_where(WasimError(f"{key} is not a keyword here", field=key,
                                             hint="Give app=, url= and path= themselves."),
                                  where)
        # Only what the test set: the rest stays as a scenario's `target:` or the defaults.
        try:
            chosen = check_settings(settings, lambda key: f"wasim.target({key}=...)")
        except WasimError as exc:
            raise _with_where(exc, where) from None
        if app is None and url is None:
            raise _with_where(WasimError("say where to deliver: app= or url=",
                                         hint="For example wasim.target(app=app, "
                                              "path='/webhook')."), "wasim.target()")
        if allow_remote is not None and not isinstance(allow_remote, bool):
            raise _with_where(WasimError(f"allow_remote must be True or False, got "
                                         f"{type(allow_remote).__name__}"), "wasim.target()")
        previous, self._allow_remote = self._allow_remote, bool(allow_remote)
        try:
            where_to = self._where_to(app, url, path, kind, chosen, "wasim.target()")
            self._options(where_to, chosen, "wasim.target()")  # check everything now
        except WasimError:
            self._allow_remote = previous
            raise
        self._target, self._settings = where_to, chosen

    def _where_to(self, app: Any, url: str | None, path: str | None,
                  kind: Literal["asgi", "wsgi"] | None, settings: Mapping[str, Any],
                  where: str) -> Target | None:
        try:
            if app is not None and url is not None:
                raise WasimError("give an app or a url, not both", where=where)
            if app is not None:
                return _app_target(app, path or "/", kind)
            if url is not None:
                if path not in (None, "/"):
                    raise WasimError("path is for apps; put it in the url", where=where)
                return url_target(url, self._allow_remote)
        except WasimError as exc:
            raise _with_where(exc, where) from None
        return None

    def _options(self, target: Target | None, settings: Mapping[str, Any],
                 where: str) -> DeliveryOptions:
        if target is None:
            raise _with_where(WasimError(
                "no target to deliver to", where=where,
                hint="Call wasim.target(app=app, path='/webhook') first, or pass app= or url= "
                     "here."), where)
        try:
            return delivery_options_from(settings, lambda key: f"{where} {key}=",
                                         target=target, allow_remote=self._allow_remote)
        except WasimError as exc:
            raise _with_where(exc, where) from None

    def _resolve(self, app: Any, url: str | None, path: str | None, where: str) -> Target | None:
        """The target of one call: its own app/url, else `target()`'s (at `path` if given)."""
        target = self._where_to(app, url, path, None, self._settings, where)
        if target is not None or path is None or self._target is None:
            return target or self._target
        if self._target.kind == "url":
            raise _with_where(WasimError("path is for apps; put it in the url"), where)
        return _app_target(self._target.app, path, "asgi" if self._target.kind == "asgi"
                           else "wsgi")

    def _delivery_options(self, app: Any, url: str | None, path: str | None,
                          where: str) -> DeliveryOptions:
        return self._options(self._resolve(app, url, path, where), self._settings, where)

    def deliver(self, callback: Callback, *, app: Any = None, url: str | None = None,
                path: str | None = None) -> Delivery:
        """Deliver `callback` once (to `target()`'s target unless app/url is given)."""
        return _run_sync(lambda: self.adeliver(callback, app=app, url=url, path=path),
                         "deliver")

    async def adeliver(self, callback: Callback, *, app: Any = None, url: str | None = None,
                       path: str | None = None) -> Delivery:
        """`deliver` for async tests: `await wasim.adeliver(callback)`."""
        options = self._delivery_options(app, url, path, "wasim.deliver()")
        results = [result async for result in deliver_events(
            [callback.event], options, sleep=_no_wait, client=self.client)]
        return self._record(Delivery(callback, results[0], self.seed_note))

    def duplicate(self, callback: Callback, *, times: int = 2, concurrently: bool = False,
                  app: Any = None, url: str | None = None, path: str | None = None) -> Deliveries:
        """Deliver the same bytes `times` times, one after the other or all at once."""
        return _run_sync(lambda: self.aduplicate(callback, times=times, concurrently=concurrently,
                                                 app=app, url=url, path=path), "duplicate")

    async def aduplicate(self, callback: Callback, *, times: int = 2, concurrently: bool = False,
                         app: Any = None, url: str | None = None,
                         path: str | None = None) -> Deliveries:
        """`duplicate` for async tests: `await wasim.aduplicate(callback)`."""
        if times < 1:
            raise _with_where(WasimError(f"times must be 1 or more, got {times}"),
                              "wasim.duplicate()")
        options = self._delivery_options(app, url, path, "wasim.duplicate()")
        if concurrently:
            async with Deliverer(options, sleep=_no_wait, client=self.client) as deliverer:
                results = await asyncio.gather(
                    *(deliverer.deliver(callback.event) for _ in range(times)))
        else:
            results = [result async for result in deliver_events(
                [callback.event] * times, options, sleep=_no_wait, client=self.client)]
        return Deliveries(self._record(Delivery(callback, result, self.seed_note))
                          for result in results)

    def verify(self, *, token: str, app: Any = None, url: str | None = None,
               path: str | None = None, challenge: str | None = None) -> Handshake:
        """Meta's GET handshake against the target: the challenge echoed for `token`, and a
        wrong token refused. `handshake.passed` says whether both held."""
        return _run_sync(lambda: self.averify(token=token, app=app, url=url, path=path,
                                              challenge=challenge), "verify")

    async def averify(self, *, token: str, app: Any = None, url: str | None = None,
                      path: str | None = None, challenge: str | None = None) -> Handshake:
        """`verify` for async tests: `await wasim.averify(token=...)`."""
        options = self._delivery_options(app, url, path, "wasim.verify()")
        return await verify_handshake(options, token, challenge)

    def _record(self, delivery: Delivery) -> Delivery:
        self.deliveries.append(delivery)
        return delivery

    # --- scenarios -----------------------------------------------------------------------

    def run_scenario(self, scenario: str | Path, *, app: Any = None, url: str | None = None,
                     path: str | None = None, seed: int | None = None,
                     speed: float = math.inf, env: Mapping[str, str] | None = None,
                     exact: bool = False) -> ScenarioRun:
        """Run a scenario (a name, a file, or YAML text) against the target; no sleeping.

        The target is app/url, else `target()`'s, else the scenario's own `target:`. The seed
        is `seed`, else the file's `seed:`, else this simulator's. `speed` plays the timeline
        faster (10) or not at all (inf, the default). `env` is what `{{ env.X }}` sees.
        """
        return _run_sync(lambda: self.arun_scenario(scenario, app=app, url=url, path=path,
                                                    seed=seed, speed=speed, env=env,
                                                    exact=exact),
                         "run_scenario")

    async def arun_scenario(self, scenario: str | Path, *, app: Any = None,
                            url: str | None = None, path: str | None = None,
                            seed: int | None = None, speed: float = math.inf,
                            env: Mapping[str, str] | None = None,
                            exact: bool = False) -> ScenarioRun:
        """`run_scenario` for async tests: `await wasim.arun_scenario(...)`."""
        where = "wasim.run_scenario()"
        loaded = _load(scenario, seed, env or {})
        if seed is None and loaded.seed is None:
            seed = self.seed
            loaded = _load(scenario, seed, env or {})  # the file's Jinja sees the seed too
        options = self.tap_options
        start = options.start  # delivered taps carry their send moments: the run starts now
        if start is None and options.wall_clock:
            start = int(self.clock())
        # Each run of a test is new traffic (its own message and trace ids), the same on
        # every execution of the test; `exact` gives the seed's own ids.
        run_id = "" if exact else f"test-run-{len(self.runs) + 1}"
        plan = plan_scenario(loaded, seed, start=start, run=run_id)  # seed None: the file's
        target = self._resolve(app, url, path, where)
        overrides: dict[str, Any] = dict(self._settings)  # `target` replaces the file's
        sleep = _no_wait if math.isinf(speed) else asyncio.sleep
        # The app's replies go to the newest api(); their windows are waited for really
        # (the app may answer after its 200), but end as soon as they are decided.
        replies = self.apis[-1] if self.apis else None
        try:
            running = Play(plan, (overrides, lambda key: f"{where} {key}="), fallback=target,
                           allow_remote=self._allow_remote, client=self.client,
                           replies=replies,
                           api_hint="`with wasim.api() as kaleyra:` around the run")
        except WasimError as exc:
            raise _with_where(exc, where) from None
        await running.run(speed=speed, sleep=sleep, reply_sleep=asyncio.sleep)
        found = sorted(running.results, key=lambda outcome: outcome.planned.index)
        run = ScenarioRun(loaded, plan, tuple(found), running.summary)
        self.runs.append(run)
        return run

    # --- reporting -----------------------------------------------------------------------

    # --- the other half: the send API the app replies through --------------------------

    def api(self, *, sid: str | None = None, api_key: str | None = None,
            business_numbers: Sequence[str] = (), statuses: bool = True,
            status_delays: Sequence[float] = (), speed: float | None = None,
            phone_number_id: str | None = None, waba_id: str | None = None) -> MockApi:
        """A local Kaleyra send API on a free port, started; use it as `with wasim.api() as
        kaleyra:` (it stops at the end). Point the app at `kaleyra.base_url` (`kaleyra.env()`
        has the settings). Status callbacks go to `target()`'s target unless `statuses` is
        False. `reply_tap(message)` then taps a button of a message the app sent.

        Statuses are stamped `status_delays` apart (default 1 s, 2 s, 5 s) and sent `speed`
        times faster than that (default: at once without delays given, else real time).
        Its business is this simulator's (or `phone_number_id`/`waba_id`), so statuses and
        taps agree on the ids a framework filters on.
        """
        from simulator.sendapi import MockApi, api_options

        if speed is None:
            speed = 1.0 if status_delays else math.inf
        try:
            options = api_options(port=0, sid=sid, api_key=api_key,
                                  business_numbers=business_numbers,
                                  status_delays=status_delays, speed=speed,
                                  phone_number_id=phone_number_id, waba_id=waba_id)
        except WasimError as exc:
            raise _with_where(exc, "wasim.api()") from None
        webhook = self._options(self._target, self._settings, "wasim.api()") \
            if statuses and self._target is not None else None
        mock = MockApi(options, webhook=webhook, seed=self.seed, client=self.client)
        if not (phone_number_id or waba_id):
            mock.world.add_business(self.factory.business)
        mock.start()
        self.apis.append(mock)
        return mock

    def reply_tap(self, message: SentMessage, button: str | None = None) -> Callback:
        """The shopper taps `button` (a label or payload; the first if None) on `message`,
        a message the app sent through `api()`: `context.id` is its wamid, `reply_to` its
        Kaleyra id, its refs echoed."""
        from simulator.sendapi import reply_body, reply_tap

        try:
            tap = reply_tap(self.factory, message, button)
        except WasimError as exc:
            raise _with_where(exc, "wasim.reply_tap()") from None
        from simulator.world import tap_time

        mock = next((m for m in reversed(self.apis) if m.find(message.wamid) is not None),
                    None)
        if mock is not None:  # the user taps what they have read, and after it
            mock.wait_read(message, mock.status_wait(message) + _READ_GRACE)
            tap = replace(tap, timestamp=str(tap_time(int(tap.timestamp),
                                                      mock.read_at(message))))
        # A template's quick reply is `type: button`; an interactive message's reply button
        # or list row is `type: interactive` (button_reply / list_reply).
        template = self._callback_template()
        return Callback(tap, reply_body(message, tap, lambda t: render_tap(template, t)),
                        self.seed)

    def report(self, limit: int = 20) -> str:
        """The seed and everything sent in this test: the section added to a failure."""
        lines = [f"{self.seed_note}: the same test sends the same callbacks on every run"]
        if self.deliveries:
            lines.append(f"deliveries ({len(self.deliveries)}):")
            lines.extend(f"  {d.line()}" for d in self.deliveries[:limit])
            if len(self.deliveries) > limit:
                lines.append(f"  ... and {len(self.deliveries) - limit} more")
        for run in self.runs:
            lines.append(f"scenario: {run.summary.lines()[0]}")
        for mock in self.apis:
            sent = mock.sent
            lines.append(f"sent through the send API at {mock.base_url} ({len(sent)}):")
            lines.extend(f"  {message.describe()}" for message in sent[:limit])
        return "\n".join(lines)


# Seconds past their due time reply_tap waits for a message's statuses to go out.
_READ_GRACE = 5.0


def _load(scenario: str | Path, seed: int | None, env: Mapping[str, str]) -> Scenario:
    """A scenario from a Path, a name or path string, or YAML text (anything with a newline)."""
    try:
        if isinstance(scenario, str) and "\n" in scenario:
            return parse_scenario(scenario, "<scenario text>", seed=seed, env=env)
        return load_scenario(scenario, seed=seed, env=env)
    except WasimError as exc:
        raise _with_where(exc, "wasim.run_scenario()") from None


def _run_sync(start: Callable[[], Awaitable[T]], name: str) -> T:
    """Run an async API call to completion from sync code, or explain the async variant."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async def main() -> T:
            return await start()

        return asyncio.run(main())
    raise _with_where(WasimError("cannot run inside a running event loop (an async test)",
                                 hint=f"Use `await wasim.a{name}(...)` there."),
                      f"wasim.{name}()")
