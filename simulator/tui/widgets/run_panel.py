"""The run panel: a scenario run's progress and its live summary."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import ProgressBar, Static

from simulator.runner import Summary
from simulator.terminal import visible
from simulator.tui.widgets.log import latency_text


def summary_line(summary: Summary) -> Content:
    """Counts and latency percentiles, one line."""
    parts: list[str | tuple[str, str]] = [
        (f"{summary.delivered:,} delivered", "$text-success"), " · ",
        (f"{summary.failed:,} failed", "$text-error" if summary.failed else "dim")]
    broken = sum(summary.expectation_failures.values())
    if broken:
        parts += [" · ", (f"{broken:,} expectation(s) broken", "$text-warning")]
    p50, p95 = summary.percentile(50), summary.percentile(95)
    if p50 is not None and p95 is not None:
        parts += [" · ", (f"p50 {latency_text(p50)} p95 {latency_text(p95)}", "dim")]
    return Content.assemble(*parts)


class RunPanel(Vertical):
    """Shown while a scenario runs (and after, until the next run): progress and totals."""

    DEFAULT_CSS = """
    RunPanel {
        height: auto;
        #run-title { height: 1; }
        #run-progress { height: 1; }
        #run-stats { height: auto; }
    }
    """

    def compose(self) -> ComposeResult:
        """Title, bar, totals."""
        yield Static(id="run-title")
        yield ProgressBar(id="run-progress", show_eta=False)
        yield Static(id="run-stats")

    def start(self, scenario: str, total: int, speed: str) -> None:
        """A run begins: `total` sends at `speed`."""
        self.display = True
        self.set_class(False, "-done")
        self.query_one("#run-title", Static).update(Content.assemble(
            ("▶ ", "bold $text-accent"), (visible(scenario), "bold"),
            f" · {total:,} sends · {speed}",
            ("  x stops", "dim")))
        self.query_one("#run-progress", ProgressBar).update(total=total, progress=0)
        self.query_one("#run-stats", Static).update(Content.styled("waiting for answers…",
                                                                   "dim"))

    def show(self, summary: Summary) -> None:
        """The totals so far."""
        self.query_one("#run-progress", ProgressBar).update(progress=summary.sent)
        self.query_one("#run-stats", Static).update(summary_line(summary))

    def finish(self, summary: Summary, *, cancelled: bool) -> None:
        """The run ended (or was stopped): the final totals and the runner's summary lines."""
        self.set_class(True, "-done")
        self.query_one("#run-progress", ProgressBar).update(progress=summary.sent)
        verdict = ("■ stopped", "bold $text-warning") if cancelled else (
            ("✓ all held", "bold $text-success") if summary.ok
            else ("✗ failures", "bold $text-error"))
        self.query_one("#run-title", Static).update(Content.assemble(
            verdict, " ", (visible(summary.scenario), "bold"), f" · {summary.sent:,} sent"))
        # The runner's own summary, as the CLI prints it, less what the first line already says.
        lines = [line for line in summary.lines()[1:] if not line.startswith("latency")]
        stats = Content("\n").join([summary_line(summary),
                                    *(Content(visible(line)) for line in lines)])
        self.query_one("#run-stats", Static).update(stats)
