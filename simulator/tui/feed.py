"""Hand what other threads see (the built-in receiver's arrivals, the send API's record) to
the UI, keeping what comes before the UI listens."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from simulator.receiver import Arrival
from simulator.sendapi import MockApi, SentMessage, StatusDelivery

if TYPE_CHECKING:
    from simulator.reply_tracking import ReplyTracker

T = TypeVar("T")
EARLY_KEPT = 10_000  # items kept before the UI listens; past this the oldest are dropped


class Feed(Generic[T]):
    """A callback for another thread that forwards to one listener, keeping items until it comes.

    The receiver or the send API starts (and may be hit) before the UI exists, so early items
    are kept (the newest EARLY_KEPT) and handed over when the listener subscribes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listener: Callable[[T], None] | None = None
        self._early: deque[T] = deque(maxlen=EARLY_KEPT)

    def __call__(self, item: T) -> None:
        """Called by the other thread, once per item."""
        # Under the lock, so items reach the listener in order even while it subscribes;
        # the listener must be quick (the UI's is a thread-safe post_message).
        with self._lock:
            if self._listener is None:
                self._early.append(item)
            else:
                self._listener(item)

    def listen(self, listener: Callable[[T], None] | None) -> None:
        """Send every item to `listener` from now on (None stops), starting with kept ones."""
        with self._lock:
            self._listener = listener
            if listener is not None:
                early, self._early = list(self._early), deque(maxlen=EARLY_KEPT)
                for item in early:
                    listener(item)


class ArrivalFeed(Feed[Arrival]):
    """A Receiver's `on_arrival`: its arrivals, for the receiver pane."""


ApiRecord = SentMessage | StatusDelivery


class ApiFeed(Feed[ApiRecord]):
    """The send API's `on_sent` and `on_status` (one feed, so a message comes before its
    statuses), and where that API is, once it runs."""

    def __init__(self) -> None:
        super().__init__()
        self.base_url = ""  # set when the API starts, with what it accepts
        self.sid = ""
        self.api_key = ""
        # The running API itself, while it runs: a scenario run's `expect: reply` and
        # `tap_reply` read the very record the phone shows.
        self.mock: MockApi | None = None
        self._tracking = threading.Lock()
        self._tracker: ReplyTracker | None = None
        self._ignore: Callable[[SentMessage], bool] | None = None

    def __call__(self, item: ApiRecord) -> None:
        """Called by the send API's threads: a message or a status, to the tracker of the run
        going on (if any), then to the UI."""
        with self._tracking:
            tracker, ignore = self._tracker, self._ignore
            message = item if isinstance(item, SentMessage) else item.message
            if tracker is not None and (ignore is None or not ignore(message)):
                if isinstance(item, SentMessage):
                    tracker.reply(item)
                else:
                    tracker.status(item)
        super().__call__(item)

    def track(self, tracker: ReplyTracker | None,
              ignore: Callable[[SentMessage], bool] | None = None) -> None:
        """Match every message and status from now on in `tracker` (a scenario run's replies),
        less the messages `ignore` names (and their statuses); None detaches it: once this
        returns, the tracker sees nothing more."""
        with self._tracking:
            self._tracker, self._ignore = tracker, ignore
