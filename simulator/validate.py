"""Check a callback against Kaleyra's documented structure, key order, bytes and every invariant.

(The checker engine is simulator.checker; each kind's own rules are simulator.kinds.rules or
the kind's module. What stays here is the envelope, identity and byte rules: about 620 lines.)

The rules are in three layers so that a kind of callback can own its own (issue 12): the exact
bytes (PHP `json_encode` style, `serialization_problems`), the envelope and the user's identity
(shared by every kind), and the message body, which belongs to the `Kind` that `messages[].type`
names (`KINDS`: the quick-reply tap here, every other kind in `simulator.kinds.rules`, loaded on
first use). Status callbacks have their own layout and rules, in the same module.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from simulator.checker import (  # the engine, below this module and simulator.kinds.rules
    METADATA,
    SENDER_OPTIONAL,
    Kind,
    Problem,
)
from simulator.checker import Checker as _Checker
from simulator.checker import check_country as _check_country
from simulator.checker import shape as _shape
from simulator.checker import show as _show
from simulator.errors import WasimError
from simulator.inputs import load_json
from simulator.meta import is_meta_document
from simulator.wire import to_wire

# The documented shapes of the quick-reply tap (wire-format sections 1, 7 and 10). The 2026
# identity fields are optional; which of them a user must have is an identity rule, below.
ROOT = _shape("meta_object", "extra_info")
META_OBJECT = _shape("value", "field")
VALUE = _shape("messaging_product", "metadata", "contacts", "messages")
# Meta documents identity_key_hash right after wa_id, the 2026 capture user_id then
# country_code; where parent_user_id falls relative to country_code no source says.
CONTACT = _shape("profile", "wa_id", "identity_key_hash", "user_id",
                 ("parent_user_id", "country_code"),
                 optional=("wa_id", "identity_key_hash", "user_id", "parent_user_id",
                           "country_code"))
PROFILE = _shape("name", "username", optional=("username",))
BUTTON = _shape("payload", "text")
EXTRA_INFO = _shape("media_url", "ref", "ref1", "ref2", "reply_to", "trace_id", "waba_id")
# The quick-reply tap's message; each kind has its own (`type` names the kind).
TAP_MESSAGE = _shape("context", "from", "from_user_id", "from_parent_user_id", "id",
                     "timestamp", "type", "button", optional=SENDER_OPTIONAL)

def _check_button(check: _Checker, path: str, message: dict[str, Any]) -> None:
    if "button" not in message:
        return
    button = check.obj(f"{path}.button", message["button"], BUTTON)
    if button is not None:
        if "payload" in button:
            check.string(f"{path}.button.payload", button["payload"])
        if "text" in button:
            check.string(f"{path}.button.text", button["text"], non_empty=True)


TAP = Kind("button", "a quick-reply tap (button)", TAP_MESSAGE, _check_button)
KINDS: dict[str, Kind] = {kind.name: kind for kind in (TAP,)}
_loaded: list[bool] = []


def _kinds() -> dict[str, Kind]:
    """KINDS with every kind's rules: the built-in kinds' (`simulator.kinds.rules`, loaded on
    first use) and those a registered kind declares itself (its spec's `rules`)."""
    if not _loaded:
        from simulator.kinds.rules import MESSAGE_KINDS

        KINDS.update({kind.name: kind for kind in MESSAGE_KINDS})
        _loaded.append(True)
    from simulator.kinds import KIND_SPECS

    declared = {spec.rules.name: spec.rules for spec in KIND_SPECS.values()
                if spec.rules is not None and spec.rules.name not in KINDS}
    return {**KINDS, **declared} if declared else KINDS


def kind_of(document: Any) -> Kind | None:
    """The kind of callback `document` is, by its first message's `type`; None if unknown."""
    document = _as_kaleyra(document)
    try:
        name = document["meta_object"]["value"]["messages"][0]["type"]
    except (KeyError, IndexError, TypeError):
        return None
    return _kinds().get(name) if isinstance(name, str) else None


def _as_kaleyra(document: Any) -> Any:
    """A Meta-envelope document seen through its first change, as Kaleyra forwards it."""
    if is_meta_document(document):
        try:
            return {"meta_object": document["entry"][0]["changes"][0]}
        except (KeyError, IndexError, TypeError):
            return {}
    return document


def describe_kind(document: Any) -> str:
    """What `validate` saw, in words: "a quick-reply tap (button)", "a status callback
    (read)", or why it is no known kind."""
    from simulator.kinds.rules import describe_status, is_status

    seen = _as_kaleyra(document)  # Meta's envelope: its first change, as Kaleyra forwards it
    if is_status(seen):
        return describe_status(seen)
    kind = kind_of(document)
    if kind is not None:
        if kind.name == "interactive":
            return kind.label.format(_interactive_type(document))
        return kind.label
    document = _as_kaleyra(document)
    try:
        name = document["meta_object"]["value"]["messages"][0]["type"]
    except (KeyError, IndexError, TypeError):
        return "no known kind (no messages[0].type and no statuses)"
    return f"no known kind (type {_show(name)})"


def _interactive_type(document: Any) -> str:
    try:
        return str(document["meta_object"]["value"]["messages"][0]["interactive"]["type"])
    except (KeyError, IndexError, TypeError):
        return "?"


def validate_callback(document: Any, *, now: int | None = None) -> list[Problem]:
    """Every problem of a callback document (structure, key order, invariants); an empty list
    means it is valid. `now` (unix seconds, default the clock) bounds plausible timestamps.

    The bytes are not seen here: `validate_body` also checks the serialization."""
    if is_meta_document(document):
        return _validate_meta(document, now)
    check = _Checker(int(time.time()) if now is None else now)
    from simulator.kinds.rules import check_status_callback, is_status

    if is_status(document):
        check_status_callback(check, document)
        return check.problems
    root = check.obj("$", document, ROOT)
    if root is None:
        return check.problems
    phone_number_id = waba_id = None
    meta = check.obj("$.meta_object", root["meta_object"], META_OBJECT) \
        if "meta_object" in root else None
    if meta is not None:
        if "field" in meta:
            check.equals("$.meta_object.field", meta["field"], "messages")
        value = check.obj("$.meta_object.value", meta["value"], VALUE) \
            if "value" in meta else None
        if value is not None:
            phone_number_id = _check_value(check, value)
    if "extra_info" in root:
        kind = kind_of(document)
        waba_id = _check_extra_info(check, root["extra_info"], media=kind is not None
                                    and kind.media)
    if phone_number_id is not None and phone_number_id == waba_id:
        check.fail("$.extra_info.waba_id", f"the WABA id equals metadata.phone_number_id "
                                           f"({phone_number_id}); Meta gives them different ids")
    return check.problems


# Meta's own envelope (wire-format section 7): each change is a Kaleyra meta_object.
META_ROOT = _shape("object", "entry")
META_ENTRY = _shape("id", "changes")


def _validate_meta(document: dict[str, Any], now: int | None) -> list[Problem]:
    """Problems of a body in Meta's envelope: the envelope, then every change's value object
    by the same rules as Kaleyra's meta_object, reported at its place in `entry[].changes[]`."""
    check = _Checker(int(time.time()) if now is None else now)
    check.obj("$", document, META_ROOT)
    for i, entry in enumerate(check.items("$.entry", document["entry"])):
        path = f"$.entry[{i}]"
        if check.obj(path, entry, META_ENTRY) is None:
            continue
        for j, change in enumerate(check.items(f"{path}.changes", entry.get("changes"))):
            # The entry id is the WABA id Kaleyra moves into extra_info: checked there, the
            # rest of the stand-in extra_info (Kaleyra's own keys) is not Meta's and ignored.
            stand_in = {"meta_object": change, "extra_info": {"waba_id": entry.get("id")}}
            for problem in validate_callback(stand_in, now=now):
                if problem.path.startswith("$.meta_object"):
                    where = f"{path}.changes[{j}]" + problem.path[len("$.meta_object"):]
                elif problem.path.startswith("$.extra_info.waba_id") \
                        or "WABA id" in problem.message:
                    where = f"{path}.id"
                else:
                    continue
                check.fail(where, problem.message)
    # One id per place: a stand-in problem repeats for every change of the same entry.
    return list(dict.fromkeys(check.problems))


@dataclass
class _User:
    """Who a contact says the user is, to pair with the message's `from*` fields."""

    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    present: frozenset[str] = frozenset()


def _check_value(check: _Checker, value: dict[str, Any]) -> str | None:
    base = "$.meta_object.value"
    if "messaging_product" in value:
        check.equals(f"{base}.messaging_product", value["messaging_product"], "whatsapp")
    business_number = phone_number_id = None
    if "metadata" in value:
        metadata = check.obj(f"{base}.metadata", value["metadata"], METADATA)
        if metadata is not None:
            number = metadata.get("display_phone_number")
            if "display_phone_number" in metadata and \
                    check.phone(f"{base}.metadata.display_phone_number", number):
                business_number = number
            if "phone_number_id" in metadata and \
                    check.meta_id(f"{base}.metadata.phone_number_id", metadata["phone_number_id"]):
                phone_number_id = metadata["phone_number_id"]
    users: list[_User | None] = []
    for i, contact in enumerate(check.items(f"{base}.contacts", value.get("contacts"))
                                if "contacts" in value else []):
        users.append(_check_contact(check, f"{base}.contacts[{i}]", contact))
    for i, message in enumerate(check.items(f"{base}.messages", value.get("messages"))
                                if "messages" in value else []):
        path = f"{base}.messages[{i}]"
        # One contact per message, in the same order (a batch pairs them up by position).
        if i >= len(users):
            check.fail(path, f"no contacts[{i}] entry for this message's user")
        _check_message(check, path, message, business_number,
                       users[i] if i < len(users) else None, i)
    return phone_number_id


def _check_contact(check: _Checker, path: str, contact: Any) -> _User | None:
    if check.obj(path, contact, CONTACT) is None:
        return None
    user = _User(present=frozenset(contact))
    if "profile" in contact:
        profile = check.obj(f"{path}.profile", contact["profile"], PROFILE)
        if profile is not None:
            if "name" in profile:
                check.string(f"{path}.profile.name", profile["name"], non_empty=True)
            if "username" in profile and \
                    check.string(f"{path}.profile.username", profile["username"], non_empty=True) \
                    and any(c.isspace() for c in profile["username"]):
                check.fail(f"{path}.profile.username",
                           f"expected a username without spaces, got {_show(profile['username'])}")
    if "wa_id" in contact and check.phone(f"{path}.wa_id", contact["wa_id"]):
        user.wa_id = contact["wa_id"]
    if "identity_key_hash" in contact:
        key_hash = contact["identity_key_hash"]
        if check.string(f"{path}.identity_key_hash", key_hash, non_empty=True) and \
                any(c.isspace() for c in key_hash):
            check.fail(f"{path}.identity_key_hash", f"expected a hash without spaces, got "
                                                    f"{_show(key_hash)}")
    bsuid_country = None
    if "user_id" in contact:
        bsuid_country = check.bsuid(f"{path}.user_id", contact["user_id"])
        if bsuid_country is not None:
            user.user_id = contact["user_id"]
    if "parent_user_id" in contact and \
            check.bsuid(f"{path}.parent_user_id", contact["parent_user_id"], parent=True):
        user.parent_user_id = contact["parent_user_id"]
    if "wa_id" not in contact and "user_id" not in contact:
        check.fail(f"{path}.wa_id", "missing: a contact has the user's number (wa_id) or, for a "
                                    "user with only a username, their user_id")
    if "country_code" in contact:
        _check_country(check, path, contact["country_code"], bsuid_country, user.wa_id)
    return user


def _same_number(wa_id: str, sender: str) -> bool:
    """`wa_id` is the sender's number, or its legacy Brazilian form without the ninth digit
    (Meta: `wa_id` and `from` "may not always match"; wire-format section 10)."""
    if wa_id == sender:
        return True
    return len(sender) == 13 and sender.startswith("55") and sender[4] == "9" \
        and wa_id == sender[:4] + sender[5:]


def _check_message(check: _Checker, path: str, message: Any, business_number: str | None,
                   user: _User | None, index: int) -> None:
    kind = kind_of_message(message)
    if check.obj(path, message, (kind or TAP).message) is None:
        return
    sender: str | None = None
    if "from" in message and check.phone(f"{path}.from", message["from"]):
        sender = message["from"]
    if user is not None:
        _check_identity(check, path, message, user, sender, index)
    customers = tuple(n for n in (sender, user.wa_id if user else None) if n is not None)
    if "context" in message:
        context = check.obj(f"{path}.context", message["context"], (kind or TAP).context)
        if context is not None:
            if "from" in context and check.phone(f"{path}.context.from", context["from"]) \
                    and business_number is not None and context["from"] != business_number:
                check.fail(f"{path}.context.from", f"expected the business number "
                           f"{business_number} (metadata.display_phone_number), got "
                           f"{_show(context['from'])}")
            if "id" in context:
                replied = check.wamid(f"{path}.context.id", context["id"], from_business=True,
                                      customers=customers)
                # Without a phone number (a username-only user) the two ids must still name
                # the same customer.
                customers = customers or ((replied,) if replied else ())
    if "id" in message:
        check.wamid(f"{path}.id", message["id"], from_business=False, customers=customers)
    if "timestamp" in message:
        check.timestamp(f"{path}.timestamp", message["timestamp"])
    if "type" in message and kind is None:
        check.fail(f"{path}.type", f"expected a known kind ({', '.join(_kinds())}), "
                                   f"got {_show(message['type'])}")
    (kind or TAP).check_body(check, path, message)


def kind_of_message(message: Any) -> Kind | None:
    """The kind a single message is, by its `type`; None if unknown."""
    name = message.get("type") if isinstance(message, dict) else None
    return _kinds().get(name) if isinstance(name, str) else None


def _check_identity(check: _Checker, path: str, message: dict[str, Any], user: _User,
                    sender: str | None, index: int) -> None:
    """The message's `from*` fields name the same user as its contact, field by field."""
    contact = f"contacts[{index}]"
    pairs = (("from", "wa_id"), ("from_user_id", "user_id"),
             ("from_parent_user_id", "parent_user_id"))
    for mine, theirs in pairs:
        if mine in message and theirs not in user.present:
            check.fail(f"{path}.{mine}", f"present, but {contact} has no {theirs}")
        # A contact may carry ids its message does not repeat (`--add contacts[0].user_id`),
        # but a phone number is in both or in neither.
        elif mine == "from" and theirs in user.present and mine not in message:
            check.fail(f"{path}.{mine}", f"missing, but {contact} has {theirs}")
    if "from" not in message and "from_user_id" not in message:
        check.fail(f"{path}.from_user_id", "missing: a message without `from` (a username-only "
                                           "user) names its sender by from_user_id")
    if sender is not None and user.wa_id is not None and not _same_number(user.wa_id, sender):
        check.fail(f"{path}.from", f"expected the user's number {user.wa_id} "
                                   f"({contact}.wa_id), got {_show(sender)}")
    if "from_user_id" in message:
        value = message["from_user_id"]
        if check.bsuid(f"{path}.from_user_id", value) and user.user_id is not None \
                and value != user.user_id:
            check.fail(f"{path}.from_user_id", f"expected the user's id {user.user_id} "
                                               f"({contact}.user_id), got {_show(value)}")
    if "from_parent_user_id" in message:
        value = message["from_parent_user_id"]
        if check.bsuid(f"{path}.from_parent_user_id", value, parent=True) \
                and user.parent_user_id is not None and value != user.parent_user_id:
            check.fail(f"{path}.from_parent_user_id", f"expected {user.parent_user_id} "
                       f"({contact}.parent_user_id), got {_show(value)}")


def _check_extra_info(check: _Checker, extra: Any, *, media: bool = False) -> str | None:
    base = "$.extra_info"
    if check.obj(base, extra, EXTRA_INFO) is None:
        return None
    if "media_url" in extra and not media:
        check.equals(f"{base}.media_url", extra["media_url"], "")
    elif "media_url" in extra and check.string(f"{base}.media_url", extra["media_url"]) \
            and not extra["media_url"].startswith("https://"):
        check.fail(f"{base}.media_url", f"expected the stored file's https URL (a media "
                                        f"message), got {_show(extra['media_url'])}")
    for key in ("ref", "ref1", "ref2"):
        if key in extra:
            check.string(f"{base}.{key}", extra[key])
    for key in ("reply_to", "trace_id"):
        if key in extra:
            check.uuid4(f"{base}.{key}", extra[key], recipient_index=key == "reply_to")
    if "waba_id" in extra and check.meta_id(f"{base}.waba_id", extra["waba_id"]):
        return str(extra["waba_id"])
    return None


# PHP writes U+007F (DEL) as the raw byte, where Python's ASCII encoder escapes it; an odd
# run of backslashes before `u007f` is the escape, an even one is an escaped backslash.
_DEL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u007f")


def php_json(document: Any) -> str:
    """`document` as PHP `json_encode` writes it (the wire form, `simulator.wire.to_wire`)."""
    return _DEL_ESCAPE.sub(lambda m: m.group(1) + "\x7f", to_wire(document).decode("ascii"))


def serialization_problems(raw: str, document: Any) -> list[Problem]:
    """How `raw` (the text `document` was parsed from) differs from PHP `json_encode`'s bytes.

    Meta's and Kaleyra's bodies are compact, escape `/` and write non-ASCII as lowercase
    `\\uXXXX` (wire-format section 2); handlers that check signatures depend on exactly that.
    The first difference is reported, at its offset and the JSON path around it."""
    try:
        expected = php_json(document)
    except ValueError:
        return [Problem("$", "holds NaN or Infinity, which is not JSON and which PHP cannot "
                             "write")]
    except RecursionError:
        return [Problem("$", "nested too deeply to serialize")]
    if raw == expected:
        return []
    duplicates = _duplicate_keys(raw)
    if duplicates:
        return [Problem(path, f"duplicate key {key!r}; a JSON encoder writes each key once")
                for path, key in duplicates]
    at = _first_difference(raw, expected)
    at = _escape_start(raw, at)
    return [Problem(_path_at(raw, at), _difference(raw, expected, at))]


def _first_difference(a: str, b: str) -> int:
    """The first offset where `a` and `b` differ (a body may be megabytes: compare in blocks)."""
    start, block = 0, 4096
    while a[start : start + block] == b[start : start + block]:
        if start + block >= max(len(a), len(b)):
            return min(len(a), len(b))
        start += block
    return next((i for i in range(start, min(len(a), len(b), start + block)) if a[i] != b[i]),
                min(len(a), len(b), start + block))


def _escape_start(raw: str, at: int) -> int:
    """Move `at` back to the backslash of a `\\uXXXX` escape it falls inside, if any."""
    for start in range(at - 1, max(at - 6, -1), -1):
        if raw.startswith("\\u", start):
            backslashes = len(raw[:start]) - len(raw[:start].rstrip("\\"))
            if backslashes % 2 == 0:  # the backslash starts an escape, it is not escaped
                return start
    return at


def _difference(raw: str, expected: str, at: int) -> str:
    got, want = raw[at : at + 6], expected[at : at + 6]
    where = f"at offset {at}"
    if at >= len(raw):
        return f"the body ends {where}, PHP json_encode writes {_show(expected[at:at + 20])} more"
    if at >= len(expected):
        return f"unexpected text after the document {where}: {_show(raw[at:at + 20])}"
    char = raw[at]
    if char in " \t\r\n":
        what = "pretty-printed" if "\n" in raw else "spaces between tokens"
        return f"{what}: whitespace {where}; PHP json_encode writes compact JSON"
    if char == "/" and want.startswith("\\/"):
        return f"unescaped '/' {where}; PHP json_encode writes '\\/'"
    if ord(char) > 0x7F:
        escape = want if want.startswith("\\u") else f"\\u{ord(char):04x}"
        return f"raw non-ASCII character {char!r} (U+{ord(char):04X}) {where}; PHP " \
               f"json_encode writes {escape}"
    if got.startswith("\\u") and want.startswith("\\u") and got.lower() == want:
        return f"uppercase hex in the escape {got} {where}; PHP json_encode writes {want}"
    if char == "\\" and not want.startswith("\\"):
        return f"needless escape {got if got.startswith(chr(92) + 'u') else got[:2]} {where}; " \
               f"PHP json_encode writes {_show(want[:1])} as is"
    if want.startswith("\\"):
        return f"unescaped {_show(char)} {where}; PHP json_encode writes {want}"
    return f"differs from PHP json_encode's bytes {where}: got {_show(raw[at:at + 20])}, " \
           f"expected {_show(expected[at:at + 20])}"


def _duplicate_keys(raw: str) -> list[tuple[str, str]]:
    """(path of the object, key) for the first few keys written twice in one object of `raw`."""
    return _scan(raw, len(raw)).duplicates


def _path_at(raw: str, offset: int) -> str:
    """The JSON path of the innermost member or element of valid JSON `raw` at `offset`."""
    return _scan(raw, offset).path


@dataclass
class _Frame:
    """One open object or array while scanning: where the scan is inside it."""

    is_object: bool
    key: str | int | None  # the current member's key, or the element's index
    waiting_for_key: bool
    seen: set[str]


@dataclass
class _Scan:
    """Where a scan of JSON text stopped, and the duplicate keys it met on the way."""

    path: str
    duplicates: list[tuple[str, str]]


_MAX_DUPLICATES = 5  # a hostile body may repeat a key a million times; a few lines say it


def _scan(raw: str, offset: int) -> _Scan:
    """Walk valid JSON `raw` up to `offset` in one pass, tracking the path and repeated keys."""
    stack: list[_Frame] = []
    duplicates: list[tuple[str, str]] = []
    i = 0
    while i < offset:
        char = raw[i]
        if char == '"':
            end = i + 1
            while end < len(raw) and raw[end] != '"':
                end += 2 if raw[end] == "\\" else 1
            if end >= offset:
                break
            top = stack[-1] if stack else None
            if top is not None and top.is_object and top.waiting_for_key:
                try:
                    key = json.loads(raw[i : end + 1])
                except ValueError:
                    key = raw[i + 1 : end]
                if key in top.seen and len(duplicates) < _MAX_DUPLICATES:
                    found = (_path_of(stack, inside=True), key)
                    if found not in duplicates:
                        duplicates.append(found)
                top.seen.add(key)
                top.key = key
            i = end + 1
            continue
        if char == "{":
            stack.append(_Frame(True, None, True, set()))
        elif char == "[":
            stack.append(_Frame(False, 0, False, set()))
        elif char in "}]" and stack:
            stack.pop()
        elif char == "," and stack:
            top = stack[-1]
            if top.is_object:
                top.waiting_for_key = True
            elif isinstance(top.key, int):
                top.key += 1
        elif char == ":" and stack:
            stack[-1].waiting_for_key = False
        i += 1
    return _Scan(_path_of(stack), duplicates)


def _path_of(stack: list[_Frame], *, inside: bool = False) -> str:
    """The path of the scan's position (with `inside`, of the innermost object itself)."""
    path = "$"
    for frame in stack[:-1] if inside else stack:
        if not frame.is_object:
            path += f"[{frame.key}]"
        elif not frame.waiting_for_key and frame.key is not None:
            path += f".{frame.key}"
    return path


def validate_body(raw: str | bytes, *, now: int | None = None) -> list[Problem]:
    """Every problem of one callback body: its bytes as PHP writes them, then its document."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return [Problem("$", f"not UTF-8 text (byte {exc.start})")]
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        return [Problem("$", f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})")]
    except (ValueError, RecursionError):
        return [Problem("$", "not JSON this validator can read (too deep or too large)")]
    return serialization_problems(raw, document) + validate_callback(document, now=now)


@dataclass(frozen=True)
class Checked:
    """The outcome for one document of an input: its line (for JSON Lines), problems and kind."""

    line: int | None
    problems: list[Problem]
    kind: str = ""


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


def validate_text(text: str, source: str, *, now: int | None = None) -> Iterator[Checked]:
    """Validate every document in `text` (one JSON document or JSON Lines): its bytes as PHP
    writes them, its structure and invariants, and which kind of callback it is."""
    lines: list[str] | None = None
    for line, document in parse_documents(text, source):
        if line is None:
            raw = text.strip(_JSON_WHITESPACE)
        else:
            lines = text.splitlines() if lines is None else lines
            raw = lines[line - 1].strip(_JSON_WHITESPACE)
        problems = serialization_problems(raw, document) + validate_callback(document, now=now)
        yield Checked(line, problems, describe_kind(document))


# Around a document, only JSON's own whitespace is a separator (a file's final newline).
_JSON_WHITESPACE = " \t\r\n"
