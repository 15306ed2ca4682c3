"""What `wasim api` prints: a line per message and status, until the traffic is a load.

A person trying their handler reads every message; a load test sends thousands a second,
and a line each would cost the mock more than the send (and flood the terminal). Past
`per_second` lines in one second, the lines stop for the rest of that second and one
summary line a second takes their place (messages and statuses that second, and in all);
below it again, the lines come back. Thread-safe: the mock calls from its threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

PER_SECOND = 20  # lines a second before the console switches to one summary line a second


class ApiConsole:
    """A line per event, or a summary a second under load."""

    def __init__(self, write: Callable[[str], None], *, per_second: int = PER_SECOND,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._write = write
        self._per_second = per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._second = int(clock())
        self._lines = 0  # lines written this second
        self._held = {"message": 0, "status": 0}  # events this second not written
        self._counts = {"message": 0, "status": 0}  # events this second, written or not
        self._total = {"message": 0, "status": 0}
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def start(self) -> ApiConsole:
        """Write the summary each second even when no event comes to trigger it."""
        self._ticker = threading.Thread(target=self._tick, name="wasim-api-console",
                                        daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        """Write what is still held back, and stop the ticker."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._roll(self._second + 1)

    def message(self, line: str | Callable[[], str]) -> None:
        """A message the app sent (its line, or what makes it: made only when shown)."""
        self._event("message", line)

    def status(self, line: str | Callable[[], str]) -> None:
        """A status callback the mock sent."""
        self._event("status", line)

    def _event(self, kind: str, line: str | Callable[[], str]) -> None:
        with self._lock:
            self._roll(int(self._clock()))
            self._counts[kind] += 1
            self._total[kind] += 1
            if self._lines < self._per_second and not any(self._held.values()):
                self._lines += 1
                self._write(line if isinstance(line, str) else line())
            else:
                self._held[kind] += 1

    def _tick(self) -> None:
        while not self._stop.wait(0.25):
            with self._lock:
                self._roll(int(self._clock()))

    def _roll(self, second: int) -> None:
        """Close the second that ended (its summary, if lines were held back)."""
        if second == self._second:
            return
        if any(self._held.values()):
            counts, total = self._counts, self._total
            self._write(f"... {counts['message']:,} messages and {counts['status']:,} statuses "
                        f"that second ({self._held['message'] + self._held['status']:,} lines "
                        f"not shown); {total['message']:,} messages, {total['status']:,} "
                        "statuses in all")
        self._second = second
        self._lines = 0
        self._held = {"message": 0, "status": 0}
        self._counts = {"message": 0, "status": 0}


__all__ = ["ApiConsole"]
