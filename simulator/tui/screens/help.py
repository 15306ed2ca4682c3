"""The help screen: every key of the app and of its screens, and what the mouse does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

Section = tuple[str, Sequence[tuple[str, str]]]

MOUSE: Section = ("Mouse", (
    ("click a button", "tap it, as the selected user"),
    ("hover a button", "preview its bytes"),
    ("click a log row", "open the delivery: headers, body, response"),
    ("click the top bar", "change the target"),
))


def key_label(key: str) -> str:
    """How a key is written for people: `ctrl+p` → `^p`, `question_mark` → `?`."""
    names = {"question_mark": "?", "escape": "esc", "enter": "enter"}
    return ", ".join(names.get(k, k.replace("ctrl+", "^")) for k in key.split(","))


def binding_rows(bindings: Sequence[BindingType]) -> list[tuple[str, str]]:
    """(keys, what they do) for bindings, merging the number keys into one row."""
    rows: list[tuple[str, str]] = []
    for binding in bindings:
        if not isinstance(binding, Binding):
            continue  # tuple shorthand: wasim writes every binding out in full
        text = binding.tooltip or binding.description
        if not text:
            continue
        keys = binding.key_display or key_label(binding.key)
        if rows and rows[-1][1] == text:
            continue  # 2-9 share the row of 1
        rows.append((keys, text))
    return rows


class HelpScreen(ModalScreen[None]):
    """Lists every key, grouped by where it works."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close", show=False),
    ]

    def __init__(self, sections: Sequence[Section]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        """A titled, scrollable list of keys, one row per key."""
        with Vertical(id="dialog", classes="help") as dialog:
            dialog.border_title = "Keys"
            dialog.border_subtitle = "esc closes"
            with VerticalScroll():
                for title, rows in self.sections:
                    yield Static(Content.styled(title, "bold $text-accent"), classes="help-title")
                    for keys, what in rows:
                        with Horizontal(classes="help-row"):
                            yield Static(Content.styled(keys, "bold"), classes="help-keys")
                            yield Static(what, classes="help-what", markup=False)
