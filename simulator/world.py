"""One world every face and the send API share: the business and its Meta ids, users and
their business-scoped ids (BSUIDs), conversation windows, run ids and the status timeline.

Plain data and small functions, below every module that uses them (taps, kinds, the send
API, the runner): a user keeps one BSUID whoever derives it, a message's statuses keep one
conversation and come seconds apart in time order, and a new run is new traffic.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from simulator.calling_codes import calling_code_of
from simulator.errors import WasimError
from simulator.models import Business, User

# Seconds before sent (from the send), delivered (from sent) and read (from delivered): a
# phone that is online and a user who opens the chat soon (INF: Meta publishes no figures;
# sent within a second or two, delivered when the phone is reached, read when opened).
DEFAULT_STATUS_DELAYS: tuple[float, ...] = (1.0, 2.0, 5.0)
# A person taps a button some seconds after reading the message (INF), never before.
READ_TO_TAP = 2
# Meta's customer-service/marketing conversation window (DOC: 24 hours from its first message).
CONVERSATION_SECONDS = 24 * 3600
MAX_DELAY = 24 * 3600.0


@functools.lru_cache(maxsize=8192)  # pure; a send and its statuses ask again within seconds
def derived_numeric_id(kind: str, key: str) -> str:
    """A Meta id (15-16 digits, no leading zero) that is a pure function of `kind` and `key`."""
    value = int.from_bytes(hashlib.sha256(f"wasim:{kind}:{key}".encode()).digest()[:16], "big")
    digits = 15 + (value & 1)
    low = 10 ** (digits - 1)
    return str(low + (value >> 1) % (9 * low))


def business_ids(number: str) -> tuple[str, str]:
    """The phone_number_id and WABA id of a business number: derived, never equal."""
    phone_number_id = derived_numeric_id("phone_number_id", number)
    waba_id = derived_numeric_id("waba_id", number)
    if waba_id == phone_number_id:  # pragma: no cover - a 1 in 10**15 collision
        waba_id = derived_numeric_id("waba_id:again", number)
    return phone_number_id, waba_id


def canonical_number(number: str) -> str:
    """The user's number as they have it, undoing the wire's quirks (wire-format.md 10):
    a Mexican `521` + 10 digits is `52` + 10, a 12-digit Brazilian mobile regains its ninth
    digit. One person, one key, whichever form an app or a tap carries."""
    digits = number.lstrip("+")
    if digits.startswith("521") and len(digits) == 13:
        return "52" + digits[3:]
    if digits.startswith("55") and len(digits) == 12 and digits[4] in "6789":
        return digits[:4] + "9" + digits[4:]
    return digits


def user_country(number: str) -> str:
    """The ISO country of a number (libphonenumber's region: +1 416... is CA), "" if none."""
    digits = canonical_number(number)
    code = calling_code_of(digits)
    if not code:
        return ""
    # Where several countries share a calling code, the region follows from the first
    # digits after it (+1: the area code), so a number is parsed once per prefix.
    width = 3 if code == "1" else 6
    prefix = digits[:len(code) + width]
    region = _REGIONS.get(prefix)
    if region is None:
        region = _region_of(code, digits)
        if len(_REGIONS) >= _MAX_REGIONS:  # bounded: a load run meets many prefixes
            _REGIONS.clear()
        _REGIONS[prefix] = region
    return region


_REGIONS: dict[str, str] = {}
_MAX_REGIONS = 8192


def _region_of(code: str, digits: str) -> str:
    """The region of `digits` (calling code `code`) by libphonenumber."""
    import phonenumbers  # metadata loaded on first use

    regions = phonenumbers.region_codes_for_country_code(int(code))
    if len(regions) == 1:  # most calling codes are one country: no parse needed
        return "" if regions[0] == "001" else str(regions[0])
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse("+" + digits))
    except phonenumbers.NumberParseException:
        region = None
    if not region or region in ("ZZ", "001"):
        region = phonenumbers.region_code_for_country_code(int(code))
    return "" if not region or region in ("ZZ", "001") else str(region)


def bsuid(business: str, number: str, *, parent: bool = False, country: str = "") -> str:
    """The business-scoped user id of the user `number` for the business `business`:
    `CC.` + 15-16 digits, one function of (business, user) everywhere (taps, statuses, the
    send API's record). A parent (enterprise) id is `CC.ENT.` + digits. `country` is used
    only when the number's own cannot be told."""
    region = user_country(number) or country or "ZZ"
    kind = "parent_user_id" if parent else "user_id"
    key = f"{business.lstrip('+')}:{canonical_number(number)}"
    return f"{region}.{'ENT.' if parent else ''}{derived_numeric_id(kind, key)}"


def country_of_bsuid(user_id: str) -> str:
    """The `CC` of a BSUID (`IN.1410...` is IN), "" if it has none."""
    head = user_id.split(".", 1)[0]
    return head if len(head) == 2 and head.isalpha() and head.isupper() else ""


def new_run_id() -> str:
    """A fresh id for one run: its message, trace and Kaleyra ids are drawn anew from it."""
    return secrets.token_hex(8)


# --- status timing ---------------------------------------------------------------------------

_DELAY = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(ms|s|m)?\s*")


def parse_status_delays(text: str, where: str = "--status-delays") -> tuple[float, ...]:
    """`1s,2s,5s` (or `1,2,5`, `500ms`, `1m`): seconds before sent, delivered and read."""
    delays: list[float] = []
    for part in text.split(","):
        match = _DELAY.fullmatch(part)
        if match is None:
            raise WasimError(f"{part.strip()!r} is not a delay", where=where,
                             hint="Give seconds per status, e.g. 1s,2s,5s (ms and m work too).")
        value = float(match.group(1)) * {"ms": 0.001, "m": 60.0}.get(match.group(2) or "s", 1.0)
        if not math.isfinite(value) or value > MAX_DELAY:
            raise WasimError(f"{part.strip()!r} is over a day", where=where)
        delays.append(value)
    return tuple(delays)


def status_offsets(count: int, delays: Sequence[float]) -> list[float]:
    """Seconds from the send to each of `count` statuses (each delay after the previous one;
    the last delay repeats)."""
    delays = tuple(delays) or (0.0,)
    offsets, at = [], 0.0
    for index in range(count):
        at += delays[min(index, len(delays) - 1)]
        offsets.append(at)
    return offsets


def real_wait(delay: float, speed: float) -> float:
    """How long to really wait for a `delay` of world time at `speed` (inf: not at all)."""
    if not math.isfinite(speed):
        return 0.0
    return delay / speed if speed > 0 else delay


def default_read_at(sent_at: float) -> int:
    """When a message sent at `sent_at` is read by the default timeline (for faces that do
    not ask the send API)."""
    return int(sent_at + status_offsets(3, DEFAULT_STATUS_DELAYS)[-1])


def tap_time(planned: int, read_at: int | None) -> int:
    """When a tap on a message happens: as planned, but never before the user read it."""
    if read_at is None:
        return planned
    return max(planned, read_at + READ_TO_TAP)


# --- the shared model -------------------------------------------------------------------------


@dataclass
class Conversation:
    """One open conversation window with a user: its id and when it closes."""

    id: str
    expires: int


@dataclass
class World:
    """The run's business(es) and users as every face sees them (thread-safe: the send API
    reads it from its threads)."""

    default: Business | None = None
    """The ids of any business number not registered (a `wasim api --phone-number-id`)."""
    businesses: dict[str, Business] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    """By number as the wire carries it, and by BSUID."""
    conversations: dict[tuple[str, str, str], Conversation] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add_business(self, business: Business) -> None:
        """Know `business` by its number: its phone_number_id and WABA id win everywhere."""
        with self._lock:
            self.businesses[business.display_phone_number] = business

    def business(self, number: str) -> Business:
        """The business with this number: registered, else the default ids, else derived."""
        digits = number.lstrip("+")
        with self._lock:
            known = self.businesses.get(digits)
        if known is not None:
            return known
        derived = business_ids(digits)
        if self.default is not None:
            return Business(digits, self.default.phone_number_id or derived[0],
                            self.default.waba_id or derived[1])
        return Business(digits, *derived)

    def add_user(self, user: User) -> None:
        """Know `user` (a scenario's cast, a tap's user) by number and BSUID."""
        with self._lock:
            if user.wa_id:
                self.users[user.wa_id] = user
            if user.user_id:
                self.users[user.user_id] = user

    def user(self, business: str, to: str) -> User:
        """The user a message to `to` (a number or a BSUID) reaches, as the taps know them:
        a known user as they are, else one derived from the number (a 2026 BSUID user)."""
        with self._lock:
            known = self.users.get(to)
        if known is not None:
            return known
        country = country_of_bsuid(to)
        if country:  # a BSUID nobody tapped with: the app never had the number
            return User("", "", country, user_id=to, username="")
        return _derived_user(business, to.lstrip("+"))

    def conversation(self, business: str, user: str, category: str, at: int,
                     draw: str) -> Conversation:
        """The conversation a message of `category` to `user` at `at` belongs to: the open
        window if there is one, else a new one (id `draw`, 24 hours)."""
        key = (business, user, category)
        with self._lock:
            open_ = self.conversations.get(key)
            if open_ is None or open_.expires <= at:
                open_ = self.conversations[key] = Conversation(draw, at + CONVERSATION_SECONDS)
            return open_


@functools.lru_cache(maxsize=8192)  # pure; a send and its statuses ask again within seconds
def _derived_user(business: str, digits: str) -> User:
    """A user nobody introduced, from their number alone: its country and BSUID."""
    return User(digits, "", user_country(digits), user_id=bsuid(business, digits))


__all__ = ["CONVERSATION_SECONDS", "DEFAULT_STATUS_DELAYS", "READ_TO_TAP", "Conversation",
           "World", "bsuid", "business_ids", "canonical_number", "country_of_bsuid",
           "default_read_at", "derived_numeric_id", "new_run_id", "parse_status_delays",
           "real_wait", "status_offsets", "tap_time", "user_country"]
