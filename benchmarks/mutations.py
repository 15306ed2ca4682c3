"""Mutation benchmark for `wasim validate`: the share of single-point breaks it catches.

Every kind is covered: quick-reply taps as described below, and every kind in
`simulator/kinds/` (texts, interactive replies, media, locations, contacts, reactions,
unsupported messages, statuses with each status and Meta error), rendered by wasim in both
identity shapes and broken the same way plus each kind's own invariants. Per kind it prints the
valid callbacks (the baseline, validated in the same run), the false alarms on them and the
share of mutants caught.

Valid callbacks come from the renderer (every country and platform) and, for the 2026 shapes,
from the same documents with the documented optional fields added by hand (BSUIDs, country,
enterprise parent ids, identity key hash, a username-only user). Each is then broken in one
place at a time: key order, types, dropped or duplicated keys, invariants, escaping, ids,
timestamps, names. The report is the share caught, overall and per family, and the false
alarms on the valid documents (the target: >= 95% caught, 0 false alarms).

    python benchmarks/mutations.py [--seed 1] [--count 4] [--show-missed]
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from simulator.kinds import BUTTON, KIND_SPECS, KindArgs, kind_name, render_kind
from simulator.kinds.media import MEDIA
from simulator.kinds.status import ERRORS, STATUSES
from simulator.overrides import parse_override
from simulator.render import RenderOptions, render_callbacks
from simulator.taps import TapOptions
from simulator.validate import validate_body
from simulator.wamid import decode_wamid, encode_wamid

COUNTRIES = ("IN", "US", "GB", "BR", "ID", "DE", "AE", "SA", "MX", "ES", "FR", "NG")
PLATFORMS = ("android", "ios", "web")
START = 1_767_225_600  # 2026-01-01: every generated tap is a few minutes after this
NOW = START + 30 * 86400  # the validator's "now": a month later

Document = dict[str, Any]


def php_json(document: Any) -> str:
    """PHP `json_encode` bytes, written here independently of simulator.wire: compact,
    `\\/`, lowercase `\\uXXXX` (surrogate pairs), and U+007F raw as PHP leaves it."""
    text = json.dumps(document, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    text = text.replace("/", "\\/")
    return re.sub(r"(?<!\\)((?:\\\\)*)\\u007f", lambda m: m.group(1) + "\x7f", text)


# --- valid documents ------------------------------------------------------------------------


def _value(doc: Document) -> Document:
    return doc["meta_object"]["value"]  # type: ignore[no-any-return]


def _insert_after(obj: Document, after: str | None, key: str, new: Any) -> Document:
    """A copy of `obj` with `key` placed right after `after` (first when None)."""
    items = list(obj.items())
    at = 0 if after is None else next(i for i, (k, _) in enumerate(items) if k == after) + 1
    items.insert(at, (key, new))
    return dict(items)


def bsuid(country: str, n: int) -> str:
    """A business-scoped user id of `country`, different for every `n`."""
    return f"{country}.{1410018717833190 + n * 7919}"


def with_identity(doc: Document, country: str, n: int, *, parent: bool = False,
                  key_hash: bool = False, username: bool = False,
                  username_only: bool = False) -> Document:
    """`doc` in the 2026 shape: user_id and country_code on the contact, from_user_id on the
    message, optionally an enterprise parent id, identity_key_hash and a username; with
    `username_only`, a user with no phone number at all (no wa_id, no from)."""
    doc = copy.deepcopy(doc)
    value = _value(doc)
    contact, message = value["contacts"][0], value["messages"][0]
    user_id = bsuid(country, n)
    if key_hash:
        contact = _insert_after(contact, "wa_id", "identity_key_hash", "DF2lS5v2W6x=")
    contact = _insert_after(contact, "identity_key_hash" if key_hash else "wa_id", "user_id",
                            user_id)
    last = "user_id"
    if parent:
        contact = _insert_after(contact, last, "parent_user_id", f"{country}.ENT.{n + 77}")
        last = "parent_user_id"
    contact = _insert_after(contact, last, "country_code", country)
    message = _insert_after(message, "from", "from_user_id", user_id)
    if parent:
        message = _insert_after(message, "from_user_id", "from_parent_user_id",
                                contact["parent_user_id"])
    if username or username_only:
        contact["profile"] = {**contact["profile"], "username": f"shopper{n}"}
    if username_only:
        del contact["wa_id"]
        contact.pop("identity_key_hash", None)
        message = {k: v for k, v in message.items() if k != "from"}
    value["contacts"][0], value["messages"][0] = contact, message
    return doc


def with_escapes(doc: Document) -> Document:
    """`doc` with text that PHP escapes: a URL, non-ASCII, an emoji, and a raw U+007F."""
    doc = copy.deepcopy(doc)
    doc["extra_info"]["ref2"] = "https://shop.example/summer?utm=wa"
    _value(doc)["messages"][0]["button"]["text"] = "Ver más 🛍️\x7f"
    return doc


@dataclass(frozen=True)
class Sample:
    """One valid callback: what it is and its exact body."""

    label: str
    raw: str
    kind: str = BUTTON


def valid_samples(seed: int, count: int, countries: tuple[str, ...] = COUNTRIES,
                  platforms: tuple[str, ...] = PLATFORMS) -> list[Sample]:
    """`count` rendered taps per country and platform, each in every documented shape."""
    samples: list[Sample] = []
    readme = (parse_override("add", "contacts[0].parent_user_id=IN.ENT.14100"),)
    n = 0
    for country in countries:
        for platform in platforms:
            # The seed page's shape, from which every 2026 shape below is built by hand.
            options = TapOptions(seed=seed, countries=(country,), platform=platform, start=START,
                                 identity=(("phone", 1.0),))
            for rendered in render_callbacks(RenderOptions(options, count=count)):
                n += 1
                doc = json.loads(rendered.body)
                shapes = {
                    "phone": doc,
                    "bsuid": with_identity(doc, country, n),
                    "bsuid+parent+hash+username": with_identity(doc, country, n, parent=True,
                                                                key_hash=True, username=True),
                    "username-only": with_identity(doc, country, n, username_only=True),
                    "username-only+parent": with_identity(doc, country, n, parent=True,
                                                          username_only=True),
                    "escapes": with_escapes(with_identity(doc, country, n)),
                }
                for label, shape in shapes.items():
                    samples.append(Sample(f"{label} {country} {platform}", php_json(shape)))
    options = TapOptions(seed=seed, start=START)
    for rendered in render_callbacks(RenderOptions(options, overrides=readme)):
        samples.append(Sample("README --add contacts[0].parent_user_id", rendered.body.decode()))
    # And wasim's own rendering of each identity mode, as `render --identity` writes it.
    for mode in ("bsuid", "username"):
        for country in countries:
            options = TapOptions(seed=seed, countries=(country,), start=START,
                                 identity=((mode, 1.0),), enterprise=0.5)
            for rendered in render_callbacks(RenderOptions(options, count=count)):
                samples.append(Sample(f"rendered {mode} {country}", rendered.body.decode()))
    return samples


# --- mutations ------------------------------------------------------------------------------

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Mutant:
    """One single-point break of a valid body."""

    family: str
    name: str
    raw: str


def _walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, (*path, i))


def _get(doc: Any, path: Path) -> Any:
    for step in path:
        doc = doc[step]
    return doc


def _show(path: Path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _edit(doc: Document, path: Path, change: Callable[[Any], Any]) -> str:
    """The body of a copy of `doc` with the value at `path` replaced by change(old)."""
    broken = copy.deepcopy(doc)
    parent = _get(broken, path[:-1])
    parent[path[-1]] = change(parent[path[-1]])
    return php_json(broken)


def _set(doc: Document, path: Path, new: Any) -> str:
    """The body of a copy of `doc` with `new` at `path`."""
    return _edit(doc, path, lambda _: new)


# Keys whose absence is itself a documented shape (the contact may carry ids the message does
# not repeat, as with `--add contacts[0].user_id`); dropping them is no mutation.
OPTIONAL = {"identity_key_hash", "country_code", "username", "from_parent_user_id",
            "from_user_id"}
# Keys whose relative order no source fixes.
UNORDERED = {frozenset({"parent_user_id", "country_code"})}
MESSAGE = ("meta_object", "value", "messages", 0)
CONTACT = ("meta_object", "value", "contacts", 0)


def _optional(doc: Document, path: Path, key: str) -> bool:
    """Whether the document without `key` at `path` is still a documented shape."""
    if path == CONTACT and key in ("user_id", "parent_user_id"):
        return "from_" + key not in _get(doc, MESSAGE)  # only on the contact, as --add does
    if key == "from_user_id":
        return "from" in _get(doc, path)  # a username-only user's only sender id
    return key in OPTIONAL


def _structure(doc: Document,
               optional: Callable[[Document, Path, str], bool] | None = None) -> Iterator[Mutant]:
    optional = optional or _optional
    for path, value in _walk(doc):
        if not isinstance(value, dict):
            continue
        keys = list(value)
        where = _show(path) or "$"
        for i in range(len(keys) - 1):
            if frozenset(keys[i : i + 2]) in UNORDERED:
                continue
            swapped = [*keys[:i], keys[i + 1], keys[i], *keys[i + 2 :]]
            reordered = {k: value[k] for k in swapped}
            yield Mutant("key order", f"swap {keys[i]}/{keys[i + 1]} at {where}",
                         _set(doc, path, reordered) if path else php_json(reordered))
        for key in keys:
            if optional(doc, path, key):
                continue
            smaller = {k: v for k, v in value.items() if k != key}
            yield Mutant("dropped key", f"drop {where}.{key}",
                         _set(doc, path, smaller) if path else php_json(smaller))
            body = php_json(doc)
            member = json.dumps(key) + ":" + php_json(value[key])
            at = body.find(member)
            if at >= 0:
                end = at + len(member)
                yield Mutant("duplicated key", f"duplicate {where}.{key}",
                             body[:end] + "," + member + body[end:])


def _types(doc: Document) -> Iterator[Mutant]:
    for path, value in _walk(doc):
        if not isinstance(value, str) or not path:
            continue
        where = _show(path)
        if value.isdigit():
            yield Mutant("type", f"{where} as a number", _edit(doc, path, int))
        yield Mutant("type", f"{where} as null", _edit(doc, path, lambda _: None))
        yield Mutant("type", f"{where} as a list", _edit(doc, path, lambda old: [old]))


def _other_digit(number: str) -> str:
    last = number[-1]
    return number[:-1] + ("1" if last != "1" else "2")


def _invariants(doc: Document) -> Iterator[Mutant]:
    value = _value(doc)
    message = value["messages"][0]
    contact = value["contacts"][0]
    yield Mutant("invariant", "context.from is not the business number",
                 _edit(doc, (*MESSAGE, "context", "from"), _other_digit))
    yield Mutant("invariant", "display number is not context.from",
                 _edit(doc, ("meta_object", "value", "metadata", "display_phone_number"),
                       _other_digit))
    if "wa_id" in contact:
        yield Mutant("invariant", "wa_id is not from",
                     _edit(doc, (*CONTACT, "wa_id"), _other_digit))
    if "user_id" in contact and "from_user_id" in message:
        yield Mutant("invariant", "user_id is not from_user_id",
                     _edit(doc, (*MESSAGE, "from_user_id"), lambda old: old + "7"))
    if "parent_user_id" in contact and "from_parent_user_id" in message:
        yield Mutant("invariant", "parent_user_id is not from_parent_user_id",
                     _edit(doc, (*MESSAGE, "from_parent_user_id"), lambda old: old + "7"))
    if "country_code" in contact:
        yield Mutant("invariant", "country_code is another country",
                     _edit(doc, (*CONTACT, "country_code"),
                           lambda old: "GB" if old != "GB" else "FR"))
        other = "GB" if contact["country_code"] != "GB" else "FR"
        broken = copy.deepcopy(doc)
        for path in ((*CONTACT, "user_id"), (*MESSAGE, "from_user_id")):
            parent = _get(broken, path[:-1])
            if path[-1] in parent:
                parent[path[-1]] = other + parent[path[-1]][2:]
        yield Mutant("invariant", "the BSUID's country is not country_code", php_json(broken))
    yield Mutant("invariant", "messaging_product is not whatsapp",
                 _edit(doc, ("meta_object", "value", "messaging_product"), lambda _: "sms"))
    yield Mutant("invariant", "field is not messages",
                 _edit(doc, ("meta_object", "field"), lambda _: "statuses"))
    yield Mutant("invariant", "media_url is set on a tap",
                 _edit(doc, ("extra_info", "media_url"), lambda _: "https://x.example/a.jpg"))
    yield Mutant("invariant", "the name is only whitespace",
                 _edit(doc, (*CONTACT, "profile", "name"), lambda _: "   "))
    yield Mutant("invariant", "the button text is only whitespace",
                 _edit(doc, (*MESSAGE, "button", "text"), lambda _: " "))
    yield Mutant("invariant", "reply_to is a wamid",
                 _edit(doc, ("extra_info", "reply_to"), lambda _: message["id"]))


def _raw_wamid(wamid: str) -> bytearray:
    return bytearray(base64.b64decode(wamid[len("wamid."):]))


def _wamid_of(raw: bytearray) -> str:
    return "wamid." + base64.b64encode(bytes(raw)).decode()


def _ids(doc: Document) -> Iterator[Mutant]:
    message = _value(doc)["messages"][0]
    for where, path in (("id", (*MESSAGE, "id")), ("context.id", (*MESSAGE, "context", "id"))):
        wamid = _get(doc, path)
        decoded = decode_wamid(wamid)

        def length_prefix(old: str) -> str:
            raw = _raw_wamid(old)
            raw[2] += 1
            return _wamid_of(raw)

        def flip(old: str) -> str:
            raw = _raw_wamid(old)
            at = 3 + raw[2] + 3
            raw[at] = 0x11 if raw[at] == 0x12 else 0x12
            return _wamid_of(raw)

        other = "919000000001" if decoded.customer != "919000000001" else "919000000002"
        yield Mutant("ids", f"{where}: wamid length prefix off by one",
                     _edit(doc, path, length_prefix))
        yield Mutant("ids", f"{where}: fromMe flipped", _edit(doc, path, flip))
        yield Mutant("ids", f"{where}: another number inside",
                     _set(doc, path, encode_wamid(other, decoded.from_business,
                                                  decoded.message_id)))
        yield Mutant("ids", f"{where}: hex id one char longer",
                     _set(doc, path, encode_wamid(decoded.customer, decoded.from_business,
                                                  decoded.message_id + "A")))
        yield Mutant("ids", f"{where}: not base64", _edit(doc, path, lambda old: old + "!"))
        yield Mutant("ids", f"{where}: fabricated", _edit(doc, path, lambda _: "wamid.xyz"))
    for key in ("reply_to", "trace_id"):
        yield Mutant("ids", f"{key}: UUID version 1",
                     _edit(doc, ("extra_info", key), lambda old: old[:14] + "1" + old[15:]))
        yield Mutant("ids", f"{key}: uppercase UUID",
                     _edit(doc, ("extra_info", key), str.upper))
    ids: tuple[tuple[str, Path], ...] = (
        ("phone_number_id", ("meta_object", "value", "metadata", "phone_number_id")),
           ("waba_id", ("extra_info", "waba_id")))
    for name, id_path in ids:
        yield Mutant("ids", f"{name}: leading zero",
                     _edit(doc, id_path, lambda old: "0" + old[1:]))
        yield Mutant("ids", f"{name}: 14 digits", _edit(doc, id_path, lambda old: old[:14]))
    phone_number_id = _get(doc, ids[0][1])
    yield Mutant("ids", "waba_id equals phone_number_id",
                 _edit(doc, ids[1][1], lambda _: phone_number_id))
    contact = _value(doc)["contacts"][0]
    for key, path in (("user_id", (*CONTACT, "user_id")),
                      ("from_user_id", (*MESSAGE, "from_user_id"))):
        if key not in contact and key not in message:
            continue
        yield Mutant("ids", f"{key}: lowercase country", _edit(doc, path, lambda old: old.lower()))
        yield Mutant("ids", f"{key}: no dot", _edit(doc, path, lambda old: old.replace(".", "")))
        yield Mutant("ids", f"{key}: unknown country", _edit(doc, path, lambda old: "XX" + old[2:]))
        yield Mutant("ids", f"{key}: 129 characters", _edit(doc, path,
                                                           lambda old: old[:3] + "9" * 129))
    if "parent_user_id" in contact:
        yield Mutant("ids", "parent_user_id: no ENT.",
                     _edit(doc, (*CONTACT, "parent_user_id"),
                           lambda old: old.replace(".ENT.", ".")))


def _timestamps(doc: Document, path: Path = (*MESSAGE, "timestamp")) -> Iterator[Mutant]:
    changes: dict[str, Callable[[str], Any]] = {
        "a number instead of a string": int,
        "the year 2100": lambda _: "4102444800",
        "9 digits": lambda old: old[:9],
        "11 digits": lambda old: old + "0",
        "milliseconds": lambda old: old + "000",
        "the year 2009": lambda _: "1230768000",
        "fractional seconds": lambda old: old + ".5",
        "two days ahead of now": lambda _: str(NOW + 2 * 86400),
        "ISO 8601": lambda _: "2026-01-01T00:00:00Z",
    }
    for name, change in changes.items():
        yield Mutant("timestamp", name, _edit(doc, path, change))


def _escaping(raw: str) -> Iterator[Mutant]:
    if "\\/" in raw:
        yield Mutant("escaping", "unescaped '/'", raw.replace("\\/", "/", 1))
    escape = re.search(r"\\u[0-9a-f]{3}[a-f]|\\u[0-9a-f]{2}[a-f][0-9a-f]", raw)
    if escape:
        yield Mutant("escaping", "uppercase hex",
                     raw[: escape.start()] + escape.group().upper() + raw[escape.end():])
    escape = re.search(r"\\u(?!d[89ab])[0-9a-f]{4}", raw)
    if escape:
        char = chr(int(escape.group()[2:], 16))
        yield Mutant("escaping", "raw non-ASCII character",
                     raw[: escape.start()] + char + raw[escape.end():])
    pair = re.search(r"\\ud[89ab][0-9a-f]{2}\\ud[c-f][0-9a-f]{2}", raw)
    if pair:
        emoji = pair.group().encode().decode("unicode_escape").encode(
            "utf-16", "surrogatepass").decode("utf-16")
        yield Mutant("escaping", "raw emoji", raw[: pair.start()] + emoji + raw[pair.end():])
    if "\x7f" in raw:
        yield Mutant("escaping", "U+007F escaped", raw.replace("\x7f", "\\u007f", 1))
    document = json.loads(raw)
    yield Mutant("escaping", "pretty-printed",
                 json.dumps(document, indent=2, ensure_ascii=True).replace("/", "\\/"))
    yield Mutant("escaping", "spaces after separators",
                 json.dumps(document, ensure_ascii=True).replace("/", "\\/"))
    yield Mutant("escaping", "needless escape of a letter",
                 raw.replace('"whatsapp"', '"wh\\u0061tsapp"', 1))
    yield Mutant("escaping", "trailing space inside the object", raw[:-1] + " }")


def mutants(sample: Sample) -> Iterator[Mutant]:
    """Every single-point break of `sample` (each differs from it in exactly one place)."""
    if sample.kind != BUTTON:
        yield from kind_mutants(sample)
        return
    doc = json.loads(sample.raw)
    for family in (_structure, _types, _invariants, _ids, _timestamps):
        yield from family(doc)
    yield from _escaping(sample.raw)


# --- every other kind -----------------------------------------------------------------------

# Each kind's variants worth breaking: the defaults, and the arguments that change the shape.
VARIANTS: dict[str, list[KindArgs]] = {
    "text": [KindArgs(), KindArgs(forwarded="forwarded"),
             KindArgs(forwarded="frequently_forwarded")],
    "reaction": [KindArgs(), KindArgs(emoji="")],
    "location": [KindArgs(), KindArgs(place_name="Gate 4", address="1 Market St")],
    "status": [*(KindArgs(status=s) for s in STATUSES if s != "failed"),
               *(KindArgs(status="failed", error=code) for code in ERRORS),
               KindArgs(status="read", contacts=False)],
}
# Keys a kind documents as optional (dropping one leaves a valid callback), and keys of the
# 2026 sender shape that may be absent.
KIND_OPTIONAL = {"context", "caption", "filename", "address", "name", "url", "description",
                 "contacts", "recipient_user_id", "user_id", "country_code", "from_user_id",
                 "conversation", "pricing", "expiration_timestamp", "frequently_forwarded",
                 "parent_user_id", "from_parent_user_id", "animated", "voice", "first_name",
                 "last_name", "type", "wa_id", "phones", "identity_key_hash", "username"}
STATUS = ("meta_object", "value", "statuses", 0)


def kind_samples(seed: int, count: int,
                 countries: tuple[str, ...] = COUNTRIES) -> list[Sample]:
    """`count` callbacks of every kind and variant per country, by phone number and by BSUID."""
    samples: list[Sample] = []
    for name in KIND_SPECS:
        for args in VARIANTS.get(name, [KindArgs()]):
            for country in countries:
                for mode in ("phone", "bsuid"):
                    options = TapOptions(seed=seed, countries=(country,), start=START,
                                         identity=((mode, 1.0),))
                    for rendered in render_kind(name, RenderOptions(options, count=count), args):
                        samples.append(Sample(f"{name} {country} {mode}",
                                              rendered.body.decode(), name))
    return samples


def _has(doc: Any, path: Path) -> bool:
    """Whether `path` leads somewhere in `doc` (the kinds differ in what they carry)."""
    from simulator.tapped import dig

    return dig(doc, *path) is not None


def _other_side(wamid: str) -> str:
    decoded = decode_wamid(wamid)
    return encode_wamid(decoded.customer, not decoded.from_business, decoded.message_id)


def _another_users(wamid: str) -> str:
    decoded = decode_wamid(wamid)
    other = "919000000001" if decoded.customer != "919000000001" else "919000000002"
    return encode_wamid(other, decoded.from_business, decoded.message_id)


def _kind_structure(doc: Document) -> Iterator[Mutant]:
    """Key order, dropped and duplicated keys, with the kinds' optional keys left alone."""
    yield from _structure(doc, _kind_optional)


def _kind_optional(doc: Document, path: Path, key: str) -> bool:
    """Whether the document without `key` at `path` is still a documented shape: a status
    without contacts may name its recipient by BSUID alone (a username-only user's does)."""
    if path == STATUS and key == "recipient_id":
        return "recipient_user_id" in _get(doc, path) \
            and not _has(doc, ("meta_object", "value", "contacts"))
    return key in KIND_OPTIONAL


def _message_invariants(doc: Document, kind: str) -> Iterator[Mutant]:
    message = _get(doc, MESSAGE)
    media = "extra_info", "media_url"
    if kind in MEDIA:
        body = (*MESSAGE, message["type"])
        yield Mutant("invariant", "media_url empty on media", _set(doc, media, ""))
        yield Mutant("invariant", "media id not numeric", _set(doc, (*body, "id"), "abc123"))
        yield Mutant("invariant", "sha256 not base64", _set(doc, (*body, "sha256"), "beef"))
        if kind != "document":  # a document may be of any type
            other = "video/mp4" if message["type"] != "video" else "image/jpeg"
            yield Mutant("invariant", "another media's mime type",
                         _set(doc, (*body, "mime_type"), other))
        if "caption" not in _get(doc, body) and kind in ("audio", "voice", "sticker"):
            yield Mutant("invariant", "a caption where there is none",
                         _edit(doc, body, lambda old: {**old, "caption": "hi"}))
    elif _has(doc, media):
        yield Mutant("invariant", "media_url set on a message without media",
                     _set(doc, media, "https://x.example/a.jpg"))
    if _has(doc, (*MESSAGE, "context", "from")):
        yield Mutant("invariant", "context.from is not the business number",
                     _edit(doc, (*MESSAGE, "context", "from"), _other_digit))
    if _has(doc, (*MESSAGE, "context", "id")):
        yield Mutant("ids", "context.id sent by the user",
                     _edit(doc, (*MESSAGE, "context", "id"), _other_side))
    if _has(doc, (*MESSAGE, "context", "forwarded")):
        yield Mutant("type", "forwarded as a string",
                     _set(doc, (*MESSAGE, "context", "forwarded"), "true"))
    if _has(doc, (*MESSAGE, "from")):
        yield Mutant("invariant", "from is not wa_id", _edit(doc, (*MESSAGE, "from"),
                                                             _other_digit))
    yield Mutant("ids", "id sent by the business", _edit(doc, (*MESSAGE, "id"), _other_side))
    yield Mutant("ids", "id of another user", _edit(doc, (*MESSAGE, "id"), _another_users))
    yield Mutant("ids", "id fabricated", _set(doc, (*MESSAGE, "id"), "wamid.xyz"))
    yield Mutant("invariant", "field is not messages",
                 _set(doc, ("meta_object", "field"), "statuses"))
    if kind == "text":
        yield Mutant("invariant", "empty text", _set(doc, (*MESSAGE, "text", "body"), ""))
    elif kind in ("button_reply", "list_reply"):
        other = "list_reply" if kind == "button_reply" else "button_reply"
        yield Mutant("invariant", "the reply under the other type",
                     _set(doc, (*MESSAGE, "interactive", "type"), other))
        yield Mutant("invariant", "an interactive reply without context",
                     _edit(doc, MESSAGE, lambda old: {k: v for k, v in old.items()
                                                      if k != "context"}))
    elif kind == "reaction":
        path = (*MESSAGE, "reaction", "message_id")
        yield Mutant("ids", "reaction to another user's message", _edit(doc, path,
                                                                       _another_users))
        yield Mutant("ids", "reaction id not a wamid", _set(doc, path, "abc"))
        yield Mutant("invariant", "emoji padded with spaces",
                     _set(doc, (*MESSAGE, "reaction", "emoji"), " x "))
    elif kind == "location":
        path = (*MESSAGE, "location", "latitude")
        yield Mutant("invariant", "latitude out of range", _set(doc, path, 123.0))
        yield Mutant("type", "latitude as a string", _edit(doc, path, str))
    elif kind == "contacts":
        yield Mutant("invariant", "a shared phone's wa_id with a +",
                     _set(doc, (*MESSAGE, "contacts", 0, "phones", 0, "wa_id"),
                          "+919812345678"))
    elif kind == "unsupported":
        yield Mutant("type", "error code as a string",
                     _edit(doc, (*MESSAGE, "errors", 0, "code"), str))


def _status_invariants(doc: Document) -> Iterator[Mutant]:
    status = _get(doc, STATUS)
    yield Mutant("ids", "status id sent by the user", _edit(doc, (*STATUS, "id"), _other_side))
    yield Mutant("ids", "status id of another user", _edit(doc, (*STATUS, "id"),
                                                           _another_users))
    yield Mutant("ids", "top-level message_id disagrees",
                 _edit(doc, ("message_id",), _other_side))
    yield Mutant("invariant", "top-level status disagrees",
                 _set(doc, ("status",), "read" if status["status"] != "read" else "sent"))
    yield Mutant("invariant", "unknown status", _set(doc, (*STATUS, "status"), "seen"))
    yield Mutant("invariant", "field is not statuses",
                 _set(doc, ("meta_object", "field"), "messages"))
    if _has(doc, ("meta_object", "value", "contacts", 0)):
        yield Mutant("invariant", "recipient differs from the contact",
                     _edit(doc, (*STATUS, "recipient_id"), _other_digit))
    if "errors" in status:
        yield Mutant("type", "error code as a string",
                     _edit(doc, (*STATUS, "errors", 0, "code"), str))
    else:
        yield Mutant("invariant", f"errors on a {status['status']} status",
                     _edit(doc, STATUS, lambda old: {**old, "errors": [
                         {"code": 1, "title": "x"}]}))
    if _has(doc, (*STATUS, "pricing", "billable")):
        yield Mutant("type", "billable as a string",
                     _set(doc, (*STATUS, "pricing", "billable"), "true"))
    if _has(doc, (*STATUS, "conversation", "id")):
        yield Mutant("ids", "conversation id not 32 hex",
                     _set(doc, (*STATUS, "conversation", "id"), "abc"))


def _kind_ids(doc: Document) -> Iterator[Mutant]:
    """The envelope's ids, which every kind shares with taps."""
    for key in ("trace_id", "reply_to"):
        if _has(doc, ("extra_info", key)):
            yield Mutant("ids", f"{key}: uppercase UUID", _edit(doc, ("extra_info", key),
                                                                str.upper))
    for name, path in (("phone_number_id", ("meta_object", "value", "metadata",
                                            "phone_number_id")),
                       ("waba_id", ("extra_info", "waba_id"))):
        if _has(doc, path):
            yield Mutant("ids", f"{name}: leading zero", _edit(doc, path,
                                                               lambda old: "0" + old[1:]))
    if _has(doc, (*CONTACT, "user_id")):
        yield Mutant("ids", "user_id: unknown country",
                     _edit(doc, (*CONTACT, "user_id"), lambda old: "XX" + old[2:]))


def kind_mutants(sample: Sample) -> Iterator[Mutant]:
    """Every single-point break of a callback of another kind than a tap."""
    doc = json.loads(sample.raw)
    yield from _kind_structure(doc)
    yield from _types(doc)
    yield Mutant("invariant", "messaging_product is not whatsapp",
                 _set(doc, ("meta_object", "value", "messaging_product"), "sms"))
    if _has(doc, MESSAGE):
        yield from _message_invariants(doc, sample.kind)
        yield from _timestamps(doc)
    else:
        yield from _status_invariants(doc)
        yield from _timestamps(doc, (*STATUS, "timestamp"))
    yield from _kind_ids(doc)
    yield from _escaping(sample.raw)


# --- the benchmark --------------------------------------------------------------------------


@dataclass
class Report:
    """What was caught and what raised false alarms."""

    caught: Counter[str]
    total: Counter[str]
    missed: list[tuple[str, Mutant]]
    false_alarms: list[tuple[Sample, list[str]]]
    valid: int
    kind_caught: Counter[str] = field(default_factory=Counter)
    kind_total: Counter[str] = field(default_factory=Counter)
    kind_valid: Counter[str] = field(default_factory=Counter)
    kind_false: Counter[str] = field(default_factory=Counter)

    @property
    def share(self) -> float:
        """The share of all mutants that `validate` caught."""
        return sum(self.caught.values()) / max(1, sum(self.total.values()))


def run(seed: int, count: int, *, now: int = NOW, countries: tuple[str, ...] = COUNTRIES,
        platforms: tuple[str, ...] = PLATFORMS, kinds: bool = True) -> Report:
    """Validate every valid sample (taps, and with `kinds` every other kind) and every
    mutant of it; the valid samples are the baseline the false alarms are counted on."""
    report = Report(Counter(), Counter(), [], [], 0)
    samples = valid_samples(seed, count, countries, platforms)
    if kinds:
        samples += kind_samples(seed, count, countries)
    for sample in samples:
        kind = kind_name(json.loads(sample.raw))  # what the validator must see it as
        report.valid += 1
        report.kind_valid[kind] += 1
        problems = validate_body(sample.raw, now=now)
        if problems or kind != sample.kind:
            report.false_alarms.append((sample, [str(p) for p in problems]
                                        or [f"seen as {kind}, not {sample.kind}"]))
            report.kind_false[kind] += 1
        for mutant in mutants(sample):
            if mutant.raw == sample.raw:
                continue  # not a mutation after all
            report.total[mutant.family] += 1
            report.kind_total[kind] += 1
            if validate_body(mutant.raw, now=now):
                report.caught[mutant.family] += 1
                report.kind_caught[kind] += 1
            else:
                report.missed.append((sample.label, mutant))
    return report


def main() -> None:
    """Print the share caught, overall and per family, and the false alarms."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=4, help="taps per country and platform")
    parser.add_argument("--show-missed", action="store_true")
    args = parser.parse_args()
    report = run(args.seed, args.count)
    total = sum(report.total.values())
    print(f"{report.valid} valid callbacks, {total} single-point mutants")
    for family in sorted(report.total):
        print(f"  {family:<15} {report.caught[family]:>6} / {report.total[family]:<6} "
              f"{100 * report.caught[family] / report.total[family]:6.2f}% caught")
    print(f"  {'overall':<15} {sum(report.caught.values()):>6} / {total:<6} "
          f"{100 * report.share:6.2f}% caught")
    print("per kind (false alarms on the kind's valid callbacks, validated in this run):")
    for kind in sorted(report.kind_total, key=lambda k: (k != BUTTON, k)):
        caught, mutated = report.kind_caught[kind], report.kind_total[kind]
        print(f"  {kind:<15} {caught:>6} / {mutated:<6} {100 * caught / mutated:6.2f}% caught"
              f"   {report.kind_false[kind]} false alarm(s) on {report.kind_valid[kind]} valid")
    print(f"false alarms on valid callbacks (every documented optional field): "
          f"{len(report.false_alarms)}")
    for sample, problems in report.false_alarms[:10]:
        print(f"  {sample.label}: {problems[0]}")
    if args.show_missed:
        for label, mutant in report.missed:
            print(f"  missed [{mutant.family}] {mutant.name} ({label})")


if __name__ == "__main__":
    main()
