"""Serialize callbacks exactly as Meta and Kaleyra put them on the wire (PHP json_encode style)."""

from __future__ import annotations

import json
import re
from typing import Any

# Python's ASCII-only encoder already writes lowercase `\uXXXX` and surrogate pairs for emoji;
# PHP additionally escapes every `/`. Compact separators, no spaces.
# No cycle check: every document is built by wasim's code or parsed from JSON, neither of
# which can hold one, and the check is a tenth of the encoding (a status is sent thrice a send).
_encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), allow_nan=False,
                            check_circular=False)

# PHP escapes only the controls below U+0020: DEL (U+007F) is ASCII and goes out as the raw
# byte, where Python writes `\u007f`. An escape is one only after an even run of backslashes
# (`\\u007f` is a backslash followed by the text "u007f").
_DEL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u007f")


def php_del(text: str) -> str:
    """`text` (JSON from Python's ASCII encoder) with every `\\u007f` escape as the raw byte."""
    return _DEL_ESCAPE.sub("\\1\x7f", text) if "\\u007f" in text else text


def to_wire(document: Any) -> bytes:
    """Serialize `document` to the exact bytes that are sent, signed and recorded."""
    return php_del(_encoder.encode(document).replace("/", "\\/")).encode("ascii")


def to_pretty(document: Any) -> str:
    """Indent `document` for people to read; never send these bytes."""
    return json.dumps(document, ensure_ascii=False, indent=2)
