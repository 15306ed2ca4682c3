"""The history: every delivery attempt appended to a JSON Lines file, and read back for replay.

Each attempt is one line, written with a single `write` to a file opened for appending, so
a process killed at any moment leaves only whole lines behind (at worst a torn last line if
the disk itself fails), and two runs appending at once never interleave inside a line.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.delivery import APP_BASE_URL, REDACTED, Attempt, Event
from simulator.errors import WasimError

DEFAULT_PATH = Path(".wasim") / "history.jsonl"
FORMAT_VERSION = 1


def to_record(attempt: Attempt) -> dict[str, Any]:
    """The JSON object one attempt is stored as (secrets were redacted at the source)."""
    event = attempt.event
    record: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "event": event.id,
        "delivery": attempt.delivery_id,
        "attempt": attempt.number,
        "final": attempt.final,
        "at": round(attempt.started_at, 6),
        "outcome": attempt.outcome,
        "seed": event.seed,
        "target": attempt.target,
        "method": attempt.method,
        "url": attempt.url,
        "user": event.user,
        "name": event.name,
        "button": event.button,
        "message_id": event.message_id,
        "request_headers": [list(h) for h in attempt.request_headers],
        "status": attempt.status,
        "latency_ms": round(attempt.latency_ms, 3),
        "error": attempt.error,
        "error_kind": attempt.error_kind,
        "response_headers": [list(h) for h in attempt.response_headers],
        "response_body": attempt.response_body,
        "response_truncated": attempt.response_truncated,
        "replay_of": attempt.replay_of,
    }
    if attempt.app_error is not None:  # only when an in-process app raised
        record["app_error"] = attempt.app_error
    try:
        record["body"] = event.body.decode("utf-8")
    except UnicodeDecodeError:
        record["body_base64"] = base64.b64encode(event.body).decode("ascii")
    return record


def from_record(record: dict[str, Any]) -> Attempt:
    """An Attempt from a stored record; raises KeyError/TypeError/ValueError if malformed."""
    if "body" in record:
        body = record["body"].encode("utf-8")
    else:
        body = base64.b64decode(record["body_base64"])
    event = Event(record["event"], body, record.get("seed"), record.get("user", ""),
                  record.get("name", ""), record.get("button", ""), record.get("message_id", ""))
    return Attempt(
        event=event,
        delivery_id=record["delivery"],
        number=int(record["attempt"]),
        started_at=float(record["at"]),
        target=record["target"],
        method=record["method"],
        url=record["url"],
        request_headers=tuple((str(k), str(v)) for k, v in record.get("request_headers", [])),
        status=record.get("status"),
        response_headers=tuple((str(k), str(v)) for k, v in record.get("response_headers", [])),
        response_body=record.get("response_body", ""),
        response_truncated=bool(record.get("response_truncated", False)),
        latency_ms=float(record.get("latency_ms", 0.0)),
        error=record.get("error"),
        error_kind=record.get("error_kind"),
        delivered=record.get("outcome") == "delivered",
        final=bool(record.get("final", True)),
        replay_of=record.get("replay_of"),
        app_error=_optional_text(record.get("app_error"), "app_error"),
    )


def _optional_text(value: Any, key: str) -> str | None:
    """A field that is text or absent; TypeError (a malformed record) otherwise."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{key} is {type(value).__name__}, not text")
    return value


class HistoryWriter:
    """Appends attempts to the history file, one flushed line each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise WasimError(f"cannot write the history ({exc.strerror})", where=str(self.path),
                             hint="Pick another file with --history, or --no-history.") from None
        # A torn last line (from a crash) must not swallow the first line written now.
        if os.fstat(fd).st_size and not _ends_with_newline(self.path):
            os.write(fd, b"\n")
        return fd

    def append(self, attempt: Attempt) -> None:
        """Write one attempt as one line, straight to the OS (no buffer to lose on a kill)."""
        if self._fd is None:
            self._fd = self._open()
        line = json.dumps(to_record(attempt), ensure_ascii=False, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode("utf-8"))

    def close(self) -> None:
        """Close the file; appending again reopens it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


@dataclass
class History:
    """What a history file holds: the attempts in order, and what had to be skipped."""

    path: Path
    attempts: list[Attempt] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def events(self) -> list[Attempt]:
        """The latest final attempt of each event, in order of that attempt."""
        latest: dict[str, Attempt] = {}
        for attempt in self.attempts:
            if attempt.final:
                latest.pop(attempt.event.id, None)
                latest[attempt.event.id] = attempt
        return list(latest.values())

    def find(self, ident: str) -> list[Attempt]:
        """Attempts whose event id, delivery id or message id is `ident` or starts with it."""
        return [a for a in self.attempts
                if a.event.id.startswith(ident) or a.delivery_id.startswith(ident)
                or (len(ident) > 8 and a.event.message_id == ident)]


def read_history(path: Path) -> History:
    """Read every whole line of a history file; a torn or corrupt line is skipped with a warning."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise WasimError("no history here yet", where=str(path),
                         hint="`wasim fire` records every attempt there; or point --history "
                              "at another file.") from None
    except OSError as exc:
        raise WasimError(f"cannot read the history ({exc.strerror})", where=str(path)) from None
    history = History(path)
    lines = data.split(b"\n")
    torn_tail = lines[-1] != b""
    bad = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            if not isinstance(record, dict):
                raise TypeError("not an object")
            history.attempts.append(from_record(record))
        except (ValueError, KeyError, TypeError) as exc:
            bad += 1
            if torn_tail and number == len(lines):
                history.warnings.append(f"{path}:{number}: skipped an incomplete last line "
                                        "(the run that wrote it was probably killed)")
            else:
                history.warnings.append(f"{path}:{number}: skipped a line that is not a "
                                        f"history record ({type(exc).__name__}: {exc})")
    if bad and not history.attempts:
        raise WasimError("not a wasim history file (no line is a history record)",
                         where=str(path), hint="Point --history at the file `wasim fire` "
                                               "wrote, or delete this one.")
    return history


def select(history: History, ids: Iterable[str] = (), last: int | None = None,
           failed: bool = False) -> list[Attempt]:
    """The events to replay, as the last final attempt of each: by id, the last N, or failed."""
    events = history.events()
    chosen: list[Attempt] = []
    for ident in ids:
        matches = {a.event.id for a in history.find(ident)}
        if not matches:
            raise WasimError(f"no event {ident!r} in the history", where=str(history.path),
                             hint="`wasim history` lists the recorded events and their ids.")
        if len(matches) > 1:
            raise WasimError(f"{ident!r} matches {len(matches)} events", where=str(history.path),
                             hint="Give more characters of the id.")
        chosen.extend(a for a in events if a.event.id in matches)
    if failed:
        chosen.extend(a for a in events if not a.delivered)
    if last is not None:
        chosen.extend(events[-last:] if last else [])
    # Asked for twice (by id and as failed, say), sent once.
    return list({a.event.id: a for a in chosen}.values())


_CURL_SETS_ITSELF = ("host", "content-length", "accept-encoding", "connection", "user-agent",
                     "accept")


def curl_command(attempt: Attempt) -> str:
    """A shell command that sends the attempt's exact bytes with its (unredacted) headers."""
    lines = []
    url = attempt.url
    if url.startswith(APP_BASE_URL):
        lines.append(f"# sent in-process to {attempt.target}; serve the app on a port and "
                     "adjust the URL")
        url = "http://127.0.0.1:8000" + url[len(APP_BASE_URL):]
    args = ["curl", "-sS", "-X", attempt.method, url]
    for name, value in attempt.request_headers:
        if name.lower() in _CURL_SETS_ITSELF:
            continue
        if REDACTED in value:
            lines.append(f"# {name} was redacted in the history; add -H '{name}: ...'")
            continue
        args += ["-H", f"{name}: {value}"]
    body = attempt.event.body
    try:
        args += ["--data-binary", body.decode("utf-8")]
        lines.append(" ".join(shlex.quote(a) for a in args))
    except UnicodeDecodeError:
        # Bytes a shell string cannot hold: printf writes them exactly (octal escapes).
        escaped = "".join(chr(b) if 32 <= b < 127 and chr(b) not in "%\\'" else f"\\{b:03o}"
                          for b in body)
        args += ["--data-binary", "@-"]
        lines.append(f"printf '{escaped}' | " + " ".join(shlex.quote(a) for a in args))
    return "\n".join(lines)
