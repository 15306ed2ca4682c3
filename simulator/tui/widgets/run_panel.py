"""The run panel: a scenario run's progress and its live summary, with the app's replies
(simulator.reply_tracking) when a send API runs beside it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import ProgressBar, Static

from simulator.reply_tracking import ReplyTracker
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


def replies_line(tracker: ReplyTracker, *, done: bool) -> Content:
    """The replies matched to the run's taps: answered, missing, to the wrong user and
    duplicates; under them the reply latency (tap sent -> reply received by the send API)."""
    missing = tracker.missing
    parts: list[str | tuple[str, str]] = [
        ("replies ", "bold"), f"{tracker.matched:,} of {tracker.taps:,} taps answered",
        (f" (+{tracker.copies:,} copies)" if tracker.copies else "", "dim"), " · ",
        # Missing so far, while the run goes on: most of those are on their way.
        (f"{missing:,} missing", "$text-error" if done and missing else "dim"), " · ",
        (f"{tracker.wrong_user:,} to the wrong user",
         "$text-error" if tracker.wrong_user else "dim"), " · ",
        (f"{tracker.duplicates:,} duplicate", "$text-warning" if tracker.duplicates else "dim")]
    latencies = [tracker.latency.percentile(p) for p in (50, 95, 99)]
    if latencies[0] is not None:
        shown = [latency_text(ms) if ms is not None else "-" for ms in latencies]
        parts += ["\n", ("reply latency ", "bold"),
                  (f"p50 {shown[0]} · p95 {shown[1]} · p99 {shown[2]}", "dim")]
    return Content.assemble(*parts)


class RunPanel(Vertical):
    """Shown while a scenario runs (and after, until the next run): progress and totals."""

    DEFAULT_CSS = """
    RunPanel {
        height: auto;
        #run-title { height: 1; }
        #run-progress { height: 1; }
        #run-stats { height: auto; }
        #run-replies { height: auto; }
    }
    """

    tracker: ReplyTracker | None = None  # the run's replies, when a send API runs beside it
    _run_title = Content()  # the title while the run goes on

    def compose(self) -> ComposeResult:
        """Title, bar, totals, replies."""
        yield Static(id="run-title")
        yield ProgressBar(id="run-progress", show_eta=False)
        yield Static(id="run-stats")
        yield Static(id="run-replies")

    def start(self, scenario: str, total: int, speed: str,
              tracker: ReplyTracker | None = None) -> None:
        """A run begins: `total` sends at `speed`, its replies matched in `tracker`."""
        self.display = True
        self.tracker = tracker
        replies = self.query_one("#run-replies", Static)
        replies.display = tracker is not None
        if tracker is not None:
            replies.update(replies_line(tracker, done=False))
        self.set_class(False, "-done")
        self._run_title = Content.assemble(("▶ ", "bold $text-accent"), (visible(scenario), "bold"),
                                         f" · {total:,} sends · {speed}")
        self.query_one("#run-title", Static).update(self._run_title + Content.styled("  x stops",
                                                                                  "dim"))
        self.query_one("#run-progress", ProgressBar).update(total=total, progress=0)
        self.query_one("#run-stats", Static).update(Content.styled("waiting for answers…",
                                                                   "dim"))

    def show(self, summary: Summary) -> None:
        """The totals so far."""
        self.query_one("#run-progress", ProgressBar).update(progress=summary.sent)
        self.query_one("#run-stats", Static).update(summary_line(summary))
        if self.tracker is not None:
            self.query_one("#run-replies", Static).update(
                replies_line(self.tracker, done=False))

    def waiting(self, seconds: float) -> None:
        """The taps are out; the last replies have up to `seconds` to come."""
        self.query_one("#run-title", Static).update(self._run_title + Content.assemble(
            (f"  waiting up to {seconds:g} s for the last replies", "$text-warning"),
            ("  x stops", "dim")))

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
        if self.tracker is not None:  # without a send API beside the run: nothing to say
            self.query_one("#run-replies", Static).update(replies_line(self.tracker, done=True))
