"""`unsupported`: a message Meta cannot pass on (a poll, a view-once...), with its `errors`."""

from __future__ import annotations

from typing import Any

from simulator.kinds.base import Facts, KindArgs, KindSpec, first_message, message_callback

# Meta's error for it (error code 131051), as its webhook reference shows it.
UNSUPPORTED_ERROR = {"code": 131051, "title": "Message type unknown",
                     "message": "Message type unknown",
                     "error_data": {"details": "Message type is currently not supported."}}


def build(facts: Facts, args: KindArgs) -> dict[str, Any]:
    """An unsupported message: `errors` then `type`, as in Meta's sample."""
    del args
    return message_callback(facts, "unsupported", {"errors": [dict(UNSUPPORTED_ERROR)]},
                            errors_first=True)


def summary(document: dict[str, Any]) -> str:
    """`[unsupported] details`."""
    errors = first_message(document).get("errors", [{}])
    return f"[unsupported] {errors[0].get('title', '') if errors else ''}"


SPEC = KindSpec("unsupported", "a message type Meta does not support (errors: 131051)",
                build, summary)
