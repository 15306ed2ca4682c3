"""Every kind of callback a brand's webhook receives, one module each: adding a kind is one
module (its fields, its check, builder, description, phone summary and, for a kind the
built-in rules in `simulator.kinds.rules` do not know, its validation rules) plus one line in
KIND_SPECS. The command line's options, a scenario's `send:`, `wasim.send()` and
`--kind list` are generated from what the module declares (docs/guides/extending.md).

`button` (the quick-reply tap) renders through its Jinja template, as before; the others are
built in code from the same seeded facts (a tap's user, ids and clock) and serialized once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from simulator.errors import WasimError, did_you_mean
from simulator.kinds import (
    contacts,
    interactive,
    location,
    media,
    reaction,
    status,
    text,
    unsupported,
)
from simulator.kinds.base import Facts, KindArgs, KindSpec, first_message
from simulator.models import Tap
from simulator.overrides import apply_overrides
from simulator.tapped import dig
from simulator.wire import to_wire

BUTTON = "button"
KIND_SPECS: dict[str, KindSpec] = {spec.name: spec for spec in (
    text.SPEC, interactive.BUTTON_REPLY, interactive.LIST_REPLY, *media.SPECS, location.SPEC,
    contacts.SPEC, reaction.SPEC, unsupported.SPEC, status.SPEC)}
BUTTON_DESCRIPTION = "a quick-reply tap on the brand's template (the default; --template)"


def kind_names() -> list[str]:
    """Every kind `--kind` accepts, the template tap first."""
    return [BUTTON, *KIND_SPECS]


def kind_rows() -> list[tuple[str, str, str]]:
    """One row per kind: its name, what it is and its options (`render --kind list`)."""
    rows = [(BUTTON, BUTTON_DESCRIPTION, "--button, --payload")]
    rows += [(spec.name, spec.description, ", ".join(spec.options))
             for spec in KIND_SPECS.values()]
    return rows


def get_kind(name: str, where: str | None = None) -> KindSpec:
    """The spec of kind `name`, or a one-line error naming the kinds (at `where`, or at the
    field `kind` for the face to place)."""
    spec = KIND_SPECS.get(name)
    if spec is None:
        names = kind_names()
        raise WasimError(f"no kind named {name!r}", where=where, field="kind",
                         hint=did_you_mean(name, names) or f"Kinds: {', '.join(names)}.")
    return spec


def build_document(name: str, tap: Tap, args: KindArgs, rnd: Any) -> dict[str, Any]:
    """The callback document of kind `name` for the facts of `tap`, drawing from `rnd`."""
    return get_kind(name).build(Facts(tap, rnd), args)


def kind_body(name: str, tap: Tap, args: KindArgs, rnd: Any,
              overrides: tuple[Any, ...] = ()) -> bytes:
    """The wire bytes of kind `name` for `tap`, with `overrides` applied."""
    document = build_document(name, tap, args, rnd)
    if overrides:
        apply_overrides(document, overrides)
    return to_wire(document)


def render_kind(name: str, options: Any, args: KindArgs) -> Iterator[Any]:
    """`options.count` callbacks of kind `name` (render's RenderOptions), a new user each."""
    from simulator.render import Rendered, render_callbacks
    from simulator.taps import TapFactory

    if name == BUTTON:
        yield from render_callbacks(options)
        return
    get_kind(name)
    factory = TapFactory(options.taps)
    rnd = factory.streams[f"kind:{name}"]
    for tap in factory.taps(options.count):
        yield Rendered(tap, kind_body(name, tap, args, rnd, options.overrides))


def kind_name(document: Any) -> str:
    """The kind a callback is, by the names `--kind` takes (`button` for a template tap;
    `voice`, `button_reply`, `list_reply` told apart); `?` when it is none of them."""
    if not isinstance(document, dict):
        return "?"
    value = dig(document, "meta_object", "value") or dig(document, "entry", 0, "changes", 0,
                                                          "value")
    if dig(value, "statuses", 0) is not None and dig(value, "messages", 0) is None:
        return "status"
    message = dig(value, "messages", 0)
    kind = dig(message, "type")
    if kind == "interactive":
        kind = dig(message, "interactive", "type")
    elif kind == "audio" and dig(message, "audio", "voice"):
        kind = "voice"
    return kind if isinstance(kind, str) and (kind == BUTTON or kind in KIND_SPECS) else "?"


def summarize(document: Any) -> str:
    """How the phone would show the callback, in one short line."""
    if not isinstance(document, dict):
        return "?"
    from simulator.meta import is_meta_document

    if is_meta_document(document):  # seen through its first change, as Kaleyra forwards it
        change = document["entry"][0].get("changes") if document["entry"] and \
            isinstance(document["entry"][0], dict) else None
        first = change[0] if isinstance(change, list) and change else None
        document = {"meta_object": first if isinstance(first, dict) else {}}
        statuses = dig(document, "meta_object", "value", "statuses", 0, "status")
        if statuses is not None:
            document["status"] = statuses  # Kaleyra lifts it to the top; Meta does not
    if "status" in document:
        return status.summary(document)
    message = first_message(document)
    kind = message.get("type")
    if kind == BUTTON:
        return f"[button] {message.get('button', {}).get('text', '')}"
    if kind == "interactive":
        return interactive.summary(document)
    spec = KIND_SPECS.get(str(kind))
    if spec is not None:
        return spec.summary(document)
    if kind in ("image", "video", "audio", "document", "sticker"):
        return media.summary(document)
    return f"[{kind}]"


__all__ = ["BUTTON", "KIND_SPECS", "KindArgs", "KindSpec", "build_document", "get_kind",
           "kind_body", "kind_name", "kind_names", "kind_rows", "render_kind", "summarize"]
