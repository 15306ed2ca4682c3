"""The detail view of one delivery: every attempt, the request headers and body, the response."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import ClassVar, Literal

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.highlight import highlight
from textual.screen import ModalScreen
from textual.widgets import Static

from simulator.delivery import Attempt
from simulator.tui.session import SendRecord, display_number
from simulator.tui.widgets.log import latency_text, status_text
from simulator.wire import to_pretty

DetailAction = Literal["replay", "duplicate"]


def _json_block(text: str) -> Content:
    """Indented and highlighted if it is JSON, else as it is."""
    try:
        text = to_pretty(json.loads(text))
    except ValueError:
        return Content(text)
    return highlight(text, language="json")


def _headers(headers: tuple[tuple[str, str], ...]) -> Content:
    return Content("\n").join(
        Content.assemble((f"{name}: ", "$text-accent"), value) for name, value in headers)


def _attempt_line(attempt: Attempt, clock: Callable[[float], str]) -> Content:
    outcome = status_text(attempt)
    parts: list[str | Content | tuple[str, str]] = [
        (f"#{attempt.number} ", "bold"), (clock(attempt.started_at), "dim"), "  ", outcome,
        f"  {latency_text(attempt.latency_ms)}"]
    if attempt.error:
        parts += ["  ", (attempt.error, "$text-error")]
    if not attempt.final:
        parts.append(("  (retried)", "dim"))
    return Content.assemble(*parts)


def _heading(text: str) -> Content:
    return Content.styled(text, "bold $text-primary")


class DetailScreen(ModalScreen[DetailAction | None]):
    """Shows one delivery in full; it can be replayed or sent again as a duplicate from here."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "dismiss('replay')", "Replay", tooltip="Send it again as a replay"),
        Binding("d", "dismiss('duplicate')", "Duplicate",
                tooltip="Send the same bytes again, as the platform's duplicate"),
        Binding("c", "copy_curl", "Copy curl", tooltip="Copy a curl command that reproduces it"),
        Binding("escape,q", "dismiss", "Close", tooltip="Back to the phone"),
    ]

    def __init__(self, record: SendRecord, clock: Callable[[float], str]) -> None:
        super().__init__()
        self.record = record
        self.clock = clock

    def compose(self) -> ComposeResult:
        """Summary, attempts, request, body, response."""
        event = self.record.event
        who = event.name or "?"
        if event.user:
            who += f" ({display_number(event.user)})"
        with Vertical(id="dialog", classes="detail") as dialog:
            dialog.border_title = f"{event.button or 'callback'} · {who}"
            dialog.border_subtitle = "r replay · d duplicate · c copy curl · esc close"
            with VerticalScroll():
                yield Static(self._content(), id="detail-text")

    def _content(self) -> Content:
        record, event = self.record, self.record.event
        ids: list[str | tuple[str, str]] = [("event ", "dim"), event.id]
        if record.delivery_id:
            ids += [("  delivery ", "dim"), record.delivery_id]
        ids += [("  via ", "dim"), record.via]
        if record.replay_of:
            ids += [("  replay of ", "dim"), record.replay_of]
        blocks: list[Content] = [Content.assemble(*ids)]
        if not record.attempts:
            blocks += [Content(""), Content.styled("Sending… no attempt has ended yet.", "dim")]
            blocks += [Content(""), _heading(f"Body · {len(event.body):,} bytes"),
                       _json_block(event.body.decode("utf-8", "replace"))]
            return Content("\n").join(blocks)
        last = record.attempts[-1]
        if record.failures:
            blocks += [Content(""), _heading("Expectations broken")]
            blocks += [Content.styled(f"⚠ {failure}", "$text-warning")
                       for failure in record.failures]
        blocks += [Content(""), _heading(f"Attempts ({len(record.attempts)})")]
        blocks += [_attempt_line(a, self.clock) for a in record.attempts]
        blocks += [Content(""), _heading(f"Request · {last.method} {last.url}"),
                   _headers(last.request_headers)]
        blocks += [Content(""), _heading(f"Body · {len(event.body):,} bytes (indented here)"),
                   _json_block(event.body.decode("utf-8", "replace"))]
        if last.status is None:
            blocks += [Content(""), _heading("Response"),
                       Content.styled(f"none: {last.error}", "$text-error")]
        else:
            blocks += [Content(""), _heading(f"Response · {last.status}"),
                       _headers(last.response_headers)]
            if last.response_body:
                blocks += [Content(""), _json_block(last.response_body)]
            if last.response_truncated:
                blocks.append(Content.styled("(truncated at 64 KiB)", "dim"))
        if last.app_error:  # the in-process app raised: its traceback, as a server logs it
            blocks += [Content(""), _heading("The app raised"),
                       Content.styled(last.app_error.rstrip(), "$text-error")]
        return Content("\n").join(blocks)

    def action_copy_curl(self) -> None:
        """Put a curl command for the last attempt on the clipboard."""
        from simulator.history import curl_command

        if not self.record.attempts:
            self.notify("Nothing to copy until the first attempt ends.", severity="warning")
            return
        self.app.copy_to_clipboard(curl_command(self.record.attempts[-1]))
        self.notify("Copied a curl command that sends the same bytes.")
