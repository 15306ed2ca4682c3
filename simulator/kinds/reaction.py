"""`reaction`: an emoji on the brand's message, or its removal (an empty emoji); no context."""

from __future__ import annotations

from typing import Any

from simulator.kinds.base import (
    Facts,
    Field,
    KindArgs,
    KindSpec,
    first_message,
    message_callback,
)

_EMOJI = ("\U0001f44d", "\u2764\ufe0f", "\U0001f602", "\U0001f64f", "\U0001f525")


def build(facts: Facts, args: KindArgs) -> dict[str, Any]:
    """The user reacts to the brand's template message (the reaction names it by wamid)."""
    drawn = facts.rnd.choice(_EMOJI)
    reaction = {"message_id": facts.tap.template.wamid,
                "emoji": args.emoji if args.emoji is not None else drawn}
    return message_callback(facts, "reaction", {"reaction": reaction})


def summary(document: dict[str, Any]) -> str:
    """`reacted 👍`, or `removed a reaction`."""
    emoji = first_message(document).get("reaction", {}).get("emoji", "")
    return f"reacted {emoji}" if emoji else "removed a reaction"


SPEC = KindSpec("reaction", "an emoji reaction to the brand's message (--emoji '' removes it)",
                build, summary, main="emoji",
                fields=(Field("emoji", "the emoji; '' removes the reaction.", metavar="EMOJI"),))
