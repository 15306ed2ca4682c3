"""Hand the built-in receiver's arrivals, which happen on its threads, to the UI."""

from __future__ import annotations

import threading
from collections.abc import Callable

from simulator.receiver import Arrival

Listener = Callable[[Arrival], None]


class ArrivalFeed:
    """A Receiver's `on_arrival` that forwards to one listener, keeping arrivals until it comes.

    The receiver starts (and may be hit) before the UI exists, so early arrivals are kept and
    handed over when the listener subscribes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listener: Listener | None = None
        self._early: list[Arrival] = []

    def __call__(self, arrival: Arrival) -> None:
        """Called by the receiver, on its thread, once per request."""
        # Under the lock, so arrivals reach the listener in order even while it subscribes;
        # the listener must be quick (the UI's is a thread-safe post_message).
        with self._lock:
            if self._listener is None:
                self._early.append(arrival)
            else:
                self._listener(arrival)

    def listen(self, listener: Listener | None) -> None:
        """Send every arrival to `listener` from now on (None stops), starting with kept ones."""
        with self._lock:
            self._listener = listener
            if listener is not None:
                early, self._early = self._early, []
                for arrival in early:
                    listener(arrival)
