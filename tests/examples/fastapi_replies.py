"""A FastAPI webhook that answers each button tap through Kaleyra's send API (V2, or V1).

The Kaleyra base URL, SID and key come from the environment, so tests point it at wasim's
local send API (`wasim api`, or `wasim.api()` in pytest) instead of https://api.kaleyra.io.
"""

import hashlib
import hmac
import json
import os
from typing import Any

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

app = FastAPI()
handled: set[str] = set()  # ids of taps already answered: Kaleyra delivers at least once
statuses: list[dict[str, Any]] = []  # status callbacks of our own messages
taps: list[dict[str, Any]] = []  # every tap answered, as received
settings: dict[str, Any] = {"version": "v2", "dedupe": True, "times": 1,
                            "first_only": False,  # tests flip these
                            "app_secret": None,  # set: X-Hub-Signature-256 is checked
                            "act_then_refuse": False}  # the bug: refuses only after replying

REPLIES = {"STOP_PROMOTIONS": "You're unsubscribed. Reply START to opt back in.",
           "REMIND_LATER": "Sure, we'll remind you tomorrow."}


def kaleyra() -> tuple[str, str, str]:
    """Base URL, SID and API key, read per request so a test can set them."""
    return (os.environ.get("KALEYRA_BASE_URL", "https://api.kaleyra.io"),
            os.environ["KALEYRA_SID"], os.environ["KALEYRA_API_KEY"])


async def send_v2(business: str, messaging_object: dict[str, Any], ref: str) -> None:
    """POST /v2/{sid}/whatsapp/{business}/messages with the V2 envelope."""
    base, sid, key = kaleyra()
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(f"{base}/v2/{sid}/whatsapp/{business}/messages",
                                   headers={"api-key": key},
                                   json={"messaging_object": messaging_object,
                                         "extra_info": {"ref": ref, "ref1": "replies"}})
    answer.raise_for_status()


async def send_v1(business: str, fields: dict[str, str], ref: str) -> None:
    """POST /v1/{sid}/messages with form fields, the key in the api-key header."""
    base, sid, key = kaleyra()
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(f"{base}/v1/{sid}/messages", headers={"api-key": key},
                                   data={"channel": "whatsapp", "from": business, "ref": ref,
                                         **fields})
    answer.raise_for_status()


async def answer(business: str, shopper: str, tap_id: str, payload: str) -> None:
    """Reply to a tap: a catalogue with its own quick replies on SHOP_NOW, else a text."""
    if settings["version"] == "v1":
        if payload == "SHOP_NOW":
            fields = {"to": shopper, "type": "template", "template_name": "catalogue",
                      "params": '"shoes","20%"', "payload1": "BUY", "payload2": "LATER"}
        else:
            fields = {"to": shopper, "type": "text", "body": REPLIES.get(payload, "Thanks!")}
        await send_v1(business, fields, tap_id)
        return
    message: dict[str, Any] = {"messaging_product": "whatsapp", "to": "+" + shopper,
                               "context": {"message_id": tap_id}}
    if payload == "SHOP_NOW":
        buttons = [{"type": "button", "sub_type": "quick_reply", "index": str(i),
                    "parameters": [{"type": "payload", "payload": p}]}
                   for i, p in enumerate(["BUY", "LATER"])]
        message |= {"type": "template", "template": {
            "name": "catalogue", "language": {"code": "en"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "shoes"}]},
                           *buttons]}}
    else:
        message |= {"type": "text", "text": {"body": REPLIES.get(payload, "Added, thanks!")}}
    await send_v2(business, message, tap_id)


def genuine(body: bytes, signature: str | None) -> bool:
    """Whether X-Hub-Signature-256 is the HMAC-SHA256 of these exact bytes under our secret."""
    expected = "sha256=" + hmac.new(settings["app_secret"].encode(), body,
                                    hashlib.sha256).hexdigest()
    return signature is not None and hmac.compare_digest(signature, expected)


def value_of(document: dict[str, Any]) -> dict[str, Any]:
    """The value object, from Kaleyra's envelope or Meta's (Meta-direct: entry[].changes[])."""
    if document.get("object") == "whatsapp_business_account":
        return document["entry"][0]["changes"][0]["value"]
    return document["meta_object"]["value"]


@app.post("/webhook")
async def webhook(request: Request) -> Any:
    """Statuses are noted; a tap is answered once, however many times it is delivered.

    With an app secret, a request whose signature does not match is refused (403) before
    anything is done with it: a forged tap must not unsubscribe anyone.
    """
    body = await request.body()
    forged = settings["app_secret"] is not None and not genuine(
        body, request.headers.get("x-hub-signature-256"))
    if forged and not settings["act_then_refuse"]:
        return JSONResponse({"error": "bad signature"}, status_code=403)
    document = json.loads(body)
    value = value_of(document)
    if "statuses" in value:
        statuses.append(document)
        return {"status": "noted"}
    # first_only: the common bug of reading [0] of a batch Meta sent several messages in.
    for message in value["messages"][:1] if settings["first_only"] else value["messages"]:
        if settings["dedupe"]:
            if message["id"] in handled:
                continue
            handled.add(message["id"])
        taps.append(document)
        for _ in range(settings["times"]):  # a buggy handler answers more than once
            await answer(value["metadata"]["display_phone_number"], message["from"],
                         message["id"], message["button"]["payload"])
    if forged:  # act_then_refuse: the 403 comes, but the reply has already gone out
        return JSONResponse({"error": "bad signature"}, status_code=403)
    return {"status": "answered"}
