"""Serialization: compact, `/` escaped, non-ASCII as lowercase \\uXXXX, emoji as surrogates."""

from __future__ import annotations

import json

from simulator.wire import to_pretty, to_wire


def test_accent_slash_and_emoji_are_escaped_as_meta_does() -> None:
    body = to_wire({"name": "José 😂", "url": "https://x.io/a"})
    assert body == b'{"name":"Jos\\u00e9 \\ud83d\\ude02","url":"https:\\/\\/x.io\\/a"}'


def test_wire_bytes_are_pure_ascii_and_parse_back_to_the_same_document() -> None:
    document = {"a": ["é", "/", "😂", 1, True, None], "b": {"c": "中文"}}
    body = to_wire(document)
    assert body.isascii()
    assert json.loads(body) == document


def test_separators_are_compact() -> None:
    assert to_wire({"a": [1, 2], "b": {}}) == b'{"a":[1,2],"b":{}}'


def test_pretty_output_is_indented_and_readable() -> None:
    assert to_pretty({"name": "José"}) == '{\n  "name": "José"\n}'
