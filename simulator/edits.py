"""Edit a recorded callback before sending it again: by path (`--set/--add/--remove`, as
`render` takes them) or by hand, and judge the edit against the contract."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from simulator.checker import Problem
from simulator.errors import WasimError, named
from simulator.overrides import Override, apply_overrides
from simulator.validate import validate_body
from simulator.wire import to_wire


def edit_by_path(body: bytes, overrides: Sequence[Override], where: str) -> bytes:
    """`body` with the overrides applied, serialized as the wire serializes a callback."""
    try:
        document: Any = json.loads(body)
    except (ValueError, RecursionError):
        raise WasimError("the recorded body is not JSON: edit it by hand", where=where,
                         hint=f"Use {named('edit')} to open it in $EDITOR.") from None
    if not isinstance(document, dict):
        raise WasimError("the recorded body is not a JSON object", where=where,
                         hint=f"Use {named('edit')} to open it in $EDITOR.")
    apply_overrides(document, tuple(overrides))
    return to_wire(document)


def new_problems(original: bytes, edited: bytes) -> list[Problem]:
    """The contract's problems the edit brought in: those of `edited` the original did not
    have (an old recording's own staleness is not the edit's fault)."""
    before = {str(p) for p in validate_body(original)}
    return [p for p in validate_body(edited) if str(p) not in before]


def trimmed(original: bytes, edited: bytes) -> bytes:
    """What an editor saved, without the final newline it added when the original had none."""
    if not original.endswith(b"\n") and edited.endswith(b"\n"):
        return edited[:-2] if edited.endswith(b"\r\n") else edited[:-1]
    return edited
