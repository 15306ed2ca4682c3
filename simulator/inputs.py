"""Read values people type (numbers, ids, times) into wire form, or say exactly what is wrong."""

from __future__ import annotations

import json
import math
import os
import re
from datetime import UTC, datetime
from typing import Any

from simulator.calling_codes import calling_code_of
from simulator.errors import WasimError
from simulator.wamid import InvalidWamid, Wamid, decode_wamid

# Kaleyra's ids (reply_to): lowercase RFC 4122 version 4 UUIDs; validate.py checks the same.
UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_SEPARATORS = re.compile(r"[\s\-().]")


def phone_problem(digits: str) -> str | None:
    """Why `digits` is not a WhatsApp number on the wire, or None; the one phone rule.

    "shape": not 8-15 ASCII digits without a leading 0 (E.164 without the +);
    "calling code": no country's calling code starts it.
    """
    if not is_ascii_digits(digits) or not 8 <= len(digits) <= 15 or digits.startswith("0"):
        return "shape"
    if calling_code_of(digits) is None:
        return "calling code"
    return None


def parse_phone(text: str, where: str) -> str:
    """A phone number as WhatsApp writes it: `+91 98450-12345` becomes `919845012345`."""
    digits = _SEPARATORS.sub("", text).removeprefix("+")
    if phone_problem(digits) is not None:
        raise WasimError(f"{text!r} is not a phone number with its country code", where=where,
                         hint="Give 8-15 digits starting with the country code, "
                              "e.g. 919845012345.")
    return digits


def parse_meta_id(text: str, where: str) -> str:
    """A Meta object id (phone_number_id, WABA id): 15 or 16 digits."""
    if not (is_ascii_digits(text) and len(text) in (15, 16)):
        raise WasimError(f"{text!r} is not a Meta id", where=where,
                         hint="Meta ids are 15 or 16 digits, e.g. 104605889412733.")
    return text


def parse_uuid4(text: str, where: str) -> str:
    """A lowercase version 4 UUID, as Kaleyra's reply_to."""
    value = text.strip().lower()
    if not UUID4.fullmatch(value):
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
    hint = ("Give unix seconds (1767225600), an ISO date-time (2026-01-01T09:30:00+05:30) "
            "or 'now'.")
    if is_ascii_digits(value):
        try:
            return int(parse_number(value, where, low=0, high=LATEST_TIME, integer=True))
        except WasimError as exc:
            exc.hint = ("Give unix seconds up to 253402300799 (the year 9999), an ISO "
                        "date-time or 'now'.")
            raise
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = int(moment.timestamp())
    except (ValueError, OverflowError):
        raise WasimError(f"cannot read the time {shown(text)}", where=where, hint=hint) from None
    if not 0 <= seconds <= LATEST_TIME:
        raise WasimError(f"the time {shown(text)} is not between 1970 and 9999", where=where,
                         hint=hint)
    return seconds


def check_path(text: str, where: str) -> str:
    """Refuse a path the system cannot open for its shape (too long, a NUL byte); else `text`.

    Caught here, before anything else runs, rather than as OSError deep in a command.
    """
    encoded = os.fsencode(text)
    if not encoded.strip():
        raise WasimError("the path is empty", where=where, hint="Give a file name.")
    if b"\0" in encoded:
        raise WasimError(f"the path {shown(text)} holds a NUL character", where=where,
                         hint="Check the path.")
    if len(encoded) > MAX_PATH or any(len(part) > MAX_NAME for part in encoded.split(b"/")):
        raise WasimError(f"the path {shown(text)} is too long", where=where,
                         hint=f"File names are at most {MAX_NAME} bytes, paths {MAX_PATH}.")
    return text


def is_ascii_digits(text: str) -> bool:
    """Whether `text` is digits 0-9 only, as int() reads them."""
    # str.isdigit() also accepts superscripts and other scripts' digits, which int() refuses.
    return text.isascii() and text.isdigit()


# Limits of the numbers people type. A longer text than this is a typo or an attack, and
# int() of a 4,300-digit text raises instead of answering.
MAX_NUMBER_TEXT = 40
LATEST_TIME = 253402300799  # 9999-12-31T23:59:59Z: datetime cannot go further
MAX_SEED = 2**64 - 1
MAX_WAIT = 86400.0  # seconds to wait for anything (a timeout, a retry): a day, so never forever
MAX_RETRIES = 100  # retries of one delivery, so a typo (or a file) cannot retry for ever
SHOWN_LENGTH = 40
MAX_NAME, MAX_PATH = 255, 4095  # bytes: NAME_MAX and PATH_MAX of Linux and macOS (1023 there)


def shown(text: str) -> str:
    """`text` quoted for an error message, cut short so a huge value keeps the message short."""
    if len(text) > SHOWN_LENGTH:
        return repr(text[:SHOWN_LENGTH]) + f"... ({len(text):,} characters)"
    return repr(text)


def parse_number(text: str | float, where: str, *, low: float | None = None,
                 high: float | None = None, integer: bool = False,
                 low_open: bool = False, what: str | None = None) -> float:
    """A finite number from `text` within [low, high] (or (low, high] with `low_open`).

    Every number read from the command line goes through here, so NaN, infinity, a
    5,000-digit text and an out-of-range value all get the same one-line error.
    """
    kind = what or ("a whole number" if integer else "a number")
    above = (f"more than {_plain(low)}" if low_open else f"at least {_plain(low)}") \
        if low is not None else None
    below = f"at most {_plain(high)}" if high is not None else None
    limits = " and ".join(p for p in (above, below) if p)
    hint = f"Give {kind}" + (f", {limits}." if limits else ".")
    if isinstance(text, bool):
        raise WasimError(f"{text!r} is not {kind}", where=where, hint=hint)
    if isinstance(text, int | float):
        value: float = text
    else:
        value_text = text.strip()
        if len(value_text) > MAX_NUMBER_TEXT:
            raise WasimError(f"{shown(text)} is too long to be {kind}", where=where, hint=hint)
        try:
            value = int(value_text) if integer else float(value_text)
        except ValueError:
            raise WasimError(f"{shown(text)} is not {kind}", where=where, hint=hint) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise WasimError(f"{shown(str(text))} is not {kind}", where=where, hint=hint)
    if integer and value != int(value):
        raise WasimError(f"{value!r} is not {kind}", where=where, hint=hint)
    too_low = low is not None and (value <= low if low_open else value < low)
    if too_low or (high is not None and value > high):
        raise WasimError(f"{shown(str(text))} is out of range", where=where, hint=hint)
    return value


def _plain(number: float) -> str:
    """A limit as people write it: 65535 and 0.5, not 6.5535e+04."""
    if isinstance(number, int) or (number.is_integer() and abs(number) < 1e16):
        return str(int(number))
    return f"{number:g}"


def port_of_url(text: str, where: str) -> str:
    """Check that a URL's port, if it names one, is a TCP port; the URL unchanged."""
    match = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?(\[[^\]]*\]|[^/?#:]*)"
                     r"(?::([^/?#]*))?", text)
    if match and match.group(2):
        parse_number(match.group(2), where, low=1, high=65535, integer=True,
                     what="a TCP port in the URL")
    return text


# JSON typed by people or read from files: deep enough for any callback, far from the
# interpreter's recursion limit (which json.loads, and then our own code, would hit).
MAX_JSON_DEPTH = 64
MAX_JSON_DIGITS = 100


class _JSONLimit(ValueError):
    def __init__(self, message: str, token: str | None = None) -> None:
        super().__init__(message)
        self.message, self.token = message, token


def _json_int(token: str) -> int:
    if len(token.lstrip("-")) > MAX_JSON_DIGITS:
        raise _JSONLimit(f"a number of {len(token.lstrip('-')):,} digits (at most "
                         f"{MAX_JSON_DIGITS})", token)
    return int(token)


def _json_float(token: str) -> float:
    if len(token) > MAX_JSON_DIGITS * 4:
        raise _JSONLimit(f"a number of {len(token):,} characters", token)
    value = float(token)
    if not math.isfinite(value):
        raise _JSONLimit(f"{token[:20]} is too large for a number", token)
    return value


def _json_constant(token: str) -> Any:
    raise _JSONLimit(f"{token} is not JSON", token)


def load_json(document: str) -> Any:
    """json.loads, refusing NaN, infinity, numbers of more than 100 digits and deep nesting.

    Problems raise json.JSONDecodeError (with the place when known), as plain bad JSON does,
    so callers handle every kind of unreadable input in one `except`.
    """
    try:
        value = json.loads(document, parse_int=_json_int, parse_float=_json_float,
                           parse_constant=_json_constant)
    except RecursionError:
        raise _too_deep(document) from None
    except _JSONLimit as exc:
        at = document.find(exc.token) if exc.token else -1
        raise json.JSONDecodeError(exc.message, document, max(at, 0)) from None
    # Counting brackets is cheap and spares the walk for every ordinary callback.
    if document.count("[") + document.count("{") > MAX_JSON_DEPTH and \
            _depth(value) > MAX_JSON_DEPTH:
        raise _too_deep(document)
    return value


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, level)
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, level + 1) for child in children)
    return deepest


def _too_deep(document: str) -> json.JSONDecodeError:
    """The error for over-deep nesting, placed at the bracket that went one level too far."""
    level, at = 0, 0
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]', document):
        token = match.group()
        if token in "[{":
            level += 1
            if level > MAX_JSON_DEPTH:
                at = match.start()
                break
        elif token in "]}":
            level -= 1
    return json.JSONDecodeError(f"nested more than {MAX_JSON_DEPTH} levels deep", document, at)
