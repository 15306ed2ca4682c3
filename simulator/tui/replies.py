"""The other half of the chat, without any UI: what the phone shows of a message the app sent
through the local send API (simulator.sendapi), and which callback a tap on it becomes."""

from __future__ import annotations

from simulator.sendapi import SentMessage

# Which callback a tap becomes is decided in the core (the runner and the plugin tap too);
# re-exported here, where the phone's other helpers are.
from simulator.sendapi import action_of as action_of
from simulator.sendapi import is_list as is_list
from simulator.sendapi import reply_kind as reply_kind
from simulator.sendapi import row_description as row_description
from simulator.terminal import visible

# What a tick shows for each status: the mark, and a word, so no theme's colour is needed
# to tell read from delivered.
TICKS: dict[str, str] = {"sent": "✓ sent", "delivered": "✓✓ delivered", "read": "✓✓ read",
                         "failed": "✗ failed", "not-sent": "⊘ not sent"}
_ICONS = {"image": "🖼", "video": "🎞", "audio": "🔊", "document": "📄", "sticker": "🏷",
          "location": "📍", "contacts": "👤", "reaction": "", "template": "▤"}


SHOWN_CHARS = 1000  # of a message's text on the phone (an app may send megabytes)
LABEL_CHARS = 40  # of a button's or row's title


def shown(text: str, limit: int = SHOWN_CHARS) -> str:
    """Text from the app made safe to draw: control characters escaped (newlines kept), cut
    at `limit` characters."""
    return visible(text[:limit], newlines=True) + ("…" if len(text) > limit else "")


def bubble_text(message: SentMessage) -> str:
    """The message as the phone's bubble reads: its text, caption, template or place (safe
    to draw, and bounded)."""
    return shown(_bubble_text(message))


def _bubble_text(message: SentMessage) -> str:
    if message.template:
        params = f" ({', '.join(message.params)})" if message.params else ""
        return f"{_ICONS['template']} {message.template}{params}"
    if message.type == "reaction":
        return f"reacted {message.text}" if message.text else "removed a reaction"
    icon = _ICONS.get(message.type, "")
    if icon:
        return f"{icon} {message.type}" + (f"\n{message.text}" if message.text else "")
    return message.text


def failure_text(message: SentMessage) -> str:
    """Why a message the send API accepted never reaches the phone ("" when it does), e.g.
    "✗ fails 132001 Template name does not exist in the translation"."""
    if not message.error:
        return ""
    from simulator.kinds.status import ERRORS

    title = ERRORS.get(message.error, ("",))[0]
    return f"✗ fails {message.error}" + (f" {title}" if title else "")
