"""The delivery log: one row per delivery (time, user, button, status, latency, retries)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.message import Message
from textual.widgets import DataTable, Input
from textual.widgets.data_table import RowDoesNotExist

from simulator.delivery import Attempt
from simulator.terminal import visible

EARLIER = "earlier"  # the Via of deliveries read from the history, from before this session
# Where the Via column does not fit (80 columns), the button cell carries its mark, so a
# replay, a duplicate and an edit never look like the original.
VIA_MARKS = {"replay": "↺", "duplicate": "⧉", "dup": "⧉", "edit": "✎"}

# Retries show in the status cell (`503 ↻1`): a column of their own would rarely fit.
_COLUMNS = (("Time", "time", 8), ("Button", "button", 15), ("Status", "status", 7),
            ("Latency", "latency", 7), ("Via", "via", 9), ("User", "user", 16))
# A narrow log keeps what matters most and drops the rest, rather than cutting columns off.
_PRIORITY = ("button", "status", "latency", "user", "time", "via")
_PADDING = 2  # the table's cell padding, both sides
_MIN_USER = 8


def fit_columns(width: int) -> list[tuple[str, str, int]]:
    """The columns that fit in `width` cells, in display order; User takes what is left."""
    widths = {key: size for _, key, size in _COLUMNS}
    chosen: set[str] = set()
    used = 1  # the scrollbar's gutter
    for key in _PRIORITY:
        need = (_MIN_USER if key == "user" else widths[key]) + _PADDING
        if used + need > width:
            break  # in priority order: a later column never shows without an earlier one
        chosen.add(key)
        used += need
    spare = width - used
    columns = []
    for label, key, size in _COLUMNS:
        if key == "user" and key in chosen:
            size = max(_MIN_USER, min(size, _MIN_USER + spare))
        if key in chosen:
            columns.append((label, key, size))
    return columns


def status_text(attempt: Attempt) -> Content:
    """The status cell: the HTTP status, or why there is none, coloured by outcome."""
    if attempt.status is not None:
        style = "$text-success" if attempt.delivered else "$text-error"
        if not attempt.delivered and not attempt.final:
            style = "$text-warning"
        return Content.styled(str(attempt.status), f"bold {style}")
    label = {"connect": "refused", "timeout": "timeout", "auth": "auth",
             "protocol": "error"}.get(attempt.error_kind or "", "error")
    return Content.styled(label, "bold $text-error")


def latency_text(milliseconds: float) -> str:
    """A latency for people: 0.8 ms, 12 ms, 1.4 s."""
    if milliseconds >= 1000:
        return f"{milliseconds / 1000:.1f} s"
    if milliseconds >= 10:
        return f"{milliseconds:.0f} ms"
    return f"{milliseconds:.1f} ms"


@dataclass(frozen=True)
class LogRow:
    """One row as the app hands it down: a delivery, sending (no attempt yet) or ended."""

    key: str
    when: str
    user: str
    button: str
    via: str
    attempt: Attempt | None = None
    retries: int = 0
    broken: bool = False  # it broke one of the run's expectations


def _status(attempt: Attempt | None, retries: int, broken: bool) -> Content:
    if attempt is None:
        return Content.styled("…", "dim")
    parts: list[Content | tuple[str, str]] = [status_text(attempt)]
    if retries:
        parts.append((f" ↻{retries}", "$text-warning"))
    if broken:
        parts.append((" ⚠", "bold $text-warning"))
    return Content.assemble(*parts)


class DeliveryLog(DataTable[str | Content]):
    """Every delivery of this session, newest last; Enter or a click opens one.

    Columns: time, button, status (with `↻N` after N retries, `⚠` for a broken expectation),
    latency, via (tap, replay, duplicate, run) and user.
    """

    DEFAULT_CSS = """
    DeliveryLog { height: 1fr; }
    """

    class Opened(Message):
        """A row was chosen: show delivery `key` in detail."""

        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.rows_by_key: dict[str, LogRow] = {}  # every delivery, shown or filtered out
        self.filter = ""
        self.columns_shown: list[str] = []

    def on_mount(self) -> None:
        """Lay out the columns."""
        self._lay_out(self._room or 80)

    def on_resize(self) -> None:
        """Choose the columns that fit the new width."""
        self._lay_out(self._room)

    @property
    def _room(self) -> int:
        """The width inside the border, scrollbar included (fit_columns keeps a cell for it):
        a scrollbar coming and going must not change the columns."""
        return max(0, self.region.width - self.styles.gutter.width)

    def _lay_out(self, width: int) -> None:
        columns = fit_columns(width)
        if [key for _, key, _ in columns] == self.columns_shown and self.columns:
            return
        self.clear(columns=True)
        for label, key, size in columns:
            self.add_column(label, key=key, width=size)
        self.columns_shown = [key for _, key, _ in columns]
        self._rebuild()

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor, if there are rows."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value

    def add_deliveries(self, rows: Sequence[LogRow], *, earlier: bool = False) -> None:
        """New rows at the bottom (`earlier`: above the rest); the cursor follows new rows."""
        if earlier:
            self.rows_by_key = {**{row.key: row for row in rows}, **self.rows_by_key}
            self._rebuild()
            return
        following = not self.row_count or self.cursor_row >= self.row_count - 1
        for row in rows:
            self.rows_by_key[row.key] = row
        shown = [row for row in rows if self._matches(row)]
        for row in shown:
            self._add(row)
        if following and shown:
            self.move_cursor(row=self.row_count - 1, animate=False)
        self._count()

    def _add(self, row: LogRow) -> None:
        # Rows from the history file (before this session) are dimmed as well as marked "earlier"
        # in Via, which a narrow log does not show.
        old = "dim italic" if row.via == EARLIER else ""
        button = Content.styled(visible(row.button), old)  # a scenario's, an app's
        mark = VIA_MARKS.get(row.via.removeprefix("run "))
        if mark and "via" not in self.columns_shown:  # a narrow log: the mark tells them apart
            button = Content.assemble((f"{mark} ", "bold $text-accent"), button)
        cells: dict[str, str | Content] = {
            "time": Content.styled(row.when, old), "button": button,
            "status": _status(row.attempt, row.retries, row.broken),
            "latency": latency_text(row.attempt.latency_ms) if row.attempt else "",
            "via": Content.styled(visible(row.via), old),
            "user": Content.styled(visible(row.user), old)}
        self.add_row(*(cells[key] for key in self.columns_shown), key=row.key)

    def set_filter(self, text: str) -> None:
        """Show only deliveries whose user, button, status or via contain every word of `text`."""
        if text.strip().lower() == self.filter:
            return
        self.filter = text.strip().lower()
        self._rebuild()

    def _matches(self, row: LogRow) -> bool:
        if not self.filter:
            return True
        status = _status(row.attempt, row.retries, row.broken).plain
        haystack = f"{row.user} {row.button} {status} {row.via}".lower()
        return all(word in haystack for word in self.filter.split())

    def _rebuild(self) -> None:
        selected = self.selected_key
        self.clear()
        for row in self.rows_by_key.values():
            if self._matches(row):
                self._add(row)
        if self.row_count:
            keys = [row.key for row in self.rows_by_key.values() if self._matches(row)]
            self.move_cursor(row=keys.index(selected) if selected in keys else self.row_count - 1,
                             animate=False)
        self._count()

    def _count(self) -> None:
        """Say in the title how much a filter hides."""
        total = len(self.rows_by_key)
        earlier = sum(row.via == EARLIER for row in self.rows_by_key.values())
        title = f"Deliveries ({earlier} earlier, dimmed)" if earlier else "Deliveries"
        self.border_title = f"{title} · /{self.filter}: {self.row_count} of {total}" \
            if self.filter else title

    def show_attempt(self, key: str, attempt: Attempt, retries: int) -> None:
        """Update row `key` with the latest attempt of its delivery."""
        row = self.rows_by_key.get(key)
        if row is not None:
            self.rows_by_key[key] = replace(row, attempt=attempt, retries=retries)
        try:
            if "status" in self.columns_shown:
                self.update_cell(key, "status", _status(attempt, retries, False))
            if "latency" in self.columns_shown:
                self.update_cell(key, "latency", latency_text(attempt.latency_ms))
        except RowDoesNotExist:
            pass  # filtered out, or the log was cleared while the delivery was in flight

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Turn the table's selection into a request to open the delivery."""
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.Opened(event.row_key.value))


class LogFilter(Input):
    """The log's filter box (`/`): typing filters, enter keeps it, escape clears and closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Clear filter", tooltip="Clear the filter and close the box"),
    ]

    class Closed(Message):
        """The box was closed: the focus goes back to the log."""

    def action_close(self) -> None:
        """Clear and hide."""
        self.value = ""
        self.post_message(self.Closed())
