"""A FastAPI webhook that opens its "database" in a lifespan handler, as real ones do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request

events: list[str] = []  # what happened to the app: startup, a callback, shutdown
database: dict[str, list[bytes]] | None = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the store at startup and close it at shutdown."""
    global database
    database = {"callbacks": []}
    events.append("startup")
    yield
    events.append("shutdown")
    database = None


app = FastAPI(lifespan=lifespan)


@app.post("/webhook")
async def webhook(request: Request) -> dict[str, bool]:
    """Store the callback; fails (500) if startup never ran, like a real handler would."""
    assert database is not None, "the database was never opened"
    database["callbacks"].append(await request.body())
    events.append("callback")
    return {"ok": True}


@asynccontextmanager
async def broken_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """A startup that fails."""
    raise RuntimeError("cannot reach the database")
    yield


broken = FastAPI(lifespan=broken_lifespan)
