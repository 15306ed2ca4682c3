"""`contacts`: a contact card the user shares (name and phones, with the phone's wa_id)."""

from __future__ import annotations

from typing import Any

from simulator.kinds.base import (
    QUOTE,
    Facts,
    KindArgs,
    KindSpec,
    first_message,
    message_callback,
    quote_context,
)

_NAMES = (("Priya", "Sharma"), ("Rahul", "Verma"), ("Anita", "Iyer"), ("Vikram", "Rao"))


def build(facts: Facts, args: KindArgs) -> dict[str, Any]:
    """One shared card; the number is an Indian mobile, also given as its wa_id."""
    first, last = facts.rnd.choice(_NAMES)
    digits = f"9{facts.rnd.randrange(10**8, 10**9)}"
    card = {"name": {"first_name": first, "formatted_name": f"{first} {last}",
                     "last_name": last},
            "phones": [{"phone": f"+91 {digits[:5]} {digits[5:]}", "type": "MOBILE",
                        "wa_id": f"91{digits}"}]}
    return message_callback(facts, "contacts", {"contacts": [card]},
                            context=quote_context(facts, args))


def summary(document: dict[str, Any]) -> str:
    """`[contact] name` for each shared card."""
    cards = first_message(document).get("contacts", [])
    names = ", ".join(str(c.get("name", {}).get("formatted_name", "?")) for c in cards)
    return f"[contact] {names}"


SPEC = KindSpec("contacts", "a shared contact card (name, phones with wa_id)", build, summary,
                fields=(QUOTE,))
