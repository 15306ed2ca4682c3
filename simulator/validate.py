"""Check a callback against Kaleyra's documented structure and every wire-format invariant."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from simulator.errors import WasimError
from simulator.inputs import load_json
from simulator.wamid import BUSINESS_ID_LENGTH, USER_ID_LENGTHS, InvalidWamid, decode_wamid

# The documented key sets of the button-tap callback (wire-format section 1).
ROOT_KEYS = ("meta_object", "extra_info")
META_OBJECT_KEYS = ("value", "field")
VALUE_KEYS = ("messaging_product", "metadata", "contacts", "messages")
METADATA_KEYS = ("display_phone_number", "phone_number_id")
CONTACT_KEYS = ("profile", "wa_id")
MESSAGE_KEYS = ("context", "from", "id", "timestamp", "type", "button")
CONTEXT_KEYS = ("from", "id")
BUTTON_KEYS = ("payload", "text")
EXTRA_INFO_KEYS = ("media_url", "ref", "ref1", "ref2", "reply_to", "trace_id", "waba_id")

_UUID4 = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_USER_HEX_LENGTHS = tuple(sorted(USER_ID_LENGTHS.values()))


@dataclass(frozen=True)
class Problem:
    """One broken rule: where in the document (a JSON path) and what was expected."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


class _Checker:
    """Walks one document, collecting a Problem for every rule it breaks."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def obj(self, path: str, value: Any, keys: tuple[str, ...]) -> dict[str, Any] | None:
        """Require an object with exactly the documented `keys`; return it if it is one."""
        if not isinstance(value, dict):
            self.fail(path, f"expected an object, got {_show(value)}")
            return None
        for key in keys:
            if key not in value:
                self.fail(f"{path}.{key}", "missing (a documented field)")
        for key in value:
            if key not in keys:
                self.fail(f"{path}.{key}", f"unexpected key; documented keys: {', '.join(keys)}")
        return value

    def items(self, path: str, value: Any) -> list[Any]:
        """Require a non-empty list; return it, or nothing to walk."""
        if not isinstance(value, list) or not value:
            self.fail(path, f"expected a non-empty list, got {_show(value)}")
            return []
        return value

    def string(self, path: str, value: Any, *, non_empty: bool = False) -> bool:
        if not isinstance(value, str):
            self.fail(path, f"expected a string, got {_show(value)}")
            return False
        if non_empty and not value:
            self.fail(path, "expected a non-empty string")
            return False
        return True

    def equals(self, path: str, value: Any, expected: Any) -> None:
        if value != expected:
            self.fail(path, f"expected {_show(expected)}, got {_show(value)}")

    def phone(self, path: str, value: Any) -> bool:
        """A WhatsApp number: E.164 digits, no `+`, 8-15 digits, no leading zero."""
        if not self.string(path, value):
            return False
        if not value.isdigit() or not 8 <= len(value) <= 15 or value.startswith("0"):
            self.fail(path, f"expected a phone number as 8-15 digits with country code and no "
                            f"'+', got {_show(value)}")
            return False
        return True

    def meta_id(self, path: str, value: Any) -> None:
        """A Meta object id: 15 or 16 digits."""
        if self.string(path, value) and not (value.isdigit() and len(value) in (15, 16)):
            self.fail(path, f"expected a 15-16 digit id, got {_show(value)}")

    def uuid4(self, path: str, value: Any) -> None:
        if not self.string(path, value):
            return
        if value.startswith("wamid."):
            self.fail(path, "expected Kaleyra's UUID, got a wamid")
        elif not _UUID4.fullmatch(value):
            self.fail(path, f"expected a lowercase version 4 UUID, got {_show(value)}")

    def timestamp(self, path: str, value: Any) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            self.fail(path, f"expected a string of unix seconds, got the number {value}")
        elif self.string(path, value) and not (value.isdigit() and len(value) == 10):
            self.fail(path, f"expected a string of 10-digit unix seconds, got {_show(value)}")

    def wamid(self, path: str, value: Any, *, from_business: bool, customer: str | None) -> None:
        """A structurally valid wamid sent by the right side, embedding the user's number."""
        if not self.string(path, value):
            return
        try:
            decoded = decode_wamid(value)
        except InvalidWamid as exc:
            self.fail(path, f"not a structurally valid wamid: {exc}")
            return
        if decoded.from_business != from_business:
            side = "the business (fromMe true)" if from_business else "the user (fromMe false)"
            self.fail(path, f"expected a message sent by {side}, got one {decoded.direction}")
        lengths = (BUSINESS_ID_LENGTH,) if decoded.from_business else _USER_HEX_LENGTHS
        if len(decoded.message_id) not in lengths:
            allowed = " or ".join(str(n) for n in lengths)
            self.fail(path, f"expected a {allowed} hex character message id inside the wamid, "
                            f"got {len(decoded.message_id)}")
        if customer is not None and decoded.customer != customer:
            self.fail(path, f"embeds the number {decoded.customer}, expected the user's "
                            f"number {customer}")


def validate_callback(document: Any) -> list[Problem]:
    """Every problem of a button-tap callback document; an empty list means it is valid."""
    check = _Checker()
    root = check.obj("$", document, ROOT_KEYS)
    if root is None:
        return check.problems
    meta = check.obj("$.meta_object", root.get("meta_object"), META_OBJECT_KEYS) \
        if "meta_object" in root else None
    if meta is not None:
        if "field" in meta:
            check.equals("$.meta_object.field", meta["field"], "messages")
        value = check.obj("$.meta_object.value", meta["value"], VALUE_KEYS) \
            if "value" in meta else None
        if value is not None:
            _check_value(check, value)
    if "extra_info" in root:
        _check_extra_info(check, root["extra_info"])
    return check.problems


def _check_value(check: _Checker, value: dict[str, Any]) -> None:
    base = "$.meta_object.value"
    if "messaging_product" in value:
        check.equals(f"{base}.messaging_product", value["messaging_product"], "whatsapp")
    business_number = None
    if "metadata" in value:
        metadata = check.obj(f"{base}.metadata", value["metadata"], METADATA_KEYS)
        if metadata is not None:
            number = metadata.get("display_phone_number")
            if "display_phone_number" in metadata and \
                    check.phone(f"{base}.metadata.display_phone_number", number):
                business_number = number
            if "phone_number_id" in metadata:
                check.meta_id(f"{base}.metadata.phone_number_id", metadata["phone_number_id"])
    wa_ids: list[str | None] = []
    for i, contact in enumerate(check.items(f"{base}.contacts", value.get("contacts"))
                                if "contacts" in value else []):
        path = f"{base}.contacts[{i}]"
        wa_ids.append(None)
        if check.obj(path, contact, CONTACT_KEYS) is None:
            continue
        if "profile" in contact:
            profile = check.obj(f"{path}.profile", contact["profile"], ("name",))
            if profile is not None and "name" in profile:
                check.string(f"{path}.profile.name", profile["name"], non_empty=True)
        if "wa_id" in contact and check.phone(f"{path}.wa_id", contact["wa_id"]):
            wa_ids[-1] = contact["wa_id"]
    for i, message in enumerate(check.items(f"{base}.messages", value.get("messages"))
                                if "messages" in value else []):
        _check_message(check, f"{base}.messages[{i}]", message, business_number, wa_ids, i)


def _check_message(check: _Checker, path: str, message: Any, business_number: str | None,
                   wa_ids: list[str | None], index: int) -> None:
    if check.obj(path, message, MESSAGE_KEYS) is None:
        return
    user: str | None = None
    if "from" in message and check.phone(f"{path}.from", message["from"]):
        user = message["from"]
        # One contact per message, in the same order (a batch pairs them up by position).
        if index < len(wa_ids) and wa_ids[index] is not None and wa_ids[index] != user:
            check.fail(f"{path}.from", f"expected the user's number {wa_ids[index]} "
                                       f"(contacts[{index}].wa_id), got {_show(user)}")
        elif index >= len(wa_ids):
            check.fail(f"{path}.from", f"no contacts[{index}] entry for this message's user")
    if "context" in message:
        context = check.obj(f"{path}.context", message["context"], CONTEXT_KEYS)
        if context is not None:
            if "from" in context and check.phone(f"{path}.context.from", context["from"]) \
                    and business_number is not None and context["from"] != business_number:
                check.fail(f"{path}.context.from", f"expected the business number "
                           f"{business_number} (metadata.display_phone_number), got "
                           f"{_show(context['from'])}")
            if "id" in context:
                check.wamid(f"{path}.context.id", context["id"], from_business=True,
                            customer=user)
    if "id" in message:
        check.wamid(f"{path}.id", message["id"], from_business=False, customer=user)
    if "timestamp" in message:
        check.timestamp(f"{path}.timestamp", message["timestamp"])
    if "type" in message and message["type"] != "button":
        check.fail(f"{path}.type", f"expected \"button\" (a quick-reply tap on a template), "
                                   f"got {_show(message['type'])}")
    if "button" in message:
        button = check.obj(f"{path}.button", message["button"], BUTTON_KEYS)
        if button is not None:
            if "payload" in button:
                check.string(f"{path}.button.payload", button["payload"])
            if "text" in button:
                check.string(f"{path}.button.text", button["text"], non_empty=True)


def _check_extra_info(check: _Checker, extra: Any) -> None:
    base = "$.extra_info"
    if check.obj(base, extra, EXTRA_INFO_KEYS) is None:
        return
    if "media_url" in extra:
        check.equals(f"{base}.media_url", extra["media_url"], "")
    for key in ("ref", "ref1", "ref2"):
        if key in extra:
            check.string(f"{base}.{key}", extra[key])
    for key in ("reply_to", "trace_id"):
        if key in extra:
            check.uuid4(f"{base}.{key}", extra[key])
    if "waba_id" in extra:
        check.meta_id(f"{base}.waba_id", extra["waba_id"])


@dataclass(frozen=True)
class Checked:
    """The outcome for one document of an input: its line (for JSON Lines) and problems."""

    line: int | None
    problems: list[Problem]


def parse_documents(text: str, source: str) -> Iterator[tuple[int | None, Any]]:
    """Split input into documents: one JSON document, or JSON Lines (line numbers given)."""
    lines = text.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise WasimError("no JSON in the input", where=source,
                         hint="Pipe a callback in, e.g. `wasim render | wasim validate -`.")
    if _is_json(lines[first]) and any(line.strip() for line in lines[first + 1 :]):
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                yield number, load_json(line)
            except json.JSONDecodeError as exc:
                raise WasimError(f"not JSON: {exc.msg} (column {exc.colno})",
                                 where=f"{source}:{number}",
                                 hint="Each line of JSON Lines must be one whole document.") \
                    from None
        return
    try:
        yield None, load_json(text)
    except json.JSONDecodeError as exc:
        raise WasimError(f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                         where=f"{source}:{exc.lineno}",
                         hint="Give one JSON document or JSON Lines.") from None


def _is_json(line: str) -> bool:
    try:
        load_json(line)
    except json.JSONDecodeError:
        return False
    return True


def validate_text(text: str, source: str) -> Iterator[Checked]:
    """Validate every document in `text` (one JSON document or JSON Lines)."""
    for line, document in parse_documents(text, source):
        yield Checked(line, validate_callback(document))
