"""Meta's messaging throughput per business number, on purpose: sends past it fail later.

Meta lets a business phone number send a set number of messages per second (its default
tier is 80, an upgraded one 1,000). Past it, Cloud API accepts the request and the message
fails with error 130429 "Rate limit hit"; Kaleyra answers its own 202 and forwards Meta's
failure in a FAILED status callback (send-api.md 5.5). The send API asks `allow` once per
message (each recipient of a V1 send is one); a message refused here gets that failure.

At most `mps` messages are let through in any one-second window per number (a sliding
window of their times: a burst of 200 within a second lets exactly 80 through at tier 80,
however it is spread). A refused message does not use up throughput. The clock is
injectable, so a test's burst is deterministic.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from simulator.errors import WasimError

# Meta's tiers, messages per second per business number.
DEFAULT_TIER = 80
UPGRADED_TIER = 1_000
RATE_LIMITED = 130429  # Meta's "Rate limit hit" (kinds/status.py ERRORS)
MAX_MPS = 1_000_000  # past this a value is a typo; the window keeps this many times at most
WINDOW_S = 1.0
MAX_NUMBERS = 10_000  # business numbers tracked at once; the least recent one is forgotten


class ThroughputLimiter:
    """At most `mps` messages a second per business number; thread-safe."""

    def __init__(self, mps: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        check_throughput(mps, "--throughput")
        self.mps = mps
        self._allowed = max(1, math.floor(mps))  # messages in any one-second window
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, deque[float]] = {}
        self.refused = 0

    def allow(self, business: str) -> bool:
        """Whether `business` may send one more message now (and count it if so)."""
        now = self._clock()
        with self._lock:
            window = self._windows.pop(business, None)
            if window is None:
                if len(self._windows) >= MAX_NUMBERS:
                    del self._windows[next(iter(self._windows))]
                window = deque(maxlen=self._allowed)
            self._windows[business] = window  # most recent last, for the forgetting above
            # A nanosecond's slack: 80 sends 1/80 s apart must fit, whatever floats round to.
            while window and now - window[0] >= WINDOW_S - 1e-9:
                window.popleft()
            if len(window) >= self._allowed:
                self.refused += 1
                return False
            window.append(now)
            return True


def check_throughput(mps: float, flag: str) -> None:
    """Refuse a throughput that is not a positive, finite number of messages a second."""
    if not (isinstance(mps, int | float) and math.isfinite(mps) and 1 <= mps <= MAX_MPS):
        raise WasimError(f"expected messages per second from 1 to {MAX_MPS:,}, got {mps!r}",
                         where=flag, hint=f"Meta's default tier is {DEFAULT_TIER}, an "
                         f"upgraded one {UPGRADED_TIER:,}.")


__all__ = ["DEFAULT_TIER", "RATE_LIMITED", "UPGRADED_TIER", "ThroughputLimiter",
           "check_throughput"]
