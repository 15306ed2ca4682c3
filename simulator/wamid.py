"""Encode and decode WhatsApp `wamid.` message ids (a base64 Thrift compact struct).

Layout, checked against real public ids byte for byte:
``1C 18 <n> <customer digits> 15 02 00 <12|11> 18 <m> <HEX id> 00``
field 1 is the counterpart's JID (always the customer's number), field 2 is fromMe
(``12`` false: sent by the user, ``11`` true: sent by the business), field 3 the message id.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

PREFIX = "wamid."

# Hex id lengths seen in real traffic: the business API sends 18 chars; users' phones
# send 32 (Android), 20 (iOS) or 22 (WhatsApp Web).
BUSINESS_ID_LENGTH = 18
USER_ID_LENGTHS = {"android": 32, "ios": 20, "web": 22}

_HEX = frozenset("0123456789ABCDEF")
_SERVER_INDIVIDUAL = 0x02  # zigzag varint 1 = an individual user ("s.whatsapp.net")
_FROM_USER = 0x12  # compact-protocol BOOLEAN_FALSE for field 2
_FROM_BUSINESS = 0x11  # compact-protocol BOOLEAN_TRUE for field 2


class InvalidWamid(ValueError):
    """Raised when a string is not a structurally valid wamid; the message says why."""


@dataclass(frozen=True)
class Wamid:
    """The decoded parts of a wamid."""

    customer: str  # the customer's number, digits only, whichever side sent the message
    from_business: bool  # True when the business sent the message (fromMe)
    message_id: str  # uppercase hex

    @property
    def direction(self) -> str:
        """Who sent the message, in words."""
        return "from business" if self.from_business else "from user"


def encode_wamid(customer: str, from_business: bool, message_id: str) -> str:
    """Build the wamid of a message exchanged with `customer` (digits, no `+`)."""
    if not customer.isdigit() or not 1 <= len(customer) <= 0x7F:
        raise ValueError(f"customer number must be digits only, got {customer!r}")
    if not message_id or not set(message_id) <= _HEX or len(message_id) > 0x7F:
        raise ValueError(f"message id must be uppercase hex, got {message_id!r}")
    raw = b"".join(
        (
            b"\x1c\x18",
            bytes((len(customer),)),
            customer.encode("ascii"),
            b"\x15\x02\x00",
            bytes((_FROM_BUSINESS if from_business else _FROM_USER, 0x18, len(message_id))),
            message_id.encode("ascii"),
            b"\x00",
        )
    )
    return PREFIX + base64.b64encode(raw).decode("ascii")


def decode_wamid(value: str) -> Wamid:
    """Decode a wamid, raising InvalidWamid with the first structural fault found."""
    if not isinstance(value, str) or not value.startswith(PREFIX):
        raise InvalidWamid("does not start with 'wamid.'")
    body = value[len(PREFIX) :]
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidWamid("the part after 'wamid.' is not standard base64") from None
    reader = _Reader(raw)
    reader.expect(0x1C, "field 1 (the customer's JID struct)")
    reader.expect(0x18, "the JID user field")
    customer = reader.string("customer number")
    if not customer.isdigit():
        raise InvalidWamid(f"the customer number {customer!r} is not all digits")
    if not 10 <= len(customer) <= 15:
        raise InvalidWamid(f"the customer number has {len(customer)} digits, expected 10-15")
    reader.expect(0x15, "the JID server field")
    reader.expect(_SERVER_INDIVIDUAL, "server type 1 (an individual user)")
    reader.expect(0x00, "the end of the JID struct")
    flag = reader.byte("the fromMe field")
    if flag not in (_FROM_USER, _FROM_BUSINESS):
        raise InvalidWamid(f"byte {reader.pos - 1} is 0x{flag:02X}, expected the fromMe field")
    reader.expect(0x18, "the message id field")
    message_id = reader.string("message id")
    if not set(message_id) <= _HEX:
        raise InvalidWamid(f"the message id {message_id!r} is not uppercase hex")
    reader.expect(0x00, "the end of the struct")
    if reader.pos != len(raw):
        raise InvalidWamid(f"{len(raw) - reader.pos} unexpected bytes after the struct")
    return Wamid(customer, flag == _FROM_BUSINESS, message_id)


class _Reader:
    """A cursor over the decoded bytes that turns every surprise into InvalidWamid."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.pos = 0

    def byte(self, what: str) -> int:
        if self.pos >= len(self.raw):
            raise InvalidWamid(f"ends after {self.pos} bytes, before {what}")
        value = self.raw[self.pos]
        self.pos += 1
        return value

    def expect(self, wanted: int, what: str) -> None:
        got = self.byte(what)
        if got != wanted:
            raise InvalidWamid(
                f"byte {self.pos - 1} is 0x{got:02X}, expected 0x{wanted:02X} ({what})")

    def string(self, what: str) -> str:
        length = self.byte(f"the length of the {what}")
        chunk = self.raw[self.pos : self.pos + length]
        if len(chunk) != length:
            raise InvalidWamid(f"the {what} claims {length} bytes but only {len(chunk)} remain")
        self.pos += length
        try:
            return chunk.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidWamid(f"the {what} is not ASCII") from None
