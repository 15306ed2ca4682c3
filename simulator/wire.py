"""Serialize callbacks exactly as Meta and Kaleyra put them on the wire (PHP json_encode style)."""

from __future__ import annotations

import json
from typing import Any

# Python's ASCII-only encoder already writes lowercase `\uXXXX` and surrogate pairs for emoji;
# PHP additionally escapes every `/`. Compact separators, no spaces.
_encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def to_wire(document: Any) -> bytes:
    """Serialize `document` to the exact bytes that are sent, signed and recorded."""
    return _encoder.encode(document).replace("/", "\\/").encode("ascii")


def to_pretty(document: Any) -> str:
    """Indent `document` for people to read; never send these bytes."""
    return json.dumps(document, ensure_ascii=False, indent=2)
