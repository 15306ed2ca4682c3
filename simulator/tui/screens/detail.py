"""The detail view of one delivery: every attempt, the request headers and body, the response."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from typing import ClassVar, Literal

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.highlight import highlight
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea
from textual.widgets.text_area import Selection

from simulator.delivery import Attempt
from simulator.tapped import who_and_what
from simulator.terminal import visible
from simulator.tui.session import SendRecord, display_number
from simulator.tui.widgets.log import latency_text, status_text
from simulator.wire import to_pretty

DetailAction = Literal["replay", "duplicate", "edit"]


def _json_block(text: str) -> Content:
    """Indented and highlighted if it is JSON, else as it is."""
    try:
        text = to_pretty(json.loads(text))
    except (ValueError, RecursionError):
        return Content(visible(text, newlines=True))
    return highlight(visible(text, newlines=True), language="json")


def _headers(headers: tuple[tuple[str, str], ...]) -> Content:
    return Content("\n").join(
        Content.assemble((f"{name}: ", "$text-accent"), visible(value))
        for name, value in headers)


def _attempt_line(attempt: Attempt, clock: Callable[[float], str]) -> Content:
    outcome = status_text(attempt)
    parts: list[str | Content | tuple[str, str]] = [
        (f"#{attempt.number} ", "bold"), (clock(attempt.started_at), "dim"), "  ", outcome,
        f"  {latency_text(attempt.latency_ms)}"]
    if attempt.error:
        parts += ["  ", (visible(attempt.error), "$text-error")]
    if not attempt.final:
        parts.append(("  (retried)", "dim"))
    return Content.assemble(*parts)


def _heading(text: str) -> Content:
    return Content.styled(text, "bold $text-primary")


def app_error(attempt: Attempt) -> str | None:
    """The in-process app's traceback, if it raised (older attempts do not carry one)."""
    error = getattr(attempt, "app_error", None)
    return error if isinstance(error, str) and error else None


def clipboard_problem(environ: Mapping[str, str]) -> str | None:
    """Why a copy request (OSC 52) cannot reach the clipboard here, when that is known."""
    if environ.get("TERM") in ("linux", "dumb"):
        return f"a TERM={environ['TERM']} console has no clipboard"
    if environ.get("STY"):
        return "GNU screen does not pass a program's clipboard requests on"
    if environ.get("TERM_PROGRAM") == "Apple_Terminal":
        return "macOS Terminal ignores a program's clipboard requests (OSC 52)"
    if environ.get("TMUX") and _tmux_clipboard() != "on":
        return "tmux passes a program's clipboard requests on only with " \
               "`set -g set-clipboard on`"
    return None


def _tmux_clipboard() -> str:
    """tmux's set-clipboard option ('on', 'external', 'off'), or '' if tmux cannot say."""
    tmux = shutil.which("tmux")
    if tmux is None:
        return ""
    try:
        done = subprocess.run([tmux, "show-options", "-gv", "set-clipboard"], check=False,
                              capture_output=True, text=True, timeout=1)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


class DetailScreen(ModalScreen[DetailAction | None]):
    """Shows one delivery in full; it can be replayed or sent again as a duplicate from here."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "dismiss('replay')", "Replay", tooltip="Send it again as a replay"),
        Binding("d", "dismiss('duplicate')", "Duplicate",
                tooltip="Send the same bytes again, as the platform's duplicate"),
        Binding("e", "dismiss('edit')", "Edit & resend",
                tooltip="Edit the bytes (checked as you type), then send the edit"),
        Binding("c", "copy_curl", "Copy curl", tooltip="Copy a curl command that reproduces it"),
        Binding("s", "to_response", "Response", tooltip="Scroll to the handler's response"),
        Binding("escape,q", "dismiss", "Close", tooltip="Back to the phone"),
    ]

    def __init__(self, record: SendRecord, clock: Callable[[float], str]) -> None:
        super().__init__()
        self.record = record
        self.clock = clock

    def compose(self) -> ComposeResult:
        """Summary, attempts, request, body, response."""
        event = self.record.event
        recipient, what = who_and_what(event.body)
        who = event.name or (display_number(recipient) if recipient else "?")
        if event.user:
            who += f" ({display_number(event.user)})"
        with Vertical(id="dialog", classes="detail") as dialog:
            # Content, not a str: a title string is read as markup, and its text is outside's.
            dialog.border_title = Content(visible(f"{event.button or what or 'callback'} · {who}"))
            dialog.border_subtitle = "s response · r replay · d dup · e edit · c curl · esc close"
            curl = TextArea(id="curl", read_only=True, soft_wrap=True, show_line_numbers=False)
            curl.display = False  # until c asks for it
            yield curl
            with VerticalScroll(id="detail-scroll"):
                yield Static(self._content(), id="detail-text")
                yield Static(self._response(), id="detail-response")
                yield Static(self._request(), id="detail-request")

    def _content(self) -> Content:
        """What happened: ids, broken expectations, attempts, and the app's traceback."""
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
            return Content("\n").join(blocks)
        last = record.attempts[-1]
        if record.failures:
            blocks += [Content(""), _heading("Expectations broken")]
            blocks += [Content.styled(visible(f"⚠ {failure}"), "$text-warning")
                       for failure in record.failures]
        blocks += [Content(""), _heading(f"Attempts ({len(record.attempts)})")]
        blocks += [_attempt_line(a, self.clock) for a in record.attempts]
        traceback = app_error(last)
        if traceback is not None:  # the in-process app raised: its traceback, as a server logs
            blocks += [Content(""), _heading("The app raised"),
                       Content.styled(visible(traceback.rstrip(), newlines=True),
                                      "$text-error")]
        return Content("\n").join(blocks)

    def _response(self) -> Content:
        """The handler's answer: what a 500 is read for, so it comes before the request."""
        if not self.record.attempts:
            return Content("")
        last = self.record.attempts[-1]
        if last.status is None:
            return Content("\n").join([_heading("Response"),
                                       Content.styled(visible(f"none: {last.error}"),
                                                      "$text-error")])
        blocks = [_heading(f"Response · {last.status}"), _headers(last.response_headers)]
        if last.response_body:
            blocks += [Content(""), _json_block(last.response_body)]
        if last.response_truncated:
            blocks.append(Content.styled("(truncated at 64 KiB)", "dim"))
        return Content("\n").join(blocks)

    def _request(self) -> Content:
        """The request's headers and its body (indented here; the wire bytes are exact)."""
        record, event = self.record, self.record.event
        blocks: list[Content] = []
        if record.attempts:
            last = record.attempts[-1]
            blocks += [_heading(visible(f"Request · {last.method} {last.url}")),
                       _headers(last.request_headers), Content("")]
        blocks += [_heading(f"Body · {len(event.body):,} bytes (indented here)"),
                   _json_block(event.body.decode("utf-8", "replace"))]
        return Content("\n").join(blocks)

    def on_mount(self) -> None:
        """Open scrollable: PageDown, Down and End work at once, no Tab first."""
        self.query_one("#detail-scroll", VerticalScroll).focus()

    def action_to_response(self) -> None:
        """Scroll the response to the top of the view."""
        response = self.query_one("#detail-response", Static)
        self.query_one("#detail-scroll", VerticalScroll).scroll_to_widget(
            response, animate=False, top=True)

    def action_copy_curl(self) -> None:
        """Show a curl command for the last attempt, selected, and ask the terminal to copy it."""
        from simulator.history import curl_command

        if not self.record.attempts:
            self.notify("Nothing to copy until the first attempt ends.", severity="warning")
            return
        command = curl_command(self.record.attempts[-1])
        area = self.query_one("#curl", TextArea)
        area.load_text(command)
        area.display = True
        area.border_title = "curl · the same bytes"
        # All selected, the cursor at the start: the command's beginning stays in view.
        area.selection = Selection(area.document.end, (0, 0))
        area.focus()
        problem = clipboard_problem(os.environ)
        if problem is not None:
            self.notify(f"Could not use the clipboard: {problem}. The command is shown above: "
                        "select it with the terminal (shift+drag).", title="Not copied",
                        severity="warning", timeout=10)
            return
        # Textual asks the terminal (OSC 52); no terminal says whether it obeyed.
        self.app.copy_to_clipboard(command)
        self.notify("Asked the terminal to copy the curl command shown above. Clipboard empty? "
                    "Your terminal ignores OSC 52: select the command instead.",
                    title="Copied (if the terminal allows)")
