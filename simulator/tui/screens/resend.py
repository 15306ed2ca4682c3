"""Edit and resend: a delivered callback's exact bytes in an editor, checked as you type."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

from simulator.checker import Problem
from simulator.edits import new_problems
from simulator.tui.replies import shown

_SHOWN_PROBLEMS = 4  # the rest are counted: the editor keeps most of the dialog


class ResendScreen(ModalScreen[bytes | None]):
    """The bytes of one delivery to edit; ctrl+s sends the edit when it keeps the contract,
    ctrl+f sends it anyway (a negative test). Dismissed with the bytes to send, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", tooltip="Send the edit, if it keeps the contract"),
        Binding("ctrl+f", "force", "Force",
                tooltip="Send the edit even though it breaks the contract (a negative test)"),
        Binding("escape", "dismiss", "Cancel", tooltip="Close without sending"),
    ]

    def __init__(self, body: bytes, title: str) -> None:
        super().__init__()
        self.original = body
        self.title_text = title
        self.problems: list[Problem] = []

    def compose(self) -> ComposeResult:
        """The editor over the bytes, the problems under it."""
        with Vertical(id="dialog", classes="resend") as dialog:
            dialog.border_title = f"Edit and resend · {self.title_text}"
            dialog.border_subtitle = "ctrl+s send · ctrl+f send anyway · esc cancel"
            yield TextArea(self.original.decode("utf-8", "replace"), id="resend-text",
                           soft_wrap=True, show_line_numbers=False, tab_behavior="indent")
            yield Static(id="resend-problems")

    def on_mount(self) -> None:
        """The cursor in the editor; the verdict on the bytes as they are."""
        self.query_one(TextArea).focus()
        self._check()

    @property
    def edited(self) -> bytes:
        """The editor's text as the bytes that would be sent."""
        return self.query_one(TextArea).text.encode("utf-8")

    @on(TextArea.Changed)
    def _check(self) -> None:
        """Validate as the user types: the problems the edit brings in, or that it keeps."""
        self.problems = new_problems(self.original, self.edited)
        box = self.query_one("#resend-problems", Static)
        if not self.problems:
            same = self.edited == self.original
            box.update(Content.styled("✓ the same bytes" if same else
                                      "✓ keeps the contract: ctrl+s sends it", "$text-success"))
            return
        lines = [Content.styled(f"✗ {shown(str(p), 200)}", "$text-error")
                 for p in self.problems[:_SHOWN_PROBLEMS]]
        if len(self.problems) > _SHOWN_PROBLEMS:
            lines.append(Content.styled(f"… {len(self.problems) - _SHOWN_PROBLEMS} more",
                                        "dim"))
        box.update(Content("\n").join(lines))

    def action_send(self) -> None:
        """Send the edit, unless it breaks the contract."""
        if self.problems:
            self.notify(f"The edit breaks the contract ({self.problems[0]}): fix it, or ctrl+f "
                        "sends it anyway.", title="Not sent", severity="warning")
            return
        self.dismiss(self.edited)

    def action_force(self) -> None:
        """Send the edit whatever the validator says."""
        self.dismiss(self.edited)
