"""A Kaleyra WhatsApp webhook in FastAPI that answers quick-reply taps (an example to copy).

    pip install fastapi uvicorn httpx
    uvicorn webhook:app --port 8000          # then: wasim tui --url http://127.0.0.1:8000/webhook
    wasim fire --app webhook:app --path /webhook --api-port 0     # or in-process, no server

It does the three things a production handler must:
1. checks X-Hub-Signature-256 when WHATSAPP_APP_SECRET is set (a forged tap changes nothing);
2. answers each tap once: Kaleyra delivers at least once, so the same message id can come
   again (keep the ids in your database, not in memory, when you run several workers);
3. acknowledges at once and replies through Kaleyra's V2 send API (KALEYRA_BASE_URL,
   KALEYRA_SID, KALEYRA_API_KEY; `wasim api` or `--api-port` runs a local one).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

import httpx
from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
answered: set[str] = set()  # message ids already handled (use your database in production)

# What each quick reply's payload gets back. Payloads are the template's, not the labels.
REPLIES = {"SHOP_NOW": "Here is our sale: https://example.com/sale",
           "REMIND_LATER": "Sure, we'll remind you tomorrow.",
           "STOP_PROMOTIONS": "You're unsubscribed. Reply START to opt back in."}


def genuine(body: bytes, signature: str | None) -> bool:
    """Whether the signature is the HMAC-SHA256 of these exact bytes under the app secret."""
    secret = os.environ.get("WHATSAPP_APP_SECRET")
    if not secret:
        return True  # no secret configured: nothing to check (set one in production)
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return signature is not None and hmac.compare_digest(signature, expected)


def reply(business: str, shopper: str, tap_id: str, text: str) -> None:
    """Send `text` to the shopper as a reply to their tap: the complete V2 body."""
    base = os.environ.get("KALEYRA_BASE_URL", "https://api.kaleyra.io")
    sid, key = os.environ["KALEYRA_SID"], os.environ["KALEYRA_API_KEY"]
    body = {
        "messaging_object": {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "+" + shopper,
            "context": {"message_id": tap_id},  # the tap's wamid: shown as a reply to it
            "type": "text",
            "text": {"preview_url": False, "body": text},
        },
        "extra_info": {"ref": tap_id, "ref1": "webhook-example"},  # echoed in its statuses
    }
    answer = httpx.post(f"{base}/v2/{sid}/whatsapp/{business}/messages",
                        headers={"api-key": key}, json=body, timeout=10)
    answer.raise_for_status()  # 202 WA202 "Request Accepted." when all is well


@app.post("/webhook")
async def webhook(request: Request, background: BackgroundTasks) -> Any:
    """Refuse a forged callback; note statuses; answer each new tap once, after the 200."""
    body = await request.body()
    if not genuine(body, request.headers.get("x-hub-signature-256")):
        return JSONResponse({"error": "bad signature"}, status_code=403)
    value = json.loads(body)["meta_object"]["value"]
    if "statuses" in value:  # sent, delivered, read, failed: of the messages you sent
        return {"status": "noted"}
    business = value["metadata"]["display_phone_number"]
    for message in value.get("messages", []):  # Meta may batch several in one callback
        if message["id"] in answered:
            continue  # a duplicate delivery: already answered
        answered.add(message["id"])
        if message.get("type") == "button":
            text = REPLIES.get(message["button"]["payload"], "Thanks!")
            # After the response: Kaleyra waits for your 200, so answer it first.
            background.add_task(reply, business, message["from"], message["id"], text)
    return {"status": "ok"}
