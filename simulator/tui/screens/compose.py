"""The composer's menu (react, un-react, location, image, list row, the template's statuses)
and the list picker of a list message the app sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from simulator.models import Button
from simulator.terminal import visible
from simulator.tui.replies import LABEL_CHARS, shown

EMOJI = ("👍", "❤️", "😂", "🙏", "🔥")
# How the menu draws an emoji: terminals (tmux) draw ❤️ one cell wide while it is measured
# as two, which broke the dialog's border; the plain heart and a space take two everywhere.
_DRAWN = {"❤️": "❤ "}
STATUS_ACTIONS = ("sent", "delivered", "read", "failed", "not-sent")
# (action, what the menu says): the action is what `WasimApp.send_action` takes.
ACTIONS: tuple[tuple[str, str], ...] = (
    *((f"react:{emoji}", f"React {_DRAWN.get(emoji, emoji)} to the last message")
      for emoji in EMOJI),
    ("unreact", "Remove my reaction"),
    ("location", "📍 Send a location (type lat,lng first to choose it)"),
    ("image", "🖼 Send an image (type a caption first to add one)"),
    ("list", "≡ Pick a row of the app's last list"),  # ☰ too has two widths
    ("statuses", "Template statuses: sent, delivered, read"),
    *((f"status:{status}", f"Template status: {status}") for status in STATUS_ACTIONS),
)


class SendScreen(ModalScreen[str | None]):
    """What else the user can send than a text, and the template's statuses: one list."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Cancel", tooltip="Send nothing"),
    ]

    def __init__(self, who: str) -> None:
        super().__init__()
        self.who = who

    def compose(self) -> ComposeResult:
        """A titled list of the actions."""
        with Vertical(id="dialog", classes="send") as dialog:
            dialog.border_title = Content(visible(f"Send as {self.who}"))
            dialog.border_subtitle = "enter sends · esc cancels"
            yield OptionList(*(Option(label, id=action) for action, label in ACTIONS),
                             id="send-list")

    def on_mount(self) -> None:
        """The list has the focus, its first entry highlighted."""
        self.query_one("#send-list", OptionList).focus()

    @on(OptionList.OptionSelected, "#send-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)


class RowScreen(ModalScreen[int | None]):
    """The rows of a list message the app sent: pick one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Cancel", tooltip="Pick nothing"),
    ]

    def __init__(self, title: str, rows: Sequence[Button]) -> None:
        super().__init__()
        self.title_text = title
        self.rows = rows

    def compose(self) -> ComposeResult:
        """The list's text, then its rows."""
        with Vertical(id="dialog", classes="send") as dialog:
            dialog.border_title = "Pick a row"
            dialog.border_subtitle = "enter picks · esc cancels"
            yield Static(Content(shown(self.title_text)), id="rows-title")
            yield OptionList(*(Option(Content.assemble(shown(row.text, LABEL_CHARS),
                                                       (f"  {shown(row.payload, LABEL_CHARS)}",
                                                        "dim")))
                               for row in self.rows), id="row-list")

    def on_mount(self) -> None:
        """The rows have the focus."""
        self.query_one("#row-list", OptionList).focus()

    @on(OptionList.OptionSelected, "#row-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option_index)
