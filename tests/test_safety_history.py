"""Reading the history as a stream: `history` and `replay` read only what they show or send,
so a history of any size takes bounded memory, and the records read are those a whole read
would have given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from simulator import history as history_module
from simulator.history import (
    read_history,
    read_history_tail,
    select,
    select_in_file,
)
from tests.helpers.limited import CHILD  # wasim under RLIMIT_AS

ROOT = Path(__file__).resolve().parent.parent
APP = "wsgi:tests.apps.hostile_apps:wsgi_raises"
HEADROOM = 100 << 20



def record(event: int, attempt: int = 1, *, final: bool = True, status: int = 500,
           delivery: int | None = None, body: str = "{}") -> bytes:
    """One attempt line as `wasim fire` writes it (the fields reading needs)."""
    return json.dumps({
        "v": 1, "event": f"evt_{event:06d}", "delivery": f"dlv_{delivery or event:06d}",
        "attempt": attempt, "final": final, "at": 1_780_000_000.0 + event,
        "outcome": "delivered" if status == 200 else "failed", "seed": 1,
        "target": "http://127.0.0.1:9/", "method": "POST", "url": "http://127.0.0.1:9/",
        "user": "918143267228", "name": f"user {event}", "button": "Shop now",
        "message_id": f"wamid.{event}", "request_headers": [["content-type", "application/json"]],
        "status": status, "latency_ms": 1.0, "body": body,
    }).encode() + b"\n"


def sent(at: int) -> bytes:
    return json.dumps({"v": 1, "kind": "sent", "at": 1_780_000_000.0 + at, "version": "v2",
                       "business": "918800000001", "to": "918143267228", "type": "text",
                       "text": f"reply {at}"}).encode() + b"\n"


def mixed(path: Path) -> None:
    """Events with retries, replays (a later final attempt), sent messages, a corrupt line,
    a line too long to keep, and a torn tail."""
    lines = []
    for n in range(1, 41):
        if n % 3 == 0:
            lines.append(record(n, 1, final=False, status=503))
            lines.append(record(n, 2, status=200))
        else:
            lines.append(record(n, status=200 if n % 2 else 500))
        if n % 7 == 0:
            lines.append(sent(n))
        if n == 11:
            lines.append(b"not json\n")
        if n == 17:
            lines.append(record(n, status=200, body="x" * 5000))  # long, under MAX_LINE
        if n == 23:
            lines.append(record(5, delivery=99, status=200))  # event 5 replayed, delivered
        if n == 29:
            lines.append(record(4, delivery=98, status=500))  # event 4 replayed, failed
    path.write_bytes(b"".join(lines) + record(41)[:40])


@pytest.fixture(params=[1 << 20, 97], ids=["1MiB-chunks", "97-byte-chunks"])
def chunk(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """Read in 1 MiB chunks, and in chunks smaller than a line (every line crosses one)."""
    monkeypatch.setattr(history_module, "_CHUNK", request.param)
    monkeypatch.setattr(history_module, "MAX_LINE", 4000)  # the 5,000-byte line is too long
    return int(request.param)


def attempt_keys(attempts: list[object]) -> list[tuple[str, str, int]]:
    return [(a.event.id, a.delivery_id, a.number) for a in attempts]  # type: ignore[attr-defined]


@pytest.mark.parametrize("count", [1, 2, 5, 13, 40, 1000])
def test_the_tail_is_the_end_of_a_whole_read(tmp_path: Path, chunk: int, count: int) -> None:
    path = tmp_path / "h.jsonl"
    mixed(path)
    whole = read_history(path)
    tail = read_history_tail(path, count)
    rows = sorted([*whole.attempts, *whole.sent], key=lambda r: getattr(r, "at", 0))
    assert len(tail.attempts) + len(tail.sent) == min(count, len(rows))
    merged = [*whole.attempts, *whole.sent]
    assert len(merged) == len(whole.attempts) + len(whole.sent)
    # Every record read at the end is the one a whole read gives at that place.
    assert attempt_keys(tail.attempts) == attempt_keys(whole.attempts)[
        len(whole.attempts) - len(tail.attempts):]
    assert [s.text for s in tail.sent] == [s.text for s in whole.sent][
        len(whole.sent) - len(tail.sent):]
    assert any("longer than" in w for w in whole.warnings)
    assert any("incomplete last line" in w for w in whole.warnings)
    # The bad lines the tail met are warned about as a whole read does, in the file's order.
    lines = [w.split(":")[1] for w in whole.warnings]
    assert [w.split(":")[1] for w in tail.warnings] == lines[len(lines) - len(tail.warnings):]
    if count == 1000:
        assert tail.warnings == whole.warnings


@pytest.mark.parametrize("last", [1, 3, 10, 100])
@pytest.mark.parametrize("failed", [False, True])
@pytest.mark.parametrize("ids", [(), ("evt_000005",), ("dlv_000098", "evt_000030")])
def test_selecting_from_the_file_is_selecting_from_a_whole_read(
        tmp_path: Path, chunk: int, last: int, failed: bool, ids: tuple[str, ...]) -> None:
    path = tmp_path / "h.jsonl"
    mixed(path)
    expected = select(read_history(path), ids, last, failed)
    assert attempt_keys(select_in_file(path, ids, last, failed).attempts) == \
        attempt_keys(expected)


def test_filters_read_from_the_end_find_what_a_whole_read_finds(tmp_path: Path,
                                                                chunk: int) -> None:
    path = tmp_path / "h.jsonl"
    mixed(path)
    whole = read_history(path)
    failed = [a for a in whole.attempts if not a.delivered]
    tail = read_history_tail(path, 4, lambda r: hasattr(r, "delivered") and not r.delivered)
    assert attempt_keys(tail.attempts) == attempt_keys(failed)[-4:]


def test_a_history_of_only_bad_lines_is_still_refused(tmp_path: Path) -> None:
    from simulator.errors import WasimError
    path = tmp_path / "h.jsonl"
    path.write_bytes(b"not json\n[1]\n")
    with pytest.raises(WasimError, match="not a wasim history file"):
        read_history_tail(path, 5)
    with pytest.raises(WasimError, match="not a wasim history file"):
        select_in_file(path, last=1)


# --- a big file, under an address-space limit ----------------------------------------------

SIZE = 160 << 20  # larger than the headroom: a whole read (and its split) cannot fit


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~160 MB of history: one line repeated, then a few distinct events at the end."""
    path = tmp_path_factory.mktemp("big") / "history.jsonl"
    line = record(1, body="y" * 1500)
    block = line * (4 << 20 // len(line))
    with path.open("wb") as handle:
        while handle.tell() < SIZE:
            handle.write(block)
        for n in range(2, 6):
            handle.write(record(n, status=500))
        handle.write(sent(99))
    return path


def limited(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT), "COLUMNS": "200", "MALLOC_ARENA_MAX": "1"}
    return subprocess.run([sys.executable, "-c", CHILD, str(HEADROOM), *args],
                          capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_the_limit_is_real_a_whole_read_of_the_big_history_fails(big: Path) -> None:
    # The control: reading the file whole needs more than the headroom.
    code = "from pathlib import Path; import sys; Path(sys.argv[1]).read_bytes().split(b'\\n')"
    result = subprocess.run([sys.executable, "-c", CHILD.replace("cli()", code), str(HEADROOM),
                             str(big)], capture_output=True, text=True, timeout=300,
                            env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert result.returncode != 0 and "MemoryError" in result.stderr


@pytest.mark.parametrize("args", [[], ["--json", "-n", "3"], ["--failed", "-n", "2"],
                                  ["--event", "evt_000003"], ["--status", "599"]])
def test_history_reads_a_big_file_within_100_mb(big: Path, args: list[str]) -> None:
    result = limited("history", "--history", str(big), *args, cwd=big.parent)
    assert "MemoryError" not in result.stderr and "Traceback" not in result.stderr
    if args == ["--status", "599"]:  # nothing matches: the whole file was read, bounded
        assert result.returncode == 0 and "no matching attempts" in result.stderr
        return
    assert result.returncode == 0, result.stderr
    if args == ["--event", "evt_000003"]:
        assert "evt_000003" in result.stdout
    if not args:
        assert "evt_000005" in result.stdout and "reply 99" in result.stdout


@pytest.mark.parametrize("args", [["--last", "2"], ["--failed"], ["evt_000004"]])
def test_replay_reads_a_big_file_within_100_mb(big: Path, args: list[str]) -> None:
    result = limited("replay", *args, "--history", str(big), "--app", APP, "--no-history",
                     cwd=big.parent)
    assert "MemoryError" not in result.stderr and "Traceback" not in result.stderr
    assert result.returncode == 1, result.stderr  # replayed into an app that answers 500
    if args == ["--last", "2"]:
        assert "evt_000004" in result.stdout and "evt_000005" in result.stdout
        assert "evt_000001" not in result.stdout
