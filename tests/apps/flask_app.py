"""A Flask webhook that keeps the raw bytes it receives."""

from __future__ import annotations

from flask import Flask, request

app = Flask(__name__)
received: list[bytes] = []


@app.post("/webhook")
def webhook() -> tuple[dict[str, bool], int]:
    """Record the raw body and answer 200."""
    received.append(request.get_data())
    return {"ok": True}, 200
