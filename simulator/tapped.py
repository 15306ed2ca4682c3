"""Who tapped what: the one reader of a callback body's user, button and ids, whatever its shape.

The delivery log, the history, the receiver's summary line and the Python API's descriptions
all read these facts here, so a new envelope (Meta's `entry[0].changes[0].value`) or a new
kind of user (a username user without a number) is taught to wasim once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tapped:
    """The people-readable facts of a callback; blanks where the body does not say."""

    user: str = ""
    """`messages[0].from`, or `from_user_id` for a username user (no number on the wire)."""
    number: str = ""
    """`contacts[0].wa_id`, else `user`."""
    name: str = ""
    """The profile name, `contacts[0].profile.name`."""
    button: str = ""
    """The tapped button's text."""
    payload: str = ""
    """The tapped button's payload."""
    message_type: str = ""
    """`messages[0].type`."""
    message_id: str = ""
    """`messages[0].id`, the wamid."""
    campaign: str = ""
    """The brand's own words for the campaign: `extra_info.ref1 / ref2`."""
    message: bool = False
    """Whether the callback carries a message (`messages[0]`) at all."""
    more: int = 0
    """Further messages in the same callback."""
    status: str = ""
    """A status callback's `statuses[0].status` (then there is no message)."""
    recipient: str = ""
    """A status callback's `statuses[0].recipient_id`."""
    problem: str = ""
    """Why nothing could be told ("the body is a JSON list..."), else blank."""


def read_body(body: bytes) -> Tapped:
    """The facts of a body's bytes; a body that is not JSON gives blanks (and a problem)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError included
        return Tapped(problem="not JSON")
    return read_document(document)


def read_document(document: Any) -> Tapped:
    """The facts of a parsed callback, Kaleyra's `meta_object` or Meta's own envelope."""
    if not isinstance(document, dict):
        kind = {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(
            type(document), "number")
        return Tapped(problem=f"the body is a JSON {kind}, not an object")
    value = dig(document, "meta_object", "value")
    if value is None:  # Meta's own envelope, as the Meta-direct mode sends it
        value = dig(document, "entry", 0, "changes", 0, "value")
    if not isinstance(value, dict):
        return Tapped(problem="no meta_object.value (nor Meta's entry[0].changes[0].value)")
    ref1 = text(dig(document, "extra_info", "ref1"))
    ref2 = text(dig(document, "extra_info", "ref2"))
    campaign = " / ".join(part for part in (ref1, ref2) if part)
    messages = value.get("messages")
    if not isinstance(messages, list) or not messages:
        return Tapped(status=text(dig(value, "statuses", 0, "status")) or "",
                      recipient=text(dig(value, "statuses", 0, "recipient_id")) or "",
                      campaign=campaign)
    message = messages[0]
    user = text(dig(message, "from")) or text(dig(message, "from_user_id")) or ""
    return Tapped(
        user=user,
        number=text(dig(value, "contacts", 0, "wa_id")) or user,
        name=text(dig(value, "contacts", 0, "profile", "name")) or "",
        button=text(dig(message, "button", "text")) or "",
        payload=text(dig(message, "button", "payload")) or "",
        message_type=text(dig(message, "type")) or "",
        message_id=text(dig(message, "id")) or "",
        campaign=campaign,
        message=True,
        more=len(messages) - 1,
    )


def who_and_what(body: bytes) -> tuple[str, str]:
    """Who a callback is about and what it is, for a row of people's reading: the user
    (number and name) and the button or message type, or a status's recipient and status
    (`status read`); blanks only when the body says neither."""
    tapped = read_body(body)
    if tapped.message:
        who = f"{tapped.user} {tapped.name}".strip()
        return who, tapped.button or tapped.message_type
    return tapped.recipient, f"status {tapped.status}" if tapped.status else ""


def dig(value: Any, *keys: str | int) -> Any:
    """value[k1][k2]..., or None as soon as a step does not fit the shape."""
    for key in keys:
        if isinstance(key, str) and isinstance(value, dict):
            value = value.get(key)
        elif isinstance(key, int) and isinstance(value, list) and len(value) > key:
            value = value[key]
        else:
            return None
    return value


def text(value: Any) -> str | None:
    """A value worth showing: a non-empty string or a number, else None."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None
