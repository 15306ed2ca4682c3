"""The app's side of a conversation in a run: its replies through the send API, attributed to
the taps that caused them and checked against `expect: reply:`, and taps on its own messages.

A reply belongs to a user's latest tap before it: the mock numbers every message it records,
so a tap opens a window at the number recorded when it was dispatched, which the user's next
tap closes. Copies of a callback (duplicates, redeliveries, the same batch) share the window,
so "exactly one reply per tap" also means "no second reply to a duplicate". Waiting is on the
mock's record (a watcher), bounded by the runner's clock and sleep, never a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from simulator.delivery import Event
from simulator.errors import WasimError
from simulator.models import Business, Button, Tap
from simulator.scenarios import ReplyExpectation, Scenario

if TYPE_CHECKING:
    from simulator.records import Failure, Plan, PlannedSend
    from simulator.sendapi import MockApi, SentMessage

Sleep = Callable[[float], Awaitable[None]]


def require_api(scenario: Scenario, api: object | None, how: str) -> None:
    """Refuse (exit 2) a run whose scenario needs the send API when none runs.

    `how` says how to start one on the face that runs it (`--api-port 0`, `wasim.api()`).
    """
    if api is not None or not scenario.needs_api:
        return
    key = "expect.reply" if scenario.expect.reply is not None else next(
        f"steps[{i}].{'tap_reply' if s.tap_reply else 'expect.reply'}"
        for i, s in enumerate(scenario.steps)
        if s.tap_reply is not None or (s.expect is not None and s.expect.reply is not None))
    raise WasimError(f"{key}: the app's replies are checked, but no send API runs to record "
                     "them", where=scenario.where(key),
                     hint=f"Start one with {how}, and point the app's Kaleyra base URL at it.")


def users_of(send: PlannedSend) -> list[str]:
    """The numbers of the users whose messages are in the send's body (several in a batch)."""
    return [tap.user.wa_id for tap in (send.batch or (send.tap,))]


def bsuids_of(send: PlannedSend) -> dict[str, str]:
    """Each user's BSUID by number, for the users in the send's body that have one."""
    return {tap.user.wa_id: tap.user.user_id for tap in (send.batch or (send.tap,))
            if tap.user.user_id}


class ReplyBook:
    """Which of the app's messages answer which tap, and waiting for them to arrive."""

    def __init__(self, api: MockApi, *, clock: Callable[[], float], sleep: Sleep) -> None:
        self.api = api
        self.clock = clock
        self.sleep = sleep
        self._opened: dict[str, list[tuple[int, str]]] = {}  # user -> [(mark, key)], in order
        # The app's messages by recipient, read from the mock once each (a run may have
        # thousands of waiters, each checking on every new message).
        self._seen = api.count  # what was sent before this run answers none of its taps
        self._by_user: dict[str, list[SentMessage]] = {}  # by `to`: a number or a BSUID
        self._bsuid: dict[str, str] = {}  # a user's BSUID by number: replies go to either
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick: asyncio.Future[None] | None = None
        self._unwatch: Callable[[], None] | None = None

    def start(self) -> ReplyBook:
        """Watch the mock's record from the running loop; returns self."""
        self._loop = asyncio.get_running_loop()
        self._tick = self._loop.create_future()
        self._unwatch = self.api.watch(self._recorded)
        return self

    def close(self) -> None:
        """Stop watching the mock."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None

    def _recorded(self) -> None:
        """On the mock's thread: wake the waiters on the loop's."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        assert self._loop is not None
        tick, self._tick = self._tick, self._loop.create_future()
        if tick is not None and not tick.done():
            tick.set_result(None)

    # --- windows -------------------------------------------------------------------------

    def open(self, key: str, users: Iterable[str]) -> None:
        """A tap (or a copy of one: the same key) goes to `users` now."""
        mark = self.api.count
        for user in dict.fromkeys(users):
            entries = self._opened.setdefault(user, [])
            if not any(opened == key for _, opened in entries):
                entries.append((mark, key))

    def know(self, send: PlannedSend) -> None:
        """Learn the BSUIDs of the send's users, so replies to them count as to the user."""
        self._bsuid.update(bsuids_of(send))

    def who(self, user: str) -> str:
        """The user for messages: their number, and their BSUID when they have one."""
        bsuid = self._bsuid.get(user)
        return f"{user} ({bsuid})" if bsuid else user

    def last_mark(self, user: str) -> int:
        """The number of the newest message before the user's latest tap (0: none yet)."""
        entries = self._opened.get(user)
        return entries[-1][0] if entries else 0

    def messages_to(self, user: str, after: int = 0) -> list[SentMessage]:
        """The app's messages to `user` (by number or BSUID) during this run, numbered after
        `after`, oldest first."""
        for message in self.api.sent_after(self._seen):
            self._by_user.setdefault(message.to, []).append(message)
            self._seen = message.number
        number = user.lstrip("+")
        found = [m for m in self._by_user.get(number, ()) if m.number > after]
        bsuid = self._bsuid.get(number)
        if bsuid:
            found += [m for m in self._by_user.get(bsuid, ()) if m.number > after]
            found.sort(key=lambda m: m.number)
        return found

    def replies(self, key: str, user: str) -> list[SentMessage]:
        """The app's messages to `user` in the window of the tap `key`."""
        entries = self._opened.get(user, [])
        for index, (mark, opened) in enumerate(entries):
            if opened == key:
                end = entries[index + 1][0] if index + 1 < len(entries) else None
                return [m for m in self.messages_to(user, mark)
                        if end is None or m.number <= end]
        return []

    async def wait(self, done: Callable[[], bool], deadline: float) -> bool:
        """Wait until `done()` or the runner's clock passes `deadline`; whether it was done."""
        while True:
            tick = self._tick
            if done():
                return True
            remaining = deadline - self.clock()
            if remaining <= 0 or tick is None:
                return done()
            sleeper = asyncio.ensure_future(self.sleep(remaining))
            try:
                await asyncio.wait({tick, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()


# --- expect: reply ---------------------------------------------------------------------------


def _listing(messages: Sequence[SentMessage]) -> str:
    if not messages:
        return "the app sent that user nothing"
    shown = "; ".join(_short(m) for m in messages[:3])
    more = f" and {len(messages) - 3} more" if len(messages) > 3 else ""
    return f"the app sent: {shown}{more}"


def _short(message: SentMessage) -> str:
    what = f"template {message.template!r}" if message.template else \
        f"{message.type} {message.text[:40]!r}"
    return f"#{message.number} {what}"


async def check_reply(book: ReplyBook, send: PlannedSend, expect: ReplyExpectation,
                      started: float, *, first: bool, last: bool) -> list[Failure]:
    """The reply rule for one delivery: the first delivery of a tap needs its replies (at
    least one, or `count`), the last watches the whole window for one too many."""
    from simulator.records import Failure

    key = send.event.id
    book.know(send)
    wanted = Counter(users_of(send))
    per_tap = expect.count if expect.count is not None else 1
    low = first and per_tap > 0
    high = last and expect.count is not None

    def counts() -> dict[str, int]:
        # A message Meta refuses (an undefined template) never reaches the phone.
        return {user: sum(expect.matches(m) and not m.error for m in book.replies(key, user))
                for user in wanted}

    def done() -> bool:
        found = counts()
        if high:  # only one too many ends the watch early
            return any(found[u] > per_tap * n for u, n in wanted.items())
        return all(found[u] >= per_tap * n for u, n in wanted.items())

    if not low and not high:
        return []
    await book.wait(done, started + expect.within)
    failures = []
    found = counts()
    batch = f" (message(s) of theirs in a batch of {len(users_of(send))}: each needs its " \
            "reply)" if len(users_of(send)) > 1 else ""
    for user, n in wanted.items():
        need = per_tap * n
        if low and found[user] < need:
            got = f"only {found[user]}" if found[user] else "none"
            failures.append(Failure("reply", f"{_refused(book.replies(key, user))}expected "
                                    f"{_amount(expect, need)} {expect.describe()} to "
                                    f"{book.who(user)} within {expect.within:g} s, got "
                                    f"{got}{batch};"
                                    f" {_listing(book.replies(key, user))}"))
        elif high and found[user] > need:
            copy = "" if first else " (a copy of the same callback was answered again)"
            failures.append(Failure("reply", f"{found[user]} {expect.describe()} replies to "
                                    f"{book.who(user)} for one tap, expected exactly {need}{copy}; "
                                    f"{_listing(book.replies(key, user))}"))
    return failures


def _refused(messages: Sequence[SentMessage]) -> str:
    """Why a reply that was sent does not count: a template the scenario does not define."""
    from simulator.sendapi import TEMPLATE_MISSING

    names = list(dict.fromkeys(m.template for m in messages if m.error == TEMPLATE_MISSING))
    if not names:
        return ""
    listed = ", ".join(repr(n) for n in names)
    return (f"the app sent template {listed}, which the scenario does not define: Kaleyra "
            f"accepts it and reports it failed ({TEMPLATE_MISSING}; add it to `templates:` if "
            "the account has it); ")


def _amount(expect: ReplyExpectation, need: int) -> str:
    return f"exactly {need}" if expect.count is not None else f"at least {need}"


def first_and_last(sends: Sequence[PlannedSend]) -> tuple[set[int], set[int]]:
    """The plan indexes of each callback's first and last delivery (copies share a body)."""
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    for send in sends:
        first.setdefault(send.event.id, send.index)
        last[send.event.id] = send.index
    return set(first.values()), set(last.values())


# --- tap_reply: the shopper taps a button of the app's own message ---------------------------


def button_of(message: SentMessage, wanted: str) -> Button | None:
    """The message's button whose label or payload is `wanted` (exactly, else any case)."""
    for button in message.buttons:
        if wanted in (button.text, button.payload):
            return button
    folded = wanted.casefold()
    return next((b for b in message.buttons
                 if folded in (b.text.casefold(), b.payload.casefold())), None)


async def resolve_tap_reply(book: ReplyBook, plan: Plan, send: PlannedSend
                            ) -> PlannedSend | Failure:
    """The send with its tap aimed at the app's newest message to the user that has the
    step's button (context.id its wamid, reply_to its Kaleyra id), or why there is none."""
    from simulator.records import Failure
    from simulator.render import render_tap
    from simulator.sendapi import sent_template
    from simulator.taps import business_ids

    spec = plan.step(send.step).tap_reply
    assert spec is not None  # only tap_reply sends come here
    user = send.tap.user.wa_id
    book.know(send)
    after = book.last_mark(user)

    def found() -> tuple[SentMessage, Button] | None:
        for message in reversed(book.messages_to(user, after)):
            if message.error:  # refused by Meta (an undefined template): not on the phone
                continue
            button = button_of(message, spec.button)
            if button is not None:
                return message, button
        return None

    await book.wait(lambda: found() is not None, book.clock() + spec.within)
    hit = found()
    if hit is None:
        return Failure("tap_reply", f"{_refused(book.messages_to(user, after))}"
                                    f"no message from the app to {book.who(user)} with a "
                                    f"{spec.button!r} button within {spec.within:g} s; "
                                    f"{_listing(book.messages_to(user, after))}")
    message, button = hit
    business = plan.business if message.business == plan.business.display_phone_number \
        else Business(message.business, *business_ids(message.business))
    tap: Tap = replace(send.tap, template=sent_template(message), button=button,
                       business=business)
    assert plan.callback is not None  # plans with tap_reply steps keep their template
    event = Event.from_body(render_tap(plan.callback, tap), plan.seed)
    return replace(send, tap=tap, event=event)


def start_scenario_api(scenario: Scenario, port: int, webhook: Any = None, *,
                       on_sent: Callable[[SentMessage], None] | None = None,
                       set_env: bool = True, templates: Sequence[str] = ()) -> MockApi:
    """The send API for a run of `scenario`, started: it knows the scenario's templates (and
    `templates`), sends statuses to `webhook` (DeliveryOptions), and with `set_env` its
    settings are in this process's environment (KALEYRA_BASE_URL...) for in-process apps."""
    import os

    from simulator.sendapi import MockApi, api_options

    api = MockApi(api_options(port=port, templates=(*scenario.template_names, *templates)),
                  webhook=webhook, on_sent=on_sent, seed=scenario.seed).start()
    if set_env:
        os.environ.update(api.env())
    return api
