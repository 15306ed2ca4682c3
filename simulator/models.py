"""Plain, frozen records of what a callback is made of: the business, the user, the tap."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Business:
    """The brand's WhatsApp number as Meta knows it; stable across a run."""

    display_phone_number: str  # E.164 digits, no `+`
    phone_number_id: str  # 15-16 digits
    waba_id: str  # 15-16 digits


@dataclass(frozen=True)
class User:
    """A WhatsApp user (a shopper) who received the brand's template message."""

    wa_id: str  # the user's number as the wire carries it: digits, no `+`
    name: str  # the profile name the user set, in their locale
    country: str  # ISO 3166 alpha-2
    # 2026 identity (wire-format.md section 10); "" leaves the field out of the callback.
    user_id: str = ""  # business-scoped user id (BSUID): `CC.` + digits
    parent_user_id: str = ""  # enterprise parent BSUID: `CC.ENT.` + digits
    username: str = ""  # set for a user who adopted a username: the wire hides wa_id/from
    platform: str = "android"  # the user's phone (android, ios, web): the shape of their ids


@dataclass(frozen=True)
class Button:
    """A quick-reply button on the template: its label and the payload the brand set."""

    text: str
    payload: str


@dataclass(frozen=True)
class TemplateMessage:
    """The template message the brand sent to one user, which the user's tap replies to."""

    wamid: str  # Meta's id of the sent message (fromMe true), goes to `context.id`
    reply_to: str  # Kaleyra's UUID of the same message, goes to `extra_info.reply_to`
    ref: str = ""
    ref1: str = ""
    ref2: str = ""


@dataclass(frozen=True)
class Tap:
    """One button tap: everything the button-tap template needs to render a callback."""

    business: Business
    user: User
    template: TemplateMessage
    button: Button
    message_id: str  # the wamid of the user's tap (fromMe false)
    timestamp: str  # unix seconds, a string as on the wire
    trace_id: str  # Kaleyra's per-callback UUID
    media_url: str = ""
