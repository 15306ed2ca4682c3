"""A Flask webhook for Kaleyra button taps: a reply to every tap, an opt-out on STOP."""

import threading

from flask import Flask, request

app = Flask(__name__)
handled: set[str] = set()  # message ids already acted on
opted_out: set[str] = set()  # numbers that tapped a button with the STOP payload
replies_sent: list[str] = []  # numbers we answered (a stand-in for a call to the send API)
lock = threading.Lock()  # Flask serves requests on several threads; a repeat may race the first


@app.post("/webhook")
def webhook() -> dict[str, str]:
    """Act on a button tap once, however many times Kaleyra delivers it."""
    message = request.get_json()["meta_object"]["value"]["messages"][0]
    with lock:
        if message["id"] in handled:  # Kaleyra delivers at least once: this is a repeat
            return {"status": "duplicate"}
        handled.add(message["id"])
    if message["button"]["payload"] == "STOP":
        opted_out.add(message["from"])
    replies_sent.append(message["from"])
    return {"status": "ok"}
