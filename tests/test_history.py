"""The history file: one line per attempt, readable after a crash, never re-serialized bodies."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.delivery import Attempt, Event
from simulator.errors import WasimError
from simulator.history import HistoryWriter, read_history, select

BODY = b'{"a":"Jos\\u00e9 \\/ \\ud83d\\ude02"}'


def attempt(event: Event, number: int = 1, *, delivered: bool = True, final: bool = True,
            delivery: str = "dlv_1") -> Attempt:
    return Attempt(event=event, delivery_id=delivery, number=number, started_at=1.5,
                   target="http://127.0.0.1:8000/", method="POST", url="http://127.0.0.1:8000/",
                   request_headers=(("content-type", "application/json"),),
                   status=200 if delivered else 500, delivered=delivered, final=final,
                   response_body="ok", latency_ms=1.25)


def test_attempts_round_trip_through_the_file_with_exact_bodies(tmp_path: Path) -> None:
    path = tmp_path / "h" / "history.jsonl"
    event = Event.from_body(BODY, seed=7)
    with HistoryWriter(path) as writer:
        writer.append(attempt(event, 1, delivered=False, final=False))
        writer.append(attempt(event, 2))
    history = read_history(path)
    assert [a.number for a in history.attempts] == [1, 2]
    assert history.attempts[0].event.body == BODY
    assert history.attempts[1] == attempt(event, 2)
    assert history.warnings == []


def test_non_utf8_bodies_survive_as_base64(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    event = Event.from_body(b"\xff\xfe raw")
    with HistoryWriter(path) as writer:
        writer.append(attempt(event))
    assert read_history(path).attempts[0].event.body == b"\xff\xfe raw"


def test_a_torn_last_line_is_skipped_with_a_warning_and_the_next_write_is_whole(
        tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    with HistoryWriter(path) as writer:
        writer.append(attempt(Event.from_body(b"{}")))
    with path.open("ab") as handle:
        handle.write(b'{"v":1,"event":"evt_torn","deli')
    history = read_history(path)
    assert len(history.attempts) == 1
    assert history.warnings == [f"{path}:2: skipped an incomplete last line (the run that "
                                "wrote it was probably killed)"]
    with HistoryWriter(path) as writer:
        writer.append(attempt(Event.from_body(b"[]")))
    assert [a.event.body for a in read_history(path).attempts] == [b"{}", b"[]"]


def test_a_file_that_is_not_a_history_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello\nworld\n")
    with pytest.raises(WasimError, match="not a wasim history file"):
        read_history(path)


def test_a_missing_history_says_how_one_is_made(tmp_path: Path) -> None:
    with pytest.raises(WasimError, match="no history here yet") as info:
        read_history(tmp_path / "none.jsonl")
    assert "wasim fire" in (info.value.hint or "")


def test_an_unreadable_history_is_a_clear_error(tmp_path: Path) -> None:
    # A folder in the file's place: unreadable even as root, which CI runs as.
    with pytest.raises(WasimError, match="cannot read the history"):
        read_history(tmp_path)


def test_an_unwritable_history_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(WasimError, match="cannot write the history"):
        HistoryWriter(blocker / "history.jsonl").append(attempt(Event.from_body(b"{}")))


def test_select_by_prefix_last_and_failed(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    ok, bad, later = (Event.from_body(b) for b in (b"1", b"2", b"3"))
    with HistoryWriter(path) as writer:
        writer.append(attempt(ok, delivery="dlv_a"))
        writer.append(attempt(bad, delivered=False, delivery="dlv_b"))
        writer.append(attempt(later, delivery="dlv_c"))
    history = read_history(path)
    assert [a.event for a in select(history, [ok.id[:8]])] == [ok]
    assert [a.event for a in select(history, last=2)] == [bad, later]
    assert [a.event for a in select(history, failed=True)] == [bad]
    with pytest.raises(WasimError, match="no event 'evt_zzz'"):
        select(history, ["evt_zzz"])


def test_export_reproduces_bytes_that_are_not_utf8_through_printf() -> None:
    import subprocess

    from simulator.history import curl_command

    body = b"\xff\xfe 100% 'quoted' back\\slash \x00\n"
    command = curl_command(attempt(Event.from_body(body)))
    printf = command.splitlines()[-1].split(" | ")[0]
    assert printf.startswith("printf '") and command.endswith("--data-binary @-")
    assert subprocess.run(["sh", "-c", printf], capture_output=True, check=True).stdout == body
