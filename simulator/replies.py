"""The app's side of a conversation in a run: its replies through the send API, attributed to
the taps that caused them and checked against `expect: reply:`, and taps on its own messages.

A reply belongs to the tap that caused it: one naming a tap's message in its context is that
tap's; otherwise it belongs to the user's latest tap before it. The mock numbers every message
it records, so a tap opens a window at the number recorded when it was dispatched, which the
user's next tap closes; and the runner holds that next tap until this one's replies are
decided, so a reply sent after the 200 still lands in its own tap's window at any speed.
Copies of a callback (duplicates, redeliveries, the same batch) share the window,
so "exactly one reply per tap" also means "no second reply to a duplicate". Waiting is on the
mock's record (a watcher), bounded by the runner's clock and sleep, never a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from simulator.delivery import Event
from simulator.errors import WasimError
from simulator.models import Button, Tap
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
        self._tap_of: dict[str, str] = {}  # a tap's message wamid -> its window's key
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

    def open(self, key: str, users: Iterable[str], message_ids: Iterable[str] = ()) -> None:
        """A tap (or a copy of one: the same key) goes to `users` now; `message_ids` are the
        wamids of the user messages in it, which a reply may name in its context."""
        for message_id in message_ids:
            self._tap_of.setdefault(message_id, key)
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
                # By context first: a reply naming a tap's message is that tap's, whenever it
                # came; one without context belongs to the window it arrived in.
                return [m for m in self.messages_to(user, mark)
                        if self._tap_of.get(m.context_id, key) == key
                        and (end is None or m.number <= end or m.context_id in self._tap_of)]
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


def exact_hint(plan: Plan, failures: list[Failure]) -> list[Failure]:
    """`failures` with why a de-duplicating app may have ignored the taps: a reproduced run
    (`--exact`) re-sends the message ids an earlier run already sent."""
    if plan.run or not failures:
        return failures
    why = (" (this run reproduces the seed's message ids, as --exact does: if an earlier "
           "run sent them, an app that de-duplicates by message id rightly ignored these "
           "taps; run without --exact for new traffic, or `wasim replay` to redeliver)")
    return [replace(f, message=f.message + why)
            if f.rule in ("reply", "tap_reply") and ("got none" in f.message
                                                     or "sent that user nothing" in f.message)
            else f for f in failures]


def _refused(messages: Sequence[SentMessage]) -> str:
    """Why a reply that was sent does not count: a template the scenario does not define, or
    a failure rule that made it fail."""
    from simulator.sendapi import TEMPLATE_MISSING

    names = list(dict.fromkeys(m.template for m in messages if m.error == TEMPLATE_MISSING))
    failed = [m for m in messages if m.error and m.error != TEMPLATE_MISSING]
    said = ""
    if names:
        listed = ", ".join(repr(n) for n in names)
        said = (f"the app sent template {listed}, which the scenario does not define: Kaleyra "
                f"accepts it and reports it failed ({TEMPLATE_MISSING}; add it to `templates:` "
                "if the account has it); ")
    if failed:  # a --fail rule: the message never reached the phone
        said += "; ".join(f"#{m.number} failed with {m.error} (a --fail rule)"
                          for m in failed[:3]) + "; "
    return said


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
    from simulator.sendapi import business_of, reply_body, sent_template
    from simulator.world import tap_time

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
    # The user taps what they have read: after the message's statuses went out (in
    # delivery order) and stamped after its read (simulator.world.tap_time).
    await book.wait(lambda: book.api.statuses_done(message),
                    book.clock() + book.api.status_wait(message) + spec.within)
    business = plan.business if message.business == plan.business.display_phone_number \
        else business_of(message)
    at = tap_time(int(send.tap.timestamp), book.api.read_at(message))
    tap: Tap = replace(send.tap, template=sent_template(message), button=button,
                       business=business, timestamp=str(at))
    if message.user_id and send.tap.user.user_id != message.user_id:
        tap = replace(tap, user=replace(tap.user, user_id=message.user_id))
    callback = plan.callback
    assert callback is not None  # plans with tap_reply steps keep their template
    # A quick reply of a template is `type: button`; a reply button or list row of an
    # interactive message is `type: interactive` (button_reply / list_reply).
    body = reply_body(message, tap, lambda t: render_tap(callback, t))
    event = Event.from_body(body, plan.seed)
    return replace(send, tap=tap, event=event)


def share_world(api: MockApi, plan: Plan) -> None:
    """Give the send API the run's world: its business ids and its users (their BSUIDs)."""
    api.world.add_business(plan.business)
    for user in plan.users:
        api.world.add_user(user)


def start_scenario_api(scenario: Scenario, port: int, webhook: Any = None, *,
                       on_sent: Callable[[SentMessage], None] | None = None,
                       set_env: bool = True, templates: Sequence[str] = (),
                       plan: Plan | None = None, speed: float = math.inf,
                       status_delays: Sequence[float] = (),
                       sid: str | None = None, api_key: str | None = None,
                       fail: Sequence[Any] = (), v1_id: str = "bare") -> MockApi:
    """The send API for a run of `scenario`, started: it knows the scenario's templates (and
    `templates`), its failure rules `fail` (FailRule), sends statuses to `webhook`
    (DeliveryOptions), and with `set_env` its settings are in this process's environment
    (KALEYRA_BASE_URL...) for in-process apps. With `plan`, its world is the run's: the
    business's ids and the users' BSUIDs, and its ids are the run's (new per run unless the
    plan reproduces one); statuses go out at `speed` times world time (`status_delays`,
    default 1 s, 2 s, 5 s)."""

    from simulator.sendapi import MockApi, api_options, start_on_flag

    seed: int | str | None = scenario.seed
    if plan is not None:
        seed = f"{plan.seed}:run:{plan.run}" if plan.run else plan.seed
    api = MockApi(api_options(port=port, sid=sid, api_key=api_key, fail=fail, v1_id=v1_id,
                              templates=(*scenario.template_names, *templates),
                              status_delays=status_delays, speed=speed),
                  webhook=webhook, on_sent=on_sent, seed=seed)
    if plan is not None:
        share_world(api, plan)
    start_on_flag(api, "--api-port")
    if set_env:
        api.export_env()  # put back by api.stop()
    return api
