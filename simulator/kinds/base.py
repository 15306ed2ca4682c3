"""What every kind shares: its spec (name, options, builder, summary), the facts it is built
from and the Kaleyra envelope around an inbound message (wire-format sections 1, 5, 10)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulator.models import Tap


@dataclass(frozen=True)
class KindArgs:
    """What the person asked for (`render --kind` options, plugin keywords); None: drawn."""

    text: str | None = None
    forwarded: str | None = None  # "forwarded" or "frequently_forwarded"
    reply_id: str | None = None
    reply_title: str | None = None
    reply_description: str | None = None
    media: str | None = None  # image, video, audio, voice, document, sticker
    caption: str | None = None
    lat: float | None = None
    lng: float | None = None
    place_name: str | None = None
    address: str | None = None
    url: str | None = None
    emoji: str | None = None  # "" is the un-react
    status: str | None = None
    error: int | None = None
    contacts: bool = True  # statuses: with the 2026 `contacts` entry
    # Statuses of one message share its conversation (simulator.world): the send API gives
    # the window's id, expiry and category; None draws them (`render --kind status`).
    conversation_id: str | None = None
    expiration: int | None = None
    category: str | None = None


@dataclass(frozen=True)
class Facts:
    """One callback's generated facts: the tap's ids and people, and this kind's own stream
    (so a kind's draws never shift another family's values)."""

    tap: Tap
    rnd: random.Random


Builder = Callable[[Facts, KindArgs], dict[str, Any]]


@dataclass(frozen=True)
class KindSpec:
    """One kind as every face sees it: its name, what it is, which options it reads, how its
    callback is built and how the phone shows it."""

    name: str
    description: str
    build: Builder
    summary: Callable[[dict[str, Any]], str]
    options: tuple[str, ...] = ()
    aliases: tuple[str, ...] = field(default=())


def contact_of(tap: Tap, *, profile: bool = True) -> dict[str, Any]:
    """The user's `contacts[]` entry in the identity mode the tap's user has (as the template)."""
    user = tap.user
    contact: dict[str, Any] = {}
    if profile:
        contact["profile"] = {"name": user.name}
        if user.username:
            contact["profile"]["username"] = user.username
    if not user.username and user.wa_id:  # a BSUID-only recipient has no number here
        contact["wa_id"] = user.wa_id
    if user.user_id:
        contact["user_id"] = user.user_id
        if user.parent_user_id:
            contact["parent_user_id"] = user.parent_user_id
        contact["country_code"] = user.country
    return contact


def message_callback(facts: Facts, type_: str, body: dict[str, Any], *,
                     context: dict[str, Any] | None = None, media_url: str = "",
                     errors_first: bool = False) -> dict[str, Any]:
    """An inbound message's callback: the documented envelope, `type` and the kind's body
    (`errors_first`: Meta's unsupported sample puts `errors` before `type`)."""
    tap, user = facts.tap, facts.tap.user
    message: dict[str, Any] = {}
    if context is not None:
        message["context"] = context
    if not user.username:
        message["from"] = user.wa_id
    if user.user_id:
        message["from_user_id"] = user.user_id
        if user.parent_user_id:
            message["from_parent_user_id"] = user.parent_user_id
    message["id"] = tap.message_id
    message["timestamp"] = tap.timestamp
    if errors_first:
        message.update(body)
        message["type"] = type_
    else:
        message["type"] = type_
        message.update(body)
    return {
        "meta_object": {
            "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": tap.business.display_phone_number,
                             "phone_number_id": tap.business.phone_number_id},
                "contacts": [contact_of(tap)],
                "messages": [message],
            },
            "field": "messages",
        },
        "extra_info": {
            "media_url": media_url,
            "ref": tap.template.ref,
            "ref1": tap.template.ref1,
            "ref2": tap.template.ref2,
            "reply_to": tap.template.reply_to,
            "trace_id": tap.trace_id,
            "waba_id": tap.business.waba_id,
        },
    }


def variant(facts: Facts) -> random.Random:
    """A stream for optional fields that vary from message to message (an animated sticker,
    a named place), seeded by the message's own id: drawing from it moves no other value."""
    return random.Random(f"variant:{facts.tap.message_id}")


def template_context(facts: Facts) -> dict[str, Any]:
    """`context` of a reply to the brand's message (its wamid, sent by the business)."""
    return {"from": facts.tap.business.display_phone_number, "id": facts.tap.template.wamid}


def first_message(document: dict[str, Any]) -> dict[str, Any]:
    """The callback's `messages[0]` (an empty dict if the document has none)."""
    try:
        message = document["meta_object"]["value"]["messages"][0]
    except (KeyError, IndexError, TypeError):
        return {}
    return message if isinstance(message, dict) else {}
