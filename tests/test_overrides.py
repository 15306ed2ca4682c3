"""--set / --add / --remove: paths from the root or from meta_object.value, clear errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from simulator.errors import WasimError
from simulator.overrides import apply_overrides, parse_override, parse_path


def apply(document: dict[str, Any], *specs: tuple[str, str]) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    apply_overrides(changed, tuple(parse_override(a, t) for a, t in specs))  # type: ignore[arg-type]
    return changed


def test_paths_read_keys_and_indexes_in_both_spellings() -> None:
    assert parse_path("messages[0].button.text", "x") == ("messages", 0, "button", "text")
    assert parse_path("messages.0.button", "x") == ("messages", 0, "button")


def test_set_changes_a_string_from_the_root(callback: dict[str, Any]) -> None:
    changed = apply(callback, ("set", "extra_info.ref=campaign/7"))
    assert changed["extra_info"]["ref"] == "campaign/7"


def test_paths_may_start_under_meta_object_value(callback: dict[str, Any]) -> None:
    changed = apply(callback, ("set", "messages[0].button.text=Buy"))
    assert changed["meta_object"]["value"]["messages"][0]["button"]["text"] == "Buy"


def test_colon_equals_sets_json_values(callback: dict[str, Any]) -> None:
    changed = apply(callback, ("set", "messages[0].timestamp:=1722863329"))
    assert changed["meta_object"]["value"]["messages"][0]["timestamp"] == 1722863329


def test_add_creates_a_field_and_remove_deletes_one(callback: dict[str, Any]) -> None:
    changed = apply(callback, ("add", "contacts[0].parent_user_id=IN.ENT.1410018717833190"),
                    ("remove", "extra_info.ref2"))
    assert changed["meta_object"]["value"]["contacts"][0]["parent_user_id"] == \
        "IN.ENT.1410018717833190"
    assert "ref2" not in changed["extra_info"]


def test_add_appends_to_a_list(callback: dict[str, Any]) -> None:
    changed = apply(callback, ("add", 'messages[1]:={"type":"text"}'))
    assert changed["meta_object"]["value"]["messages"][1] == {"type": "text"}


@pytest.mark.parametrize(("action", "text", "fragment"), [
    ("set", "extra_info.traceid=x", "Did you mean 'trace_id'?"),
    ("set", "extra_info.ref", "expected PATH=VALUE"),
    ("set", "extra_info.ref:={oops", "not JSON"),
    ("set", "messages[3].type=x", "1 item(s)"),
    ("set", "extra_info..ref=x", "empty key"),
    ("set", "extra_info.media_url.x=1", "is a str"),
    ("add", "extra_info.ref=x", "already exists"),
    ("remove", "extra_info.nope", "has no key 'nope'"),
])
def test_bad_overrides_say_what_and_where(callback: dict[str, Any], action: str, text: str,
                                          fragment: str) -> None:
    with pytest.raises(WasimError) as info:
        apply(callback, (action, text))
    assert fragment in info.value.one_line()
    assert info.value.where == f"--{action} {text}"


@pytest.mark.parametrize(("text", "fragment"), [
    ("extra_info.ref:=" + "[" * 5000 + "]" * 5000, "nested more than 64 levels deep"),
    ("extra_info.ref:=" + "9" * 5000, "a number of 5,000 digits"),
    ("extra_info.ref:=NaN", "NaN is not JSON"),
    ("extra_info.ref:=-Infinity", "-Infinity is not JSON"),
    ("extra_info.ref:=1e999", "too large for a number"),
    ("messages[" + "9" * 5000 + "].x=1", "in path is too large"),
])
def test_hostile_values_and_paths_are_one_short_line(text: str, fragment: str) -> None:
    with pytest.raises(WasimError) as raised:
        parse_override("set", text)
    line = raised.value.one_line()
    assert fragment in line
    assert len(line) < 300 and "\n" not in line


def test_a_digit_that_int_cannot_read_is_a_key_not_an_index() -> None:
    assert parse_path("a.\u00b2.b", "x") == ("a", "\u00b2", "b")
    assert parse_path("a." + "1" * 20, "x") == ("a", "1" * 20)
