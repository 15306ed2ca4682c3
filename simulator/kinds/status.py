"""Status callbacks of the brand's message: sent, delivered, read, failed and Kaleyra's own
not-sent, in Kaleyra's V2 layout (top-level `status` and `message_id` next to `meta_object`;
wire-format section 6), with the 2026 `contacts` entry unless asked without."""

from __future__ import annotations

from typing import Any

from simulator.errors import WasimError, named
from simulator.kinds.base import Facts, Field, KindArgs, KindSpec, contact_of

STATUSES = ("sent", "delivered", "read", "failed", "not-sent")
# Meta's error objects for a failed message (code, title, message = title, details).
ERRORS: dict[int, tuple[str, str]] = {
    131026: ("Message undeliverable", "Unable to deliver message. Reasons can include: the "
             "recipient phone number is not a WhatsApp phone number; the recipient has not "
             "accepted the new Terms of Service."),
    131047: ("Re-engagement message", "Message failed to send because more than 24 hours have "
             "passed since the customer last replied to this number."),
    131051: ("Unsupported message type", "Message type is not currently supported."),
    132001: ("Template name does not exist in the translation", "The template does not exist "
             "in the specified language or the template has not been approved."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
}
DEFAULT_ERROR = 131026
# Kaleyra's not-sent never reached Meta: it carries Kaleyra's reason (INF: the code and
# wording are not documented; the error object keeps Meta's shape so parsers read it).
NOT_SENT_ERROR = (1001, "Message not sent", "The message was not sent to WhatsApp.")
# Which statuses carry Meta's conversation and pricing objects (Meta leaves them off `read`
# and off failures).
_BILLED = ("sent", "delivered")


def error_object(code: int) -> dict[str, Any]:
    """Meta's error object for `code` (title, message, error_data.details)."""
    if code not in ERRORS:
        raise WasimError(f"no error {code} in wasim's catalogue", field="error",
                         hint=f"Use one of {', '.join(str(c) for c in ERRORS)}.")
    title, details = ERRORS[code]
    return {"code": code, "title": title, "message": title, "error_data": {"details": details}}


def build(facts: Facts, args: KindArgs) -> dict[str, Any]:
    """A status of the brand's template message to the tap's user."""
    tap, user = facts.tap, facts.tap.user
    status = args.status or "sent"
    if status not in STATUSES:
        raise WasimError(f"unknown status {status!r}", field="status",
                         hint=f"Use one of {', '.join(STATUSES)}.")
    if args.error is not None and status != "failed":
        raise WasimError(f"{named('error')} needs {named('status')} failed", field="error")
    conversation_id = facts.rnd.randbytes(16).hex()
    if args.conversation_id is not None:  # the window this message belongs to (the mock's)
        conversation_id = args.conversation_id
    category = args.category or "marketing"
    wamid = tap.template.wamid
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": tap.timestamp}
    if not user.username and user.wa_id:
        item["recipient_id"] = user.wa_id
    if user.user_id:
        item["recipient_user_id"] = user.user_id
    if status in _BILLED:
        conversation: dict[str, Any] = {"id": conversation_id}
        if status == "sent":  # Meta gives the expiry on the status that opens the window
            expires = args.expiration if args.expiration is not None else \
                int(tap.timestamp) + 86400
            conversation["expiration_timestamp"] = str(expires)
        conversation["origin"] = {"type": category}
        item["conversation"] = conversation
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": category}
    if status == "failed":
        item["errors"] = [error_object(args.error if args.error is not None else DEFAULT_ERROR)]
    elif status == "not-sent":
        code, title, details = NOT_SENT_ERROR
        item["errors"] = [{"code": code, "title": title, "message": title,
                           "error_data": {"details": details}}]
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": tap.business.display_phone_number,
                     "phone_number_id": tap.business.phone_number_id},
    }
    if args.contacts:
        value["contacts"] = [contact_of(tap, profile=False)]
    value["statuses"] = [item]
    return {
        "meta_object": {"value": value, "field": "messages"},
        "extra_info": {"trace_id": tap.trace_id, "message_id": wamid,
                       "waba_id": tap.business.waba_id, "ref": tap.template.ref,
                       "ref1": tap.template.ref1, "ref2": tap.template.ref2,
                       "enable_url_tracking_body": False, "enable_url_tracking_button": False},
        "status": status,
        "message_id": wamid,
    }


_TICKS = {"sent": "\u2713", "delivered": "\u2713\u2713", "read": "\u2713\u2713 blue",
          "failed": "!", "not-sent": "!"}


def _check(args: KindArgs) -> tuple[str, str, str] | None:
    """An error code belongs to a failed status only."""
    if args.error is not None and args.status != "failed":
        return "error", "{error} needs {status} failed", "Add {status} failed."
    return None


def summary(document: dict[str, Any]) -> str:
    """The ticks the phone's sender side shows for the status (with the error code if any)."""
    status = str(document.get("status", "?"))
    try:
        errors = document["meta_object"]["value"]["statuses"][0].get("errors", [])
    except (KeyError, IndexError, TypeError, AttributeError):
        errors = []
    code = f" {errors[0].get('code')}" if errors else ""
    return f"[{status}] {_TICKS.get(status, '?')}{code}"


SPEC = KindSpec("status", "a status of the brand's message: sent, delivered, read, failed "
                "(Meta errors) or not-sent, Kaleyra's V2 layout", build, summary,
                main="status", check=_check, fields=(
                    Field("status", "which status of the brand's message.  [default: sent]",
                          choices=STATUSES),
                    Field("error", "Meta's error code of a failed one.  [default: 131026]",
                          "integer", choices=tuple(ERRORS), metavar="CODE"),
                    Field("contacts", "without the 2026 contacts entry.", "flag",
                          negated=True)))
