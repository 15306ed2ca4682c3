"""The edit screen: change the fields that matter (name, number, refs, payloads) before firing."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from simulator.terminal import visible
from simulator.tui.session import EditForm

Apply = Callable[[EditForm], str | None]  # returns what is wrong, or None when applied


class EditScreen(ModalScreen[bool]):
    """A form over the next tap's user and template fields; checked before it closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", tooltip="Close without changing anything"),
        Binding("ctrl+s", "save", "Save", tooltip="Check and apply the fields"),
        Binding("ctrl+r", "reset", "Reset", tooltip="Back to the generated values"),
    ]

    def __init__(self, form: EditForm, labels: Sequence[str], apply: Apply,
                 reset: Callable[[], None]) -> None:
        super().__init__()
        self.form = form
        self.labels = list(labels)
        self.apply = apply
        self.reset = reset

    def compose(self) -> ComposeResult:
        """One labelled box per field, then the buttons."""
        form = self.form
        fields = [("name", "Profile name", form.name), ("number", "Number (wa_id)", form.number),
                  ("ref", "ref", form.ref), ("ref1", "ref1", form.ref1),
                  ("ref2", "ref2", form.ref2)]
        fields += [(f"payload-{i}", f"Payload ↩ {label}"[:26], form.payloads[i])
                   for i, label in enumerate(self.labels)]
        with Vertical(id="dialog", classes="edit") as dialog:
            dialog.border_title = "Edit the next tap"
            dialog.border_subtitle = "enter or ^s saves · ^r resets · esc cancels"
            with Grid(id="edit-grid"):
                for key, label, value in fields:
                    yield Label(label, classes="field-label")
                    yield Input(value, id=f"edit-{key}", compact=True)
            yield Static(id="edit-error")
            with Horizontal(id="edit-buttons"):
                yield Button("Save", id="save", variant="primary", compact=True)
                yield Button("Reset", id="reset", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def _value(self, key: str) -> str:
        return self.query_one(f"#edit-{key}", Input).value

    def action_save(self) -> None:
        """Check the fields; close if they are fine, else say what is wrong."""
        form = EditForm(self._value("name"), self._value("number"), self._value("ref"),
                        self._value("ref1"), self._value("ref2"),
                        tuple(self._value(f"payload-{i}") for i in range(len(self.labels))))
        problem = self.apply(form)
        if problem is None:
            self.dismiss(True)
        else:
            self.query_one("#edit-error", Static).update(Content(visible(problem)))

    def action_reset(self) -> None:
        """Drop every edit."""
        self.reset()
        self.dismiss(True)

    def action_cancel(self) -> None:
        """Close, changing nothing."""
        self.dismiss(False)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#reset")
    def _reset_pressed(self) -> None:
        self.action_reset()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()
