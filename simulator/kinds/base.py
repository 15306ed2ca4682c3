"""What every kind shares: its spec (name, fields, checks, builder, summary), the facts it is
built from and the Kaleyra envelope around an inbound message (wire-format sections 1, 5, 10).

A kind declares its fields (`Field`: name, type, help, bounds) and its checks once, in its
own module; the command line's options, the scenario's `send:`, `wasim.send()` and
`--kind list` are generated from those declarations (simulator.kinds.options, .steps)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Literal

from simulator.models import Tap

if TYPE_CHECKING:
    from simulator.checker import Kind as Rules

FieldType = Literal["text", "number", "integer", "flag"]


@dataclass(frozen=True)
class Field:
    """One field a kind reads: its name (the scenario key, the `wasim.send()` keyword and,
    with dashes, the command-line flag), its type, what it is (`help`), and its bounds:
    `choices`, or `low`..`high` for a number. A `negated` flag field is true unless given."""

    name: str
    help: str
    type: FieldType = "text"
    choices: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    unit: str = ""  # what a number counts ("degrees"), for messages
    metavar: str = "TEXT"
    flag: str = ""  # the command-line flag when it is not --NAME (--place-url for url)
    negated: bool = False  # a flag that sets the field false: --no-contacts

    @property
    def option(self) -> str:
        """Its command-line flag."""
        if self.flag:
            return self.flag
        return ("--no-" if self.negated else "--") + self.name.replace("_", "-")

    def parse(self, value: Any) -> Any:
        """`value` from a file or a keyword as this field's type; ValueError says why not."""
        if self.type == "flag":
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
            return value
        if self.type in ("number", "integer"):
            what = self.unit or ("an integer" if self.type == "integer" else "a number")
            low = self.low if self.low is not None else float("-inf")
            high = self.high if self.high is not None else float("inf")
            if isinstance(value, bool) or not isinstance(value, int | float) \
                    or (self.type == "integer" and not isinstance(value, int)) \
                    or not low <= value <= high:
                raise ValueError(f"expected {what} from {low:g} to {high:g}, got {value!r}")
            value = float(value) if self.type == "number" else value
        elif isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValueError(f"expected text, got {value!r}"[:200])
        else:
            value = str(value)
        if self.choices and value not in self.choices:
            raise ValueError(f"unknown {self.name} {value!r}; one of "
                             f"{', '.join(map(str, self.choices))}")
        return value


@dataclass(frozen=True)
class KindArgs:
    """What the person asked for (`render --kind` options, plugin keywords); None: drawn.

    The built-in kinds' fields are attributes; a kind added later reads its own through
    `get(name)` (they travel in `extra`), so adding a kind never edits this class."""

    text: str | None = None
    forwarded: str | None = None  # "forwarded" or "frequently_forwarded"
    reply_id: str | None = None
    reply_title: str | None = None
    reply_description: str | None = None
    media: str | None = None  # image, video, audio, voice, document, sticker
    caption: str | None = None
    lat: float | None = None
    lng: float | None = None
    place_name: str | None = None
    address: str | None = None
    url: str | None = None
    emoji: str | None = None  # "" is the un-react
    status: str | None = None
    error: int | None = None
    contacts: bool = True  # statuses: with the 2026 `contacts` entry
    quote: bool = False  # a reply quoting the brand's message (context: from, id)
    # Statuses of one message share its conversation (simulator.world): the send API gives
    # the window's id, expiry and category; None draws them (`render --kind status`).
    conversation_id: str | None = None
    expiration: int | None = None
    category: str | None = None
    extra: tuple[tuple[str, Any], ...] = ()  # the fields of kinds that are not built in

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> KindArgs:
        """KindArgs from field values by name, whoever declared the fields."""
        own = {f.name for f in fields(cls)} - {"extra"}
        return replace(cls(**{k: v for k, v in values.items() if k in own}),
                       extra=tuple((k, v) for k, v in values.items() if k not in own))

    def get(self, name: str, default: Any = None) -> Any:
        """The value of field `name` (None, or `default`, when it was not given)."""
        if name != "extra" and name in _OWN_FIELDS:
            return getattr(self, name)
        return dict(self.extra).get(name, default)


_OWN_FIELDS = frozenset(f.name for f in fields(KindArgs))


@dataclass(frozen=True)
class Facts:
    """One callback's generated facts: the tap's ids and people, and this kind's own stream
    (so a kind's draws never shift another family's values)."""

    tap: Tap
    rnd: random.Random


Builder = Callable[[Facts, KindArgs], dict[str, Any]]


# A kind's check of its fields together: None, or (the field at fault, what is wrong, what to
# do). The two texts name fields as {name}: each face fills in how it shows a field (a flag,
# a key, a keyword) through `KindSpec.broken`.
Check = Callable[[KindArgs], "tuple[str, str, str] | None"]


@dataclass(frozen=True)
class KindSpec:
    """One kind as every face sees it: its name, what it is, the fields it reads (`main`: the
    one a shorthand value fills, `send: {text: hi}`), its check of them together, how its
    callback is built, how the phone shows it, and (`rules`) what `wasim validate` checks of
    its message, for a kind the built-in rules (simulator.kinds.rules) do not know."""

    name: str
    description: str
    build: Builder
    summary: Callable[[dict[str, Any]], str]
    fields: tuple[Field, ...] = ()
    main: str | None = None
    check: Check | None = None
    rules: Rules | None = field(default=None, compare=False)
    aliases: tuple[str, ...] = field(default=())

    @property
    def options(self) -> tuple[str, ...]:
        """The command-line flags of its fields."""
        return tuple(f.option for f in self.fields)

    def broken(self, args: KindArgs, shown: Callable[[Field], str]
               ) -> tuple[str, str, str] | None:
        """Its check of `args`: None, or (the field at fault, what is wrong, what to do) with
        each field named as `shown` names it."""
        if self.check is None:
            return None
        found = self.check(args)
        if found is None:
            return None
        names = {f.name: shown(f) for f in self.fields}
        field_name, message, hint = found
        return field_name, message.format_map(names), hint.format_map(names)

    def get_field(self, name: str) -> Field | None:
        """Its field called `name`, or None."""
        return next((f for f in self.fields if f.name == name), None)


def contact_of(tap: Tap, *, profile: bool = True) -> dict[str, Any]:
    """The user's `contacts[]` entry in the identity mode the tap's user has (as the template)."""
    user = tap.user
    contact: dict[str, Any] = {}
    if profile:
        contact["profile"] = {"name": user.name}
        if user.username:
            contact["profile"]["username"] = user.username
    if not user.username and user.wa_id:  # a BSUID-only recipient has no number here
        contact["wa_id"] = user.wa_id
    if user.user_id:
        contact["user_id"] = user.user_id
        if user.parent_user_id:
            contact["parent_user_id"] = user.parent_user_id
        contact["country_code"] = user.country
    return contact


def message_callback(facts: Facts, type_: str, body: dict[str, Any], *,
                     context: dict[str, Any] | None = None, media_url: str = "",
                     errors_first: bool = False) -> dict[str, Any]:
    """An inbound message's callback: the documented envelope, `type` and the kind's body
    (`errors_first`: Meta's unsupported sample puts `errors` before `type`)."""
    tap, user = facts.tap, facts.tap.user
    message: dict[str, Any] = {}
    if context is not None:
        message["context"] = context
    if not user.username:
        message["from"] = user.wa_id
    if user.user_id:
        message["from_user_id"] = user.user_id
        if user.parent_user_id:
            message["from_parent_user_id"] = user.parent_user_id
    message["id"] = tap.message_id
    message["timestamp"] = tap.timestamp
    if errors_first:
        message.update(body)
        message["type"] = type_
    else:
        message["type"] = type_
        message.update(body)
    return {
        "meta_object": {
            "value": {
                "messaging_product": "whatsapp",
                "metadata": {"display_phone_number": tap.business.display_phone_number,
                             "phone_number_id": tap.business.phone_number_id},
                "contacts": [contact_of(tap)],
                "messages": [message],
            },
            "field": "messages",
        },
        "extra_info": {
            "media_url": media_url,
            "ref": tap.template.ref,
            "ref1": tap.template.ref1,
            "ref2": tap.template.ref2,
            "reply_to": tap.template.reply_to,
            "trace_id": tap.trace_id,
            "waba_id": tap.business.waba_id,
        },
    }


def variant(facts: Facts) -> random.Random:
    """A stream for optional fields that vary from message to message (an animated sticker,
    a named place), seeded by the message's own id: drawing from it moves no other value."""
    return random.Random(f"variant:{facts.tap.message_id}")


def template_context(facts: Facts) -> dict[str, Any]:
    """`context` of a reply to the brand's message (its wamid, sent by the business)."""
    return {"from": facts.tap.business.display_phone_number, "id": facts.tap.template.wamid}


# The one declaration of `quote` (text, media, location, contacts: the kinds whose message
# may carry a reply context, simulator.kinds.rules): a scenario's `quote: true`, `--quote`.
QUOTE = Field("quote", "quote the brand's message: a reply whose context names its wamid.",
              "flag")


def quote_context(facts: Facts, args: KindArgs) -> dict[str, Any] | None:
    """The reply context of a message that quotes the brand's (`quote`), else None."""
    return template_context(facts) if args.quote else None


def first_message(document: dict[str, Any]) -> dict[str, Any]:
    """The callback's `messages[0]` (an empty dict if the document has none)."""
    try:
        message = document["meta_object"]["value"]["messages"][0]
    except (KeyError, IndexError, TypeError):
        return {}
    return message if isinstance(message, dict) else {}
