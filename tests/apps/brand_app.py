"""A brand's webhook as a careful team writes it, on a real HTTP server (127.0.0.1, port 0).

It checks X-Hub-Signature-256 over the raw bytes, acts once per `messages[].id`, answers a
tap on the campaign template with interactive reply buttons through Kaleyra's V2 send API,
and a tap on one of those buttons with a text through V1 from its legacy number (a number is
bound to one API version; its statuses come back as GETs to its own callback URL).
Everything that arrives is kept in order. `careless` variants skip the signature check or
the de-duplication, as real handlers do.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

SECRET = "brand-app-secret-0123456789"
LEGACY_NUMBER = "918000000001"  # the brand's number still on Kaleyra's V1 API
BUTTONS = {"type": "button", "body": {"text": "Your order ships today. Anything else?"},
           "action": {"buttons": [{"type": "reply", "reply": {"id": "DONE", "title": "Done"}},
                                  {"type": "reply", "reply": {"id": "AGENT",
                                                              "title": "Agent"}}]}}


@dataclass
class Seen:
    """One callback as it arrived: what it was and its facts."""

    kind: str  # "message", "status" (V2) or "v1-status"
    document: dict[str, Any] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)


class BrandApp:
    """The app and its server; `signature` and `dedupe` switch the careful habits."""

    def __init__(self, *, signature: bool = True, dedupe: bool = True) -> None:
        self.signature = signature
        self.dedupe = dedupe
        self.seen: list[Seen] = []
        self.handled: set[str] = set()
        self.sent: list[dict[str, Any]] = []  # the send API's answers
        self.lock = threading.Lock()
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # V1 status callbacks: a GET with a query
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                query = dict(parse_qsl(urlsplit(self.path).query))
                with app.lock:
                    app.seen.append(Seen("v1-status", query=query))
                self._answer(200, b"ok")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = app.handle(body, self.headers.get("X-Hub-Signature-256"))
                self._answer(status, answer)

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.base}/whatsapp"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> BrandApp:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, body: bytes, signature: str | None) -> tuple[int, bytes]:
        """One POST: verify, de-duplicate, act; (HTTP status, body)."""
        if self.signature:
            wanted = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            if signature is None or not hmac.compare_digest(signature, wanted):
                return 401, b"bad signature"
        document = json.loads(body)
        value = document["meta_object"]["value"]
        if "statuses" in value:
            with self.lock:
                self.seen.append(Seen("status", document))
            return 200, b"noted"
        with self.lock:
            self.seen.append(Seen("message", document))
        message = value["messages"][0]
        if self.dedupe:
            with self.lock:
                if message["id"] in self.handled:
                    return 200, b"duplicate"
                self.handled.add(message["id"])
        self.act(value, message)
        return 200, b"ok"

    def act(self, value: dict[str, Any], message: dict[str, Any]) -> None:
        """Answer a tap: the template's button with V2 buttons, a button of ours with V1."""
        business = value["metadata"]["display_phone_number"]
        user = message.get("from") or value["contacts"][0]["wa_id"]
        kind = message["type"]
        if kind == "button" and message["button"]["payload"] in ("DONE", "AGENT"):
            chosen = message["button"]["payload"]
        elif kind == "interactive":
            chosen = message["interactive"]["button_reply"]["id"]
        elif kind == "button":
            chosen = ""
        else:
            return
        base, sid = os.environ["KALEYRA_BASE_URL"], os.environ["KALEYRA_SID"]
        key = {"api-key": os.environ["KALEYRA_API_KEY"]}
        if not chosen:  # the campaign's quick reply: offer our own buttons (V2)
            answer = httpx.post(f"{base}/v2/{sid}/whatsapp/{business}/messages", headers=key,
                                json={"messaging_object": {
                                    "messaging_product": "whatsapp", "to": user,
                                    "type": "interactive", "interactive": BUTTONS},
                                    "extra_info": {"ref": "brand"}}, timeout=10)
        else:  # one of ours: a text through V1, its statuses to our own callback URL
            answer = httpx.post(f"{base}/v1/{sid}/messages", headers=key, timeout=10, data={
                "channel": "whatsapp", "from": LEGACY_NUMBER, "to": user, "type": "text",
                "body": f"Thanks, noted: {chosen}.", "callback_url": f"{self.base}/v1-status"})
        with self.lock:
            self.sent.append(answer.json())
