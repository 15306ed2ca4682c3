"""`wasim import`: captured callbacks in, a shareable scenario out, every personal value
replaced (simulator.anonymise) and the brand's own values kept.

The scenario has one listed user per real user (same country, fake number and name), one
step per captured callback in the captured order and spacing, each callback's kind with the
brand's labels, payloads and row ids, and redeliveries as duplicates. Shapes no built-in kind
renders get a `.json.j2` template beside the scenario. Before anything is written, every
output is scanned for every original value in every encoding; the files are written to
temporary files in the same folder and renamed, never through a link.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.anonymise import Anonymiser, FakeUser
from simulator.capture import Callback, Capture, read_captures
from simulator.errors import ExitCode, WasimError, named
from simulator.safefiles import check_no_links

MAX_STEP_GAP = 86_400.0  # a longer silence in the capture is shortened to a day
# Kinds a scenario step sends (simulator.kinds), by the name Callback.kind() gives.
_MEDIA = ("image", "video", "audio", "voice", "document", "sticker")
_CAPTIONED = ("image", "video", "document")
_STATUSES = ("sent", "delivered", "read", "failed", "not-sent")


@dataclass
class Imported:
    """What an import produces: the scenario text, templates by file name, the report."""

    scenario: str
    templates: dict[str, str]
    report: str
    steps: int
    users: int


@dataclass
class _Step:
    name: str
    who: str
    after: float
    body: list[str]  # YAML lines of the step's action
    fingerprint: str
    copies: int = 0
    comment: str = ""
    message: int = 0  # which of the user's brand messages it answers (1, 2...); 0: none


@dataclass
class _Notes:
    """What the report says beyond the counts: what was kept, and what the run differs in."""

    kept: Counter[str] = field(default_factory=Counter)
    differs: Counter[str] = field(default_factory=Counter)


def import_capture(paths: Sequence[str | Path], name: str, *, seed: int = 0,
                   keep_text: bool = False) -> Imported:
    """Read the capture and build the anonymised scenario, templates and report."""
    capture = read_captures(paths)
    return build(capture, name, seed=seed, keep_text=keep_text)


def build(capture: Capture, name: str, *, seed: int = 0, keep_text: bool = False) -> Imported:
    """The scenario, templates and report for an already-read capture."""
    anon = Anonymiser(seed, keep_text=keep_text)
    notes = _Notes()
    anon.learn_names(_all_names(capture.callbacks))
    users: dict[str, FakeUser] = {}
    identities: Counter[str] = Counter()
    platforms: Counter[str] = Counter()
    buttons: dict[str, str] = {}
    steps: list[_Step] = []
    by_fingerprint: dict[str, _Step] = {}
    templates: dict[str, str] = {}
    business_country = business_number = ""
    refs: dict[str, str] | None = None
    previous: float | None = None
    # Per user, the brand's messages they answered (by original wamid), in the order first
    # answered: the scenario's `messages:` are msg1, msg2... and each step names its own.
    answered: dict[str, dict[str, int]] = {}
    for callback in capture.callbacks:
        key, user, identity = _user_of(callback, anon, users)
        if identity:
            identities[identity] += 1
        _scrub_envelope(callback, anon)
        if not business_country:
            business_country, business_number = _business_country(callback)
        given = {k: _text(callback.extra_info.get(k)) for k in ("ref", "ref1", "ref2")}
        if any(given.values()):
            # A run echoes one set of refs: the first non-empty one's, replaced.
            replaced = {k: _ref(anon, v) for k, v in given.items()}
            refs = refs if refs and any(refs.values()) else replaced
        elif refs is None and callback.extra_info:
            refs = given  # all empty, as the brand sent them
        moment = callback.timestamp
        gap = 0.0 if previous is None or moment is None else max(0.0, moment - previous)
        if gap > MAX_STEP_GAP:
            notes.differs["silences longer than a day shortened to a day"] += 1
            gap = MAX_STEP_GAP
        if moment is not None:
            previous = moment if previous is None else max(previous, moment)
        original = by_fingerprint.get(callback.fingerprint)
        if original is not None:  # logged twice: the platform redelivered it
            original.copies += 1
            if original.copies > 1:
                notes.differs["third and later copies of a callback (a run sends one copy)"] += 1
            continue
        platform = _platform(callback)
        if platform:
            platforms[platform] += 1
        kind = callback.kind()
        target, own = _answered(callback)
        body = _action(callback, kind, anon, buttons, notes, quotes=bool(target))
        comment = ""
        if body is None:
            file_name = f"{name}.{_safe(kind)}.json.j2"
            templates.setdefault(file_name, _template(callback, anon))
            comment = (f"a {_safe(kind)!r} message: no built-in kind renders it; its shape "
                       f"is in {file_name} (the step sends `unsupported`)")
            notes.differs[f"{_safe(kind)} messages sent as unsupported (shape in "
                          f"{file_name})"] += 1
            body = ["send: {unsupported: {}}"]
        if own:
            notes.differs["answers to the user's own earlier message (a run's quote nothing, "
                          "its reactions are on the brand's message)"] += 1
        numbers = answered.setdefault(key, {})
        index = numbers.setdefault(target, len(numbers) + 1) if target else 0
        step = _Step(f"#{len(steps) + 1} {kind}", user.wa_id, round(gap, 3), body,
                     callback.fingerprint, comment=comment, message=index)
        steps.append(step)
        by_fingerprint[callback.fingerprint] = step
        if key not in users:
            users[key] = user
    from simulator.providers import WhatsAppProvider

    _outside_notes(users, notes)
    several = sum(len(numbers) > 1 for numbers in answered.values())
    if several:
        notes.kept["users answering several of the brand's messages (each its own message "
                   "of `messages:`, named by the steps' `message:`)"] += several
    if len(identities) > 1:
        notes.differs["users with and without a BSUID (a run draws who has one, by the "
                      "captured shares)"] += sum(identities.values())
    if len(platforms) > 1:
        notes.differs["users on different phones (a run draws each user's platform)"] += \
            len(users)
    if business_country and business_country not in WhatsAppProvider.countries:
        notes.kept[f"a business number of a country wasim does not draw "
                   f"({business_country}): written as a fake number of that country"] += 1
    copied = sum(step.copies > 0 for step in steps)
    if copied:
        notes.differs["redelivered callbacks (a run sends the copy right after its "
                      "original)"] += copied
    text = _scenario_text(name, seed, anon, capture, users, steps, buttons, identities,
                          platforms, (business_country, business_number), refs or {})
    report = _report(anon, notes, capture, steps, users, templates)
    outputs = {"scenario": text, **templates, "report": report}
    for what, output in outputs.items():
        leaked = anon.leak(output)
        if leaked is not None:
            raise WasimError(f"an original value ({leaked}) would appear in the {what}; "
                             "nothing was written", where="wasim import",
                             hint="A button payload or label that holds a customer's "
                                  "number or name is kept as the brand's and trips this; "
                                  "otherwise please report the capture's shape (a bug).",
                             exit_code=ExitCode.FAILED)
    return Imported(text, templates, report, len(steps), len(users))


# --- reading one callback ---------------------------------------------------------------------


def _all_names(callbacks: Sequence[Callback]) -> list[str]:
    names = []
    for callback in callbacks:
        profile = callback.contact.get("profile")
        if isinstance(profile, dict) and isinstance(profile.get("name"), str):
            names.append(profile["name"])
        cards = callback.message.get("contacts")
        for card in cards if isinstance(cards, list) else []:
            card_name = card.get("name") if isinstance(card, dict) else None
            if isinstance(card_name, dict):
                names.extend(str(v) for v in card_name.values() if isinstance(v, str))
    return names


def _user_of(callback: Callback, anon: Anonymiser, users: dict[str, FakeUser]
             ) -> tuple[str, FakeUser, str]:
    """The real user's key, their fake, and their identity mode (bsuid, phone, username)."""
    contact, message, status = callback.contact, callback.message, callback.status
    number = _text(contact.get("wa_id")) or _text(message.get("from")) \
        or _text(status.get("recipient_id"))
    bsuid = _text(contact.get("user_id")) or _text(message.get("from_user_id")) \
        or _text(status.get("recipient_user_id"))
    profile = _obj(contact.get("profile"))
    name = _text(profile.get("name"))
    key = number or bsuid
    if not key:
        raise WasimError("a callback with neither a number nor a user id", where=callback.where,
                         hint="Every message names its sender (from or from_user_id).")
    for value, what in ((number, "wa_id"), (_text(message.get("from")), "wa_id"),
                        (_text(status.get("recipient_id")), "wa_id")):
        if value:
            anon.number(value, what)
    for value in (bsuid, _text(contact.get("parent_user_id")),
                  _text(message.get("from_parent_user_id")),
                  _text(status.get("recipient_parent_user_id"))):
        if value:
            anon.bsuid(value, "user_id (BSUID)")
    if _text(profile.get("username")):
        anon.same_shape(str(profile["username"]), "username")
    known = users.get(key)
    user = known if known is not None else anon.user(number, name or "", key)
    if name and known is not None:
        fake_name = anon.name(name, user.country)  # a renamed profile: replaced all the same
        if not known.name:  # first seen in a status (no profile): named now
            user = users[key] = anon.rename(key, fake_name)
    identity = "username" if not number else ("bsuid" if bsuid else "phone")
    return key, user, identity if known is None else ""


def _scrub_envelope(callback: Callback, anon: Anonymiser) -> None:
    """Replace (for the report's counts and the leak scan) the ids no step carries."""
    metadata = callback.value.get("metadata")
    if isinstance(metadata, dict):
        anon.number(_text(metadata.get("display_phone_number")), "business number")
        anon.same_shape(_text(metadata.get("phone_number_id")), "phone_number_id")
    anon.same_shape(callback.waba_id, "waba_id")
    extra = callback.extra_info
    anon.same_shape(_text(extra.get("waba_id")), "waba_id")
    for key in ("trace_id", "reply_to"):
        anon.same_shape(_text(extra.get(key)), key)
    message_id = _text(extra.get("message_id"))  # a status's: a wamid or Kaleyra's own id
    if message_id.startswith("wamid."):
        anon.wamid(message_id)
    elif message_id:
        anon.same_shape(message_id, "Kaleyra id")
    anon.url(_text(extra.get("media_url")))
    message, status = callback.message, callback.status
    anon.wamid(_text(message.get("id")))
    context = _obj(message.get("context"))
    anon.wamid(_text(context.get("id")))
    if _text(context.get("from")):
        anon.number(_text(context.get("from")), "business number")
    if status:
        anon.wamid(_text(status.get("id")))
        conversation = status.get("conversation")
        if isinstance(conversation, dict):
            anon.same_shape(_text(conversation.get("id")), "conversation id")


def _answered(callback: Callback) -> tuple[str, bool]:
    """The original wamid of the brand's message this callback answers (a reply's or
    quote's context, a reaction's message, a status's id), or ""; and whether it answers
    the user's own earlier message instead (which a run does not reproduce)."""
    from simulator.wamid import InvalidWamid, decode_wamid

    message = callback.message
    target = (_text(_obj(message.get("context")).get("id"))
              or _text(_obj(message.get("reaction")).get("message_id"))
              or _text(callback.status.get("id")))
    if not target:
        return "", False
    try:
        from_business = decode_wamid(target).from_business
    except InvalidWamid:  # not a wamid we can read: the brand's, unless it says otherwise
        sender = _text(message.get("from"))
        from_business = not sender or _text(_obj(message.get("context")).get("from")) != sender
    return (target, False) if from_business else ("", True)


def _outside_notes(users: dict[str, FakeUser], notes: _Notes) -> None:
    """What was done for users from countries wasim does not draw: a fake number of their
    own country (its BSUID, in a run, is derived for that country as anyone's), a name from
    its locale, and where either was not possible."""
    from simulator.anonymise import name_locale, region_of
    from simulator.providers import WhatsAppProvider

    outside = [u for u in users.values() if u.country not in WhatsAppProvider.countries]
    countries = ", ".join(sorted({u.country or "?" for u in outside}))
    if outside:
        notes.kept[f"users from countries wasim does not draw ({countries}): listed with a "
                   "fake mobile of their own country; a run gives them BSUIDs of that "
                   "country as anyone's"] += len(outside)
    unnamed = sum(name_locale(u.country) == "en_US" and u.country != "US" for u in outside)
    if unnamed:
        notes.differs["users of a country with no name locale (named from en_US)"] += unnamed
    elsewhere = sum(region_of(u.wa_id) != u.country for u in users.values())
    if elsewhere:
        notes.differs["users of a country with no mobile numbers to draw (given a number of "
                      "another country)"] += elsewhere


def _business_country(callback: Callback) -> tuple[str, str]:
    """The business number's country and the number ("" when the callback has none)."""
    from simulator.anonymise import region_of

    metadata = callback.value.get("metadata")
    number = _text(metadata.get("display_phone_number")) if isinstance(metadata, dict) else ""
    region = region_of(number) if number else ""
    return (region, number) if region else ("", "")


def _platform(callback: Callback) -> str:
    from simulator.wamid import InvalidWamid, decode_wamid

    ident = _text(callback.message.get("id"))
    if not ident:
        return ""
    try:
        decoded = decode_wamid(ident)
    except InvalidWamid:
        return ""
    return {32: "android", 20: "ios", 22: "web"}.get(len(decoded.message_id), "")


def _ref(anon: Anonymiser, value: Any) -> str:
    text = _text(value)
    return anon.same_shape(text, "ref") if text else ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- the step of one callback -----------------------------------------------------------------


def _action(callback: Callback, kind: str, anon: Anonymiser, buttons: dict[str, str],
            notes: _Notes, *, quotes: bool = False) -> list[str] | None:
    """The YAML lines of the step that sends this callback's kind; None: no built-in kind.
    `quotes`: the message answers one of the brand's (a reply in context)."""
    message = callback.message
    context = _obj(message.get("context"))
    # Kinds whose message may quote another (simulator.kinds.rules): the quote is kept.
    quote = ["quote: true"] if quotes and context.get("id") and not context.get("forwarded") \
        and kind in ("text", "location", "contacts", *_MEDIA) else []
    if quote:
        notes.kept["messages quoting the brand's message (quote: true)"] += 1
    if kind == "status":
        return _status(callback, anon, notes)
    if kind == "button":
        button = _obj(message.get("button"))
        label, payload = _text(button.get("text")), _text(button.get("payload"))
        anon.keep(label)
        anon.keep(payload)
        notes.kept["button labels and payloads (the brand's template)"] += 1
        if label in buttons and buttons[label] != payload:
            notes.differs["a label seen with two payloads (the first is kept)"] += 1
        buttons.setdefault(label, payload or label)
        return [f"tap: {_q(label)}"]
    if kind in ("button_reply", "list_reply"):
        reply = _obj(_obj(message.get("interactive")).get(kind))
        fields = [f"reply_id: {_q(anon.keep(_text(reply.get('id'))))}",
                  f"reply_title: {_q(anon.keep(_text(reply.get('title'))))}"]
        if kind == "list_reply" and _text(reply.get("description")):
            fields.append(f"reply_description: {_q(anon.keep(_text(reply['description'])))}")
        notes.kept["reply button and list row ids and titles (the brand's message)"] += 1
        return [f"send: {{{kind}: {{{', '.join(fields)}}}}}"]
    if kind == "text":
        body = _obj(message.get("text"))
        fields = [f"text: {_q(anon.text(_text(body.get('body'))))}"]
        if context.get("frequently_forwarded"):
            fields.append("forwarded: frequently_forwarded")
        elif context.get("forwarded"):
            fields.append("forwarded: forwarded")
        else:
            fields += quote
        return [f"send: {{text: {{{', '.join(fields)}}}}}"]
    if kind in _MEDIA:
        wire = "audio" if kind == "voice" else kind
        media = _obj(message.get(wire))
        for key in ("id", "sha256"):
            anon.same_shape(_text(media.get(key)), f"media {key}")
        if _text(media.get("filename")):
            anon.text(_text(media["filename"]), "file name")
        if _text(media.get("link")) or _text(media.get("url")):
            anon.url(_text(media.get("link")) or _text(media.get("url")))
        caption = _text(media.get("caption"))
        fields = quote
        if caption and kind in _CAPTIONED:
            fields = [f"caption: {_q(anon.text(caption, 'caption'))}", *quote]
        return [f"send: {{{kind}: {{{', '.join(fields)}}}}}"]
    if kind == "location":
        return [_location(message, anon, quote)]
    if kind == "contacts":
        _scrub_cards(message.get("contacts"), anon)
        notes.differs["shared contact cards (a run shares one drawn card)"] += 1
        return [f"send: {{contacts: {{{', '.join(quote)}}}}}"]
    if kind == "reaction":
        reaction = _obj(message.get("reaction"))
        anon.wamid(_text(reaction.get("message_id")))
        emoji = _text(reaction.get("emoji"))
        notes.kept["reaction emoji"] += 1
        return [f"react: {_q(anon.keep(emoji))}"]
    if kind == "unsupported":
        return ["send: {unsupported: {}}"]
    return None


def _status(callback: Callback, anon: Anonymiser, notes: _Notes) -> list[str]:
    status = callback.status
    value = _text(status.get("status"))
    notes.kept["status values and error codes"] += 1
    if value not in _STATUSES:
        notes.differs[f"statuses {value[:20]!r} sent as sent"] += 1
        return ["statuses: [sent]"]
    if value == "failed":
        from simulator.kinds.status import ERRORS

        errors = status.get("errors")
        code = errors[0].get("code") if isinstance(errors, list) and errors \
            and isinstance(errors[0], dict) else None
        if isinstance(code, int) and code in ERRORS:
            return [f"statuses: [{{failed: {code}}}]"]
        notes.differs["failed statuses with an error outside wasim's catalogue"] += 1
    return [f"statuses: [{value}]"]


def _location(message: dict[str, Any], anon: Anonymiser, quote: list[str]) -> str:
    place = _obj(message.get("location"))
    lat, lng = place.get("latitude"), place.get("longitude")
    fields = []
    if isinstance(lat, int | float) and isinstance(lng, int | float) \
            and not isinstance(lat, bool) and not isinstance(lng, bool):
        new_lat, new_lng = anon.location(float(lat), float(lng))
        fields += [f"lat: {new_lat!r}", f"lng: {new_lng!r}"]
    for key, arg in (("name", "place_name"), ("address", "address")):
        if _text(place.get(key)):
            fields.append(f"{arg}: {_q(anon.text(_text(place[key]), f'location {key}'))}")
    if _text(place.get("url")):
        fields.append(f"url: {_q(anon.url(_text(place['url']), 'location url'))}")
    return f"send: {{location: {{{', '.join([*fields, *quote])}}}}}"


def _scrub_cards(cards: Any, anon: Anonymiser) -> None:
    """Every value of shared contact cards is someone's: all replaced (counted)."""
    for card in cards if isinstance(cards, list) else []:
        _scrub_any(card, anon, "contact card")


def _scrub_any(value: Any, anon: Anonymiser, what: str) -> Any:
    if isinstance(value, dict):
        return {k: _scrub_any(v, anon, what) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_any(v, anon, what) for v in value]
    if isinstance(value, str):
        return anon.same_shape(value, what) if value else value
    return value


# --- templates for shapes no kind renders -----------------------------------------------------

_PLACEHOLDERS = {
    ("metadata", "display_phone_number"): "tap.business.display_phone_number",
    ("metadata", "phone_number_id"): "tap.business.phone_number_id",
    ("contacts", "wa_id"): "tap.user.wa_id",
    ("contacts", "user_id"): "tap.user.user_id",
    ("profile", "name"): "tap.user.name",
    ("messages", "from"): "tap.user.wa_id",
    ("messages", "from_user_id"): "tap.user.user_id",
    ("messages", "id"): "tap.message_id",
    ("messages", "timestamp"): "tap.timestamp",
    ("context", "id"): "tap.template.wamid",
    ("context", "from"): "tap.business.display_phone_number",
    ("extra_info", "trace_id"): "tap.trace_id",
    ("extra_info", "reply_to"): "tap.template.reply_to",
    ("extra_info", "waba_id"): "tap.business.waba_id",
    ("extra_info", "ref"): "tap.template.ref",
    ("extra_info", "ref1"): "tap.template.ref1",
    ("extra_info", "ref2"): "tap.template.ref2",
    ("extra_info", "media_url"): "tap.media_url",
}
# Values that name a shape rather than a person: kept in templates.
_SHAPE_KEYS = frozenset(("messaging_product", "type", "field", "object", "mime_type", "status",
                         "country_code", "category", "pricing_model"))


def _template(callback: Callback, anon: Anonymiser) -> str:
    """A callback template (Kaleyra V2) of this shape: the tap's fields where the envelope
    has them, every other text replaced by a value of the same shape."""
    markers: dict[str, str] = {}

    def walk(value: Any, parent: str, key: str) -> Any:
        if isinstance(value, dict):
            return {_no_jinja(k): walk(v, key if key else parent, k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key, "") for v in value]
        expression = _PLACEHOLDERS.get((parent, key))
        if expression is not None and isinstance(value, str):
            marker = f"@@wasim{len(markers)}@@"
            markers[marker] = f"{{{{ {expression} | json }}}}"
            return marker
        if isinstance(value, str) and value and key not in _SHAPE_KEYS:
            return _no_jinja(_replaced(value, anon))
        if isinstance(value, str):
            return _no_jinja(value)
        if key in ("latitude", "longitude") and isinstance(value, float):
            return round(anon.rnd("template location").uniform(-60, 60), 6)
        return value

    document = {"meta_object": {"value": walk(callback.value, "", ""), "field": "messages"},
                "extra_info": walk(callback.extra_info or {"trace_id": "", "waba_id": ""},
                                   "", "extra_info")}
    text = json.dumps(document, ensure_ascii=False, indent=2)
    for marker, expression in markers.items():
        text = text.replace(json.dumps(marker), expression)
    header = ("{# Imported by `wasim import`: the shape of a captured callback that no built-in "
              "kind renders.\n   Use it as a scenario's `template: {callback: FILE}`. #}\n")
    return header + text + "\n"


def _replaced(value: str, anon: Anonymiser) -> str:
    """A text of a shape no kind knows: a wamid re-encoded, a number a fake of its country,
    anything else a value of the same shape."""
    from simulator.anonymise import region_of

    if value.startswith("wamid."):
        return anon.wamid(value)
    if value.isdigit() and 8 <= len(value) <= 15 and region_of(value):
        return anon.number(value, "number (templates)")
    return anon.same_shape(value, "other text (templates)")


def _no_jinja(text: str) -> str:
    """Text that cannot open a Jinja tag in a template: `{` and `}` become `(` and `)`."""
    return text.replace("{", "(").replace("}", ")")


def _safe(kind: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", kind.lower())[:40] or "unknown"


# --- the scenario text ------------------------------------------------------------------------


def _q(value: str) -> str:
    """A YAML double-quoted scalar that Jinja leaves alone (braces as \\x7b / \\x7d) and that
    holds no raw control character."""
    out = []
    for char in json.dumps(value, ensure_ascii=False):
        if char in "{}":
            out.append(f"\\x{ord(char):02x}")
        elif not char.isprintable():
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
        else:
            out.append(char)
    return "".join(out)


def _scenario_text(name: str, seed: int, anon: Anonymiser, capture: Capture,
                   users: dict[str, FakeUser], steps: list[_Step], buttons: dict[str, str],
                   identities: Counter[str], platforms: Counter[str],
                   business: tuple[str, str], refs: dict[str, str]) -> str:
    from simulator.providers import WhatsAppProvider

    countries = Counter(u.country for u in users.values())
    description = (f"Imported traffic: {len(steps)} callbacks from {len(users)} users in "
                   f"{len(countries)} countries.")
    lines = [
        f"# {name}: imported by `wasim import` from {len(capture.callbacks)} captured "
        "callback(s); every personal value",
        "# replaced (numbers, names, ids, texts, media, places), the brand's labels, payloads",
        "# and row ids kept. Steps keep the captured order and spacing.",
        f"name: {_q(name)}",
        f"description: {_q(description)}",
        f"seed: {seed}",
        "",
        "business:",
        f"  name: {_q(_company(anon))}",
    ]
    business_country, business_number = business
    if business_country in WhatsAppProvider.countries:
        lines.append(f"  country: {business_country}")
    elif business_number:
        # wasim draws no business number there: the fake of the captured one, same country
        fake = anon.number(business_number, "business number")
        lines.append(f"  display_phone_number: {_q(fake)}")
    template_names = capture.template_names or ("imported_template",)
    lines += ["", "template:", f"  name: {_q(anon.keep(template_names[0]))}"]
    if buttons:
        lines.append("  buttons:")
        lines += [f"    - {{text: {_q(label)}, payload: {_q(payload)}}}"
                  for label, payload in buttons.items()]
    for key in ("ref", "ref1", "ref2"):
        if key in refs:
            lines.append(f"  {key}: {_q(refs[key])}")
    if len(template_names) > 1:
        lines.append(f"templates: [{', '.join(_q(anon.keep(n)) for n in template_names[1:])}]")
    most = max((step.message for step in steps), default=0)
    if most > 1:
        lines += ["# The brand's messages a user answered, in the order first answered: a step",
                  "# names the one it answers (`message:`), msg1 when it names none.",
                  f"messages: [{', '.join(f'msg{n}' for n in range(1, most + 1))}]"]
    lines += ["", "cast:", "  users:"]
    lines += [f"    - {{wa_id: {_q(u.wa_id)}" + (f", name: {_q(u.name)}}}" if u.name else "}")
              for u in users.values()]
    if len(platforms) == 1:
        lines.append(f"  platform: {next(iter(platforms))}")
    if identities:
        shares = ", ".join(f"{k}: {n}" for k, n in sorted(identities.items()))
        lines.append(f"  identity: {{{shares}}}")
    envelopes = Counter(c.envelope for c in capture.callbacks)
    if envelopes["meta"] > envelopes["kaleyra"]:  # the webhook is Meta's own (Meta direct)
        lines += ["", "target:", "  envelope: meta"]
    lines += ["", "steps:"]
    for step in steps:
        if step.comment:
            lines.append(f"  # {step.comment}")
        lines.append(f"  - name: {_q(step.name)}")
        lines.append(f"    who: [{_q(step.who)}]")
        if step.after:
            lines.append(f"    after: {step.after!r}")
        if step.message > 1:
            lines.append(f"    message: msg{step.message}")
        lines += [f"    {line}" for line in step.body]
        if step.copies:
            lines.append("    duplicate: true  # the capture has this callback more than once")
    return "\n".join(lines) + "\n"


def _company(anon: Anonymiser) -> str:
    from simulator.anonymise import fake_words

    # Brand names are not personal, but a shared scenario should not name the brand either.
    words = fake_words(14, anon.rnd("business name")).split()[:2]
    return " ".join(w.capitalize() for w in words) or "Imported Brand"


# --- the report -------------------------------------------------------------------------------


def _report(anon: Anonymiser, notes: _Notes, capture: Capture, steps: list[_Step],
            users: dict[str, FakeUser], templates: dict[str, str]) -> str:
    countries = Counter(u.country for u in users.values())
    copies = sum(s.copies for s in steps)
    lines = [f"wasim import: {len(capture.callbacks)} callback(s) read, {len(steps)} step(s), "
             f"{copies} redelivery(ies) kept as duplicates, {len(users)} user(s) "
             f"({', '.join(f'{c} {n}' for c, n in sorted(countries.items()))})",
             "replaced (values per field):"]
    lines += [f"  {what}: {n}" for what, n in sorted(anon.replaced.items())]
    lines.append("kept (the brand's, not personal):")
    lines += [f"  {what}: {n}" for what, n in sorted(notes.kept.items())] or ["  nothing"]
    lines.append("  kinds, the captured order and spacing, countries, statuses")
    envelopes = Counter(c.envelope for c in capture.callbacks)
    if len(envelopes) > 1:
        notes.differs[f"callbacks in the other envelope (a run sends every one as "
                      f"{'meta' if envelopes['meta'] > envelopes['kaleyra'] else 'kaleyra'})"
                      ] += min(envelopes.values())
    if notes.differs:
        lines.append("where a run differs from the capture:")
        lines += [f"  {what}: {n}" for what, n in sorted(notes.differs.items())]
    if templates:
        lines.append("templates written: " + ", ".join(sorted(templates)))
    lines.append("no original value is in any file written (checked in raw, JSON-escaped and "
                 "PHP-escaped form)")
    return "\n".join(lines) + "\n"


# --- writing ----------------------------------------------------------------------------------


def write_outputs(files: dict[Path, str]) -> None:
    """Write every file or none: each to a new temporary file in its folder (never through
    a link), then all renamed into place."""
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in files.items():
            # No link in the name or any folder of it (simulator.safefiles): a cloned
            # project's `out -> ~/elsewhere` must not choose where the files land.
            check_no_links(path, "the imported files")
            folder = path.parent if str(path.parent) else Path(".")
            if not folder.is_dir():
                raise WasimError("no such folder", where=str(folder),
                                 hint=f"Create it, or give another {named('out')}.")
            temp = folder / f".{path.name}.{os.getpid()}.tmp"
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            try:
                descriptor = os.open(temp, flags, 0o644)
            except OSError as exc:
                raise WasimError(f"cannot write ({exc.strerror})", where=str(temp)) from None
            staged.append((temp, path))
            with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as file:
                file.write(text)
        for temp, path in staged:
            check_no_links(path, "the imported files")
            os.replace(temp, path)
        staged = []
    finally:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
