"""The scenario and template browser: the scenario the phone shows, or its callback template."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from simulator.errors import WasimError
from simulator.scenarios import Scenario
from simulator.terminal import visible


@dataclass(frozen=True)
class ScenarioChoice:
    """What the browser chose: a scenario file, or a callback template for the current one."""

    path: Path | None = None
    callback: str | None = None


def describe_scenario(scenario: Scenario) -> Content:
    """The parts of a scenario a tester cares about, for the browser's detail pane."""
    spec, cast = scenario.template, scenario.cast
    # Every name and text here is the file's own: control characters made visible.
    lines: list[Content] = [Content.styled(visible(scenario.name), "bold $text-accent")]
    if scenario.description:
        lines.append(Content(visible(scenario.description, newlines=True)))
    lines += [Content(""), Content.assemble(("Template ", "bold"), visible(spec.name),
                                             (visible(f"  callback {spec.callback}"), "dim"))]
    if spec.body:
        lines.append(Content.styled(visible(spec.body, newlines=True), "italic"))
    for number, button in enumerate(spec.buttons, start=1):
        lines.append(Content.assemble(visible(f"  {number} ↩ {button.text}"),
                                      (visible(f"  payload {button.payload}"), "dim")))
    people = ", ".join(f"{count} {code}" for code, count in cast.countries if count)
    if cast.users:
        people += f"{', ' if people else ''}{len(cast.users)} listed"
    lines += [Content(""), Content.assemble(("Cast ", "bold"), people or "nobody",
                                             (f"  on {cast.platform}", "dim"))]
    lines += [Content(""), Content.styled("Steps", "bold")]
    for step in scenario.steps:
        what = step.button or (", ".join(f"{label} {weight:g}" for label, weight in step.choices)
                               if step.choices else "any button")
        lines.append(Content.assemble(visible(f"  {step.name}: "), (visible(what), "dim")))
    return Content("\n").join(lines)


def _same(one: Path, other: Path) -> bool:
    try:
        return one.resolve() == other.resolve()
    except OSError:
        return False


class ScenarioScreen(ModalScreen[ScenarioChoice | None]):
    """Scenario files on the left, the highlighted one's details on the right."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close", tooltip="Keep the current scenario"),
    ]

    def __init__(self, current: Path, callback: str) -> None:
        super().__init__()
        self.files: list[tuple[str, Path, str]] = []
        self.templates: list[str] = []
        self.current = current
        self.callback = callback

    def compose(self) -> ComposeResult:
        """The two lists and the detail pane."""
        with Vertical(id="dialog", classes="browser") as dialog:
            dialog.border_title = "Scenarios and templates"
            dialog.border_subtitle = "enter opens · tab switches lists · esc closes"
            with Horizontal():
                with Vertical(id="browser-lists"):
                    yield OptionList(id="scenario-list")
                    yield OptionList(id="template-list")
                with VerticalScroll(id="browser-detail"):
                    yield Static(id="scenario-detail")

    def _scenario_options(self) -> list[Option]:
        options = []
        for index, (origin, path, _) in enumerate(self.files):
            marker = "● " if _same(path, self.current) else "  "
            options.append(Option(Content.assemble(
                (marker, "$text-success"), (path.stem, "bold"), (f"  {origin}", "dim")),
                id=f"scenario-{index}"))
        return options

    def _template_options(self) -> list[Option]:
        return [Option(Content.assemble(("● " if name == self.callback else "  ",
                                          "$text-success"), "callback ", (name, "bold")),
                       id=f"template-{name}") for name in self.templates]

    def on_mount(self) -> None:
        """Title the lists and fill them from the disk, off the UI thread."""
        self.query_one("#scenario-list", OptionList).border_title = "Scenarios"
        self.query_one("#template-list", OptionList).border_title = "Callback templates"
        self.load_lists()

    @work(thread=True, exclusive=True, group="browser-lists", exit_on_error=False)
    def load_lists(self) -> None:
        """Find the scenario files and callback templates (reading files: off the UI thread)."""
        from simulator.render import builtin_templates
        from simulator.tui.session import scenario_files

        files, templates = scenario_files(), builtin_templates()
        self.app.call_from_thread(self._fill, files, templates)

    def _fill(self, files: list[tuple[str, Path, str]], templates: list[str]) -> None:
        self.files, self.templates = files, templates
        scenarios = self.query_one("#scenario-list", OptionList)
        scenarios.add_options(self._scenario_options())
        self.query_one("#template-list", OptionList).add_options(self._template_options())
        for index, (_, path, _) in enumerate(files):
            if _same(path, self.current):
                scenarios.highlighted = index
        if scenarios.highlighted is None and files:
            scenarios.highlighted = 0
        scenarios.focus()

    @on(OptionList.OptionHighlighted, "#scenario-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self.show_details(self.files[event.option_index][1])

    @work(thread=True, exclusive=True, group="browser", exit_on_error=False)
    def show_details(self, path: Path) -> None:
        """Read the scenario (a file: off the UI thread) and describe it, or say what is wrong."""
        from simulator.scenarios import load_scenario

        try:
            content = describe_scenario(load_scenario(path))
        except WasimError as exc:
            content = Content.assemble(("This scenario does not load:\n", "bold $text-error"),
                                       exc.one_line())
        self.app.call_from_thread(self.query_one("#scenario-detail", Static).update, content)

    @on(OptionList.OptionSelected, "#scenario-list")
    def _open(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(ScenarioChoice(path=self.files[event.option_index][1]))

    @on(OptionList.OptionSelected, "#template-list")
    def _template(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(ScenarioChoice(callback=(event.option.id or "").removeprefix("template-")))
