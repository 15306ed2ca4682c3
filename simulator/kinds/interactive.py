"""`button_reply` and `list_reply`: the user answers the brand's interactive message."""

from __future__ import annotations

from typing import Any

from simulator.kinds.base import (
    Facts,
    Field,
    KindArgs,
    KindSpec,
    first_message,
    message_callback,
    template_context,
)

_BUTTONS = (("track_order", "Track order"), ("talk_to_agent", "Talk to an agent"),
            ("yes", "Yes"), ("no", "No"))
_ROWS = (("1", "Sneakers", "Running and casual shoes"), ("2", "Sandals", "Summer collection"),
         ("3", "Boots", "Leather and suede"), ("4", "Offers", "Today's deals"))


def build_button_reply(facts: Facts, args: KindArgs) -> dict[str, Any]:
    """A tap on a reply button of the brand's interactive (session) message."""
    drawn_id, drawn_title = facts.rnd.choice(_BUTTONS)
    reply = {"id": args.reply_id if args.reply_id is not None else drawn_id,
             "title": args.reply_title if args.reply_title is not None else drawn_title}
    body = {"interactive": {"type": "button_reply", "button_reply": reply}}
    return message_callback(facts, "interactive", body, context=template_context(facts))


def build_list_reply(facts: Facts, args: KindArgs) -> dict[str, Any]:
    """A row picked from the brand's list message (Kaleyra documents id, title, description)."""
    drawn_id, drawn_title, drawn_description = facts.rnd.choice(_ROWS)
    reply = {"id": args.reply_id if args.reply_id is not None else drawn_id,
             "title": args.reply_title if args.reply_title is not None else drawn_title,
             "description": args.reply_description if args.reply_description is not None
             else drawn_description}
    body = {"interactive": {"type": "list_reply", "list_reply": reply}}
    return message_callback(facts, "interactive", body, context=template_context(facts))


def summary(document: dict[str, Any]) -> str:
    """The chosen button or row, as the phone shows the user's answer."""
    interactive = first_message(document).get("interactive", {})
    reply = interactive.get(interactive.get("type", ""), {})
    return f"[{interactive.get('type', '?')}] {reply.get('title', '')}"


FIELDS = (Field("reply_id", "the chosen button's or row's id.", metavar="ID"),
          Field("reply_title", "its title.", metavar="TITLE"))
BUTTON_REPLY = KindSpec("button_reply", "a reply button tapped on the brand's interactive "
                        "message (interactive.button_reply)", build_button_reply, summary,
                        fields=FIELDS, main="reply_id")
LIST_REPLY = KindSpec("list_reply", "a row picked from the brand's list message "
                      "(interactive.list_reply)", build_list_reply, summary,
                      fields=(*FIELDS, Field("reply_description", "the row's description.")),
                      main="reply_id")
