"""Load the whole conversation: each tap of `wasim load --replies` matched to the app's reply.

The send API runs beside the load (MockApi, in the same process). Every tap is noted as it
leaves (its message id, its user's number and BSUID, the time); every message the app sends
through the mock is matched to a tap: by its `context.message_id` when it names one, else to
the oldest unanswered tap of its recipient. From that come the reply latency (tap sent ->
reply received by the mock), replies missing, replies to the wrong user (a context naming one
user's tap, sent to another; or a reply to nobody who tapped), duplicate replies (a second
reply to an answered tap, or to a user with no tap left to answer), and the statuses of the
replies flowing back to the webhook.

Memory is bounded: latencies go into the load's histogram; open taps past MAX_OPEN are
forgotten oldest first (counted missing), and what was answered is remembered for the last
REMEMBER taps and users only (a duplicate older than that counts as a reply to the wrong
user). Thread-safe: taps come from the load's loop, replies and statuses from the mock's
threads.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulator.errors import WasimError, named
from simulator.load import LatencyHistogram, check_number
from simulator.meta import values_of
from simulator.wamid import InvalidWamid, decode_wamid

if TYPE_CHECKING:
    from simulator.delivery import DeliveryOptions
    from simulator.sendapi import MockApi, SentMessage, StatusDelivery

MAX_OPEN = 1_000_000  # unanswered taps tracked at once (about 200 B each)
REMEMBER = 100_000  # answered taps and users remembered, to tell a duplicate reply
DEFAULT_REPLY_WAIT = 10.0  # seconds to wait for the last replies once the taps stop

# A user's message id in a compact wire body (`/` escaped as the encoder writes it), and the
# BSUID of its sender. The context's id is the business's message (decoded: fromMe true).
_WAMID = re.compile(rb'"id":\s*"(wamid\.[A-Za-z0-9+\\/=_-]{8,400})"')
_FROM_BSUID = re.compile(rb'"from_user_id":\s*"([A-Za-z0-9.]{1,140})"')


def _user_wamids(body: bytes, most: int) -> list[tuple[str, str]]:
    """The first `most` user messages' ids in a body, with the number each wamid encodes."""
    found: list[tuple[str, str]] = []
    for match in _WAMID.finditer(body):
        wamid = match.group(1).decode("ascii").replace("\\/", "/")
        try:
            decoded = decode_wamid(wamid)
        except InvalidWamid:
            continue
        if decoded.from_business:
            continue  # the context: the business's message the user answers
        found.append((wamid, decoded.customer))
        if len(found) == most:
            break
    return found


def tap_of(body: bytes) -> tuple[str, tuple[str, ...]] | None:
    """The message id of the user's message in a callback body, and who sent it (their
    number and BSUID, whichever the body has), or None for a body with no user message."""
    found = _user_wamids(body, 1)
    return _with_sender(body, *found[0]) if found else None


def _with_sender(body: bytes, wamid: str, customer: str) -> tuple[str, tuple[str, ...]] | None:
    users = [customer] if customer else []
    bsuid = _FROM_BSUID.search(body)
    if bsuid is not None:
        users.append(bsuid.group(1).decode("ascii"))
    return (wamid, tuple(users)) if users else None


def taps_of(body: bytes) -> list[tuple[str, tuple[str, ...]]]:
    """Every user message in a callback body with who sent it, as tap_of gives the first: a
    Meta batch (a scenario's `chaos: batch`) carries several, each to be answered."""
    found = _user_wamids(body, 2)
    first = _with_sender(body, *found[0]) if found else None
    if len(found) < 2 or first is None:
        return [first] if first is not None else []
    # A batch: each message's own sender, read from the parsed body (a load's body has one
    # message, and pays only the search for a second).
    try:
        document = json.loads(body)
    except ValueError:
        return [first]
    taps: dict[str, tuple[str, ...]] = {}
    for value in values_of(document):
        messages = value.get("messages") if isinstance(value, dict) else None
        for message in messages if isinstance(messages, list) else []:
            wamid = message.get("id") if isinstance(message, dict) else None
            if not isinstance(wamid, str):
                continue
            try:
                decoded = decode_wamid(wamid)
            except InvalidWamid:
                continue
            bsuid = message.get("from_user_id")
            users = ([decoded.customer] if decoded.customer else []) + (
                [bsuid] if isinstance(bsuid, str) and bsuid else [])
            if users and not decoded.from_business:
                taps.setdefault(wamid, tuple(users))
    return list(taps.items()) or [first]


@dataclass(slots=True)
class _Open:
    users: tuple[str, ...]
    sent_at: float


class ReplyTracker:
    """Taps and the app's replies, matched; the figures of a `--replies` run."""

    def __init__(self, *, clock: Callable[[], float] = time.perf_counter,
                 max_open: int = MAX_OPEN, remember: int = REMEMBER) -> None:
        self._clock = clock
        self._max_open = max_open
        self._remember = remember
        self._changed = threading.Condition()
        self._open: dict[str, _Open] = {}  # tap id -> who and when; oldest first
        self._by_user: dict[str, deque[str]] = {}  # number or BSUID -> tap ids, oldest first
        self._answered: OrderedDict[str, None] = OrderedDict()
        self._answered_users: OrderedDict[str, None] = OrderedDict()
        self.taps = 0  # distinct taps (each is owed one answer)
        self.copies = 0  # deliveries again of a tap already out or answered: owed nothing new
        self.untracked = 0  # callbacks with no user message (a status kind): nothing to answer
        self.replies = 0
        self.matched = 0
        self.wrong_user = 0
        self.duplicates = 0
        self.forgotten = 0  # open taps dropped past max_open: counted missing
        self.latency = LatencyHistogram()
        self.statuses: Counter[str] = Counter()  # the replies' statuses, by status
        self.status_errors: Counter[int] = Counter()  # failed ones by Meta error code
        self.undelivered = 0  # status callbacks the webhook did not accept
        self.statuses_each = 0  # statuses that follow a reply the mock accepts (start_load_api)
        self.expected_statuses = 0  # statuses due for the replies so far
        self._status_total = 0
        # Each matched reply's latency (ms) as it comes, for a face that reports them one by
        # one (Locust's statistics); bounded: a face that stops reading loses the oldest.
        self.matches: deque[float] | None = None

    # --- what happens --------------------------------------------------------------------

    def tap(self, body: bytes) -> None:
        """A tap leaves now (called with its exact bytes, as the load sends it); each user
        message of a batched body is a tap of its own."""
        found = taps_of(body)
        now = self._clock()
        with self._changed:
            if not found:
                self.untracked += 1
                return
            for tap_id, users in found:
                if tap_id in self._open or tap_id in self._answered:
                    # A duplicate or a redelivery: the tap is owed one answer in all, so a
                    # handler that answers it once (idempotent) is right; a second answer
                    # counts as a duplicate.
                    self.copies += 1
                    continue
                self.taps += 1
                if len(self._open) >= self._max_open:
                    del self._open[next(iter(self._open))]
                    self.forgotten += 1
                self._open[tap_id] = _Open(users, now)
                for user in users:
                    self._by_user.setdefault(user, deque()).append(tap_id)

    def reply(self, message: SentMessage) -> None:
        """The app sent `message` through the mock (called on the mock's thread)."""
        now = self._clock()
        to, context = message.to, message.context_id
        with self._changed:
            self.replies += 1
            if message.version == "v2" or message.callback_url:
                # A failed one (130429 past --throughput) gets its FAILED status alone.
                self.expected_statuses += 1 if message.error else self.statuses_each
            if context:
                entry = self._open.get(context)
                if entry is not None:
                    if to not in entry.users:
                        self.wrong_user += 1
                        return
                    self._answer(context, entry, now)
                    return
                if context in self._answered:
                    self.duplicates += 1
                    return
                # A context naming no tap of this run: matched by the recipient instead.
            queue = self._by_user.get(to)
            while queue:
                tap_id = queue.popleft()
                entry = self._open.get(tap_id)
                if entry is not None:
                    self._answer(tap_id, entry, now)
                    return
            if queue is not None:
                del self._by_user[to]
            if to in self._answered_users:
                self.duplicates += 1
            else:
                self.wrong_user += 1

    def status(self, delivery: StatusDelivery) -> None:
        """A status of one of the app's replies went to the webhook (the mock's thread)."""
        with self._changed:
            self._status_total += 1
            self.statuses[delivery.status] += 1
            if delivery.status == "failed" and delivery.message.error:
                self.status_errors[delivery.message.error] += 1
            if not delivery.delivered:
                self.undelivered += 1
            self._changed.notify_all()

    def _answer(self, tap_id: str, entry: _Open, now: float) -> None:
        del self._open[tap_id]
        self.matched += 1
        self.latency.record((now - entry.sent_at) * 1e6)
        if self.matches is not None:
            self.matches.append((now - entry.sent_at) * 1000)
        _remember(self._answered, tap_id, self._remember)
        for user in entry.users:
            _remember(self._answered_users, user, self._remember)
            # Answers come mostly in order: drop the answered ids at the front of the
            # user's queue, so a user tapping all run long keeps a short one.
            queue = self._by_user.get(user)
            while queue and queue[0] not in self._open:
                queue.popleft()
            if queue is not None and not queue:
                del self._by_user[user]
        if not self._open:
            self._changed.notify_all()

    # --- the end -------------------------------------------------------------------------

    @property
    def settled(self) -> bool:
        """Whether every tap was answered and the replies' statuses went out."""
        with self._changed:
            return not self._open and self._status_total >= self.expected_statuses

    def settle(self, timeout: float) -> bool:
        """Wait until every tap was answered and the replies' statuses went out, or
        `timeout` seconds; True if all were."""
        with self._changed:
            return self._changed.wait_for(
                lambda: not self._open and self._status_total >= self.expected_statuses,
                timeout)

    @property
    def missing(self) -> int:
        """Taps with no reply (so far)."""
        with self._changed:
            return len(self._open) + self.forgotten

    @property
    def missing_share(self) -> float:
        """Share of the taps with no reply."""
        return self.missing / self.taps if self.taps else 0.0

    def p99(self) -> float | None:
        """The reply latency's p99 in milliseconds, None before any reply."""
        return self.latency.percentile(99)

    def line(self) -> str:
        """The figures in one line, for the summary."""
        def ms(p: float) -> str:
            value = self.latency.percentile(p)
            return f"{value:.2f}" if value is not None else "-"

        statuses = ", ".join(f"{name} {count:,}" for name, count in sorted(self.statuses.items()))
        errors = ", ".join(f"{code} x{count:,}" for code, count in
                           sorted(self.status_errors.items()))
        copies = f" (and {self.copies:,} copies delivered again)" if self.copies else ""
        return (f"replies: {self.matched:,} of {self.taps:,} taps{copies} answered, "
                f"{self.missing:,} "
                f"missing ({self.missing_share:.2%}), {self.wrong_user:,} to the wrong user, "
                f"{self.duplicates:,} duplicate; reply latency p50 {ms(50)}  p95 {ms(95)}  "
                f"p99 {ms(99)} ms\nstatuses of the replies: {statuses or 'none'}"
                + (f" (failed with {errors})" if errors else "")
                + (f"; {self.undelivered:,} not accepted by the webhook"
                   if self.undelivered else ""))

    def as_dict(self) -> dict[str, Any]:
        """The figures as plain data, for the JSON report."""
        return {
            "taps": self.taps, "copies": self.copies, "untracked": self.untracked,
            "replies": self.replies,
            "matched": self.matched, "missing": self.missing,
            "missing_share": round(self.missing_share, 6), "wrong_user": self.wrong_user,
            "duplicates": self.duplicates,
            "latency_ms": {f"p{p}": self.latency.percentile(p) for p in (50, 95, 99)}
            | {"max": self.latency.max_us / 1000 if self.latency.total else None},
            "statuses": dict(sorted(self.statuses.items())),
            "status_errors": {str(k): v for k, v in sorted(self.status_errors.items())},
            "statuses_undelivered": self.undelivered,
        }

    def breaches(self, max_p99: float | None, max_missing: float | None) -> list[str]:
        """The reply thresholds broken, in words (k6's way: any one sets exit 1)."""
        broken = []
        p99 = self.p99()
        if max_p99 is not None and (p99 is None or p99 > max_p99):
            broken.append(f"reply p99 {p99 if p99 is None else round(p99, 2)} ms > "
                          f"--max-reply-p99 {max_p99:g} ms")
        if max_missing is not None and self.missing_share > max_missing:
            broken.append(f"missing replies {self.missing_share:.2%} > --max-missing-replies "
                          f"{max_missing:.2%}")
        return broken


def _remember(seen: OrderedDict[str, None], key: str, cap: int) -> None:
    seen[key] = None
    seen.move_to_end(key)
    if len(seen) > cap:
        seen.popitem(last=False)


def check_reply_thresholds(max_p99: float | None, max_missing: float | None,
                           wait: float) -> None:
    """Refuse NaN, infinity and out-of-range reply thresholds, naming the flag."""
    check_number(max_p99, "--max-reply-p99", low=0)
    check_number(max_missing, "--max-missing-replies", low=0, high=1)
    check_number(wait, "--reply-wait", low=0, high=24 * 3600.0, unit=" seconds")


def start_load_api(tracker: ReplyTracker, webhook: DeliveryOptions | None, *, port: int,
                   sid: str | None = None, api_key: str | None = None,
                   throughput: float | None = None, seed: int | None = None,
                   set_env: bool = True) -> MockApi:
    """The send API beside a load, started: every message goes to `tracker`, statuses to
    `webhook` (the load's target, as it receives taps), at most `throughput` messages a
    second per business number. With `set_env` its settings are in this process's
    environment (KALEYRA_BASE_URL...) for an in-process app."""

    from simulator.sendapi import MockApi, api_options

    api = MockApi(api_options(port=port, sid=sid, api_key=api_key), webhook=webhook,
                  on_sent=tracker.reply, on_status=tracker.status, seed=seed)
    if webhook is not None:
        tracker.statuses_each = len(api.plan("read"))
    if throughput is not None:
        from simulator.throughput import ThroughputLimiter

        api.throughput = ThroughputLimiter(throughput)
    api.start()
    if set_env:
        api.export_env()  # put back by api.stop()
    return api


def api_flags_without_replies(options: Mapping[str, Any]) -> str | None:
    """The first send-API flag given to `wasim load` without --replies, if any."""
    for key, flag in (("api_port", "--api-port"), ("sid", "--sid"), ("api_key", "--api-key"),
                      ("throughput", "--throughput"), ("max_reply_p99", "--max-reply-p99"),
                      ("max_missing_replies", "--max-missing-replies")):
        if options.get(key) is not None:
            return flag
    return None


def refuse_api_flags(options: Mapping[str, Any]) -> None:
    """Exit 2 on a send-API flag given to `wasim load` without --replies."""
    flag = api_flags_without_replies(options)
    if flag is not None and not options.get("replies"):
        raise WasimError(f"this applies to the send API, which runs only with "
                         f"{named('replies')}", where=flag,
                         hint=f"Add {named('replies')}, or drop the flag.")


__all__ = ["DEFAULT_REPLY_WAIT", "ReplyTracker", "check_reply_thresholds", "refuse_api_flags",
           "start_load_api", "tap_of", "taps_of"]
