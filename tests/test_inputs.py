"""Values people type: numbers, times, ports in URLs, paths and JSON, each read in one place."""

from __future__ import annotations

import json
from typing import Any

import pytest

from simulator.errors import WasimError
from simulator.inputs import (
    MAX_JSON_DEPTH,
    check_path,
    load_json,
    parse_number,
    parse_time,
    port_of_url,
)


@pytest.mark.parametrize("text", ["nan", "NaN", "inf", "-inf", "Infinity", "1e309", "", " ",
                                  "1_000x", "9" * 5000, "\u00b2"])
def test_a_number_that_is_not_a_finite_number_is_a_one_line_error(text: str) -> None:
    with pytest.raises(WasimError) as raised:
        parse_number(text, "--timeout", low=0, high=10, low_open=True)
    line = raised.value.one_line()
    assert line.startswith("--timeout: ") and "\n" not in line
    assert len(line) < 200  # a 5,000-digit value is shown cut short


def test_numbers_are_checked_against_open_and_closed_bounds() -> None:
    assert parse_number("2.5", "--x", low=0, high=10) == 2.5
    assert parse_number("10", "--x", low=0, high=10, integer=True) == 10
    for text, low_open in (("0", True), ("-1", False), ("11", False)):
        with pytest.raises(WasimError, match="out of range"):
            parse_number(text, "--x", low=0, high=10, low_open=low_open)
    with pytest.raises(WasimError) as raised:
        parse_number("65536", "--port", low=0, high=65535, integer=True)
    assert raised.value.one_line() == ("--port: '65536' is out of range. Give a whole number, "
                                       "at least 0 and at most 65535.")


def test_numbers_from_files_must_be_numbers_not_booleans_or_nan() -> None:
    assert parse_number(3, "retries", low=0, high=100, integer=True) == 3
    for value in (True, float("nan"), float("inf")):
        with pytest.raises(WasimError):
            parse_number(value, "retries", low=0, high=100)


@pytest.mark.parametrize(("text", "fragment"), [
    ("1" + "0" * 29, "out of range"),
    ("9" * 5000, "too long"),
    ("99999-01-01", "cannot read the time"),
    ("9999-12-31T23:59:59-05:00", "not between 1970 and 9999"),
    ("\u00b2", "cannot read the time"),
])
def test_a_time_beyond_what_a_date_can_hold_is_refused(text: str, fragment: str) -> None:
    with pytest.raises(WasimError, match=fragment):
        parse_time(text, "--now")


def test_times_in_range_are_read() -> None:
    assert parse_time("1767225600", "--now") == 1767225600
    assert parse_time("2026-01-01T00:00:00Z", "--now") == 1767225600
    assert parse_time("now", "--now") is None


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/", "http://127.0.0.1:-1/",
                                 "http://127.0.0.1:0/", "http://[::1]:70000/x",
                                 "http://user:pw@127.0.0.1:" + "9" * 5000 + "/"])
def test_a_url_with_a_port_that_is_not_a_tcp_port_is_refused(url: str) -> None:
    with pytest.raises(WasimError) as raised:
        port_of_url(url, "--url")
    assert raised.value.where == "--url" and len(raised.value.one_line()) < 200


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000/webhook", "http://localhost/",
                                 "http://[::1]:8080/", "not a url"])
def test_urls_with_real_ports_or_none_pass_unchanged(url: str) -> None:
    assert port_of_url(url, "--url") == url


@pytest.mark.parametrize(("path", "fragment"), [
    ("a" * 256, "too long"),
    ("d/" * 2100, "too long"),
    ("a\x00b", "NUL"),
    ("", "empty"),
])
def test_a_path_no_system_can_open_is_refused_before_use(path: str, fragment: str) -> None:
    with pytest.raises(WasimError, match=fragment):
        check_path(path, "--history")


@pytest.mark.parametrize(("text", "fragment"), [
    ("[" * 100_000, "nested more than 64 levels deep"),
    ("[" * 65 + "]" * 65, "nested more than 64 levels deep"),
    ('{"a": ' + "1" * 101 + "}", "a number of 101 digits"),
    ("NaN", "NaN is not JSON"),
    ("[-Infinity]", "-Infinity is not JSON"),
    ("1e400", "too large for a number"),
])
def test_hostile_json_is_a_decode_error_with_its_place(text: str, fragment: str) -> None:
    with pytest.raises(json.JSONDecodeError) as raised:
        load_json(text)
    assert fragment in raised.value.msg


def test_the_depth_error_points_at_the_bracket_that_went_too_deep() -> None:
    with pytest.raises(json.JSONDecodeError) as raised:
        load_json('{"s": "[[[[", "a": ' + "[" * 70 + "]" * 70 + "}")
    assert raised.value.pos == len('{"s": "[[[[", "a": ') + MAX_JSON_DEPTH - 1


@pytest.mark.parametrize("value", [
    {"a": [1, 2.5, None, True, "x" * 10_000]},
    json.loads("[" * 64 + "]" * 64),
    "1" * 100,
    -(10**99),
])
def test_ordinary_json_reads_as_json_does(value: Any) -> None:
    text = json.dumps(value)
    assert load_json(text) == json.loads(text)
