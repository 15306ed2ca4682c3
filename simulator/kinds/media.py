"""Media the user sends: image, video, audio (and voice notes), document, sticker.

Meta gives a numeric media id, the mime type and the file's sha256 (base64); Kaleyra stores the
file and puts its URL in `extra_info.media_url` (wire-format section 5). Captions only where
Meta allows them (image, video, document).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
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
    variant,
)


@dataclass(frozen=True)
class MediaType:
    """One media type: its wire key, mime type, file extension and whether it has a caption."""

    wire: str
    mime_type: str
    extension: str
    caption: bool


MEDIA = {
    "image": MediaType("image", "image/jpeg", "jpg", True),
    "video": MediaType("video", "video/mp4", "mp4", True),
    "audio": MediaType("audio", "audio/mpeg", "mp3", False),
    "voice": MediaType("audio", "audio/ogg; codecs=opus", "ogg", False),
    "document": MediaType("document", "application/pdf", "pdf", True),
    "sticker": MediaType("sticker", "image/webp", "webp", False),
}
CAPTIONED = tuple(name for name, media in MEDIA.items() if media.caption)
_CAPTIONS = ("Is this available in blue?", "This one please", "Received damaged",
             "Invoice attached")
# Where Kaleyra keeps media it received (INF: the host is a placeholder; only its shape,
# an https URL ending in the media id, matters to a handler).
ANIMATED_SHARE = 0.25  # of stickers: animated ones are common in chats
MEDIA_URL = "https://media.kaleyra.example/whatsapp/{waba_id}/{media_id}.{extension}"


def media_id(facts: Facts) -> str:
    """A Meta media id: a 15-16 digit number."""
    return str(facts.rnd.randrange(10**15, 10**16))


def build_media(name: str, facts: Facts, args: KindArgs) -> dict[str, Any]:
    """The callback for media of type `name` (a key of MEDIA)."""
    media = MEDIA[name]
    ident = media_id(facts)
    digest = base64.b64encode(facts.rnd.randbytes(32)).decode("ascii")
    drawn_caption = facts.rnd.choice(_CAPTIONS)
    body: dict[str, Any] = {}
    if media.caption and (args.caption is not None or name == "image"):
        body["caption"] = args.caption if args.caption is not None else drawn_caption
    if name == "document":
        body["filename"] = f"invoice-{ident[-6:]}.pdf"
    body.update({"mime_type": media.mime_type, "sha256": digest, "id": ident})
    if name == "sticker":
        # Phones send animated stickers too (wire-format.md 5: `"animated":true`); a quarter
        # of them, decided by the message's own id so no other drawn value moves.
        body["animated"] = variant(facts).random() < ANIMATED_SHARE
    if name == "voice":
        body["voice"] = True
    url = MEDIA_URL.format(waba_id=facts.tap.business.waba_id, media_id=ident,
                           extension=media.extension)
    return message_callback(facts, media.wire, {media.wire: body}, media_url=url,
                            context=quote_context(facts, args))


def summary(document: dict[str, Any]) -> str:
    """`[image] caption` as the phone shows a media message."""
    message = first_message(document)
    kind = str(message.get("type", "?"))
    media = message.get(kind, {})
    label = "voice" if isinstance(media, dict) and media.get("voice") else kind
    caption = media.get("caption", "") if isinstance(media, dict) else ""
    return f"[{label}] {caption}".rstrip()


def _spec(name: str) -> KindSpec:
    media = MEDIA[name]

    def build(facts: Facts, args: KindArgs) -> dict[str, Any]:
        return build_media(name, facts, args)

    build.__doc__ = f"A {name} the user sends."
    caption = (Field("caption", "the caption."),) if media.caption else ()
    article = "an" if name[0] in "aeiou" else "a"
    what = "a voice note" if name == "voice" else f"{article} {name}"
    return KindSpec(name, f"{what} ({media.wire}, {media.mime_type}; media_url set)",
                    build, summary, fields=(_MEDIA_FIELD, *caption, QUOTE),
                    main="caption" if caption else None)


# --media NAME is the same as --kind NAME (render's --media image predates --kind).
_MEDIA_FIELD = Field("media", "which media to send (the same as --kind NAME).",
                     choices=tuple(MEDIA), metavar="NAME")
SPECS = tuple(_spec(name) for name in MEDIA)
