"""Where the built-in templates and scenarios are, installed or in a source checkout."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

_PACKAGE = Path(__file__).resolve().parent


def builtin_dir(kind: Literal["templates", "scenarios"]) -> Path:
    """The folder of built-in `kind` files."""
    # A wheel carries them inside the package; a source checkout (or an editable install)
    # keeps them at the top of the repository.
    installed = _PACKAGE / "_data" / kind
    return installed if installed.is_dir() else _PACKAGE.parent / kind
