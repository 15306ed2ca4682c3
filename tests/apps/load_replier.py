"""A real webhook on 127.0.0.1 that answers each tap through the send API, for `load --replies`.

It replies before it acknowledges the tap (a V2 text naming the tap in `context`), so by the
time the load has its answer, the reply is recorded: the counts in a test are exact, however
slow the machine. `mode` makes it careless on purpose: "drop10" never answers every tenth
tap, "twice" answers every tap twice, "wrong" answers every tap to someone else. It reads
KALEYRA_BASE_URL, KALEYRA_SID and KALEYRA_API_KEY when a tap arrives (the load sets them).
Status callbacks are acknowledged and counted.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import httpx


class LoadReplier:
    """The app's server, started on a free port; `url` is its webhook."""

    def __init__(self, mode: str = "every") -> None:
        self.mode = mode
        self.taps = 0
        self.statuses: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.client = httpx.Client(timeout=10)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.handle(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, document: dict[str, Any]) -> None:
        """A tap gets its reply (or not, or two); a status is counted."""
        value = document["meta_object"]["value"]
        if "statuses" in value:
            with self.lock:
                self.statuses[value["statuses"][0]["status"]] += 1
            return
        message = value["messages"][0]
        with self.lock:
            self.taps += 1
            number = self.taps
        if self.mode == "drop10" and number % 10 == 0:
            return
        to = message["from"] if self.mode != "wrong" else "919999999999"
        for _ in range(2 if self.mode == "twice" else 1):
            self.reply(value["metadata"]["display_phone_number"], to, message["id"])

    def reply(self, business: str, to: str, context: str) -> None:
        """One V2 text through the send API, in reply to the tap `context`."""
        base, sid, key = (os.environ["KALEYRA_BASE_URL"], os.environ["KALEYRA_SID"],
                          os.environ["KALEYRA_API_KEY"])
        answer = self.client.post(
            f"{base}/v2/{sid}/whatsapp/{business}/messages", headers={"api-key": key},
            json={"messaging_object": {"messaging_product": "whatsapp", "to": to,
                                       "type": "text", "text": {"body": "Thanks!"},
                                       "context": {"message_id": context}}})
        answer.raise_for_status()

    def __enter__(self) -> LoadReplier:
        self.thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.client.close()
