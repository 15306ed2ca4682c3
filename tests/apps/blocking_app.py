"""A raw ASGI webhook whose handler blocks its event loop, as `time.sleep` in `async def` does.

It blocks on a threading.Event instead of a clock, so a test decides when it ends.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

entered = threading.Event()  # the handler is running (and blocking)
release = threading.Event()  # set by the test: the handler may answer
finished = threading.Event()  # the handler has stopped blocking

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def reset() -> None:
    """Before each test: nothing entered, nothing released."""
    for event in (entered, release, finished):
        event.clear()


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """Block the loop until released (30 s at most, so a broken test cannot hang), answer 200."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    while (await receive()).get("more_body"):
        pass
    entered.set()
    release.wait(30)  # a blocking call on the loop: nothing else on it runs meanwhile
    finished.set()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})
