"""Read values people type (numbers, ids, times) into wire form, or say exactly what is wrong."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from simulator.errors import WasimError
from simulator.wamid import InvalidWamid, Wamid, decode_wamid

_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_SEPARATORS = re.compile(r"[\s\-().]")


def parse_phone(text: str, where: str) -> str:
    """A phone number as WhatsApp writes it: `+91 98450-12345` becomes `919845012345`."""
    digits = _SEPARATORS.sub("", text).removeprefix("+")
    if not digits.isdigit() or not 8 <= len(digits) <= 15 or digits.startswith("0"):
        raise WasimError(f"{text!r} is not a phone number with its country code", where=where,
                         hint="Give 8-15 digits starting with the country code, "
                              "e.g. 919845012345.")
    return digits


def parse_meta_id(text: str, where: str) -> str:
    """A Meta object id (phone_number_id, WABA id): 15 or 16 digits."""
    if not (text.isdigit() and len(text) in (15, 16)):
        raise WasimError(f"{text!r} is not a Meta id", where=where,
                         hint="Meta ids are 15 or 16 digits, e.g. 104605889412733.")
    return text


def parse_uuid4(text: str, where: str) -> str:
    """A lowercase version 4 UUID, as Kaleyra's reply_to."""
    value = text.strip().lower()
    if not _UUID4.fullmatch(value):
        raise WasimError(f"{text!r} is not a version 4 UUID", where=where,
                         hint="For example 48c38d78-4ec5-4b1e-abee-03aa11bb6c85.")
    return value


def parse_business_wamid(text: str, where: str) -> Wamid:
    """The wamid of a message the business sent (what a tap's `context.id` points at)."""
    try:
        decoded = decode_wamid(text.strip())
    except InvalidWamid as exc:
        raise WasimError(f"not a structurally valid wamid: {exc}", where=where,
                         hint="Copy the id from the send API's response (`wamid.HBgM...`).") \
            from None
    if not decoded.from_business:
        raise WasimError("this wamid is of a message the user sent, not the business",
                         where=where, hint="Give the id of the template message your app sent.")
    return decoded


def parse_time(text: str, where: str) -> int | None:
    """Unix seconds, an ISO 8601 date-time (UTC unless it says), or 'now' (returns None)."""
    value = text.strip()
    if value.lower() == "now":
        return None
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise WasimError(f"cannot read the time {text!r}", where=where,
                         hint="Give unix seconds (1767225600), an ISO date-time "
                              "(2026-01-01T09:30:00+05:30) or 'now'.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())
