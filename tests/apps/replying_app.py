"""A tiny in-process app that answers through Kaleyra's send API (V2), read from KALEYRA_*.

A tap on the scenario's template gets a `catalogue` template with two quick replies (BUY,
LATER); a tap on one of those gets a text. A typed `menu` gets an interactive list, `buttons`
interactive reply buttons. Statuses are noted. Everything received is kept, in order.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

received: list[dict[str, Any]] = []
LIST = {"type": "list", "body": {"text": "What are you shopping for?"},
        "action": {"button": "Menu", "sections": [{"title": "Shoes", "rows": [
            {"id": "SNEAKERS", "title": "Sneakers", "description": "Running and casual"},
            {"id": "BOOTS", "title": "Boots"}]}]}}
BUTTONS = {"type": "button", "body": {"text": "Track your order?"},
           "action": {"buttons": [{"type": "reply", "reply": {"id": "TRACK", "title": "Track"}},
                                  {"type": "reply", "reply": {"id": "AGENT", "title": "Agent"}}]}}


def _answer(message: dict[str, Any]) -> dict[str, Any] | None:
    """The Meta message to answer with (no `to` yet), or None."""
    kind = message.get("type")
    if kind == "button":
        if message["button"]["payload"] in ("BUY", "LATER"):
            return {"type": "text", "text": {"body": "Added to your cart."}}
        buttons = [{"type": "button", "sub_type": "quick_reply", "index": str(i),
                    "parameters": [{"type": "payload", "payload": p}]}
                   for i, p in enumerate(["BUY", "LATER"])]
        return {"type": "template", "template": {
            "name": "catalogue", "language": {"code": "en"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "shoes"}]},
                           *buttons]}}
    if kind == "text" and message["text"]["body"] in ("menu", "buttons"):
        interactive = LIST if message["text"]["body"] == "menu" else BUTTONS
        return {"type": "interactive", "interactive": interactive}
    return None


async def webhook(request: Request) -> JSONResponse:
    """Keep the callback; answer a tap or a keyword through the send API."""
    document = await request.json()
    received.append(document)
    value = document["meta_object"]["value"]
    if "statuses" in value:
        return JSONResponse({"status": "noted"})
    message = value["messages"][0]
    answer = _answer(message)
    if answer is None:
        return JSONResponse({"status": "ignored"})
    shopper = message.get("from") or value["contacts"][0]["wa_id"]
    business = value["metadata"]["display_phone_number"]
    base, sid, key = (os.environ["KALEYRA_BASE_URL"], os.environ["KALEYRA_SID"],
                      os.environ["KALEYRA_API_KEY"])
    async with httpx.AsyncClient(timeout=10) as client:
        sent = await client.post(
            f"{base}/v2/{sid}/whatsapp/{business}/messages", headers={"api-key": key},
            json={"messaging_object": {"messaging_product": "whatsapp", "to": shopper,
                                       "context": {"message_id": message["id"]}, **answer},
                  "extra_info": {"ref": message["id"]}})
    sent.raise_for_status()
    return JSONResponse({"status": "answered"})


app = Starlette(routes=[Route("/webhook", webhook, methods=["POST"])])
