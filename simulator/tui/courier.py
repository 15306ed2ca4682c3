"""The UI's delivery thread: every send runs on its own asyncio loop, away from the screen's.

An in-process ASGI handler runs on the loop that delivers to it, so a handler that blocks
(`time.sleep` inside an `async def`) blocks that loop. On the UI's loop it froze the whole
screen; here it only holds up other deliveries, and a watchdog says so. Latency is measured
on this quiet loop too, so redrawing the screen never counts as the handler's time.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
OnBlocked = Callable[[float], None]

_BEAT = 0.05  # seconds between the loop's heartbeats


class Courier:
    """A daemon thread running an asyncio loop for deliveries, with a blocked-loop watchdog.

    `on_blocked(seconds)` is called from the watchdog's thread, once per stall, when the loop
    has not beaten for `block_after` seconds: something on it is blocking (a handler).
    """

    def __init__(self, on_blocked: OnBlocked | None = None, block_after: float = 1.0) -> None:
        self.on_blocked = on_blocked
        self.block_after = block_after
        self.loop = asyncio.new_event_loop()
        self._beat = time.monotonic()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="wasim-deliveries", daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name="wasim-watchdog", daemon=True)

    def start(self) -> None:
        """Start the loop and the watchdog."""
        self._thread.start()
        self._watchdog.start()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run `coroutine` on the delivery loop; cancelling the future cancels it there."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Await `coroutine` run on the delivery loop, from another loop (the UI's)."""
        return await asyncio.wrap_future(self.submit(coroutine))

    def stop(self, cleanup: Coroutine[Any, Any, Any] | None = None, wait: float = 2.0) -> None:
        """Run `cleanup` there (closing clients), then stop; a handler stuck for good is left."""
        self._stopping.set()
        if not self._thread.is_alive():
            if cleanup is not None:
                cleanup.close()
            return
        if cleanup is not None:
            closing = self.submit(cleanup)
            try:
                # exception(), not result(): a close that fails must not stop the app quitting.
                closing.exception(wait)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                closing.cancel()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(wait)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.create_task(self._heartbeat())
        self.loop.run_forever()
        # Cancel what is left (a run, a stuck delivery) so nothing warns about it at exit.
        pending = [task for task in asyncio.all_tasks(self.loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    async def _heartbeat(self) -> None:
        while True:
            self._beat = time.monotonic()
            await asyncio.sleep(_BEAT)

    def _watch(self) -> None:
        warned = False
        while not self._stopping.wait(min(self.block_after / 4, 0.25)):
            stalled = time.monotonic() - self._beat
            if stalled < self.block_after:
                warned = False
            elif not warned:
                warned = True
                if self.on_blocked is not None:
                    self.on_blocked(stalled)
