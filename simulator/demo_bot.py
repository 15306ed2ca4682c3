"""The example bot of `wasim demo`: behind the built-in webhook, it answers every tap through
the local send API as a real handler would, so a demo shows a two-way conversation.

"Stop promotions" gets a text, "Shop now" a template with its own quick replies, a tap on
those a text. Each tap is answered once (Kaleyra delivers at least once), every message of a
batch is answered, and each reply carries the tap's wamid as its context. No Textual here:
the TUI shows what `DemoBot.replies` (the send API's record) holds.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

from simulator.meta import values_of
from simulator.terminal import visible

if TYPE_CHECKING:
    from simulator.receiver import Arrival
    from simulator.sendapi import MockApi, SentMessage

CATALOGUE = "demo_catalogue"  # the bot's own template: the send API must accept it
TEMPLATES = (CATALOGUE,)
QUICK_REPLIES = ("See sizes", "Talk to us")  # the catalogue's buttons (payload = label)
TEXTS = {
    "stop": "You're unsubscribed. Reply START to opt back in.",
    "later": "Sure, we'll remind you tomorrow.",
    "see sizes": "Sizes 5 to 11 are in stock. Which one is yours?",
    "talk to us": "Thanks! Someone from the team will write to you shortly.",
}
MAX_ANSWERED = 100_000  # tap ids remembered for de-duplication; the oldest are forgotten
MAX_WAITING = 10_000  # taps queued for an answer; past it the receiver waits (backpressure)
DRAIN_SECONDS = 30.0  # how long closing waits for the queued taps' answers


def reply_for(label: str, payload: str) -> dict[str, Any]:
    """The Meta message (without `to`/`context`) the bot answers a button with."""
    words = f"{label} {payload}".casefold().replace("_", " ")
    if "shop" in words:
        buttons = [{"type": "button", "sub_type": "quick_reply", "index": str(index),
                    "parameters": [{"type": "payload", "payload": text}]}
                   for index, text in enumerate(QUICK_REPLIES)]
        return {"type": "template", "template": {
            "name": CATALOGUE, "language": {"code": "en"},
            "components": [{"type": "body", "parameters": [{"type": "text",
                                                            "text": "new arrivals"}]},
                           *buttons]}}
    for key, text in TEXTS.items():
        if key in words:
            return {"type": "text", "text": {"body": text}}
    return {"type": "text", "text": {"body": f"Thanks for tapping {label or payload}!"}}


class DemoBot:
    """A Receiver's `on_arrival`: answers each new tap through `api`, then hands the arrival
    on to `then` (the UI's feed). Set `api` before the first tap arrives.

    It answers on a thread of its own, as a well-made handler acknowledges first and replies
    after: the tap's 200 never waits for the reply's round trip through the send API, so the
    latency a demo shows is the webhook's. `drain()` waits for the queued answers.
    """

    def __init__(self, then: Callable[[Arrival], None] | None = None) -> None:
        self.api: MockApi | None = None
        self.then = then
        self.errors: list[str] = []
        self._answered: dict[str, None] = {}
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=10.0)
        self._waiting: queue.Queue[bytes | None] = queue.Queue(maxsize=MAX_WAITING)
        self._pending = 0  # taps handed over and not yet answered
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None

    def close(self) -> None:
        """Answer what is queued (for at most DRAIN_SECONDS), then stop and close the client."""
        if self._thread is not None:
            self.drain()
            self._waiting.put(None)
            self._thread.join(timeout=DRAIN_SECONDS)
        self._client.close()

    def drain(self, timeout: float = DRAIN_SECONDS) -> bool:
        """Wait until every tap handed over so far is answered; False if `timeout` ran out."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def __call__(self, arrival: Arrival) -> None:
        """Queue the arrival's taps for an answer, then pass it on (on the receiver's thread)."""
        try:
            with self._idle:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._answer_queued,
                                                    name="wasim-demo-bot", daemon=True)
                    self._thread.start()
                self._pending += 1
            self._waiting.put(arrival.body)
        finally:
            if self.then is not None:
                self.then(arrival)

    def _answer_queued(self) -> None:
        """The bot's thread: answer each queued body in turn, until None."""
        while (body := self._waiting.get()) is not None:
            try:
                self.answer(body)
            except Exception as exc:  # a bug of ours must not stop every later answer
                self._failed(f"{type(exc).__name__}: {exc}")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    @property
    def replies(self) -> list[SentMessage]:
        """What the bot sent so far, as the send API recorded it."""
        return self.api.sent if self.api is not None else []

    def answer(self, body: bytes) -> int:
        """Reply to every tap in a callback body not answered before; how many replies."""
        if self.api is None:
            return 0
        try:
            document = json.loads(body)
        except (ValueError, RecursionError):
            return 0
        sent = 0
        for value in values_of(document):
            if not isinstance(value, dict):
                continue
            metadata = value.get("metadata")
            business = metadata.get("display_phone_number") if isinstance(metadata, dict) \
                else None
            for message in value.get("messages") or []:
                if not isinstance(message, dict) or not isinstance(business, str):
                    continue
                tap = _button_of(message)
                if tap is None or not self._first_time(str(message.get("id", ""))):
                    continue
                # A username-only user has no number (wire-format.md 10): their BSUID.
                to = message.get("from") or message.get("from_user_id") or ""
                sent += self._send(business, str(to),
                                   str(message.get("id", "")), *tap)
        return sent

    def _first_time(self, tap_id: str) -> bool:
        with self._lock:
            if tap_id in self._answered:
                return False
            self._answered[tap_id] = None
            if len(self._answered) > MAX_ANSWERED:
                del self._answered[next(iter(self._answered))]
            return True

    def _send(self, business: str, to: str, tap_id: str, label: str, payload: str) -> int:
        api = self.api
        assert api is not None  # checked by answer()
        message = {"messaging_product": "whatsapp", "to": to,
                   "context": {"message_id": tap_id}, **reply_for(label, payload)}
        try:
            answer = self._client.post(
                api.v2_url(business), headers={"api-key": api.options.api_key},
                json={"messaging_object": message, "extra_info": {"ref": tap_id}})
        except httpx.HTTPError as exc:
            from simulator.delivery import describe_transport_error

            # A reset says nothing of itself: name the class and what broke.
            return self._failed(describe_transport_error(exc))
        if answer.status_code != 202:
            return self._failed(f"the send API answered {answer.status_code}: "
                                f"{answer.text[:200]}")
        return 1

    def _failed(self, why: str) -> int:
        line = f"wasim demo bot: could not reply: {why}"
        self.errors.append(line)
        print(visible(line), file=sys.stderr)  # it quotes the send API's answer
        return 0


def _button_of(message: dict[str, Any]) -> tuple[str, str] | None:
    """(label, payload) of a quick-reply tap or an interactive button/list reply."""
    button = message.get("button")
    if isinstance(button, dict):
        return str(button.get("text", "")), str(button.get("payload", ""))
    interactive = message.get("interactive")
    if isinstance(interactive, dict):
        for key in ("button_reply", "list_reply"):
            reply = interactive.get(key)
            if isinstance(reply, dict):
                return str(reply.get("title", "")), str(reply.get("id", ""))
    return None


def conversation_lines(bot: DemoBot, plan: Any) -> list[str]:
    """The headless demo's account of the bot's side: replies per tap, and a few of them."""
    taps = {send.tap.message_id for send in plan.sends if send.kind != "verify"}
    replies = bot.replies
    answered = {m.context_id for m in replies} & taps
    lines = [f"demo bot: {len(replies)} repl{'y' if len(replies) == 1 else 'ies'} to "
             f"{len(answered)} of {len(taps)} tap(s) through the send API"
             + (f", {len(bot.errors)} failed" if bot.errors else "")]
    lines.extend(f"  {message.describe()}" for message in replies[:3])
    if len(replies) > 3:
        lines.append(f"  ... and {len(replies) - 3} more")
    return lines
