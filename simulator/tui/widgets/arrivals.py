"""The receiver pane: what the built-in webhook of `wasim demo` received, one line each."""

from __future__ import annotations

from textual.message import Message
from textual.widgets import RichLog

from simulator.receiver import Arrival
from simulator.terminal import visible
from simulator.tui.feed import ArrivalFeed


def arrival_line(arrival: Arrival) -> str:
    """Who tapped what, whether the payload is valid, and the answer (markup escaped)."""
    from rich.markup import escape

    count = len(arrival.problems)
    verdict = "[green]valid[/]" if not count else \
        f"[red]invalid[/] ({count} problem{'s' if count > 1 else ''}: " \
        f"{escape(visible(arrival.problems[0]))})"
    status = f"[green]{arrival.status}[/]" if arrival.status < 300 else \
        f"[red]{arrival.status}[/]"
    return f"[dim]#{arrival.number}[/] {escape(visible(arrival.summary))} · {verdict} → {status}"


class ArrivalsPane(RichLog):
    """The receiver's side of the conversation: every request it got, as it got it."""

    DEFAULT_CSS = """
    ArrivalsPane { height: 7; }
    """

    class Received(Message):
        """The receiver recorded a request (posted from the receiver's thread)."""

        def __init__(self, arrival: Arrival) -> None:
            super().__init__()
            self.arrival = arrival

    def __init__(self, feed: ArrivalFeed, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=True, wrap=True, min_width=20)
        self.feed = feed
        self.count = 0

    def on_mount(self) -> None:
        """Start listening to the receiver (post_message is safe from its threads)."""
        self.feed.listen(self._from_receiver)

    def _from_receiver(self, arrival: Arrival) -> None:
        self.post_message(self.Received(arrival))

    def on_unmount(self) -> None:
        """Stop listening."""
        self.feed.listen(None)

    def on_arrivals_pane_received(self, message: Received) -> None:
        """Write the line; the message carries on to the app, which may notify."""
        self.count += 1
        self.write(arrival_line(message.arrival))
        self.border_subtitle = f"{self.count} received"
