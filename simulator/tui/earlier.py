"""The log's earlier history: the last deliveries of the history file, read when the UI starts.

Only the file's tail is read (a history grows without end), and a line that is not a record
is skipped: the UI shows what it can and says nothing is lost.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from simulator.delivery import Attempt
from simulator.history import from_record
from simulator.tui.session import SendRecord
from simulator.tui.widgets.log import EARLIER

TAIL_BYTES = 4 * 1024 * 1024  # at most this much of the file's end is read


def earlier_deliveries(path: Path, limit: int = 200,
                       tail_bytes: int = TAIL_BYTES) -> list[SendRecord]:
    """The last `limit` deliveries recorded in the history at `path`, oldest first.

    Nothing (not an error) when the file does not exist or cannot be read.
    """
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - tail_bytes))
            data = handle.read(tail_bytes)
    except OSError:
        return []
    lines = data.split(b"\n")
    if size > tail_bytes:
        lines = lines[1:]  # the first line was cut by the tail's start
    deliveries: dict[str, list[Attempt]] = {}
    for raw in lines:
        attempt = _attempt(raw)
        if attempt is not None:
            deliveries.setdefault(attempt.delivery_id, []).append(attempt)
    chosen = list(deliveries.items())[-limit:] if limit > 0 else []
    return [SendRecord(f"h{index}", attempts[0].event, EARLIER, attempts[0].started_at,
                       attempts[0].replay_of, sorted(attempts, key=lambda a: a.number))
            for index, (_, attempts) in enumerate(chosen, start=1)]


def _attempt(raw: bytes) -> Attempt | None:
    if not raw.strip():
        return None
    try:
        record = json.loads(raw)
        return from_record(record) if isinstance(record, dict) else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None  # a torn or foreign line: skipped, as `wasim history` does
