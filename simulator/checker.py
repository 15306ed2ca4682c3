"""The checker engine of `wasim validate`, public so that a kind owns its own rules: `Checker`
walks a document and collects a `Problem` per broken rule, `Shape` is an object's documented
keys and order, `Kind` is what a kind of callback declares (its message shape and body check).
`simulator.validate` holds the shared envelope and identity rules; `simulator.kinds.rules` each
kind's own. Both build on this module, which imports neither."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from simulator.calling_codes import ISO_REGIONS, REGIONS_BY_CALLING_CODE, calling_code_of
from simulator.inputs import UUID4, phone_problem
from simulator.wamid import BUSINESS_ID_LENGTH, USER_ID_LENGTHS, InvalidWamid, decode_wamid


@dataclass(frozen=True)
class Shape:
    """An object's documented keys: their order (keys in one slot may come in any order among
    themselves, where the sources do not fix it) and which of them are required."""

    slots: tuple[tuple[str, ...], ...]
    required: frozenset[str]

    @property
    def keys(self) -> tuple[str, ...]:
        """Every documented key, in documented order."""
        return tuple(key for slot in self.slots for key in slot)


def shape(*slots: str | tuple[str, ...], optional: tuple[str, ...] = ()) -> Shape:
    """A Shape from its slots in order (a tuple: keys in any order among themselves); every
    key is required but those in `optional`."""
    grouped = tuple(slot if isinstance(slot, tuple) else (slot,) for slot in slots)
    keys = {key for slot in grouped for key in slot}
    return Shape(grouped, frozenset(keys - set(optional)))


METADATA = shape("display_phone_number", "phone_number_id")


CONTEXT = shape("from", "id")


# Who sent a message: a phone number, a BSUID, or both; which is required is an identity rule.
SENDER_OPTIONAL = ("from", "from_user_id", "from_parent_user_id")


_USER_HEX_LENGTHS = tuple(sorted(USER_ID_LENGTHS.values()))


# A business-scoped user id: the user's ISO country, a dot, up to 128 alphanumerics; the
# enterprise parent id has `ENT.` in between (wire-format section 10).
_BSUID = re.compile(r"([A-Z]{2})\.([A-Za-z0-9]{1,128})")


_PARENT_BSUID = re.compile(r"([A-Z]{2})\.ENT\.([A-Za-z0-9]{1,128})")


# Plausible message times: WhatsApp's business API did not exist before 2010, and a clock a
# day ahead is already wrong.
EARLIEST_TIMESTAMP = 1262304000  # 2010-01-01T00:00:00Z


FUTURE_SLACK = 86400


@dataclass(frozen=True)
class Problem:
    """One broken rule: where in the document (a JSON path) and what was expected."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def show(value: Any) -> str:
    """`value` as JSON (or repr) cut to 60 characters, for a problem's message."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Checker:
    """Walks one document, collecting a Problem for every rule it breaks."""

    def __init__(self, now: int) -> None:
        self.problems: list[Problem] = []
        self.now = now

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def obj(self, path: str, value: Any, shape: Shape) -> dict[str, Any] | None:
        """Require an object with the documented keys of `shape`, in documented order."""
        if not isinstance(value, dict):
            self.fail(path, f"expected an object, got {show(value)}")
            return None
        for key in shape.keys:
            if key in shape.required and key not in value:
                self.fail(f"{path}.{key}", "missing (a documented field)")
        slot_of = {key: i for i, slot in enumerate(shape.slots) for key in slot}
        for key in value:
            if key not in slot_of:
                self.fail(f"{path}.{key}", f"unexpected key; documented keys: "
                                           f"{', '.join(shape.keys)}")
        known = [key for key in value if key in slot_of]
        if any(slot_of[a] > slot_of[b] for a, b in pairwise(known)):
            documented = [key for key in shape.keys if key in value]
            self.fail(path, f"reordered keys: got {', '.join(known)}; documented order: "
                            f"{', '.join(documented)}")
        return value

    def items(self, path: str, value: Any) -> list[Any]:
        """Require a non-empty list; return it, or nothing to walk."""
        if not isinstance(value, list) or not value:
            self.fail(path, f"expected a non-empty list, got {show(value)}")
            return []
        return value

    def string(self, path: str, value: Any, *, non_empty: bool = False) -> bool:
        """Require a string (with `non_empty`, one with something besides whitespace)."""
        if not isinstance(value, str):
            self.fail(path, f"expected a string, got {show(value)}")
            return False
        if non_empty and not value.strip():
            self.fail(path, "expected a non-empty string" if not value else
                            f"expected a non-empty string, got only whitespace {show(value)}")
            return False
        return True

    def equals(self, path: str, value: Any, expected: Any) -> None:
        """Require exactly `expected` (type included: 1 is not "1", nor True 1)."""
        if type(value) is not type(expected) or value != expected:
            self.fail(path, f"expected {show(expected)}, got {show(value)}")

    def phone(self, path: str, value: Any) -> bool:
        """A WhatsApp number: E.164 digits, no `+`, 8-15 digits, an assigned country code."""
        if not self.string(path, value):
            return False
        problem = phone_problem(value)  # the same rule as typed numbers (inputs.parse_phone)
        if problem == "shape":
            self.fail(path, f"expected a phone number as 8-15 digits with country code and no "
                            f"'+', got {show(value)}")
            return False
        if problem == "calling code":
            self.fail(path, f"expected a phone number with a country calling code, but no "
                            f"country's code starts {show(value)}")
            return False
        return True

    def meta_id(self, path: str, value: Any) -> bool:
        """A Meta object id: 15 or 16 digits, never a leading zero (Meta's ids are integers)."""
        if not self.string(path, value):
            return False
        if not (value.isascii() and value.isdigit() and len(value) in (15, 16)):
            self.fail(path, f"expected a 15-16 digit id, got {show(value)}")
            return False
        if value.startswith("0"):
            self.fail(path, f"expected a Meta id, which never starts with 0, got {show(value)}")
            return False
        return True

    def uuid4(self, path: str, value: Any, *, recipient_index: bool = False) -> None:
        """Kaleyra's ids: lowercase RFC 4122 version 4 UUIDs; with `recipient_index`, also a
        V1 message's per-recipient id `<uuid>:<n>` (send-api.md 5.6: a V1 message's reply_to
        is the send's data[].message_id)."""
        if not self.string(path, value):
            return
        uuid, colon, index = value.partition(":") if recipient_index else (value, "", "")
        if value.startswith("wamid."):
            self.fail(path, "expected Kaleyra's UUID, got a wamid")
        elif not UUID4.fullmatch(uuid) or (colon and not (index.isascii() and index.isdigit()
                                                          and len(index) <= 4)):
            wanted = "a lowercase version 4 UUID" + (" (or <uuid>:<n>, a V1 message's)"
                                                     if recipient_index else "")
            self.fail(path, f"expected {wanted}, got {show(value)}")

    def timestamp(self, path: str, value: Any) -> None:
        """A string of unix seconds between 2010 and a day after `now`."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.fail(path, f"expected a string of unix seconds, got the number {show(value)}")
            return
        if not self.string(path, value):
            return
        if not (value.isascii() and value.isdigit() and len(value) == 10) \
                or value.startswith("0"):
            self.fail(path, f"expected a string of 10-digit unix seconds, got {show(value)}")
            return
        seconds = int(value)
        if not EARLIEST_TIMESTAMP <= seconds <= self.now + FUTURE_SLACK:
            when = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(seconds))
            self.fail(path, f"expected a time between 2010 and a day from now, got {value} "
                            f"({when})")

    def bsuid(self, path: str, value: Any, *, parent: bool = False) -> str | None:
        """A business-scoped user id (`CC.` + 1-128 alphanumerics, or `CC.ENT.` for a parent);
        returns its country."""
        if not self.string(path, value):
            return None
        match = (_PARENT_BSUID if parent else _BSUID).fullmatch(value)
        if match is None:
            form = "CC.ENT. and 1-128 letters or digits" if parent else \
                "CC. and 1-128 letters or digits"
            self.fail(path, f"expected a {'parent ' if parent else ''}business-scoped user id "
                            f"({form}, CC the user's country), got {show(value)}")
            return None
        if match.group(1) not in ISO_REGIONS:
            self.fail(path, f"expected an ISO country before the dot, got {match.group(1)!r}")
            return None
        return match.group(1)

    def wamid(self, path: str, value: Any, *, from_business: bool,
              customers: tuple[str, ...]) -> str | None:
        """A structurally valid wamid sent by the right side, embedding the user's number;
        returns the number it embeds."""
        if not self.string(path, value):
            return None
        try:
            decoded = decode_wamid(value)
        except InvalidWamid as exc:
            self.fail(path, f"not a structurally valid wamid: {exc}")
            return None
        if decoded.from_business != from_business:
            side = "the business (fromMe true)" if from_business else "the user (fromMe false)"
            self.fail(path, f"expected a message sent by {side}, got one {decoded.direction}")
        lengths = (BUSINESS_ID_LENGTH,) if decoded.from_business else _USER_HEX_LENGTHS
        if len(decoded.message_id) not in lengths:
            allowed = " or ".join(str(n) for n in lengths)
            self.fail(path, f"expected a {allowed} hex character message id inside the wamid, "
                            f"got {len(decoded.message_id)}")
        if customers and decoded.customer not in customers:
            self.fail(path, f"embeds the number {decoded.customer}, expected the user's "
                            f"number {customers[0]}")
        return decoded.customer


@dataclass(frozen=True)
class Kind:
    """One kind of callback: its name (`messages[].type`), how `validate` names it, the
    documented shape of its message, and the rules it owns for its own part (the envelope,
    identity and id rules are shared). `context` is the shape its `context` has when present
    (the message shape says whether it may), `media` whether `extra_info.media_url` is the
    stored file's URL rather than empty."""

    name: str
    label: str
    message: Shape
    check_body: Callable[[Checker, str, dict[str, Any]], None]
    context: Shape = CONTEXT
    media: bool = False


def check_country(check: Checker, path: str, country: Any, bsuid_country: str | None,
                  number: str | None) -> None:
    """A user's `country_code`: an ISO country, the BSUID's country, and the number's."""
    if not check.string(f"{path}.country_code", country):
        return
    if country not in ISO_REGIONS:
        check.fail(f"{path}.country_code", f"expected an ISO country code like \"IN\", got "
                                           f"{show(country)}")
        return
    if bsuid_country is not None and country != bsuid_country:
        check.fail(f"{path}.country_code", f"expected {bsuid_country}, the country of user_id, "
                                           f"got {show(country)}")
    code = calling_code_of(number) if number is not None else None
    if code is not None and country not in REGIONS_BY_CALLING_CODE[code]:
        check.fail(f"{path}.country_code", f"expected the country of the number {number} "
                   f"(+{code}: {', '.join(sorted(REGIONS_BY_CALLING_CODE[code]))}), got "
                   f"{show(country)}")
