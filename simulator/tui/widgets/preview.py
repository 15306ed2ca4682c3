"""The preview pane: the exact bytes the armed button will send, syntax-highlighted."""

from __future__ import annotations

import contextlib
import json

from textual.app import ComposeResult
from textual.containers import ScrollableContainer
from textual.content import Content
from textual.highlight import highlight
from textual.reactive import reactive
from textual.widgets import Static

from simulator.terminal import visible
from simulator.wire import to_pretty


class Preview(ScrollableContainer):
    """Shows one callback body: indented for reading, or the wire bytes exactly as sent.

    The wire bytes are never wrapped (a break inside a JSON string would look like part of
    it): they scroll sideways instead.
    """

    DEFAULT_CSS = """
    Preview {
        height: 1fr;
        overflow-x: auto;
        #preview-code { width: 1fr; }
        &.-raw #preview-code { width: auto; text-wrap: nowrap; }
    }
    """

    raw: reactive[bool] = reactive(False)
    """Show the bytes on the wire (compact, `\\u` escapes) instead of the indented document."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.body = b""
        self.caption = ""

    def compose(self) -> ComposeResult:
        """One highlighted block of JSON."""
        yield Static(id="preview-code", markup=False)

    def show(self, body: bytes, caption: str) -> None:
        """Show `body`; `caption` says which button and user it is for."""
        if body == self.body and caption == self.caption:
            return
        self.body, self.caption = body, caption
        self._paint()

    def watch_raw(self, raw: bool) -> None:
        """Repaint when switching between pretty and wire bytes."""
        self.set_class(raw, "-raw")
        self._paint()

    def _paint(self) -> None:
        if not self.is_mounted:
            return
        text = self.body.decode("utf-8", "replace")
        if not self.raw:
            # Not JSON (a template may render anything)? Then show it as it is.
            with contextlib.suppress(ValueError):
                text = to_pretty(json.loads(self.body))
        self.query_one("#preview-code", Static).update(
            highlight(visible(text, newlines=True), language="json"))
        # Content, not a str: a title string is read as markup, and the caption is a file's.
        self.border_title = Content(f"Preview · {visible(self.caption)}" if self.caption
                                    else "Preview")
        size = f"{len(self.body):,} bytes"
        self.border_subtitle = (f"{size}, exactly as sent, unwrapped (scroll →) · b: indented"
                                if self.raw
                                else f"indented · {size} on the wire · b: raw")

    def on_mount(self) -> None:
        """Paint what was shown before mounting."""
        self._paint()
