"""`--set`, `--add` and `--remove`: change any field of a rendered callback by its path."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from simulator.errors import WasimError, did_you_mean, named
from simulator.inputs import load_json, shown

Segment = str | int
Action = Literal["set", "add", "remove"]

_TOKEN = re.compile(r"\[([0-9]+)\]|([^.\[\]]+)")
MAX_INDEX_DIGITS = 9  # no callback has a billion items; int() of 4,300 digits raises
_SHORTCUT_ROOT: tuple[Segment, ...] = ("meta_object", "value")


@dataclass(frozen=True)
class Override:
    """One change: where (a path of keys and list indexes), what to do, and the new value."""

    action: Action
    path: tuple[Segment, ...]
    value: Any
    text: str  # as the user typed it, for error messages
    source: str = ""  # where it was given, when not the command line (the Python API's call)

    @property
    def flag(self) -> str:
        """Where this override came from, as shown in errors: its flag, or `source`."""
        return self.source or _flag(self.action, self.text)


def _flag(action: str, text: str) -> str:
    # A 5,000-character --set value would make a 5,000-character error line.
    return f"--{action} {text if len(text) <= 60 else text[:57] + '...'}"


def parse_path(text: str, where: str) -> tuple[Segment, ...]:
    """Parse `a.b[0].c` (or `a.b.0.c`) into keys and indexes."""
    segments: list[Segment] = []
    pos = 0
    for part in text.split("."):
        if not part:
            raise WasimError(f"empty key in path {text!r}", where=where,
                             hint="Write paths like extra_info.ref or messages[0].button.text.")
        consumed = 0
        for match in _TOKEN.finditer(part):
            if match.start() != consumed:
                break
            index, key = match.groups()
            if index is not None and len(index) > MAX_INDEX_DIGITS:
                raise WasimError(f"index {shown(index)} in path is too large", where=where,
                                 hint="Write paths like messages[0].button.text.")
            segments.append(int(index) if index is not None else _key_or_index(key))
            consumed = match.end()
        if consumed != len(part):
            raise WasimError(f"cannot read path {text!r} at {part!r}", where=where,
                             hint="Write paths like extra_info.ref or messages[0].button.text.")
        pos += len(part) + 1
    return tuple(segments)


def _key_or_index(key: str) -> Segment:
    # Only a short ASCII number is an index; anything else (even "²" or 5,000 digits) is a key.
    return int(key) if key.isascii() and key.isdigit() and len(key) <= MAX_INDEX_DIGITS else key


def parse_override(action: Action, text: str) -> Override:
    """Parse `path=string` or `path:=json` (for --set/--add), or a bare `path` (for --remove)."""
    where = _flag(action, text)
    if action == "remove":
        return Override(action, parse_path(text, where), None, text)
    if "=" not in text:
        raise WasimError("expected PATH=VALUE (a string) or PATH:=JSON", where=where,
                         hint="For example extra_info.ref=campaign-7 or "
                              "messages[0].timestamp:=123.")
    path_text, value_text = text.split("=", 1)
    if path_text.endswith(":"):
        path_text = path_text[:-1]
        try:
            value = load_json(value_text)
        except json.JSONDecodeError as exc:
            raise WasimError(f"the value after ':=' is not JSON ({exc.msg} at column "
                             f"{exc.colno})", where=where,
                             hint="Use '=' for a plain string, ':=' for JSON such as 12, "
                                  "true, null or \"quoted\".") from None
    else:
        value = value_text
    return Override(action, parse_path(path_text, where), value, text)


def apply_overrides(document: dict[str, Any], overrides: tuple[Override, ...]) -> None:
    """Apply each override to `document` in place, in order."""
    for override in overrides:
        _apply(document, override)


def _apply(document: dict[str, Any], override: Override) -> None:
    path = override.path
    # A path that does not start at the root is read under meta_object.value, so the
    # Meta part of the envelope can be written as Meta documents it: messages[0].button.text.
    if path and path[0] not in document and _exists(document, _SHORTCUT_ROOT):
        path = _SHORTCUT_ROOT + path
    parent: Any = document
    walked = "$"
    for segment in path[:-1]:
        parent = _step(parent, segment, walked, override)
        walked = _join(walked, segment)
    last = path[-1]
    if isinstance(parent, dict):
        if not isinstance(last, str):
            last = str(last)
        if override.action == "add":
            if last in parent:
                raise WasimError(f"{_join(walked, last)} already exists", where=override.flag,
                                 hint=f"Use {named('set')} to change an existing field.")
            parent[last] = override.value
            return
        if last not in parent:
            raise WasimError(f"{walked} has no key {last!r}", where=override.flag,
                             hint=did_you_mean(last, parent) or
                             f"Keys there: {', '.join(parent) or 'none'}; {named('add')} "
                             "creates a new one.")
        if override.action == "remove":
            del parent[last]
        else:
            parent[last] = override.value
    elif isinstance(parent, list):
        if not isinstance(last, int):
            raise WasimError(f"{walked} is a list; expected an index, got {last!r}",
                             where=override.flag)
        if override.action == "add" and last == len(parent):
            parent.append(override.value)
            return
        if not 0 <= last < len(parent):
            raise WasimError(f"{walked} has {len(parent)} item(s); index {last} is out of range",
                             where=override.flag)
        if override.action == "remove":
            del parent[last]
        else:
            parent[last] = override.value
    else:
        raise WasimError(f"{walked} is a {type(parent).__name__}, not an object or list",
                         where=override.flag)


def _step(node: Any, segment: Segment, walked: str, override: Override) -> Any:
    if isinstance(node, dict):
        key = str(segment)
        if key not in node:
            raise WasimError(f"{walked} has no key {key!r}", where=override.flag,
                             hint=did_you_mean(key, node) or f"Keys there: {', '.join(node)}.")
        return node[key]
    if isinstance(node, list):
        if not isinstance(segment, int) or not 0 <= segment < len(node):
            raise WasimError(f"{walked} has {len(node)} item(s); {segment!r} is not a valid "
                             f"index", where=override.flag)
        return node[segment]
    raise WasimError(f"{walked} is a {type(node).__name__}, not an object or list",
                     where=override.flag)


def _exists(document: dict[str, Any], path: tuple[Segment, ...]) -> bool:
    node: Any = document
    for segment in path:
        if not isinstance(node, dict) or segment not in node:
            return False
        node = node[segment]
    return True


def _join(walked: str, segment: Segment) -> str:
    return f"{walked}[{segment}]" if isinstance(segment, int) else f"{walked}.{segment}"
