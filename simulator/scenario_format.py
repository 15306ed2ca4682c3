"""The scenario file format as one declared table: every key of every block, its type,
bounds, default and help. The loader (simulator.scenarios) takes each block's keys and reads
each plain value through it, and the JSON Schema (simulator.schema) and the docs' reference
are generated from it, so the three cannot disagree on what a key is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simulator.meta import BATCH_SHAPES, MAX_BATCH

# Bounds on what a file may ask for, so a typo or a hostile file ends in a clear error rather
# than hours of planning or gigabytes of memory (a planned send holds its body, ~3 KB).
MAX_FILE_BYTES = 4_000_000  # a scenario file, before Jinja
MAX_SENDS_PER_PLAN = 100_000  # deliveries one run may plan, duplicates and redeliveries included
MAX_SEED = 2**63 - 1  # seeds are 64-bit, as they are shown and stored
MAX_DURATION = 7 * 86_400.0  # after, spread, redeliver_after: a week at most
MAX_NUMBER = 1_000_000_000.0  # weights (choices, no_tap)
MAX_CONCURRENCY = 10_000  # deliveries in flight at once
DEFAULT_REPLY_WITHIN = 2.0  # seconds an app has to reply to a tap through the send API
MAX_REPLIES = 100  # `count:` above this is a typo
DURATION_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$"
REPLY_TYPES = ("text", "template", "interactive", "reaction", "location", "contacts", "image",
               "video", "audio", "document", "sticker", "media", "mediatemplate",
               "authenticationtemplate", "button", "list", "order_details")
VERIFY_EXPECT = ("pass", "refused")
PLATFORMS = ("android", "ios", "web", "mix")

TYPES = ("text", "number", "whole", "flag", "duration", "choice", "block", "custom")
"""text: a string (a number is read as its text); number, whole: bounded by low and high;
flag: true or false; duration: seconds, or a number with ms, s, m or h; choice: one of
`choices`; block: a mapping of the block named `block`; custom: a value of several shapes,
read by the loader's own function and described by the schema generator."""


@dataclass(frozen=True)
class Key:
    """One key of a block of the scenario file."""

    name: str
    type: str
    help: str
    default: Any = None
    low: float = 0.0
    high: float = MAX_NUMBER
    choices: tuple[str, ...] = ()
    block: str | None = None  # the block this key's mapping is, for type "block"
    required: bool = False


def _k(name: str, type_: str, help_: str, **extra: Any) -> Key:
    return Key(name, type_, help_, **extra)


BLOCKS: dict[str, tuple[Key, ...]] = {
    "scenario": (
        _k("name", "text", "The scenario's name (default: the file's name)."),
        _k("description", "text", "What it exercises, in one line (shown by `wasim scenarios`)."),
        _k("seed", "whole", "Every generated value comes from this seed: same seed, same bytes, "
           "same order.", low=-MAX_SEED, high=MAX_SEED),
        _k("business", "block", "The brand's number; anything left out is generated.",
           block="business"),
        _k("template", "block", "The template message the brand sent: its text, quick-reply "
           "buttons and refs.", block="template"),
        _k("cast", "block", "Who received the template: generated users by country, and listed "
           "users.", block="cast"),
        _k("steps", "custom", "Steps run one after the other (default: one step where "
           "everyone taps)."),
        _k("chaos", "block", "Delivery faults as a real platform produces them.", block="chaos"),
        _k("expect", "block", "What the handler must answer, checked on every delivery's final "
           "answer.", block="expect"),
        _k("target", "block", "Where and how to deliver: any delivery setting of `wasim fire`.",
           block="target"),
        _k("templates", "custom", "Other templates the brand may send (its replies); one named "
           "in neither this nor `template:` is accepted and then fails (132001)."),
        _k("messages", "custom", "The brand's messages each user received, by name: [offer, "
           "reminder]. Each is its own message (its own wamid) per user; a step names the one "
           "it answers with `message:` (default: the first). Without it, one message."),
    ),
    "business": (
        _k("display_phone_number", "text", "The business number, digits with country code."),
        _k("phone_number_id", "text", "Meta's phone_number_id (15-16 digits)."),
        _k("waba_id", "text", "The WhatsApp Business Account id (15-16 digits)."),
        _k("country", "text", "Country of the generated business number (ISO 3166 alpha-2).",
           default="IN"),
        _k("name", "text", "The brand's name as the terminal UI's phone shows it (not on the "
           "wire)."),
    ),
    "template": (
        _k("name", "text", "The template the brand sent.", default="promo"),
        _k("body", "text", "Its text, shown in the terminal UI's phone. WhatsApp's {{1}} is "
           "written {{ \"{{1}}\" }}, since the file is Jinja."),
        _k("buttons", "custom", "Quick replies: a label, or {text, payload}; the payload "
           "defaults to the text (as Meta sends it)."),
        _k("ref", "text", "Echoed in extra_info.ref."),
        _k("ref1", "text", "Echoed in extra_info.ref1."),
        _k("ref2", "text", "Echoed in extra_info.ref2."),
        _k("callback", "text", "The callback template: a built-in name, or a file next to the "
           "scenario.", default="button_tap"),
    ),
    "button": (
        _k("text", "text", "The button's label.", required=True),
        _k("payload", "text", "Its payload (default: the label)."),
    ),
    "cast": (
        _k("countries", "custom", "Generated users by country: {IN: 15, US: 5}."),
        _k("users", "custom", "Listed users: [{wa_id, name}]."),
        _k("platform", "choice", "The users' phone, which sets the shape of message ids; mix "
           "draws one per user.", default="mix", choices=PLATFORMS),
        _k("identity", "custom", "How users are identified, by share: bsuid (default), phone, "
           "username; e.g. {bsuid: 90, username: 10}, or one mode for everyone."),
        _k("quirks", "custom", "Number quirks of real traffic, each for a share of the users: "
           "{mx521: 0.5, br8: 0.3}."),
        _k("enterprise", "number", "Share of users with an enterprise parent_user_id.",
           default=0.0, high=1.0),
    ),
    "user": (
        _k("wa_id", "text", "The user's number, with country code.", required=True),
        _k("name", "text", "Their profile name."),
    ),
    "step": (
        _k("name", "text", "The step's name (default: step N); names are unique."),
        _k("who", "custom", "Who taps: all (default), a number of users (20), a share (\"60%\"), "
           "or listed users by number or name ([Asha Menon])."),
        _k("tap", "text", "The button every chosen user taps (or `choices`)."),
        _k("choices", "custom", "Weighted buttons: {Shop now: 70, Stop promotions: 10}."),
        _k("no_tap", "number", "Weight of users who see the message and tap nothing.",
           default=0.0),
        _k("after", "duration", "Wait this long after the previous step.", default=0.0),
        _k("spread", "duration", "Taps at random moments over this long.", default=0.0),
        _k("repeat", "whole", "Each chosen user taps this many times.", default=1, low=1,
           high=MAX_SENDS_PER_PLAN),
        _k("concurrency", "whole", "Deliveries in flight at once.", default=1, low=1,
           high=MAX_CONCURRENCY),
        _k("duplicate", "custom", "Deliver every tap of this step twice: true (the copy right "
           "after) or concurrently."),
        _k("target", "block", "This step's delivery settings, over the scenario's.",
           block="target"),
        _k("expect", "block", "This step's expectations, over the scenario's.", block="expect"),
        _k("send", "custom", "Other kinds each chosen user sends instead of a tap: {text: hi}, "
           "{kind: image, caption: ...}, or a list of them."),
        _k("react", "text", "An emoji on the brand's message ('' removes the reaction)."),
        _k("statuses", "custom", "Statuses of the brand's message: [sent, delivered, read], "
           "{failed: 131047} for a failure."),
        _k("tap_reply", "custom", "Tap a button of the app's own message (needs the send API): "
           "a label or payload, or {button, within}."),
        _k("verify", "block", "Meta's GET verification handshake instead of any tap.",
           block="verify"),
        _k("message", "text", "Which of the brand's `messages:` this step's taps, replies, "
           "reactions, statuses and quotes are about (default: the first)."),
    ),
    "tap_reply": (
        _k("button", "text", "The label (title) or payload of the app's button to tap.",
           required=True),
        _k("within", "duration", "How long to wait for that message.", default=10.0),
    ),
    "verify": (
        _k("verify_token", "custom", "The token the handler compares hub.verify_token with (1 "
           "to 1024 printable characters).", required=True),
        _k("expect", "choice", "pass: the challenge is echoed for this token and a wrong one "
           "refused; refused: this token is refused.", default="pass", choices=VERIFY_EXPECT),
    ),
    "chaos": (
        _k("duplicate", "number", "Share of taps delivered twice, same bytes.", default=0.0,
           high=1.0),
        _k("duplicate_concurrently", "flag", "The copy goes at the same moment, in parallel.",
           default=False),
        _k("shuffle", "whole", "Shuffle delivery order within windows of this many sends.",
           default=0, high=MAX_SENDS_PER_PLAN),
        _k("redeliver", "number", "Share of taps delivered again later.", default=0.0, high=1.0),
        _k("redeliver_after", "duration", "How long after.", default=30.0),
        _k("status_disorder", "number", "Share of users whose statuses have one of the known "
           "disorders (sent after read, delivered missing, a duplicate, failed after sent).",
           default=0.0, high=1.0),
        _k("batch", "number", "Share of taps that open a batch: it and the next go in one "
           "body.", default=0.0, high=1.0),
        _k("batch_size", "whole", "Taps in a batch (fewer at the end of the run).", default=3,
           low=2, high=MAX_BATCH),
        _k("batch_shape", "choice", "messages in one value, several changes, or several "
           "entries.", default="messages", choices=BATCH_SHAPES),
    ),
    "expect": (
        _k("status", "custom", "Statuses that pass: codes, ranges (200-299) or classes (2xx)."),
        _k("max_latency", "duration", "The longest answer time that passes (500ms, 2s)."),
        _k("body_contains", "custom", "Text (or a list of texts) the answer's body contains."),
        _k("json", "custom", "JSON paths in the answer's body and their expected values: "
           "{\"$.status\": ok}."),
        _k("reply", "custom", "What the app sends back through the send API for each tap: "
           "true (at least one reply), or {within, type, contains, template, count}."),
    ),
    "reply": (
        _k("within", "duration", "The window, from the moment the callback left.",
           default=DEFAULT_REPLY_WITHIN),
        _k("type", "choice", "The message type the reply must have.", choices=REPLY_TYPES),
        _k("contains", "text", "Text the reply's body, caption or template name contains (any "
           "case)."),
        _k("template", "text", "The template the reply must be."),
        _k("count", "whole", "Exactly this many replies per tap (0: none); without it, at least "
           "one.", high=MAX_REPLIES),
    ),
}
"""Every block but `target` (whose keys are the delivery settings of simulator.settings)."""


def keys(block: str) -> tuple[str, ...]:
    """The keys a block allows, in the table's order."""
    if block == "target":
        from simulator.settings import KEYS

        return KEYS
    return tuple(key.name for key in BLOCKS[block])


def key(block: str, name: str) -> Key:
    """The declared key `name` of `block`."""
    for declared in BLOCKS[block]:
        if declared.name == name:
            return declared
    raise KeyError(f"{block}.{name}")
