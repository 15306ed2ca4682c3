"""`text`: a typed message (Meta's `text.body`), optionally marked forwarded in `context`."""

from __future__ import annotations

from typing import Any

from simulator.kinds.base import (
    QUOTE,
    Facts,
    Field,
    KindArgs,
    KindSpec,
    first_message,
    message_callback,
    quote_context,
)

_TEXTS = ("Hi, is this offer still on?", "What sizes do you have?", "Where is my order?",
          "Thanks!", "Can I talk to someone?", "Namaste \U0001f64f", "Price please",
          "Do you deliver to Pune?")
FORWARDS = ("forwarded", "frequently_forwarded")


def build(facts: Facts, args: KindArgs) -> dict[str, Any]:
    """A text message; `--forwarded` puts Meta's flags in `context`, `--quote` the brand's
    message it replies to."""
    drawn = facts.rnd.choice(_TEXTS)
    body = args.text if args.text is not None else drawn
    context = quote_context(facts, args)
    if args.forwarded == "forwarded":
        context = {"forwarded": True}
    elif args.forwarded == "frequently_forwarded":
        context = {"forwarded": True, "frequently_forwarded": True}
    return message_callback(facts, "text", {"text": {"body": body}}, context=context)


def summary(document: dict[str, Any]) -> str:
    """The text as the phone shows it."""
    message = first_message(document)
    body = str(message.get("text", {}).get("body", ""))
    forwarded = "(forwarded) " if message.get("context", {}).get("forwarded") else ""
    return f"{forwarded}{body}"


def check(args: KindArgs) -> tuple[str, str, str] | None:
    """A forwarded message is someone else's: it quotes nothing of this chat."""
    if args.quote and args.forwarded is not None:
        return ("quote", "{quote} with {forwarded}: a forwarded message quotes nothing",
                "Give one of them.")
    return None


SPEC = KindSpec("text", "a typed text message (text.body; --forwarded sets Meta's flags, "
                "--quote replies to the brand's message)",
                build, summary, main="text", check=check, fields=(
                    Field("text", "the message body."),
                    Field("forwarded", "mark it forwarded (or frequently forwarded).",
                          choices=FORWARDS),
                    QUOTE))
