"""Small dialogs: start a scenario run at a chosen speed, and change the target."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from simulator.runner import Plan
from simulator.terminal import visible

SPEEDS: tuple[tuple[str, float], ...] = (
    ("real time (1x)", 1.0), ("10x", 10.0), ("100x", 100.0), ("as fast as allowed", math.inf))


def speed_label(speed: float) -> str:
    """How a speed is shown: `10x`, or `full speed`."""
    return "full speed" if math.isinf(speed) else f"{speed:g}x"


def duration_text(seconds: float) -> str:
    """A duration for people: 45 s, 10 min 5 s."""
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 1 or seconds == 0 else f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


class RunScreen(ModalScreen[float | None]):
    """What a run will send, and how fast to play its timeline."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Cancel", tooltip="Do not run"),
    ]

    def __init__(self, plan: Plan, speed: float) -> None:
        super().__init__()
        self.plan = plan
        self.speed = speed

    def compose(self) -> ComposeResult:
        """The plan in numbers, then the speeds."""
        plan = self.plan
        kinds = {kind: sum(1 for s in plan.sends if s.kind == kind)
                 for kind in ("tap", "duplicate", "redelivery")}
        extra = ", ".join(f"{n} {kind}s" for kind, n in kinds.items() if n and kind != "tap")
        summary = Content.assemble(
            (visible(plan.scenario.name), "bold"),
            f" (seed {plan.seed}): {len(plan.sends):,} sends",
            f" ({extra})" if extra else "", f" from {len(plan.users):,} users over ",
            duration_text(plan.duration), ".")
        with Vertical(id="dialog", classes="run") as dialog:
            dialog.border_title = "Run the scenario"
            dialog.border_subtitle = "enter runs · esc cancels"
            yield Static(summary, id="run-plan")
            options = []
            for label, speed in SPEEDS:
                takes = "" if math.isinf(speed) else f"  ~{duration_text(plan.duration / speed)}"
                options.append(Option(Content.assemble(label, (takes, "dim"))))
            yield OptionList(*options, id="speed-list")

    def on_mount(self) -> None:
        """Highlight the default speed."""
        speeds = [s for _, s in SPEEDS]
        listing = self.query_one("#speed-list", OptionList)
        listing.highlighted = speeds.index(self.speed) if self.speed in speeds else 1
        listing.focus()

    @on(OptionList.OptionSelected, "#speed-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(SPEEDS[event.option_index][1])


class TargetScreen(ModalScreen[bool]):
    """Type the webhook URL to send to; checked (localhost only, unless allowed) before closing."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", tooltip="Keep the current target"),
    ]

    def __init__(self, current: str, apply: Callable[[str], str | None]) -> None:
        super().__init__()
        self.current = current
        self.apply = apply

    def compose(self) -> ComposeResult:
        """One box and a line for problems."""
        with Vertical(id="dialog", classes="target") as dialog:
            dialog.border_title = "Where do callbacks go?"
            dialog.border_subtitle = "enter sets · esc cancels"
            yield Input(self.current, placeholder="http://127.0.0.1:8000/webhook",
                        id="target-url")
            yield Static(id="target-error")

    @on(Input.Submitted, "#target-url")
    def _submitted(self, event: Input.Submitted) -> None:
        problem = self.apply(event.value.strip())
        if problem is None:
            self.dismiss(True)
        else:
            self.query_one("#target-error", Static).update(Content(visible(problem)))

    def action_cancel(self) -> None:
        """Close, keeping the target."""
        self.dismiss(False)
