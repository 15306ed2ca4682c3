"""`validate`: one table-driven test per rule, the public samples, and input parsing."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from simulator.cli import cli
from simulator.errors import WasimError
from simulator.render import RenderOptions, render_callbacks
from simulator.taps import TapOptions
from simulator.validate import (
    describe_kind,
    parse_documents,
    validate_body,
    validate_callback,
    validate_text,
)
from simulator.wamid import decode_wamid, encode_wamid
from simulator.wire import to_wire

FIXTURES = Path(__file__).parent / "fixtures"
V = "$.meta_object.value"
M = f"{V}.messages[0]"


@pytest.fixture
def callback() -> dict[str, Any]:
    """The seed page's shape (identity phone): the tests below build the 2026 shapes from it."""
    rendered = next(render_callbacks(RenderOptions(TapOptions(seed=11,
                                                              identity=(("phone", 1.0),)))))
    return json.loads(rendered.body)


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
    ("type is a known kind", setter(message, "type", "poll"), f"{M}.type",
     'expected a known kind (button, text'),
    ("a text tap is missing its text", setter(message, "type", "text"), f"{M}.text",
     "missing"),
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
    message(broken)["type"] = "poll"
    text = "\n".join(to_wire(d).decode() for d in (callback, broken, callback)) + "\n"
    results = list(validate_text(text, "in.jsonl"))
    assert [(r.line, bool(r.problems)) for r in results] == [(1, False), (2, True), (3, False)]
    assert [r.kind for r in results] == ["a quick-reply tap (button)",
                                         'no known kind (type "poll")',
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


# --- 2026 identity fields -------------------------------------------------------------------

C = f"{V}.contacts[0]"


def _insert_after(obj: dict[str, Any], after: str, key: str, new: Any) -> dict[str, Any]:
    items = list(obj.items())
    at = next(i for i, (k, _) in enumerate(items) if k == after) + 1
    return dict([*items[:at], (key, new), *items[at:]])


def bsuid_shape(doc: dict[str, Any], *, user_id: str = "IN.1410018717833190",
                country: str | None = "IN", parent: str | None = None,
                key_hash: str | None = None, username: str | None = None,
                username_only: bool = False) -> dict[str, Any]:
    """A copy of `doc` with the 2026 identity fields, each in its documented place."""
    doc = copy.deepcopy(doc)
    contact, msg = value(doc)["contacts"][0], message(doc)
    last = "wa_id"
    if key_hash is not None:
        contact = _insert_after(contact, last, "identity_key_hash", key_hash)
        last = "identity_key_hash"
    contact = _insert_after(contact, last, "user_id", user_id)
    last = "user_id"
    if parent is not None:
        contact = _insert_after(contact, last, "parent_user_id", parent)
        last = "parent_user_id"
    if country is not None:
        contact = _insert_after(contact, last, "country_code", country)
    msg = _insert_after(msg, "from", "from_user_id", user_id)
    if parent is not None:
        msg = _insert_after(msg, "from_user_id", "from_parent_user_id", parent)
    if username is not None or username_only:
        contact["profile"] = {**contact["profile"], "username": username or "krish_t"}
    if username_only:
        del contact["wa_id"]
        del msg["from"]
    value(doc)["contacts"][0], value(doc)["messages"][0] = contact, msg
    return doc


def indian(callback: dict[str, Any]) -> dict[str, Any]:
    assert message(callback)["from"].startswith("91"), "the fixture's user is Indian"
    return callback


ACCEPTED: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = [
    ("the seed page's phone shape", lambda d: d),
    ("BSUID with country_code (the 2026 capture)", bsuid_shape),
    ("BSUID without country_code", lambda d: bsuid_shape(d, country=None)),
    ("enterprise parent id", lambda d: bsuid_shape(d, parent="IN.ENT.11815799212886844830")),
    ("identity_key_hash", lambda d: bsuid_shape(d, key_hash="DF2lS5v2W6x=")),
    ("identity_key_hash on the phone shape",
     lambda d: {**d, "meta_object": {**d["meta_object"], "value": {
         **value(d), "contacts": [_insert_after(value(d)["contacts"][0], "wa_id",
                                                "identity_key_hash", "DF2lS5v2W6x=")]}}}),
    ("profile.username", lambda d: bsuid_shape(d, username="krish.thakur")),
    ("a username-only user (no wa_id, no from)", lambda d: bsuid_shape(d, username_only=True)),
    ("username-only with a parent id", lambda d: bsuid_shape(
        d, username_only=True, parent="US.ENT.1181579921")),
    ("a 128-character BSUID", lambda d: bsuid_shape(d, user_id="IN." + "aZ09" * 32)),
    ("parent_user_id before or after country_code", lambda d: _swap_last_two_of_contact(
        bsuid_shape(d, parent="IN.ENT.7"))),
    ("user_id only on the contact, as `--add contacts[0].user_id` makes it",
     lambda d: {**d, "meta_object": {**d["meta_object"], "value": {
         **value(d), "contacts": [{**value(d)["contacts"][0], "user_id": "IN.14100"}]}}}),
]


def _swap_last_two_of_contact(doc: dict[str, Any]) -> dict[str, Any]:
    contact = value(doc)["contacts"][0]
    keys = list(contact)
    keys[-2:] = keys[-1], keys[-2]
    value(doc)["contacts"][0] = {k: contact[k] for k in keys}
    return doc


@pytest.mark.parametrize(("shape", "make"), ACCEPTED, ids=[s for s, _ in ACCEPTED])
def test_documented_optional_fields_are_accepted_in_their_documented_places(
    callback: dict[str, Any], shape: str, make: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    document = make(copy.deepcopy(indian(callback)))
    assert validate_callback(document) == []
    assert validate_body(to_wire(document)) == []


@pytest.mark.parametrize("args", [
    ["--add", "contacts[0].parent_user_id=IN.ENT.14100"],  # the README's example
    ["--identity", "phone", "--add", "contacts[0].user_id=IN.14100"],
])
def test_the_readme_add_user_id_example_validates(runner: CliRunner, args: list[str]) -> None:
    rendered = runner.invoke(cli, ["render", "--seed", "7", *args])
    assert rendered.exit_code == 0, rendered.output
    checked = runner.invoke(cli, ["validate", "-"], input=rendered.stdout_bytes)
    assert checked.exit_code == 0, checked.output
    assert "1 callback, all valid: a quick-reply tap (button)" in checked.stderr


def test_a_brazilian_wa_id_without_the_ninth_digit_matches_its_from(
        callback: dict[str, Any]) -> None:
    # Meta: wa_id and from "may not always match"; Brazil's legacy eight-digit form is the case.
    sender = "5511987654321"
    document = copy.deepcopy(callback)
    value(document)["contacts"][0]["wa_id"] = "551187654321"
    message(document)["from"] = sender
    for path in ("id", "context"):
        old = message(document)[path] if path == "id" else message(document)[path]["id"]
        decoded = decode_wamid(old)
        new = encode_wamid(sender, decoded.from_business, decoded.message_id)
        if path == "id":
            message(document)["id"] = new
        else:
            message(document)["context"]["id"] = new
    assert validate_callback(document) == []
    value(document)["contacts"][0]["wa_id"] = "551197654321"  # not the ninth digit dropped
    assert [p.path for p in validate_callback(document)] == [f"{M}.from"]


def _contact(doc: dict[str, Any]) -> dict[str, Any]:
    return value(doc)["contacts"][0]  # type: ignore[no-any-return]


IDENTITY_RULES: list[tuple[str, Callable[[dict[str, Any]], dict[str, Any]], str, str]] = [
    ("user_id needs its country", lambda d: bsuid_shape(d, user_id="1410018717833190",
                                                        country=None),
     f"{C}.user_id", "business-scoped user id"),
    ("user_id's country is ISO", lambda d: bsuid_shape(d, user_id="XX.14100", country=None),
     f"{C}.user_id", "ISO country"),
    ("user_id's country is upper case", lambda d: bsuid_shape(d, user_id="in.14100",
                                                             country=None),
     f"{C}.user_id", "business-scoped user id"),
    ("user_id has at most 128 characters after the dot",
     lambda d: bsuid_shape(d, user_id="IN." + "1" * 129), f"{C}.user_id",
     "1-128 letters or digits"),
    ("parent_user_id has ENT", lambda d: bsuid_shape(d, parent="IN.11815799212886844830"),
     f"{C}.parent_user_id", "CC.ENT."),
    ("a plain user_id is not a parent", lambda d: bsuid_shape(d, user_id="IN.ENT.14100"),
     f"{C}.user_id", "business-scoped user id"),
    ("country_code matches the BSUID", lambda d: bsuid_shape(d, country="GB"),
     f"{C}.country_code", "the country of user_id"),
    ("country_code matches the number", lambda d: bsuid_shape(d, user_id="US.14100",
                                                             country="US"),
     f"{C}.country_code", "the country of the number"),
    ("country_code is an ISO code", lambda d: bsuid_shape(d, country="IND"),
     f"{C}.country_code", "ISO country code"),
    ("from_user_id is the contact's user_id", lambda d: _set_message(
        bsuid_shape(d), "from_user_id", "IN.999"), f"{M}.from_user_id", "expected the user's id"),
    ("from_parent_user_id is the contact's", lambda d: _set_message(
        bsuid_shape(d, parent="IN.ENT.1"), "from_parent_user_id", "IN.ENT.2"),
     f"{M}.from_parent_user_id", "parent_user_id"),
    ("from_user_id needs the contact's user_id", lambda d: _drop_contact(
        bsuid_shape(d, country=None), "user_id"), f"{M}.from_user_id", "has no user_id"),
    ("a username-only message names its sender", lambda d: _drop_message(
        bsuid_shape(d, username_only=True), "from_user_id"), f"{M}.from_user_id",
     "names its sender by from_user_id"),
    ("a contact has wa_id or user_id", lambda d: _drop_contact(d, "wa_id"), f"{C}.wa_id",
     "missing: a contact has"),
    ("from needs the contact's wa_id", lambda d: _drop_contact(bsuid_shape(d), "wa_id"),
     f"{M}.from", "has no wa_id"),
    ("wa_id needs the message's from", lambda d: _drop_message(bsuid_shape(d), "from"),
     f"{M}.from", "missing, but contacts[0] has wa_id"),
    ("username is not blank", lambda d: bsuid_shape(d, username="  "),
     f"{C}.profile.username", "only whitespace"),
    ("username has no spaces", lambda d: bsuid_shape(d, username="krish thakur"),
     f"{C}.profile.username", "without spaces"),
    ("username lives in the profile", lambda d: _set_contact(d, "username", "krish"),
     f"{C}.username", "unexpected key"),
    ("user_id lives in the contact, not the message", lambda d: _set_message(
        d, "user_id", "IN.1"), f"{M}.user_id", "unexpected key"),
    ("from_user_id lives in the message, not the contact", lambda d: _set_contact(
        d, "from_user_id", "IN.1"), f"{C}.from_user_id", "unexpected key"),
    ("a username-only user's ids name one customer", lambda d: _set_message(
        bsuid_shape(d, username_only=True), "id",
        encode_wamid("919000000001", False, "C" * 32)), f"{M}.id", "expected the user's number"),
]


def _set_message(doc: dict[str, Any], key: str, new: Any) -> dict[str, Any]:
    message(doc)[key] = new
    return doc


def _set_contact(doc: dict[str, Any], key: str, new: Any) -> dict[str, Any]:
    _contact(doc)[key] = new
    return doc


def _drop_message(doc: dict[str, Any], key: str) -> dict[str, Any]:
    del message(doc)[key]
    return doc


def _drop_contact(doc: dict[str, Any], key: str) -> dict[str, Any]:
    del _contact(doc)[key]
    return doc


@pytest.mark.parametrize(("rule", "make", "path", "fragment"), IDENTITY_RULES,
                         ids=[rule for rule, *_ in IDENTITY_RULES])
def test_each_broken_identity_rule_is_reported_at_its_path(
    callback: dict[str, Any], rule: str, make: Callable[[dict[str, Any]], dict[str, Any]],
    path: str, fragment: str,
) -> None:
    problems = validate_callback(make(copy.deepcopy(indian(callback))))
    assert [p for p in problems if p.path == path and fragment in p.message], problems


# --- tightened rules ------------------------------------------------------------------------

NOW = 1_790_000_000

TIGHTENED: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("a whitespace-only name", setter(lambda d: _contact(d)["profile"], "name", " \t "),
     f"{C}.profile.name", "only whitespace"),
    ("a whitespace-only button label", setter(lambda d: message(d)["button"], "text", "  "),
     f"{M}.button.text", "only whitespace"),
    ("phone_number_id with a leading zero", setter(
        lambda d: value(d)["metadata"], "phone_number_id", "0123456789012345"),
     f"{V}.metadata.phone_number_id", "never starts with 0"),
    ("waba_id with a leading zero", setter(lambda d: d["extra_info"], "waba_id",
                                           "012345678901234"),
     "$.extra_info.waba_id", "never starts with 0"),
    ("phone_number_id equal to waba_id", dynamic(
        lambda d: d["extra_info"], "waba_id", lambda d: value(d)["metadata"]["phone_number_id"]),
     "$.extra_info.waba_id", "equals metadata.phone_number_id"),
    ("a timestamp in the year 2100", setter(message, "timestamp", "4102444800"),
     f"{M}.timestamp", "2100-01-01"),
    ("a timestamp before 2010", setter(message, "timestamp", "1230768000"),
     f"{M}.timestamp", "between 2010 and a day from now"),
    ("a 9-digit timestamp", setter(message, "timestamp", "172286332"), f"{M}.timestamp",
     "10-digit"),
    ("a timestamp over a day ahead of now", setter(message, "timestamp", str(NOW + 86401)),
     f"{M}.timestamp", "a day from now"),
    ("a number with no country calling code", setter(lambda d: value(d)["metadata"],
                                                     "display_phone_number", "999123456789"),
     f"{V}.metadata.display_phone_number", "country calling code"),
    ("field as a number", setter(lambda d: d["meta_object"], "field", 1),
     "$.meta_object.field", 'expected "messages"'),
]


@pytest.mark.parametrize(("rule", "mutate", "path", "fragment"), TIGHTENED,
                         ids=[rule for rule, *_ in TIGHTENED])
def test_each_tightened_rule_is_reported_at_its_path(
    callback: dict[str, Any], rule: str, mutate: Callable[[dict[str, Any]], None], path: str,
    fragment: str,
) -> None:
    broken = copy.deepcopy(callback)
    message(broken)["timestamp"] = str(NOW - 3600)
    assert validate_callback(broken, now=NOW) == []
    mutate(broken)
    problems = validate_callback(broken, now=NOW)
    assert [p for p in problems if p.path == path and fragment in p.message], problems


def test_now_is_injectable_and_a_day_of_clock_skew_is_allowed(callback: dict[str, Any]) -> None:
    message(callback)["timestamp"] = str(NOW + 86400)
    assert validate_callback(callback, now=NOW) == []
    assert validate_callback(callback, now=NOW - 1) != []


# --- key order ------------------------------------------------------------------------------

OBJECTS = ["$", "$.meta_object", V, f"{V}.metadata", C, f"{C}.profile", M, f"{M}.context",
           f"{M}.button", "$.extra_info"]


def _at(doc: dict[str, Any], path: str) -> dict[str, Any]:
    node: Any = doc
    for step in path.replace("[0]", ".0").split(".")[1:]:
        node = node[int(step)] if step.isdigit() else node[step]
    return node  # type: ignore[no-any-return]


@pytest.mark.parametrize("path", OBJECTS)
def test_keys_out_of_documented_order_are_one_problem_at_that_object(
        callback: dict[str, Any], path: str) -> None:
    document = bsuid_shape(indian(callback), username="krish")
    target = _at(document, path)
    keys = list(target)
    keys[0], keys[1] = keys[1], keys[0]
    reordered = {k: target[k] for k in keys}
    target.clear()
    target.update(reordered)
    problems = validate_callback(document)
    assert [str(p) for p in problems] == [
        f"{path}: reordered keys: got {', '.join(keys)}; documented order: "
        f"{', '.join([keys[1], keys[0], *keys[2:]])}"]


# --- the exact bytes ------------------------------------------------------------------------

def _escaped(doc: dict[str, Any]) -> bytes:
    doc = copy.deepcopy(doc)
    doc["extra_info"]["ref2"] = "https://shop.example/a"
    _contact(doc)["profile"]["name"] = "Zoë 😂"
    return to_wire(doc)


SERIALIZATION: list[tuple[str, Callable[[str], str], str, str]] = [
    ("pretty-printed", lambda raw: json.dumps(json.loads(raw), indent=2).replace("/", "\\/"),
     "$", "pretty-printed"),
    ("spaces after separators", lambda raw: json.dumps(json.loads(raw)).replace("/", "\\/"),
     "$.meta_object", "spaces between tokens"),
    ("an unescaped slash", lambda raw: raw.replace("\\/", "/", 1), "$.extra_info.ref2",
     "unescaped '/'"),
    ("uppercase hex", lambda raw: raw.replace("\\u00eb", "\\u00EB"), f"{C}.profile.name",
     "uppercase hex in the escape \\u00EB"),
    ("a raw non-ASCII letter", lambda raw: raw.replace("\\u00eb", "ë"), f"{C}.profile.name",
     "raw non-ASCII character 'ë' (U+00EB)"),
    ("a raw emoji", lambda raw: raw.replace("\\ud83d\\ude02", "😂"), f"{C}.profile.name",
     "writes \\ud83d"),
    ("a needless escape", lambda raw: raw.replace('"whatsapp"', '"wh\\u0061tsapp"'),
     f"{V}.messaging_product", "needless escape \\u0061"),
    ("a duplicated key", lambda raw: raw.replace('"field":"messages"',
                                                 '"field":"messages","field":"messages"'),
     "$.meta_object", "duplicate key 'field'"),
    ("U+007F escaped, where PHP writes it raw",
     lambda raw: raw.replace("Zo\\u00eb", "Zo\\u007f"), f"{C}.profile.name",
     "needless escape \\u007f"),
]


@pytest.mark.parametrize(("what", "change", "path", "fragment"), SERIALIZATION,
                         ids=[w for w, *_ in SERIALIZATION])
def test_bytes_other_than_php_json_encode_writes_are_one_problem_with_its_path(
    callback: dict[str, Any], what: str, change: Callable[[str], str], path: str,
    fragment: str,
) -> None:
    raw = _escaped(callback).decode()
    assert validate_body(raw) == []
    changed = change(raw)
    assert changed != raw
    problems = validate_body(changed)
    assert len(problems) == 1 and problems[0].path == path and fragment in problems[0].message, \
        problems


def test_a_raw_del_character_is_what_php_writes(callback: dict[str, Any]) -> None:
    _contact(callback)["profile"]["name"] = "Sam\x7f"
    raw = to_wire(callback).decode().replace("\\u007f", "\x7f")
    assert validate_body(raw) == []


def test_a_body_that_is_not_utf8_or_not_json_is_one_problem() -> None:
    assert [str(p) for p in validate_body(b'{"a":"\xff"}')] == ["$: not UTF-8 text (byte 6)"]
    assert "not JSON" in str(validate_body(b'{"a":')[0])
    assert "NaN" in str(validate_body('{"a":NaN}')[0])


def test_validate_says_which_kind_it_saw(callback: dict[str, Any]) -> None:
    assert describe_kind(callback) == "a quick-reply tap (button)"
    message(callback)["type"] = "poll"
    assert describe_kind(callback) == 'no known kind (type "poll")'
    assert describe_kind({"meta_object": {}}) == \
        "no known kind (no messages[0].type and no statuses)"


def test_a_key_written_twice_is_named_at_the_object_that_holds_it_twice(
        callback: dict[str, Any]) -> None:
    # "id" is also in messages[0].context, and a quoted "id": inside a string is no key.
    callback["extra_info"]["ref"] = '"id":"x"'
    raw = to_wire(callback).decode()
    timestamp = f'"timestamp":"{message(callback)["timestamp"]}"'
    doubled = raw.replace(timestamp, f'{timestamp},"id":{json.dumps(message(callback)["id"])}')
    assert [str(p) for p in validate_body(doubled)] == [
        f"{M}: duplicate key 'id'; a JSON encoder writes each key once"]


def test_a_key_repeated_many_times_is_a_few_problem_lines() -> None:
    problems = validate_body("{" + ",".join('"a":1' for _ in range(1000)) + "}")
    assert [str(p) for p in problems if "duplicate" in p.message] == [
        "$: duplicate key 'a'; a JSON encoder writes each key once"]
