"""What `wasim validate` checks for every kind besides the quick-reply tap: each message kind's
documented shape and body rules (hooked into `simulator.validate.KINDS`, built on
`simulator.checker`), and status callbacks
in Kaleyra's V2 layout (wire-format sections 5 and 6)."""

from __future__ import annotations

import re
from typing import Any

from simulator.checker import METADATA, SENDER_OPTIONAL, Kind, Shape
from simulator.checker import Checker as _Checker
from simulator.checker import check_country as _check_country
from simulator.checker import shape as _shape
from simulator.checker import show as _show
from simulator.kinds.media import MEDIA
from simulator.kinds.status import STATUSES
from simulator.wamid import InvalidWamid, decode_wamid

_HEAD = ("context", "from", "from_user_id", "from_parent_user_id", "id", "timestamp", "type")


def _message(body: str, *, context: bool = True, optional: tuple[str, ...] = ()) -> Shape:
    """A message of one kind: the shared head (with or without `context`), then its body."""
    head = _HEAD if context else tuple(k for k in _HEAD if k != "context")
    return _shape(*head, body, optional=(*SENDER_OPTIONAL, *optional))


# A text's context: a reply to a message (from, id) or Meta's forwarding flags.
FORWARD_CONTEXT = _shape("forwarded", "frequently_forwarded", "from", "id",
                         optional=("forwarded", "frequently_forwarded", "from", "id"))
TEXT_BODY = _shape("body")
INTERACTIVE = _shape("type", ("button_reply", "list_reply"),
                     optional=("button_reply", "list_reply"))
BUTTON_REPLY = _shape("id", "title")
LIST_REPLY = _shape("id", "title", "description", optional=("description",))
MEDIA_BODY = _shape("caption", "filename", "mime_type", "sha256", "id", ("animated", "voice"),
                    optional=("caption", "filename", "animated", "voice"))
LOCATION = _shape("address", "latitude", "longitude", "name", "url",
                  optional=("address", "name", "url"))
CARD = _shape("addresses", "birthday", "emails", "name", "org", "phones", "urls",
              optional=("addresses", "birthday", "emails", "org", "phones", "urls"))
CARD_NAME = _shape("first_name", "formatted_name", "last_name", "middle_name", "prefix",
                   "suffix", optional=("first_name", "last_name", "middle_name", "prefix",
                                       "suffix"))
CARD_PHONE = _shape("phone", "type", "wa_id", optional=("type", "wa_id"))
REACTION = _shape("message_id", "emoji")
# Meta's current error objects always carry message and error_data.details (v16 and later).
ERROR = _shape("code", "title", "message", "error_data")
ERROR_DATA = _shape("details")
_MIME = re.compile(r"[a-z]+/[a-z0-9.+-]+(; ?[a-z]+=[A-Za-z0-9-]+)?")
_BASE64_SHA256 = re.compile(r"[A-Za-z0-9+/]{43}=")
_MEDIA_ID = re.compile(r"[1-9][0-9]{9,19}")


def _check_text(check: _Checker, path: str, message: dict[str, Any]) -> None:
    if "text" in message:
        text = check.obj(f"{path}.text", message["text"], TEXT_BODY)
        if text is not None and "body" in text:
            check.string(f"{path}.text.body", text["body"], non_empty=True)
    context = message.get("context")
    if isinstance(context, dict):
        for flag in ("forwarded", "frequently_forwarded"):
            if flag in context and context[flag] is not True:
                check.fail(f"{path}.context.{flag}", f"expected true, got {_show(context[flag])}")
        if "frequently_forwarded" in context and "forwarded" not in context:
            check.fail(f"{path}.context.forwarded", "missing: a frequently forwarded message "
                                                    "is a forwarded one")
        if ("from" in context) != ("id" in context):
            check.fail(f"{path}.context", "a reply context has both from and id")
        if not context:  # Meta leaves context out rather than send it empty
            check.fail(f"{path}.context", "empty: a reply (from, id) or forwarded flags")


def _check_interactive(check: _Checker, path: str, message: dict[str, Any]) -> None:
    if "context" not in message:
        check.fail(f"{path}.context", "missing: an interactive reply answers the brand's "
                                      "message, which context names")
    if "interactive" not in message:
        return
    base = f"{path}.interactive"
    interactive = check.obj(base, message["interactive"], INTERACTIVE)
    if interactive is None:
        return
    kind = interactive.get("type")
    if kind not in ("button_reply", "list_reply"):
        check.fail(f"{base}.type", f"expected \"button_reply\" or \"list_reply\", got "
                                   f"{_show(kind)}")
        return
    others = [key for key in ("button_reply", "list_reply") if key in interactive and key != kind]
    for other in others:
        check.fail(f"{base}.{other}", f"unexpected: type is {kind}")
    if kind not in interactive:
        check.fail(f"{base}.{kind}", "missing (named by interactive.type)")
        return
    reply = check.obj(f"{base}.{kind}", interactive[kind],
                      BUTTON_REPLY if kind == "button_reply" else LIST_REPLY)
    if reply is None:
        return
    if "id" in reply:
        check.string(f"{base}.{kind}.id", reply["id"], non_empty=True)
    if "title" in reply:
        check.string(f"{base}.{kind}.title", reply["title"], non_empty=True)
    if "description" in reply:
        check.string(f"{base}.{kind}.description", reply["description"])


def _media_checker(wire: str) -> Any:
    mimes = {m.mime_type.split("/")[0] for m in MEDIA.values() if m.wire == wire}

    def check_media(check: _Checker, path: str, message: dict[str, Any]) -> None:
        if wire not in message:
            return
        base = f"{path}.{wire}"
        media = check.obj(base, message[wire], MEDIA_BODY)
        if media is None:
            return
        if "id" in media and check.string(f"{base}.id", media["id"]) \
                and not _MEDIA_ID.fullmatch(media["id"]):
            check.fail(f"{base}.id", f"expected a numeric media id, got {_show(media['id'])}")
        if "sha256" in media and check.string(f"{base}.sha256", media["sha256"]) \
                and not _BASE64_SHA256.fullmatch(media["sha256"]):
            check.fail(f"{base}.sha256", f"expected a base64 SHA-256 (44 characters), got "
                                         f"{_show(media['sha256'])}")
        if "mime_type" in media and check.string(f"{base}.mime_type", media["mime_type"]):
            mime = media["mime_type"]
            if not _MIME.fullmatch(mime):
                check.fail(f"{base}.mime_type", f"expected a mime type, got {_show(mime)}")
            elif wire != "document" and mime.split("/")[0] not in mimes:
                check.fail(f"{base}.mime_type", f"expected a {'/'.join(sorted(mimes))}/* type "
                                                f"for {wire}, got {_show(mime)}")
        if "caption" in media:
            if wire not in ("image", "video", "document"):
                check.fail(f"{base}.caption", f"unexpected: Meta allows no caption on {wire}")
            else:
                check.string(f"{base}.caption", media["caption"])
        if "filename" in media and wire != "document":
            check.fail(f"{base}.filename", "unexpected: only a document has a filename")
        elif "filename" in media:
            check.string(f"{base}.filename", media["filename"], non_empty=True)
        if "animated" in media:
            if wire != "sticker":
                check.fail(f"{base}.animated", "unexpected: only a sticker is animated")
            elif not isinstance(media["animated"], bool):
                check.fail(f"{base}.animated", f"expected true or false, got "
                                               f"{_show(media['animated'])}")
        if "voice" in media:
            if wire != "audio":
                check.fail(f"{base}.voice", "unexpected: only audio is a voice note")
            elif not isinstance(media["voice"], bool):
                check.fail(f"{base}.voice", f"expected true or false, got {_show(media['voice'])}")

    return check_media


def _check_location(check: _Checker, path: str, message: dict[str, Any]) -> None:
    if "location" not in message:
        return
    base = f"{path}.location"
    location = check.obj(base, message["location"], LOCATION)
    if location is None:
        return
    for key, bound in (("latitude", 90), ("longitude", 180)):
        if key not in location:
            continue
        value = location[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            check.fail(f"{base}.{key}", f"expected a number, got {_show(value)}")
        elif not -bound <= value <= bound:
            check.fail(f"{base}.{key}", f"expected -{bound} to {bound}, got {value}")
    for key in ("address", "name", "url"):
        if key in location:
            check.string(f"{base}.{key}", location[key], non_empty=True)


def _check_contacts(check: _Checker, path: str, message: dict[str, Any]) -> None:
    if "contacts" not in message:
        return
    for i, card in enumerate(check.items(f"{path}.contacts", message["contacts"])):
        base = f"{path}.contacts[{i}]"
        if check.obj(base, card, CARD) is None:
            continue
        name = check.obj(f"{base}.name", card["name"], CARD_NAME) if "name" in card else None
        if name is not None:
            for key in CARD_NAME.keys:
                if key in name:
                    check.string(f"{base}.name.{key}", name[key], non_empty=key ==
                                 "formatted_name")
        for j, phone in enumerate(check.items(f"{base}.phones", card["phones"])
                                  if "phones" in card else []):
            where = f"{base}.phones[{j}]"
            if check.obj(where, phone, CARD_PHONE) is None:
                continue
            if "phone" in phone:
                check.string(f"{where}.phone", phone["phone"], non_empty=True)
            if "type" in phone:
                check.string(f"{where}.type", phone["type"], non_empty=True)
            if "wa_id" in phone:
                check.phone(f"{where}.wa_id", phone["wa_id"])


def _check_reaction(check: _Checker, path: str, message: dict[str, Any]) -> None:
    if "reaction" not in message:
        return
    base = f"{path}.reaction"
    reaction = check.obj(base, message["reaction"], REACTION)
    if reaction is None:
        return
    if "emoji" in reaction and check.string(f"{base}.emoji", reaction["emoji"]) \
            and reaction["emoji"].strip() != reaction["emoji"]:
        check.fail(f"{base}.emoji", f"expected an emoji or \"\" (removed), got "
                                    f"{_show(reaction['emoji'])}")
    if "message_id" in reaction:
        # The reacted message may be either side's; it is in the user's chat either way.
        customer = message.get("from")
        value = reaction["message_id"]
        if not check.string(f"{base}.message_id", value):
            return
        try:
            decoded = decode_wamid(value)
        except InvalidWamid as exc:
            check.fail(f"{base}.message_id", f"not a structurally valid wamid: {exc}")
            return
        if isinstance(customer, str) and decoded.customer != customer:
            check.fail(f"{base}.message_id", f"names a message in the chat with "
                                             f"{decoded.customer}, not with the user {customer}")


def check_errors(check: _Checker, path: str, errors: Any) -> None:
    """Meta's error objects: an integer code, a title, and the message and details."""
    for i, error in enumerate(check.items(path, errors)):
        base = f"{path}[{i}]"
        if check.obj(base, error, ERROR) is None:
            continue
        if "code" in error and (isinstance(error["code"], bool)
                                or not isinstance(error["code"], int)):
            check.fail(f"{base}.code", f"expected an integer code, got {_show(error['code'])}")
        for key in ("title", "message"):
            if key in error:
                check.string(f"{base}.{key}", error[key], non_empty=True)
        if "error_data" in error:
            data = check.obj(f"{base}.error_data", error["error_data"], ERROR_DATA)
            if data is not None and "details" in data:
                check.string(f"{base}.error_data.details", data["details"], non_empty=True)


def _check_unsupported(check: _Checker, path: str, message: dict[str, Any]) -> None:
    if "errors" in message:
        check_errors(check, f"{path}.errors", message["errors"])


MESSAGE_KINDS: tuple[Kind, ...] = (
    Kind("text", "a text message (text)", _message("text", optional=("context",)),
         _check_text, context=FORWARD_CONTEXT),
    Kind("interactive", "an interactive reply ({})",
         _message("interactive", optional=("context",)), _check_interactive),
    *(Kind(wire, f"a media message ({wire})", _message(wire, optional=("context",)),
           _media_checker(wire), media=True)
      for wire in dict.fromkeys(m.wire for m in MEDIA.values())),
    Kind("location", "a location (location)", _message("location", optional=("context",)),
         _check_location),
    Kind("contacts", "a shared contact (contacts)", _message("contacts", optional=("context",)),
         _check_contacts),
    Kind("reaction", "a reaction (reaction)", _message("reaction", context=False),
         _check_reaction),
    Kind("unsupported", "an unsupported message (unsupported)",
         _shape("from", "from_user_id", "from_parent_user_id", "id", "timestamp", "errors",
                "type", optional=SENDER_OPTIONAL), _check_unsupported),
)

# --- status callbacks ---------------------------------------------------------------------------

STATUS_ROOT = _shape("meta_object", "extra_info", "status", "message_id")
STATUS_META_OBJECT = _shape("value", "field")
STATUS_VALUE = _shape("messaging_product", "metadata", "contacts", "statuses",
                      optional=("contacts",))
# A status's contact has no profile (the 2026 capture), so only ids are documented.
STATUS_CONTACT = _shape("wa_id", "user_id", ("parent_user_id", "country_code"),
                        optional=("wa_id", "user_id", "parent_user_id", "country_code"))
STATUS = _shape("id", "status", "timestamp", "recipient_id", "recipient_user_id",
                "conversation", "pricing", "errors",
                optional=("recipient_id", "recipient_user_id", "conversation", "pricing",
                          "errors"))
CONVERSATION = _shape("id", "expiration_timestamp", "origin",
                      optional=("expiration_timestamp",))
ORIGIN = _shape("type")
PRICING = _shape("billable", "pricing_model", "category")
STATUS_EXTRA_INFO = _shape("trace_id", "message_id", "waba_id", "ref", "ref1", "ref2",
                           "enable_url_tracking_body", "enable_url_tracking_button")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_FAILED = ("failed", "not-sent")


def is_status(document: Any) -> bool:
    """A status callback: Kaleyra's top-level `status`, or Meta's `statuses` in the value."""
    if not isinstance(document, dict):
        return False
    if "status" in document:
        return True
    try:
        return "statuses" in document["meta_object"]["value"]
    except (KeyError, TypeError):
        return False


def describe_status(document: dict[str, Any]) -> str:
    """`a status callback (read)`: Kaleyra's top-level status, else the first status item's."""
    status = document.get("status")
    if status is None:
        try:
            status = document["meta_object"]["value"]["statuses"][0]["status"]
        except (KeyError, IndexError, TypeError):
            status = "?"
    return f"a status callback ({_show(status).strip(chr(34))})"


def check_status_callback(check: _Checker, document: dict[str, Any]) -> None:
    """Every rule of a status callback: layout, key order, ids from the right side."""
    root = check.obj("$", document, STATUS_ROOT)
    if root is None:
        return
    top_status = root.get("status")
    if "status" in root and check.string("$.status", top_status) and top_status not in STATUSES:
        check.fail("$.status", f"expected one of {', '.join(STATUSES)}, got {_show(top_status)}")
    top_id = root.get("message_id")
    phone_number_id = waba_id = None
    item: dict[str, Any] | None = None
    meta = check.obj("$.meta_object", root["meta_object"], STATUS_META_OBJECT) \
        if "meta_object" in root else None
    if meta is not None:
        if "field" in meta:
            check.equals("$.meta_object.field", meta["field"], "messages")
        value = check.obj("$.meta_object.value", meta["value"], STATUS_VALUE) \
            if "value" in meta else None
        if value is not None:
            phone_number_id, item = _check_status_value(check, value)
    if item is not None:
        if "status" in item and "status" in root and item["status"] != top_status:
            check.fail("$.status", f"expected statuses[0].status {_show(item['status'])}, got "
                                   f"{_show(top_status)}")
        if "id" in item and "message_id" in root and item["id"] != top_id:
            check.fail("$.message_id", f"expected statuses[0].id {_show(item['id'])}, got "
                                       f"{_show(top_id)}")
    if "extra_info" in root:
        extra = check.obj("$.extra_info", root["extra_info"], STATUS_EXTRA_INFO)
        if extra is not None:
            waba_id = _check_status_extra(check, extra, top_id)
    if phone_number_id is not None and phone_number_id == waba_id:
        check.fail("$.extra_info.waba_id", f"the WABA id equals metadata.phone_number_id "
                                           f"({phone_number_id}); Meta gives them different ids")


def _check_status_value(check: _Checker, value: dict[str, Any]
                        ) -> tuple[str | None, dict[str, Any] | None]:
    base = "$.meta_object.value"
    if "messaging_product" in value:
        check.equals(f"{base}.messaging_product", value["messaging_product"], "whatsapp")
    phone_number_id = None
    if "metadata" in value:
        metadata = check.obj(f"{base}.metadata", value["metadata"], METADATA)
        if metadata is not None:
            if "display_phone_number" in metadata:
                check.phone(f"{base}.metadata.display_phone_number",
                            metadata["display_phone_number"])
            if "phone_number_id" in metadata and check.meta_id(
                    f"{base}.metadata.phone_number_id", metadata["phone_number_id"]):
                phone_number_id = metadata["phone_number_id"]
    contact: dict[str, Any] | None = None
    if "contacts" in value:
        contacts = check.items(f"{base}.contacts", value["contacts"])
        if contacts:
            contact = check.obj(f"{base}.contacts[0]", contacts[0], STATUS_CONTACT)
        if contact is not None:
            number = country = None
            if "wa_id" in contact and check.phone(f"{base}.contacts[0].wa_id", contact["wa_id"]):
                number = contact["wa_id"]
            if "user_id" in contact:
                country = check.bsuid(f"{base}.contacts[0].user_id", contact["user_id"])
            if "country_code" in contact:
                _check_country(check, f"{base}.contacts[0]", contact["country_code"], country,
                               number)
            if "wa_id" not in contact and "user_id" not in contact:
                check.fail(f"{base}.contacts[0].wa_id", "missing: a contact has wa_id or "
                                                        "user_id")
    statuses = check.items(f"{base}.statuses", value.get("statuses")) \
        if "statuses" in value else []
    item = None
    for i, status in enumerate(statuses):
        checked = _check_status(check, f"{base}.statuses[{i}]", status, contact)
        item = checked if i == 0 else item
    return phone_number_id, item


def _check_status(check: _Checker, path: str, status: Any,
                  contact: dict[str, Any] | None) -> dict[str, Any] | None:
    if check.obj(path, status, STATUS) is None:
        return None
    name = status.get("status")
    if "status" in status and check.string(f"{path}.status", name) and name not in STATUSES:
        check.fail(f"{path}.status", f"expected one of {', '.join(STATUSES)}, got {_show(name)}")
    recipient = None
    if "recipient_id" in status and check.phone(f"{path}.recipient_id", status["recipient_id"]):
        recipient = status["recipient_id"]
        if contact is not None and "wa_id" in contact and contact["wa_id"] != recipient:
            check.fail(f"{path}.recipient_id", f"expected contacts[0].wa_id "
                                               f"{_show(contact['wa_id'])}, got {_show(recipient)}")
    if "recipient_user_id" in status and check.bsuid(f"{path}.recipient_user_id",
                                                     status["recipient_user_id"]) \
            and contact is not None and "user_id" in contact \
            and contact["user_id"] != status["recipient_user_id"]:
        check.fail(f"{path}.recipient_user_id", f"expected contacts[0].user_id "
                                                f"{_show(contact['user_id'])}")
    if "recipient_id" not in status and contact is not None and "wa_id" in contact:
        check.fail(f"{path}.recipient_id", "missing, but contacts[0] has the wa_id")
    elif "recipient_id" not in status and "recipient_user_id" not in status:
        check.fail(f"{path}.recipient_id", "missing: a status names its recipient by number or "
                                           "recipient_user_id")
    if "id" in status:
        # The brand's own message: sent by the business, in the chat with the recipient.
        check.wamid(f"{path}.id", status["id"], from_business=True,
                    customers=(recipient,) if recipient else ())
    if "timestamp" in status:
        check.timestamp(f"{path}.timestamp", status["timestamp"])
    failed = name in _FAILED
    if failed and "errors" not in status:
        check.fail(f"{path}.errors", f"missing: a {name} status says why")
    if "errors" in status:
        if not failed:
            check.fail(f"{path}.errors", f"unexpected on a {_show(name)} status")
        check_errors(check, f"{path}.errors", status["errors"])
    for key in ("conversation", "pricing"):
        if key in status and failed:
            check.fail(f"{path}.{key}", f"unexpected on a {name} status (nothing was billed)")
    if "conversation" in status:
        _check_conversation(check, f"{path}.conversation", status["conversation"])
    if "pricing" in status:
        pricing = check.obj(f"{path}.pricing", status["pricing"], PRICING)
        if pricing is not None:
            if "billable" in pricing and not isinstance(pricing["billable"], bool):
                check.fail(f"{path}.pricing.billable", f"expected true or false, got "
                                                       f"{_show(pricing['billable'])}")
            for key in ("pricing_model", "category"):
                if key in pricing:
                    check.string(f"{path}.pricing.{key}", pricing[key], non_empty=True)
    checked: dict[str, Any] = status
    return checked


def _check_conversation(check: _Checker, path: str, value: Any) -> None:
    conversation = check.obj(path, value, CONVERSATION)
    if conversation is None:
        return
    if "id" in conversation and check.string(f"{path}.id", conversation["id"]) \
            and not _HEX32.fullmatch(conversation["id"]):
        check.fail(f"{path}.id", f"expected 32 lowercase hex, got {_show(conversation['id'])}")
    if "expiration_timestamp" in conversation:
        # The window closes up to a day after the status, so "now" moves on by that day.
        now, check.now = check.now, check.now + 86400
        check.timestamp(f"{path}.expiration_timestamp", conversation["expiration_timestamp"])
        check.now = now
    if "origin" in conversation:
        origin = check.obj(f"{path}.origin", conversation["origin"], ORIGIN)
        if origin is not None and "type" in origin:
            check.string(f"{path}.origin.type", origin["type"], non_empty=True)


def _check_status_extra(check: _Checker, extra: dict[str, Any], top_id: Any) -> str | None:
    base = "$.extra_info"
    if "trace_id" in extra:
        check.uuid4(f"{base}.trace_id", extra["trace_id"])
    if "message_id" in extra and extra["message_id"] != top_id:
        check.fail(f"{base}.message_id", f"expected the callback's message_id {_show(top_id)}, "
                                         f"got {_show(extra['message_id'])}")
    for key in ("ref", "ref1", "ref2"):
        if key in extra:
            check.string(f"{base}.{key}", extra[key])
    for key in ("enable_url_tracking_body", "enable_url_tracking_button"):
        if key in extra and not isinstance(extra[key], bool):
            check.fail(f"{base}.{key}", f"expected true or false, got {_show(extra[key])}")
    if "waba_id" in extra and check.meta_id(f"{base}.waba_id", extra["waba_id"]):
        return str(extra["waba_id"])
    return None


__all__ = ["MESSAGE_KINDS", "check_errors", "check_status_callback",
           "describe_status", "is_status"]
