"""The other half of the chat, without any UI: what the phone shows of a message the app sent
through the local send API (simulator.sendapi), and which callback a tap on it becomes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from simulator.sendapi import SentMessage
from simulator.terminal import visible

# What a tick shows for each status: the mark, and a word, so no theme's colour is needed
# to tell read from delivered.
TICKS: dict[str, str] = {"sent": "✓ sent", "delivered": "✓✓ delivered", "read": "✓✓ read",
                         "failed": "✗ failed", "not-sent": "⊘ not sent"}
_ICONS = {"image": "🖼", "video": "🎞", "audio": "🔊", "document": "📄", "sticker": "🏷",
          "location": "📍", "contacts": "👤", "reaction": "", "template": "▤"}


def action_of(message: SentMessage) -> Mapping[str, Any]:
    """The interactive message's `action` object (V2 `interactive.action`, V1 `action` JSON)."""
    request = message.request
    if message.version == "v2":
        interactive = request.get("interactive")
        action = interactive.get("action") if isinstance(interactive, dict) else None
    else:
        raw = request.get("action")
        try:
            action = json.loads(raw) if isinstance(raw, str) else None
        except (ValueError, RecursionError):
            action = None
    return action if isinstance(action, dict) else {}


def is_list(message: SentMessage) -> bool:
    """Whether the message is an interactive list (rows to pick), not reply buttons."""
    return message.type == "interactive" and "sections" in action_of(message)


def reply_kind(message: SentMessage) -> str:
    """The kind of callback a tap on the message's buttons sends."""
    if message.type != "interactive":
        return "button"  # a template's quick reply
    return "list_reply" if is_list(message) else "button_reply"


def row_description(message: SentMessage, row_id: str) -> str | None:
    """The description the app gave list row `row_id`, if it gave one (Meta echoes it)."""
    sections = action_of(message).get("sections")
    for section in sections if isinstance(sections, list) else []:
        rows = section.get("rows") if isinstance(section, dict) else None
        for row in rows if isinstance(rows, list) else []:
            if isinstance(row, dict) and str(row.get("id")) == row_id:
                description = row.get("description")
                return description if isinstance(description, str) else None
    return None


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
