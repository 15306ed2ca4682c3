"""The preview pane: the exact bytes the armed button will send, syntax-highlighted."""

from __future__ import annotations

import contextlib
import json
from typing import Literal

from textual.app import ComposeResult
from textual.containers import ScrollableContainer
from textual.content import Content
from textual.highlight import highlight
from textual.reactive import reactive
from textual.widgets import Static

from simulator.terminal import visible
from simulator.wire import to_pretty

View = Literal["indented", "wire", "exact"]
VIEWS: tuple[View, ...] = ("indented", "wire", "exact")  # the order b steps through them


def spaced(wire: str) -> str:
    """The wire text with line breaks and indents between its JSON tokens, and nothing else
    changed: every string (its `\\u` escapes), number and key keeps its exact characters and
    order. Whitespace the wire had between tokens is replaced by this layout."""
    out: list[str] = []
    depth, in_string, escaped = 0, False, False
    for char in wire:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif char in "{[":
            depth += 1
            out.append(char + "\n" + "  " * depth)
        elif char in "}]":
            depth = max(0, depth - 1)
            out.append("\n" + "  " * depth + char)
        elif char == ",":
            out.append(",\n" + "  " * depth)
        elif char == ":":
            out.append(": ")
        elif not char.isspace():
            out.append(char)
    return "".join(out)


class Preview(ScrollableContainer):
    """Shows one callback body: indented for reading, the wire's own tokens laid out (its
    escapes and key order, wrapped), or the wire bytes exactly as sent.

    The exact bytes are never wrapped (a break inside a JSON string would look like part of
    it): they scroll sideways instead.
    """

    DEFAULT_CSS = """
    Preview {
        height: 1fr;
        overflow-x: auto;
        #preview-code { width: 1fr; }
        &.-exact #preview-code { width: auto; text-wrap: nowrap; }
    }
    """

    view: reactive[View] = reactive[View]("indented")
    """indented: the parsed document; wire: its own tokens spaced out; exact: the bytes."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.body = b""
        self.caption = ""

    @property
    def raw(self) -> bool:
        """Whether the wire's own text is shown (its escapes), not the parsed document."""
        return self.view != "indented"

    def next_view(self) -> None:
        """Step to the next view: indented, wire tokens, exact bytes, indented again."""
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]

    def compose(self) -> ComposeResult:
        """One highlighted block of JSON."""
        yield Static(id="preview-code", markup=False)

    def show(self, body: bytes, caption: str) -> None:
        """Show `body`; `caption` says which button and user it is for."""
        if body == self.body and caption == self.caption:
            return
        self.body, self.caption = body, caption
        self._paint()

    def watch_view(self, view: View) -> None:
        """Repaint when switching views."""
        self.set_class(view == "exact", "-exact")
        self._paint()

    def _paint(self) -> None:
        if not self.is_mounted:
            return
        text = self.body.decode("utf-8", "replace")
        if self.view == "indented":
            # Not JSON (a template may render anything)? Then show it as it is.
            with contextlib.suppress(ValueError):
                text = to_pretty(json.loads(self.body))
        elif self.view == "wire":
            text = spaced(text)
        self.query_one("#preview-code", Static).update(
            highlight(visible(text, newlines=True), language="json"))
        # Content, not a str: a title string is read as markup, and the caption is a file's.
        self.border_title = Content(f"Preview · {visible(self.caption)}" if self.caption
                                    else "Preview")
        size = f"{len(self.body):,} bytes"
        self.border_subtitle = {
            "indented": f"indented · {size} on the wire · b: raw",
            "wire": f"raw tokens, spaced · {size} · b: exact",
            "exact": f"{size}, exactly as sent (scroll →) · b: indented"}[self.view]

    def on_mount(self) -> None:
        """Paint what was shown before mounting."""
        self._paint()
