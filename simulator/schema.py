"""The JSON Schema of scenario files, generated from the declared format (scenario_format),
the delivery settings table (settings.SETTINGS) and the kinds registry, so editors check and
complete the same keys the loader reads. `wasim schema` prints it; nothing here is a file."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from typing import Any

from simulator.scenario_format import (
    BLOCKS,
    DURATION_PATTERN,
    MAX_DURATION,
    MAX_NUMBER,
    MAX_SENDS_PER_PLAN,
    Key,
)

SCHEMA_FILE = "wasim-schema.json"
"""Where `wasim new` tells editors to look (`wasim schema > wasim-schema.json`), relative to
the project's top, which is one folder above the scenario it writes."""
DRAFT = "https://json-schema.org/draft/2020-12/schema"
_TEXT: dict[str, Any] = {"type": ["string", "number"]}  # the loader reads a number as its text


def _ref(block: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{block}"}


def _duration(low_open: bool = False) -> dict[str, Any]:
    number: dict[str, Any] = {"type": "number", "maximum": MAX_DURATION}
    number["exclusiveMinimum" if low_open else "minimum"] = 0
    return {"anyOf": [number, {"type": "string", "pattern": DURATION_PATTERN}]}


def _shares(names: tuple[str, ...], high: float) -> dict[str, Any]:
    """`{name: share}` for the known names, or one name for everyone."""
    return {"anyOf": [
        {"enum": list(names)},
        {"type": "object", "minProperties": 1, "propertyNames": {"enum": list(names)},
         "additionalProperties": {"type": "number", "minimum": 0, "maximum": high}}]}


def _any_case(choices: tuple[str, ...]) -> dict[str, Any]:
    """One of `choices` in any case, as delivery reads them (completion offers them as
    written); JSON Schema's patterns have no case-insensitive flag, hence the classes."""
    def letters(word: str) -> str:
        # `-` needs no escape outside a class (and `\-` is an error in a JS unicode regex)
        return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha()
                       else c if c == "-" else re.escape(c) for c in word)

    pattern = r"^\s*(" + "|".join(letters(c) for c in choices) + r")\s*$"
    return {"anyOf": [{"enum": list(choices)}, {"type": "string", "pattern": pattern}]}


def _custom() -> dict[tuple[str, str], dict[str, Any]]:
    """The shapes of the keys the loader reads with functions of their own."""
    from simulator.kinds.status import ERRORS, STATUSES
    from simulator.taps import IDENTITIES, QUIRKS

    statuses = {"type": "array", "minItems": 1, "items": {"anyOf": [
        {"enum": list(STATUSES)},
        {"type": "object", "properties": {"failed": {"enum": list(ERRORS)}},
         "required": ["failed"], "additionalProperties": False}]}}
    scalar = {"type": ["string", "integer"]}
    return {
        ("scenario", "steps"): {"type": "array", "minItems": 1, "items": _ref("step")},
        ("scenario", "templates"): {"anyOf": [{"type": "string"},
                                              {"type": "array", "items": scalar}]},
        ("scenario", "messages"): {"anyOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "minItems": 1, "uniqueItems": True, "items": scalar}]},
        ("template", "buttons"): {"type": "array", "minItems": 1, "items": {
            "anyOf": [{"type": "string"}, _ref("button")]}},
        ("cast", "countries"): {"type": "object", "additionalProperties": {
            "type": ["integer", "null"], "minimum": 0, "maximum": MAX_SENDS_PER_PLAN}},
        ("cast", "users"): {"type": "array", "items": _ref("user")},
        ("cast", "identity"): _shares(IDENTITIES, MAX_NUMBER),
        ("cast", "quirks"): _shares(QUIRKS, 1.0),
        ("step", "who"): {"anyOf": [
            {"const": "all"}, {"type": "integer", "minimum": 0},
            {"type": "string", "pattern": r"^\d+(\.\d+)?%$"},
            {"type": "array", "minItems": 1, "items": scalar}]},
        ("step", "choices"): {"type": "object", "additionalProperties": {
            "type": ["number", "null"], "minimum": 0, "maximum": MAX_NUMBER}},
        ("step", "duplicate"): {"anyOf": [{"type": "boolean"}, {"const": "concurrently"}]},
        ("step", "send"): {"anyOf": [_ref("send"), {"type": "array", "items": _ref("send")}]},
        ("step", "statuses"): statuses,
        ("step", "tap_reply"): {"anyOf": [scalar, _ref("tap_reply")]},
        ("verify", "verify_token"): {"anyOf": [
            {"type": "string", "minLength": 1, "maxLength": 1024}, {"type": "number"}]},
        ("expect", "status"): {"anyOf": [scalar, {"type": "array", "items": scalar}]},
        ("expect", "body_contains"): {"anyOf": [{"type": "string"}, {
            "type": "array", "items": {"type": "string"}}]},
        ("expect", "json"): {"type": "object", "propertyNames": {"pattern": r"^\$"}},
        ("expect", "reply"): {"anyOf": [{"const": True}, _ref("reply")]},
    }


def _value(block: str, key: Key, custom: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """The schema of one declared key's value."""
    if key.type == "text":
        schema: dict[str, Any] = dict(_TEXT)
    elif key.type == "number":
        schema = {"type": "number", "minimum": key.low, "maximum": key.high}
    elif key.type == "whole":
        schema = {"type": "integer", "minimum": int(key.low), "maximum": int(key.high)}
    elif key.type == "flag":
        schema = {"type": "boolean"}
    elif key.type == "duration":
        schema = _duration(low_open=(block, key.name) in (("reply", "within"),
                                                          ("tap_reply", "within")))
    elif key.type == "choice":
        schema = {"enum": list(key.choices)}
    elif key.type == "block":
        schema = _ref(key.block or key.name)
    else:
        schema = dict(custom[(block, key.name)])
    if not key.required:
        # The loader reads a key given no value (`chaos:`) as left out.
        schema = {"anyOf": [schema, {"type": "null"}]}
    schema["description"] = key.help
    if key.default is not None:
        schema["default"] = key.default
    return schema


def _object(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _target() -> dict[str, Any]:
    """The `target:` block, from the delivery settings table."""
    from simulator.inputs import MAX_RETRIES
    from simulator.meta import SIGNATURES
    from simulator.settings import SETTINGS

    by_kind: dict[str, dict[str, Any]] = {
        "seconds": {"type": "number", "minimum": 0, "maximum": 86400},
        "positive_seconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 86400},
        "retries": {"type": "integer", "minimum": 0, "maximum": MAX_RETRIES},
        "envelope": _any_case(("kaleyra", "meta")),
        "signature": _any_case(SIGNATURES),
        "method": _any_case(("POST", "PUT", "PATCH")),
    }
    header = {"type": ["string", "number"]}
    properties = {}
    for setting in SETTINGS:
        if setting.multiple:
            value: dict[str, Any] = {"anyOf": [
                {"type": "object", "additionalProperties": header},
                {"type": "array", "items": header}]}
        else:
            value = dict(by_kind.get(setting.kind, _TEXT))
        value = {"anyOf": [value, {"type": "null"}], "description": setting.help}
        if setting.default not in (None, ()):
            value["default"] = setting.default
        properties[setting.key] = value
    return _object(properties, [])


def _send() -> dict[str, Any]:
    """One `send:` item, from the kinds registry and the fields a kind is built from."""
    from simulator.kinds import KIND_SPECS
    from simulator.kinds.base import KindArgs
    from simulator.kinds.status import ERRORS, STATUSES

    special: dict[str, dict[str, Any]] = {
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "lng": {"type": "number", "minimum": -180, "maximum": 180},
        "error": {"enum": list(ERRORS)},
        "status": {"enum": list(STATUSES)},
        "contacts": {"type": "boolean"},
        "quote": {"type": "boolean"},
    }
    names = [f.name for f in fields(KindArgs)]
    field_schemas = {name: special.get(name, _TEXT) for name in names}
    kinds = list(KIND_SPECS)
    with_kind = _object({"kind": {"enum": kinds, "description": "The kind to send."},
                         **field_schemas}, ["kind"])
    by_name = {"type": "object", "minProperties": 1, "maxProperties": 1,
               "propertyNames": {"enum": kinds},
               "additionalProperties": {"anyOf": [
                   _object(field_schemas, []), {"type": ["string", "number", "null"]}]}}
    return {"description": "One kind and its fields: {text: hi}, {image: {caption: x}} or "
                           "{kind: image, caption: x}.",
            "anyOf": [with_kind, by_name]}


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file, after its Jinja is rendered."""
    custom = _custom()
    defs: dict[str, Any] = {}
    for block, declared in BLOCKS.items():
        if block == "scenario":
            continue
        defs[block] = _object({k.name: _value(block, k, custom) for k in declared},
                              [k.name for k in declared if k.required])
    defs["target"] = _target()
    defs["send"] = _send()
    top = _object({k.name: _value("scenario", k, custom) for k in BLOCKS["scenario"]}, [])
    return {"$schema": DRAFT, "title": "wasim scenario",
            "description": "A wasim scenario file: who taps what, when, how often, with what "
                           "chaos, and what the handler must answer. The file is Jinja first, "
                           "then YAML; this schema describes the YAML.",
            **top, "$defs": defs}


def schema_text() -> str:
    """The schema as `wasim schema` prints it."""
    return json.dumps(scenario_schema(), indent=2, ensure_ascii=False) + "\n"
