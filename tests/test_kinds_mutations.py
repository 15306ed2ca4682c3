"""Single-point breaks of every kind's golden callback are caught: each object's key order,
each value's type, each dropped documented field, and the kinds' own invariants."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from simulator.validate import validate_body, validate_callback
from simulator.wamid import decode_wamid, encode_wamid
from simulator.wire import to_wire

GOLDEN = Path(__file__).parent / "golden" / "kinds"
NOW = 1_800_000_000
Doc = dict[str, Any]
PathT = tuple[str | int, ...]
# Keys a kind documents as optional: dropping one leaves a valid callback.
OPTIONAL = {"context", "caption", "filename", "address", "name", "url", "description",
            "contacts", "recipient_user_id", "user_id", "country_code", "from_user_id",
            "conversation", "pricing", "expiration_timestamp", "frequently_forwarded",
            "parent_user_id", "animated", "voice", "first_name", "last_name", "type",
            "wa_id", "phones"}
# Keys whose order among themselves no source fixes (one slot of a shape).
SAME_SLOT = ({"parent_user_id", "country_code"},)
# Undetectable by design: a status without contacts names its recipient by BSUID alone, as a
# username-only user's does.
UNDETECTABLE = {"status_sent_no_contacts dropped key ('meta_object', 'value', 'statuses', "
                "0).recipient_id"}


def goldens() -> list[tuple[str, Doc]]:
    return [(p.stem, json.loads(p.read_bytes())) for p in sorted(GOLDEN.glob("*.json"))]


def walk(value: Any, path: PathT = ()) -> Iterator[tuple[PathT, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk(item, (*path, i))


def at(doc: Any, path: PathT) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def mutants(doc: Doc) -> Iterator[tuple[str, str, Doc]]:
    """(family, description, broken copy) for every single-point break of `doc`."""
    for path, value in walk(doc):
        if isinstance(value, dict):
            keys = list(value)
            for a, b in pairwise(keys):
                if any({a, b} <= slot for slot in SAME_SLOT):
                    continue
                broken = copy.deepcopy(doc)
                target = at(broken, path)
                order = keys.copy()
                i = order.index(a)
                order[i], order[i + 1] = b, a
                target_items = {k: target[k] for k in order}
                target.clear()
                target.update(target_items)
                yield "key order", f"{path}: {a} <-> {b}", broken
            for key in keys:
                if key in OPTIONAL:
                    continue
                broken = copy.deepcopy(doc)
                del at(broken, path)[key]
                yield "dropped key", f"{path}.{key}", broken
        elif path and not isinstance(value, list):
            new: Any = 7 if isinstance(value, str) else str(value).lower()
            broken = copy.deepcopy(doc)
            at(broken, path[:-1])[path[-1]] = new
            yield "type", f"{path} -> {new!r}", broken


def test_every_golden_callback_is_valid() -> None:
    for name, doc in goldens():
        assert validate_callback(doc, now=NOW) == [], name


def test_every_single_point_break_of_every_kind_is_caught() -> None:
    missed: list[str] = []
    total = 0
    for name, doc in goldens():
        for family, what, broken in mutants(doc):
            total += 1
            if not validate_callback(broken, now=NOW):
                missed.append(f"{name} {family} {what}")
    assert total > 1500
    assert set(missed) == UNDETECTABLE


def _user_wamid(doc: Doc) -> str:
    message = doc["meta_object"]["value"]["messages"][0]
    return str(message["id"])


def _other_side(wamid: str) -> str:
    decoded = decode_wamid(wamid)
    return encode_wamid(decoded.customer, not decoded.from_business, "AB" * 9)


def _another_users(wamid: str) -> str:
    decoded = decode_wamid(wamid)
    return encode_wamid("447700900123", decoded.from_business, decoded.message_id)


Edit = Callable[[Doc], None]
V = ("meta_object", "value")


def setter(path: PathT, value: Any) -> Edit:
    def edit(doc: Doc) -> None:
        at(doc, path[:-1])[path[-1]] = value(at(doc, path)) if callable(value) else value
    return edit


S0 = (*V, "statuses", 0)
M0 = (*V, "messages", 0)
# (golden, what breaks, the edit, the path of the problem it must cause)
INVARIANTS: list[tuple[str, str, Edit, str]] = [
    ("status_read", "status id sent by the user", setter((*S0, "id"), _other_side),
     "$.meta_object.value.statuses[0].id"),
    ("status_read", "status id of another user", setter((*S0, "id"), _another_users),
     "$.meta_object.value.statuses[0].id"),
    ("status_read", "top-level status disagrees", setter(("status",), "delivered"), "$.status"),
    ("status_read", "top-level message_id disagrees",
     setter(("message_id",), lambda w: _other_side(w)), "$.message_id"),
    ("status_read", "extra_info.message_id disagrees",
     setter(("extra_info", "message_id"), lambda w: _another_users(w)),
     "$.extra_info.message_id"),
    ("status_read", "unknown status", setter((*S0, "status"), "seen"),
     "$.meta_object.value.statuses[0].status"),
    ("status_read", "recipient differs from the contact", setter((*S0, "recipient_id"),
     "447700900123"), "$.meta_object.value.statuses[0].recipient_id"),
    ("status_read", "url tracking as a string",
     setter(("extra_info", "enable_url_tracking_body"), "false"),
     "$.extra_info.enable_url_tracking_body"),
    ("status_delivered", "errors on a delivered status",
     setter((*S0, "errors"), [{"code": 1, "title": "x"}]),
     "$.meta_object.value.statuses[0].errors"),
    ("status_sent", "conversation id not 32 hex", setter((*S0, "conversation", "id"), "abc"),
     "$.meta_object.value.statuses[0].conversation.id"),
    ("status_sent", "billable as a string", setter((*S0, "pricing", "billable"), "true"),
     "$.meta_object.value.statuses[0].pricing.billable"),
    ("status_failed_131026", "error code as a string",
     setter((*S0, "errors", 0, "code"), "131026"),
     "$.meta_object.value.statuses[0].errors[0].code"),
    ("status_failed_131047", "billing on a failure",
     setter((*S0, "pricing"), {"billable": True, "pricing_model": "PMP",
                                "category": "marketing"}),
     "$.meta_object.value.statuses[0].pricing"),
    ("reaction", "reaction on another user's message",
     setter((*M0, "reaction", "message_id"), _another_users),
     "$.meta_object.value.messages[0].reaction.message_id"),
    ("reaction", "reaction with a context",
     setter((*M0, "context"), {"from": "918000000000", "id": "x"}),
     "$.meta_object.value.messages[0].context"),
    ("reaction", "reaction id not a wamid", setter((*M0, "reaction", "message_id"), "abc"),
     "$.meta_object.value.messages[0].reaction.message_id"),
    ("image", "media id not numeric", setter((*M0, "image", "id"), "abc123"),
     "$.meta_object.value.messages[0].image.id"),
    ("image", "sha256 not base64", setter((*M0, "image", "sha256"), "deadbeef"),
     "$.meta_object.value.messages[0].image.sha256"),
    ("image", "a video mime type on an image", setter((*M0, "image", "mime_type"),
     "video/mp4"), "$.meta_object.value.messages[0].image.mime_type"),
    ("image", "empty media_url on media", setter(("extra_info", "media_url"), ""),
     "$.extra_info.media_url"),
    ("text", "a media_url on a text", setter(("extra_info", "media_url"),
     "https://x.example/1.jpg"), "$.extra_info.media_url"),
    ("audio", "a caption on audio", setter((*M0, "audio", "caption"), "hi"),
     "$.meta_object.value.messages[0].audio.caption"),
    ("sticker", "animated as a string", setter((*M0, "sticker", "animated"), "false"),
     "$.meta_object.value.messages[0].sticker.animated"),
    ("location", "latitude out of range", setter((*M0, "location", "latitude"), 123.0),
     "$.meta_object.value.messages[0].location.latitude"),
    ("location", "latitude as a string", setter((*M0, "location", "latitude"), "12.9"),
     "$.meta_object.value.messages[0].location.latitude"),
    ("list_reply", "list reply under button_reply", setter((*M0, "interactive", "type"),
     "button_reply"), "$.meta_object.value.messages[0].interactive.list_reply"),
    ("list_reply", "interactive without context", lambda d: at(d, M0).pop("context"),
     "$.meta_object.value.messages[0].context"),
    ("button_reply", "context from another number", setter((*M0, "context", "from"),
     "447700900123"), "$.meta_object.value.messages[0].context.from"),
    ("button_reply", "context id sent by the user", setter((*M0, "context", "id"),
     _other_side), "$.meta_object.value.messages[0].context.id"),
    ("text", "message id sent by the business", setter((*M0, "id"), _other_side),
     "$.meta_object.value.messages[0].id"),
    ("text_forwarded", "forwarded as a string", setter((*M0, "context", "forwarded"), "true"),
     "$.meta_object.value.messages[0].context.forwarded"),
    ("text_forwarded", "frequently forwarded but not forwarded",
     lambda d: at(d, (*M0, "context")).pop("forwarded"),
     "$.meta_object.value.messages[0].context.forwarded"),
    ("text_forwarded", "an empty context", setter((*M0, "context"), {}),
     "$.meta_object.value.messages[0].context"),
    ("text", "empty text", setter((*M0, "text", "body"), ""),
     "$.meta_object.value.messages[0].text.body"),
    ("contacts", "shared phone's wa_id with a +", setter(
        (*M0, "contacts", 0, "phones", 0, "wa_id"), "+919812345678"),
     "$.meta_object.value.messages[0].contacts[0].phones[0].wa_id"),
    ("unsupported", "error code as a string", setter((*M0, "errors", 0, "code"), "131051"),
     "$.meta_object.value.messages[0].errors[0].code"),
    ("reaction", "emoji padded with spaces", setter((*M0, "reaction", "emoji"), " x "),
     "$.meta_object.value.messages[0].reaction.emoji"),
]


@pytest.mark.parametrize(("name", "what", "edit", "path"), INVARIANTS,
                         ids=[f"{c[0]}: {c[1]}" for c in INVARIANTS])
def test_each_kinds_invariant_is_reported_at_its_path(name: str, what: str, edit: Edit,
                                                      path: str) -> None:
    doc = json.loads((GOLDEN / f"{name}.json").read_bytes())
    edit(doc)
    problems = validate_callback(doc, now=NOW)
    assert [p for p in problems if p.path == path], (what, problems)


def test_an_unescaped_slash_in_a_media_url_is_caught_in_the_bytes() -> None:
    raw = (GOLDEN / "image.json").read_bytes().strip()
    assert validate_body(raw, now=NOW) == []
    broken = raw.replace(b"https:\\/\\/", b"https://")
    assert "unescaped '/'" in str(validate_body(broken, now=NOW)[0])
    assert to_wire(json.loads(raw)) == raw
