"""The target bar: which scenario, where callbacks go, and whether anything answers there."""

from __future__ import annotations

from textual import events
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from simulator.tui.session import Reachability

_REACH: dict[Reachability, tuple[str, str]] = {
    "checking": ("◌ checking", "dim"),
    "reachable": ("● reachable", "bold $text-success"),
    "unreachable": ("● unreachable", "bold $text-error"),
    "in-process": ("● in-process", "bold $text-accent"),
    "no target": ("○ no target · t sets one", "bold $text-warning"),
}


class TargetBar(Static):
    """One line across the top: app, scenario, seed, method and target, reachability."""

    DEFAULT_CSS = """
    TargetBar { height: 1; width: 1fr; }
    """

    scenario: reactive[str] = reactive("")
    seed: reactive[int | None] = reactive(None)
    target: reactive[str] = reactive("")
    method: reactive[str] = reactive("POST")
    reach: reactive[Reachability] = reactive[Reachability]("checking")

    class Clicked(Message):
        """The bar was clicked: the user wants to change the target."""

    def render(self) -> Content:
        """The bar's single line."""
        label, style = _REACH[self.reach]
        parts: list[str | tuple[str, str]] = [(" wasim ", "bold reverse $primary"), " "]
        if self.scenario:
            parts += [(self.scenario, "bold"), " "]
        if self.seed is not None:
            parts += [(f"seed {self.seed}", "dim"), "  "]
        if self.target:
            parts += [(f"{self.method} ", "bold $text-accent"), self.target, "  "]
        parts.append((label, style))
        return Content.assemble(*parts)

    def on_click(self, event: events.Click) -> None:
        """Ask for another target."""
        self.post_message(self.Clicked())
