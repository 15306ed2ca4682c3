"""In-process webhook apps that misbehave on purpose: raise, hang, stay silent, never stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

StartResponse = Callable[..., Any]
CHUNK = b"z" * 65536


def wsgi_raises(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """A handler bug: raises before answering."""
    raise RuntimeError("wsgi handler bug")


def wsgi_exits(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Calls sys.exit, which must end the request, not wasim."""
    raise SystemExit(3)


def wsgi_sleeps(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Blocks for an hour, far past any --timeout."""
    time.sleep(3600)
    start_response("200 OK", [])
    return [b"too late"]


def wsgi_endless(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    """Answers 200 with a body that never ends."""
    start_response("200 OK", [("Content-Type", "text/plain")])
    while True:
        yield CHUNK


def wsgi_bad_status(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Gives start_response a status that is not one."""
    start_response("OK then", [])
    return [b""]


async def _no_lifespan(scope: dict[str, Any]) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan here")  # the spec's way of saying "not supported"


async def asgi_silent(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Returns without sending anything."""
    await _no_lifespan(scope)


async def asgi_exits(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Raises SystemExit, which must end the request, not wasim."""
    await _no_lifespan(scope)
    raise SystemExit(3)


async def asgi_endless(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers 200 with a body that never ends, never waiting between chunks."""
    await _no_lifespan(scope)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    while True:
        await send({"type": "http.response.body", "body": CHUNK, "more_body": True})


async def asgi_trickles_nothing(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers 200, then sends empty body chunks forever: a body that is never finished."""
    await _no_lifespan(scope)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    while True:
        await send({"type": "http.response.body", "body": b"", "more_body": True})


async def asgi_raises_mid_body(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Starts a 200, sends part of the body, then raises."""
    await _no_lifespan(scope)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{\"ok\":", "more_body": True})
    raise ValueError("lost the rest")


async def asgi_bad_messages(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Sends a status that is not a number."""
    await _no_lifespan(scope)
    await send({"type": "http.response.start", "status": "two hundred", "headers": []})


async def asgi_stuck_startup(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A lifespan startup that never completes."""
    if scope["type"] == "lifespan":
        await receive()
        await asyncio.sleep(3600)


async def asgi_raises_cancelled(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Raises CancelledError of its own accord, which must not cancel wasim's run."""
    await _no_lifespan(scope)
    raise asyncio.CancelledError("not yours")
