"""How the CLI draws tables and live lines: rich on a terminal, plain aligned text elsewhere."""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import IO, Any

# rich is imported inside the functions: `wasim --help` and shell completion stay instant.


def visible(text: str, *, newlines: bool = False) -> str:
    """`text` with its control characters made visible (`\\x1b`, `\\n`, `\\u202e`).

    Text from files, targets and clients (a user name holding `ESC ]0;`, a button, an
    answer, an error) goes through this before any terminal sees it: escape sequences, bidi
    overrides, separators and lone surrogates print as text instead of acting. `newlines`
    keeps line breaks (and tabs), for blocks drawn over several lines.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or (newlines and ch in "\n\t")
                   else ch.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for ch in text)


def visible_json(text: str) -> str:
    """A JSON text (from json.dumps with ensure_ascii=False) with the characters that act on
    a terminal (C1 controls, DEL, bidi overrides, separators) as \\u escapes: still the same
    JSON, and safe to print. json.dumps already escapes the C0 controls and quotes."""
    if text.isprintable():
        return text
    # A raw line break can only be the indentation's: json.dumps escapes those in strings.
    return "".join(ch if ch.isprintable() or ch == "\n" else _json_escape(ch) for ch in text)


def _json_escape(ch: str) -> str:
    units = ch.encode("utf-16-be", "surrogatepass")  # one unit, or a surrogate pair
    return "".join(f"\\u{int.from_bytes(units[i:i + 2], 'big'):04x}"
                   for i in range(0, len(units), 2))


@dataclass(frozen=True)
class Col:
    """One column of a table: its header; whether long cells wrap (at words) or stay whole;
    `spill`: when the words cannot fit side by side, the cell moves to a line under its row."""

    header: str
    wrap: bool = False
    right: bool = False
    spill: bool = False


_GAP = 2  # columns between two cells


def _fits(columns: Sequence[Col], rows: Sequence[Sequence[str]], width: int) -> bool:
    """Whether the columns fit `width` with no word broken (a wrapping cell's longest word)."""
    need = 0
    for i, col in enumerate(columns):
        cells = [col.header, *(row[i] for row in rows)]
        need += max(max((len(w) for w in c.split()), default=0) if col.wrap else len(c)
                    for c in cells) + _GAP
    return need - _GAP <= width


def is_plain(stream: IO[Any]) -> bool:
    """Whether `stream` gets plain text: not a terminal, a CI log, or a dumb terminal."""
    isatty = getattr(stream, "isatty", None)
    return (not (callable(isatty) and isatty())
            or os.environ.get("CI", "").lower() in ("true", "1")
            or os.environ.get("TERM") == "dumb")


def width_of(stream: IO[Any]) -> int | None:
    """The columns to fit: $COLUMNS, else the terminal's; None (one row a line) in a pipe."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    if is_plain(stream):
        return None  # piped: each row whole on its line, for grep and awk
    return shutil.get_terminal_size().columns


def _console(stream: IO[Any], width: int | None) -> Any:
    from rich.console import Console

    plain = is_plain(stream)
    return Console(file=io.StringIO(), width=width or 10_000, force_terminal=not plain,
                   no_color=plain or "NO_COLOR" in os.environ,
                   color_system=None if plain else "standard", highlight=False, emoji=False,
                   markup=False, legacy_windows=False)


def table_lines(columns: Sequence[Col], rows: Sequence[Sequence[str]], stream: IO[Any],
                width: int | None = None) -> list[str]:
    """The rows as a table for `stream`: aligned columns; only wrapping columns fold, at words.

    On a terminal the header is bold over a rule; elsewhere it is plain text with no box
    characters and no colour. `width` (else `width_of(stream)`) bounds every line.
    """
    from rich import box
    from rich.table import Table

    width = width if width is not None else width_of(stream)
    plain = is_plain(stream)
    spilled = [i for i, col in enumerate(columns) if col.spill]
    if width is not None and spilled and not _fits(columns, rows, width):
        return _spilled_lines(columns, rows, stream, width, spilled)
    if width is not None and not _fits(columns, rows, width):
        width = None  # too narrow to keep words whole: longer lines beat names cut in two
    table = Table(box=None if plain else box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 2, 0, 0) if plain else (0, 1, 0, 0), expand=False,
                  header_style="" if plain else "bold")
    for col in columns:
        table.add_column(col.header, no_wrap=not col.wrap, overflow="fold",
                         justify="right" if col.right else "left")
    for row in rows:
        table.add_row(*(visible(cell) for cell in row))
    console = _console(stream, width)  # None: as wide as the table
    console.print(table)
    return [line.rstrip() for line in console.file.getvalue().splitlines()]


def _spilled_lines(columns: Sequence[Col], rows: Sequence[Sequence[str]], stream: IO[Any],
                   width: int, spilled: list[int]) -> list[str]:
    """The table without its spill columns, each row followed by them, indented and wrapped."""
    import textwrap

    kept = [i for i in range(len(columns)) if i not in spilled]
    kept_columns = [replace(columns[i], wrap=False) for i in kept]
    kept_rows = [[row[i] for i in kept] for row in rows]
    # Ids and times are never cut: a window too narrow even for them gets longer lines.
    fits = _fits(kept_columns, kept_rows, width)
    head = table_lines(kept_columns, kept_rows, stream, width if fits else 10_000)
    top = len(head) - len(rows)  # the header (and, on a terminal, its rule)
    lines = head[:top]
    for row, line in zip(rows, head[top:], strict=True):
        lines.append(line)
        under = " · ".join(visible(row[i]) for i in spilled if row[i])
        lines += textwrap.wrap(under, width, initial_indent="    ", subsequent_indent="    ",
                               break_long_words=False, break_on_hyphens=False)
    return lines


class LiveLine:
    """One line on a terminal stream redrawn in place (cut to the width, never wrapping)."""

    def __init__(self, stream: IO[Any]) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(file=stream, highlight=False, markup=False, emoji=False,
                               no_color="NO_COLOR" in os.environ)
        self.live = Live(console=self.console, auto_refresh=False, transient=False,
                         vertical_overflow="crop", redirect_stdout=False, redirect_stderr=False)
        self.live.start()

    def update(self, text: str) -> None:
        """Show `text` in place of the line, cut at the terminal's width."""
        from rich.text import Text

        self.live.update(Text(visible(text), no_wrap=True, overflow="ellipsis"), refresh=True)

    def close(self) -> None:
        """Leave the last line shown and move below it."""
        self.live.stop()


class ProgressBar:
    """A progress bar with a status after it, on a terminal stream, fitted to its width."""

    def __init__(self, stream: IO[Any], total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
        from rich.table import Column

        console = Console(file=stream, highlight=False, markup=False, emoji=False,
                          no_color="NO_COLOR" in os.environ)
        width = console.width
        # The count first, so a narrow terminal cuts the status (with an ellipsis), not it.
        self.progress = Progress(MofNCompleteColumn(), BarColumn(bar_width=min(30, width // 4)),
                                 TextColumn("{task.fields[status]}", markup=False,
                                            table_column=Column(no_wrap=True,
                                                                overflow="ellipsis")),
                                 console=console, auto_refresh=False,
                                 redirect_stdout=False, redirect_stderr=False)
        self.task = self.progress.add_task("run", total=max(total, 1), status="")
        # What is left for the status: rich squeezes the other columns out before cutting it.
        self.room = width - (2 * len(str(max(total, 1))) + 1) - min(30, width // 4) - 3
        self.progress.start()

    def update(self, done: int, status: str) -> None:
        """Show `done` of the total, with `status` after the count."""
        status = visible(status)
        if len(status) > self.room:
            status = status[:max(self.room - 1, 0)] + "…"
        self.progress.update(self.task, completed=done, status=status, refresh=True)

    def close(self) -> None:
        """Leave the last state shown and move below it."""
        self.progress.stop()
