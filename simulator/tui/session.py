"""The phone's state without any UI: a scenario's business, cast and template, and the next tap.

Everything here is the core put together for one person tapping by hand: users and template
messages come from the scenario's plan (`runner.plan_scenario`), taps from a `TapFactory`,
bytes from `render_tap`. The Textual app only shows this and sends what it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import httpx

from simulator.delivery import (
    Attempt,
    DeliveryOptions,
    Event,
    Target,
    checked_address,
    delivery_options_from,
)
from simulator.errors import WasimError
from simulator.inputs import parse_phone
from simulator.kinds import KindArgs, kind_body
from simulator.models import Business, Button, Tap, TemplateMessage, User
from simulator.providers import WhatsAppProvider
from simulator.render import CallbackTemplate, find_template, render_tap
from simulator.runner import Plan, plan_scenario
from simulator.scenarios import Scenario, builtin_scenarios, load_scenario, parse_scenario
from simulator.sendapi import SentMessage, business_of, reply_body, reply_kind, sent_template
from simulator.taps import TapFactory, TapOptions
from simulator.world import default_read_at, tap_time

Clock = Callable[[], float]
Reachability = Literal["checking", "reachable", "unreachable", "in-process", "no target"]

DEFAULT_SCENARIO = "summer-sale"
# What the phone shows when no built-in scenario ships: Kaleyra's example quick replies.
_FALLBACK_SCENARIO = """\
name: quick-replies
description: One promotional template with three quick replies, tapped by hand.
template:
  name: summer_sale_promo
  body: "Hi! Our summer sale is live: up to 50% off shoes and bags until Sunday. Tap below to \
shop, or tell us to remind you later."
  ref1: summer sale campaign
  ref2: shoes campaign
cast:
  countries: {IN: 3, US: 1, BR: 1}
"""
# The phone draws its own taps and new users from a seed next to the run's, so that "new
# user" does not hand back the cast's first user (the plan draws from the run's seed).
_PHONE_SEED_OFFSET = 7_919


def default_scenario() -> Scenario:
    """The built-in 'summer-sale' scenario if it ships, else a plain template with quick replies."""
    for path in builtin_scenarios():
        if path.stem == DEFAULT_SCENARIO:
            return load_scenario(path)
    return parse_scenario(_FALLBACK_SCENARIO, "<built-in quick-replies>")


def pick_seed(given: int | None, scenario: Scenario) -> int:
    """The seed to use: the one given, the scenario's own, or a fresh one (shown in the UI)."""
    if given is not None:
        return given
    if scenario.seed is not None:
        return scenario.seed
    return secrets.randbelow(1_000_000)


def delivery_for(scenario: Scenario, overrides: Mapping[str, Any],
                 flag: Callable[[str], str], *,
                 allow_remote: bool = False) -> DeliveryOptions | None:
    """The delivery options taps by hand use: the scenario's `target:` under the given flags.

    None when neither names a URL or an app; any other problem raises a WasimError.
    """
    from simulator.runner import scenario_settings
    from simulator.settings import given

    # The same resolve as `wasim run`: the dialog's or the flags' settings over the file's.
    settings, where = scenario_settings(scenario, None, overrides, flag)
    if not settings.get("url") and not settings.get("app"):
        return None
    return delivery_options_from(settings, where, allow_remote=allow_remote,
                                 person=given(overrides).keys())


async def probe_target(target: Target, timeout: float = 1.0, *, allow_remote: bool = False,
                       remote_hosts: frozenset[str] | None = None) -> Reachability:
    """Whether something accepts connections at the target's host and port (no request sent).

    A TCP connect rather than a GET, so the probe never shows up in the handler's own logs.
    Without `allow_remote`, to the loopback address the host resolves to now, or not at all.
    """
    if target.kind != "url":
        return "in-process"
    url = httpx.URL(target.url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        host = await checked_address(url.host, port, allow_remote, remote_hosts=remote_hosts)
    except WasimError:  # the name moved off this machine since the target was set
        return "unreachable"
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return "unreachable"
    writer.close()
    with contextlib.suppress(OSError):  # the peer hung up first: it was there, all we asked
        await writer.wait_closed()
    return "reachable"


def display_number(wa_id: str, country: str | None = None) -> str:
    """A WhatsApp number for people: `+91 9740776505`."""
    dial = WhatsAppProvider.countries[country].dial_code \
        if country in WhatsAppProvider.countries else ""
    if dial and wa_id.startswith(dial):
        return f"+{dial} {wa_id[len(dial):]}"
    return f"+{wa_id}"


def clock_text(moment: float) -> str:
    """A wall-clock time as the phone and the log show it: `14:05:09`, local time."""
    return datetime.fromtimestamp(moment).strftime("%H:%M:%S")


def business_label(scenario: Scenario, business: Business) -> str:
    """What the chat header shows for the brand: its name, else its display number."""
    number = display_number(business.display_phone_number, scenario.business.country)
    return scenario.business.name or number


@dataclass
class SendRecord:
    """One delivery made from the UI, as the log and the detail view know it."""

    key: str
    event: Event
    via: str  # tap, replay, duplicate, or the run's step
    when: float  # the UI clock when it was sent
    replay_of: str | None = None
    attempts: list[Attempt] = field(default_factory=list)
    failures: tuple[str, ...] = ()  # a run's expectations this delivery broke
    label: str = ""  # what the log's Button column shows, when not the tapped button
    source: str | None = None  # a duplicate's or an edit's original delivery (see via)

    @property
    def delivery_id(self) -> str | None:
        """The delivery's id, once its first attempt has ended."""
        return self.attempts[0].delivery_id if self.attempts else None

    @property
    def done(self) -> bool:
        """Whether no attempt of it is still to come."""
        return bool(self.attempts) and self.attempts[-1].final


@dataclass(frozen=True)
class Edits:
    """Fields QA changed by hand before firing; None keeps what the scenario generated."""

    name: str | None = None
    number: str | None = None  # digits, already checked with parse_phone
    ref: str | None = None
    ref1: str | None = None
    ref2: str | None = None
    payloads: tuple[str | None, ...] = ()  # per button, by position

    def payload(self, index: int) -> str | None:
        """The edited payload of button `index`, if it was edited."""
        return self.payloads[index] if index < len(self.payloads) else None


@dataclass(frozen=True)
class EditForm:
    """The fields the edit screen shows, as text, before they are checked."""

    name: str
    number: str
    ref: str
    ref1: str
    ref2: str
    payloads: tuple[str, ...] = field(default_factory=tuple)


class PhoneSession:
    """What the phone shows and fires: one scenario's business, cast and template message."""

    def __init__(self, scenario: Scenario, seed: int, clock: Clock = time.time,
                 callback: str | None = None) -> None:
        self.scenario = scenario
        self.seed = seed
        self.clock = clock
        self.plan: Plan = plan_scenario(scenario, seed)
        spec, cast = scenario.template, scenario.cast
        first_sent = next(iter(self.plan.sent.values()), None)
        self.factory = TapFactory(
            TapOptions(
                seed=seed + _PHONE_SEED_OFFSET,
                countries=tuple(code for code, _ in cast.countries) or ("IN",),
                business_country=scenario.business.country,
                buttons=spec.buttons,
                # New users get the same campaign refs as the cast's copies of the template.
                ref=first_sent.ref if first_sent else spec.ref,
                ref1=first_sent.ref1 if first_sent else spec.ref1,
                ref2=first_sent.ref2 if first_sent else spec.ref2,
                platform=cast.platform,
                identity=cast.identity,
                quirks=cast.quirks,
                enterprise=cast.enterprise,
                business_number=self.plan.business.display_phone_number,
                phone_number_id=self.plan.business.phone_number_id,
                waba_id=self.plan.business.waba_id,
            ),
            clock=lambda: int(self.clock()),
        )
        self.callback = callback or spec.callback
        self.template = CallbackTemplate(find_template(self.callback), fake=self.factory.fake)
        self.users: list[User] = list(self.plan.users)
        self._sent: dict[str, TemplateMessage] = dict(self.plan.sent)
        if not self.users:
            self.users.append(self.factory.new_user())
        self.user = self.users[0]
        self.edits = Edits()
        self._next: Tap | None = None

    # --- what is shown ----------------------------------------------------------------------

    @property
    def business(self) -> Business:
        """The brand's number, as every tap carries it."""
        return self.plan.business

    @property
    def buttons(self) -> tuple[Button, ...]:
        """The template's quick replies, with edited payloads."""
        edits = self.edits
        return tuple(Button(b.text, _or(edits.payload(i), b.payload))
                     for i, b in enumerate(self.scenario.template.buttons))

    @property
    def current_user(self) -> User:
        """The selected user, with an edited name or number."""
        user, edits = self.user, self.edits
        if edits.number is None and edits.name is None:
            return user
        number = edits.number or user.wa_id
        country = user.country
        if edits.number is not None:
            country = self.factory.wa.whatsapp_country_of(number) or user.country
        edited = replace(user, wa_id=number, country=country,
                         name=edits.name if edits.name is not None else user.name)
        if edits.number is None:
            return edited
        # Another number is another user: their BSUID follows the number, as on Meta.
        mode = "username" if user.username else "bsuid" if user.user_id else "phone"
        return self.factory.with_identity(edited, mode)

    @property
    def current_sent(self) -> TemplateMessage:
        """The current user's copy of the template message, with edited refs."""
        user = self.current_user
        sent = self._sent.get(user.wa_id)
        if sent is None:
            # The wamid embeds the user's number, so an edited number gets its own message.
            sent = self._sent[user.wa_id] = self.factory.send_template(user)
        edits = self.edits
        return replace(sent,
                       ref=sent.ref if edits.ref is None else edits.ref,
                       ref1=sent.ref1 if edits.ref1 is None else edits.ref1,
                       ref2=sent.ref2 if edits.ref2 is None else edits.ref2)

    def tap(self, index: int) -> Tap:
        """The tap that button `index` sends next: the ids are drawn, only the button varies."""
        return replace(self._pending, user=self.current_user, template=self.current_sent,
                       button=self.buttons[index])

    def body(self, index: int) -> bytes:
        """The exact bytes button `index` sends next."""
        return render_tap(self.template, self.tap(index))

    def compose(self, kind: str, args: KindArgs,
                message: SentMessage | None = None) -> tuple[Tap, Event]:
        """The current user sends a callback of `kind` (simulator.kinds), the bytes `wasim
        render --kind` builds from the same facts; replying to the app's `message` when given
        (its wamid in `context`, its Kaleyra id in `reply_to`), else under the template."""
        tap = replace(self._pending, user=self.current_user, template=self.current_sent)
        if message is not None:
            tap = _replying(tap, message)
        body = kind_body(kind, tap, args, self.factory.streams[f"kind:{kind}"])
        self._next = None
        return tap, Event.from_body(body, self.seed)

    def reply(self, message: SentMessage, button: Button) -> tuple[Tap, Event]:
        """Tap `button` of a message the app sent: a quick reply of its template, a reply
        button or a list row of its interactive message, as `Simulator.reply_tap` builds it."""
        kind = reply_kind(message)
        user = self.user_for(message.to)
        tap = _replying(self.factory.tap(user, self.current_sent, button), message)
        body = reply_body(message, tap, lambda t: render_tap(self.template, t),
                          self.factory.streams[f"kind:{kind}"])
        return tap, Event.from_body(body, self.seed)

    def user_for(self, number: str) -> User:
        """Whoever has `number`: the current user, one of the cast, or a new user with it."""
        user = self.find_user(number)
        if user is None:
            user = self.factory.new_user(number=number)
            self.users.append(user)
        return user

    def find_user(self, number: str) -> User | None:
        """The current user or one of the cast with `number`, if any."""
        current = self.current_user
        if current.wa_id == number:
            return current
        return next((user for user in self.users if user.wa_id == number), None)

    def form(self) -> EditForm:
        """The editable fields as they are now, for the edit screen."""
        user, sent = self.current_user, self.current_sent
        return EditForm(user.name, user.wa_id, sent.ref, sent.ref1, sent.ref2,
                        tuple(b.payload for b in self.buttons))

    # --- what changes it --------------------------------------------------------------------

    def fire(self, index: int) -> tuple[Tap, Event]:
        """Tap button `index`: the tap and its event (exactly `body(index)`), then draw the next."""
        tap = self.tap(index)
        event = Event.from_body(render_tap(self.template, tap), self.seed)
        self._next = None
        return tap, event

    def restamp(self) -> bool:
        """Move the next tap's timestamp to now; True if it changed (the preview must follow)."""
        now = str(int(self.clock()))
        if now == self._pending.timestamp:
            return False
        self._next = replace(self._pending, timestamp=now)
        return True

    def select(self, user: User) -> None:
        """Tap as `user` from now on; a hand-edited name or number belonged to the previous one."""
        if user not in self.users:
            self.users.append(user)
        self.user = user
        self.edits = replace(self.edits, name=None, number=None)
        self._next = None

    def new_user(self, country: str | None = None) -> User:
        """A newly generated user (from `country`, or one of the cast's), now selected."""
        user = self.factory.new_user(country)
        self._sent.setdefault(user.wa_id, self.factory.send_template(user))
        self.select(user)
        return user

    def edit(self, form: EditForm) -> None:
        """Apply the edit screen's fields, checking each; raises WasimError naming the field."""
        user, sent = self.user, self._sent.get(self.user.wa_id)
        name = form.name.strip()
        if not name:
            raise WasimError("a WhatsApp profile name cannot be empty", where="name",
                             hint="Type a name, or cancel to keep the generated one.")
        number = parse_phone(form.number, "number")
        originals = [b.payload for b in self.scenario.template.buttons]
        payloads = tuple(None if p == o else p for p, o in zip(form.payloads, originals,
                                                                strict=False))
        self.edits = Edits(
            name=None if name == user.name else name,
            number=None if number == user.wa_id else number,
            ref=_changed(form.ref, sent.ref if sent else None),
            ref1=_changed(form.ref1, sent.ref1 if sent else None),
            ref2=_changed(form.ref2, sent.ref2 if sent else None),
            payloads=payloads if any(p is not None for p in payloads) else (),
        )
        self._next = None

    def reset_edits(self) -> None:
        """Back to the generated values."""
        self.edits = Edits()
        self._next = None

    @property
    def _pending(self) -> Tap:
        """The next tap's drawn ids, drawn when first shown or sent (not before: a new user's
        first tap then draws exactly what `wasim render` draws for its first user)."""
        if self._next is None:
            self._next = self._draw()
        return self._next

    def _draw(self) -> Tap:
        # Drawn for the current user: the tap's own wamid embeds the user's number.
        buttons = self.scenario.template.buttons
        return self.factory.tap(self.current_user, self.current_sent,
                                buttons[0] if buttons else Button("", ""))


def _replying(tap: Tap, message: SentMessage) -> Tap:
    """`tap` as a reply to the app's `message`: under it, to the number that sent it, and
    after the user read it (simulator.world)."""
    at = tap_time(int(tap.timestamp), default_read_at(message.received_at))
    return replace(tap, template=sent_template(message), business=business_of(message),
                   timestamp=str(at))


def _or(edited: str | None, generated: str) -> str:
    return generated if edited is None else edited


def _changed(value: str, original: str | None) -> str | None:
    return None if value == original else value


def scenario_files() -> list[tuple[str, Path, str]]:
    """(origin, path, description) of every scenario file the browser offers."""
    from simulator.scenarios import describe_file, local_scenarios

    found = [("built-in", p, describe_file(p)) for p in builtin_scenarios()]
    found += [("local", p, describe_file(p)) for p in local_scenarios()]
    return found
