"""`validate`: one table-driven test per rule, the public samples, and input parsing."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from simulator.errors import WasimError
from simulator.validate import parse_documents, validate_callback, validate_text
from simulator.wamid import encode_wamid
from simulator.wire import to_wire

FIXTURES = Path(__file__).parent / "fixtures"
V = "$.meta_object.value"
M = f"{V}.messages[0]"


def value(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["meta_object"]["value"]


def message(doc: dict[str, Any]) -> dict[str, Any]:
    return value(doc)["messages"][0]


def setter(get: Callable[[dict[str, Any]], dict[str, Any]], key: str,
           new: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        get(doc)[key] = new
    return mutate


def deleter(get: Callable[[dict[str, Any]], dict[str, Any]],
            key: str) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        del get(doc)[key]
    return mutate


def other_user_wamid(from_business: bool, length: int) -> Callable[[dict[str, Any]], str]:
    return lambda doc: encode_wamid("919000000001", from_business, "A" * length)


def user_wamid(from_business: bool, length: int) -> Callable[[dict[str, Any]], str]:
    return lambda doc: encode_wamid(message(doc)["from"], from_business, "B" * length)


def dynamic(get: Callable[[dict[str, Any]], dict[str, Any]], key: str,
            make: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        get(doc)[key] = make(doc)
    return mutate


RULES: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("root is an object", lambda d: d.clear(), "$.meta_object", "missing"),
    ("no unexpected top-level keys", setter(lambda d: d, "object", "x"), "$.object",
     "unexpected key"),
    ("field is messages", setter(lambda d: d["meta_object"], "field", "statuses"),
     "$.meta_object.field", 'expected "messages"'),
    ("messaging_product is whatsapp", setter(value, "messaging_product", "sms"),
     f"{V}.messaging_product", 'expected "whatsapp"'),
    ("metadata is present", deleter(value, "metadata"), f"{V}.metadata", "missing"),
    ("display number has no +", setter(lambda d: value(d)["metadata"], "display_phone_number",
                                        "+918068177179"),
     f"{V}.metadata.display_phone_number", "no '+'"),
    ("phone_number_id has 15-16 digits", setter(lambda d: value(d)["metadata"],
                                                "phone_number_id", "12345"),
     f"{V}.metadata.phone_number_id", "15-16 digit"),
    ("contacts is a non-empty list", setter(value, "contacts", []), f"{V}.contacts",
     "non-empty list"),
    ("profile name is non-empty", setter(lambda d: value(d)["contacts"][0]["profile"], "name", ""),
     f"{V}.contacts[0].profile.name", "non-empty"),
    ("wa_id is digits", setter(lambda d: value(d)["contacts"][0], "wa_id", "91-98450"),
     f"{V}.contacts[0].wa_id", "phone number"),
    ("wa_id equals from", setter(lambda d: value(d)["contacts"][0], "wa_id", "919000000001"),
     f"{M}.from", "contacts[0].wa_id"),
    ("messages is a non-empty list", setter(value, "messages", []), f"{V}.messages",
     "non-empty list"),
    ("context.from is the business", setter(lambda d: message(d)["context"], "from",
                                             "919000000009"),
     f"{M}.context.from", "metadata.display_phone_number"),
    ("context.id is a wamid", setter(lambda d: message(d)["context"], "id", "wamid.xyz"),
     f"{M}.context.id", "not a structurally valid wamid"),
    ("context.id was sent by the business", dynamic(lambda d: message(d)["context"], "id",
                                                    user_wamid(False, 18)),
     f"{M}.context.id", "sent by the business"),
    ("context.id has an 18-char id", dynamic(lambda d: message(d)["context"], "id",
                                             user_wamid(True, 32)),
     f"{M}.context.id", "18 hex character"),
    ("context.id embeds the user", dynamic(lambda d: message(d)["context"], "id",
                                           other_user_wamid(True, 18)),
     f"{M}.context.id", "expected the user's number"),
    ("id was sent by the user", dynamic(message, "id", user_wamid(True, 18)), f"{M}.id",
     "sent by the user"),
    ("id has a 20/22/32-char id", dynamic(message, "id", user_wamid(False, 18)), f"{M}.id",
     "20 or 22 or 32 hex"),
    ("id embeds the user", dynamic(message, "id", other_user_wamid(False, 32)), f"{M}.id",
     "expected the user's number"),
    ("timestamp is a string", setter(message, "timestamp", 1722863329), f"{M}.timestamp",
     "got the number"),
    ("timestamp is 10 digits", setter(message, "timestamp", "17228633290"), f"{M}.timestamp",
     "10-digit"),
    ("type is button", setter(message, "type", "text"), f"{M}.type", 'expected "button"'),
    ("button has a payload", deleter(lambda d: message(d)["button"], "payload"),
     f"{M}.button.payload", "missing"),
    ("button text is non-empty", setter(lambda d: message(d)["button"], "text", ""),
     f"{M}.button.text", "non-empty"),
    ("media_url is empty for a tap", setter(lambda d: d["extra_info"], "media_url", "https://x"),
     "$.extra_info.media_url", 'expected ""'),
    ("refs are strings", setter(lambda d: d["extra_info"], "ref1", 7), "$.extra_info.ref1",
     "expected a string"),
    ("reply_to is a UUID", setter(lambda d: d["extra_info"], "reply_to",
                                  "48C38D78-4EC5-4B1E-ABEE-03AA11BB6C85"),
     "$.extra_info.reply_to", "lowercase version 4 UUID"),
    ("reply_to is not a wamid", setter(lambda d: d["extra_info"], "reply_to", "wamid.HBgM"),
     "$.extra_info.reply_to", "not a wamid".replace("not a", "got a")),
    ("trace_id is a v4 UUID", setter(lambda d: d["extra_info"], "trace_id",
                                     "cb94fee2-3e70-1aaa-944a-2a4aaaadb90a"),
     "$.extra_info.trace_id", "version 4 UUID"),
    ("waba_id has 15-16 digits", setter(lambda d: d["extra_info"], "waba_id", "347"),
     "$.extra_info.waba_id", "15-16 digit"),
    ("extra_info has every documented key", deleter(lambda d: d["extra_info"], "trace_id"),
     "$.extra_info.trace_id", "missing"),
]


def test_a_rendered_callback_has_no_problems(callback: dict[str, Any]) -> None:
    assert validate_callback(callback) == []


@pytest.mark.parametrize(("rule", "mutate", "path", "fragment"), RULES,
                         ids=[rule for rule, *_ in RULES])
def test_each_broken_invariant_is_reported_at_its_path(
    callback: dict[str, Any], rule: str, mutate: Callable[[dict[str, Any]], None], path: str,
    fragment: str,
) -> None:
    broken = copy.deepcopy(callback)
    mutate(broken)
    problems = validate_callback(broken)
    assert [p for p in problems if p.path == path and fragment in p.message], problems


def test_the_unmasked_public_sample_passes() -> None:
    sample = json.loads((FIXTURES / "public_button_tap.json").read_text())
    assert validate_callback(sample) == []


def test_the_masked_sample_on_the_vendor_page_is_flagged_field_by_field() -> None:
    document = json.loads((FIXTURES / "kaleyra_doc_sample.json").read_text())
    paths = {p.path for p in validate_callback(document)}
    assert {f"{M}.id", f"{M}.context.id", "$.extra_info.trace_id", "$.extra_info.waba_id",
            f"{V}.metadata.phone_number_id"} <= paths


def test_json_lines_are_checked_line_by_line(callback: dict[str, Any]) -> None:
    broken = copy.deepcopy(callback)
    message(broken)["type"] = "text"
    text = "\n".join(to_wire(d).decode() for d in (callback, broken, callback)) + "\n"
    results = list(validate_text(text, "in.jsonl"))
    assert [(r.line, bool(r.problems)) for r in results] == [(1, False), (2, True), (3, False)]
    assert [r.kind for r in results] == ["a quick-reply tap (button)",
                                         'not a button tap (type "text")',
                                         "a quick-reply tap (button)"]


def test_a_pretty_printed_document_is_one_document_flagged_once(
        callback: dict[str, Any]) -> None:
    results = list(validate_text(json.dumps(callback, indent=2), "x.json"))
    assert [(r.line, [str(p) for p in r.problems]) for r in results] == [
        (None, ["$: pretty-printed: whitespace at offset 1; PHP json_encode writes compact JSON"])]


def test_a_file_with_a_final_newline_is_still_the_exact_body(callback: dict[str, Any]) -> None:
    results = list(validate_text(to_wire(callback).decode() + "\n", "x.json"))
    assert [r.problems for r in results] == [[]]


@pytest.mark.parametrize(("text", "where", "fragment"), [
    ('{"a": 1,\n "b": }', "x.json:2", "line 2, column 7"),
    ('{"a": 1}\n{"a": \n', "x.json:2", "column 7"),
    ("   \n", "x.json", "no JSON"),
])
def test_input_that_is_not_json_says_where(text: str, where: str, fragment: str) -> None:
    with pytest.raises(WasimError) as info:
        list(parse_documents(text, "x.json"))
    assert info.value.where == where
    assert fragment in info.value.one_line()
