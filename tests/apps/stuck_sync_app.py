"""A FastAPI webhook whose plain `def` handler never returns: FastAPI runs it on a worker
thread that wasim does not own (anyio's), which outlives the attempt's timeout."""

from __future__ import annotations

import threading

from fastapi import FastAPI

app = FastAPI()
_never = threading.Event()


@app.post("/webhook")
def webhook() -> dict[str, bool]:
    """Block the worker thread for good (a stuck database call, say)."""
    _never.wait()
    return {"ok": True}
