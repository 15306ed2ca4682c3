"""The history: every delivery attempt appended to a JSON Lines file, and read back for replay.

Each attempt is one line, written with a single `write` to a file opened for appending, so
a process killed at any moment leaves only whole lines behind (at worst a torn last line if
the disk itself fails), and two runs appending at once never interleave inside a line.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import shlex
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.delivery import (
    APP_BASE_URL,
    REDACTED,
    Attempt,
    Event,
    hide_userinfo,
    redact_headers,
)
from simulator.errors import WasimError

DEFAULT_PATH = Path(".wasim") / "history.jsonl"
FORMAT_VERSION = 1


def to_record(attempt: Attempt) -> dict[str, Any]:
    """The JSON object one attempt is stored as, secrets redacted.

    Headers go through redact_headers again (whatever the source did: a response's
    Set-Cookie or an echoed credential arrives unredacted), URLs lose any `user:password@`.
    """
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
        "target": hide_userinfo(attempt.target),
        "method": attempt.method,
        "url": hide_userinfo(attempt.url),
        "user": event.user,
        "name": event.name,
        "button": event.button,
        "message_id": event.message_id,
        "request_headers": [list(h) for h in redact_headers(attempt.request_headers)],
        "status": attempt.status,
        "latency_ms": round(attempt.latency_ms, 3),
        "error": hide_userinfo(attempt.error) if attempt.error is not None else None,
        "error_kind": attempt.error_kind,
        "response_headers": [list(h) for h in redact_headers(attempt.response_headers)],
        "response_body": attempt.response_body,
        "response_truncated": attempt.response_truncated,
        "replay_of": attempt.replay_of,
    }
    if attempt.app_error is not None:  # only when an in-process app raised
        record["app_error"] = attempt.app_error
    # Only when set, so the records of plain sends keep their shape.
    if attempt.duplicate_of is not None:
        record["duplicate_of"] = attempt.duplicate_of
    if attempt.edit_of is not None:
        record["edit_of"] = attempt.edit_of
    try:
        record["body"] = event.body.decode("utf-8")
    except UnicodeDecodeError:
        record["body_base64"] = base64.b64encode(event.body).decode("ascii")
    return record


SENT_KIND = "sent"  # a record of a message the app sent through the send API (not an attempt)


@dataclass(frozen=True)
class SentRecord:
    """A message the app sent through the send API, as the history keeps it (no secrets:
    neither the request's fields, which carry the api-key, nor its headers)."""

    at: float
    version: str
    business: str
    to: str
    type: str
    text: str
    template: str = ""
    buttons: tuple[str, ...] = ()  # payloads (quick replies) or ids (interactive)
    context_id: str = ""
    message_id: str = ""  # Kaleyra's id (V1 `<uuid>:<n>`)
    wamid: str = ""
    to_kind: str = "number"  # what `to` is: "number" or "bsuid" (a business-scoped user id)
    error: int = 0  # Meta's error code it fails with (132001: no such template), 0 for none

    def as_record(self) -> dict[str, Any]:
        """The JSON object it is stored as."""
        return {"v": FORMAT_VERSION, "kind": SENT_KIND, "at": self.at, "version": self.version,
                "business": self.business, "to": self.to, "type": self.type,
                "text": self.text, "template": self.template, "buttons": list(self.buttons),
                "context_id": self.context_id, "message_id": self.message_id,
                "wamid": self.wamid, "to_kind": self.to_kind, "error": self.error}


def sent_record(message: Any) -> dict[str, Any]:
    """The JSON object a SentMessage (simulator.sendapi) is stored as."""
    return SentRecord(round(message.received_at, 6), message.version, message.business,
                      message.to, message.type, message.text, message.template,
                      tuple(b.payload for b in message.buttons), message.context_id,
                      message.recipient_id, message.wamid, message.to_kind,
                      message.error).as_record()


def from_sent_record(record: dict[str, Any]) -> SentRecord:
    """A SentRecord from a stored record; raises ValueError (BadRecord) if malformed.

    Records written before `to_kind` and `error` were kept read as a number, not failed.
    """
    buttons = record.get("buttons", [])
    if not isinstance(buttons, list) or not all(isinstance(b, str) for b in buttons):
        raise BadRecord("buttons is not a list of text")
    to_kind = _text(record, "to_kind", "number")
    if to_kind not in ("number", "bsuid"):
        raise BadRecord("to_kind is not number or bsuid")
    error = _whole(record, "error", 0, 10**9, optional=True)
    return SentRecord(_number(record, "at", high=_LATEST_TIME), _text(record, "version"),
                      _text(record, "business"), _text(record, "to"), _text(record, "type"),
                      _text(record, "text", ""), _text(record, "template", ""),
                      tuple(buttons), _text(record, "context_id", ""),
                      _text(record, "message_id", ""), _text(record, "wamid", ""),
                      to_kind, error or 0)


class BadRecord(ValueError):
    """A history line whose fields do not have the types wasim writes."""


_ERROR_KINDS = (None, "connect", "timeout", "protocol", "auth")
_LATEST_TIME = 32503680000.0  # year 3000: later stamps cannot be shown as a date


def _text(record: dict[str, Any], key: str, default: str | None = None,
          optional: bool = False) -> Any:
    """A text field; `optional` lets it be null."""
    value = record.get(key, default) if default is not None or optional else record[key]
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise BadRecord(f"{key} is not text")
    return value


def _number(record: dict[str, Any], key: str, default: float | None = None,
            low: float = 0.0, high: float = math.inf) -> float:
    """A finite number field within [low, high]."""
    value = record.get(key, default) if default is not None else record[key]
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or not low <= value <= high:
        raise BadRecord(f"{key} is not a number from {low:g} to {high:g}")
    return float(value)


def _whole(record: dict[str, Any], key: str, low: int, high: int,
           optional: bool = False) -> Any:
    """A whole-number field within [low, high]; `optional` lets it be null."""
    value = record.get(key) if optional else record[key]
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRecord(f"{key} is not a whole number from {low} to {high}")
    return value


def _flag(record: dict[str, Any], key: str, default: bool) -> bool:
    value = record.get(key, default)
    if not isinstance(value, bool):
        raise BadRecord(f"{key} is not true or false")
    return value


def _headers(record: dict[str, Any], key: str) -> tuple[tuple[str, str], ...]:
    value = record.get(key, [])
    if not isinstance(value, list) or not all(
            isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h)
            for h in value):
        raise BadRecord(f"{key} is not a list of [name, value] pairs")
    return tuple((h[0], h[1]) for h in value)


def from_record(record: dict[str, Any]) -> Attempt:
    """An Attempt from a stored record; raises KeyError or ValueError (BadRecord) if malformed.

    Every field is checked for the type wasim writes: a history file is untrusted input.
    """
    if "body" in record:
        body = _text(record, "body").encode("utf-8", "surrogatepass")
    else:
        try:
            body = base64.b64decode(_text(record, "body_base64"), validate=True)
        except binascii.Error:
            raise BadRecord("body_base64 is not base64") from None
    error_kind = record.get("error_kind")
    if error_kind not in _ERROR_KINDS:
        raise BadRecord("error_kind is not one wasim writes")
    event = Event(_text(record, "event"), body, _whole(record, "seed", -2**63, 2**64,
                                                       optional=True),
                  _text(record, "user", ""), _text(record, "name", ""),
                  _text(record, "button", ""), _text(record, "message_id", ""))
    return Attempt(
        event=event,
        delivery_id=_text(record, "delivery"),
        number=_whole(record, "attempt", 1, 1_000_000),
        started_at=_number(record, "at", high=_LATEST_TIME),
        target=_text(record, "target"),
        method=_text(record, "method"),
        url=_text(record, "url"),
        request_headers=_headers(record, "request_headers"),
        status=_whole(record, "status", 100, 999, optional=True),
        response_headers=_headers(record, "response_headers"),
        response_body=_text(record, "response_body", ""),
        response_truncated=_flag(record, "response_truncated", False),
        latency_ms=_number(record, "latency_ms", 0.0, high=1e12),
        error=_text(record, "error", optional=True),
        error_kind=error_kind,
        delivered=record.get("outcome") == "delivered",
        final=_flag(record, "final", True),
        replay_of=_text(record, "replay_of", optional=True),
        app_error=_optional_text(record.get("app_error"), "app_error"),
        duplicate_of=_optional_text(record.get("duplicate_of"), "duplicate_of"),
        edit_of=_optional_text(record.get("edit_of"), "edit_of"),
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
        self._lock = threading.Lock()

    def _open(self) -> int:
        try:
            if self.path.exists() and not self.path.is_file():
                raise _unwritable(self.path, "not a regular file")
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # O_NONBLOCK: a FIFO made after the check above fails at once instead of hanging.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK,
                         0o600)
        except (OSError, ValueError) as exc:
            raise _unwritable(self.path, getattr(exc, "strerror", None) or str(exc)) from None
        try:
            info = os.fstat(fd)
            # /dev/full, a FIFO, a terminal: opening works, writing fails or blocks later.
            if not stat.S_ISREG(info.st_mode):
                raise _unwritable(self.path, "not a regular file")
            # A torn last line (from a crash) must not swallow the first line written now.
            if info.st_size and not _ends_with_newline(self.path):
                os.write(fd, b"\n")
        except OSError as exc:
            os.close(fd)
            raise _unwritable(self.path, exc.strerror) from None
        except WasimError:
            os.close(fd)
            raise
        return fd

    def open(self) -> HistoryWriter:
        """Open the file now (once), so a history that cannot be written stops the command
        before anything is sent; raises WasimError."""
        if self._fd is None:
            self._fd = self._open()
        return self

    def check(self) -> None:
        """Fail now (WasimError) if the file could not be appended to, creating nothing.

        For a UI that may never send: an existing file is opened and closed, a new one only
        needs a folder that can be written.
        """
        if self.path.exists() or self.path.is_symlink():
            os.close(self._open())
            return
        folder = self.path.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise _unwritable(self.path, f"cannot create files in {folder}")

    def append(self, attempt: Attempt) -> None:
        """Write one attempt as one line, straight to the OS (no buffer to lose on a kill)."""
        self._write(to_record(attempt))

    def append_sent(self, message: Any) -> None:
        """Write one message the app sent through the send API (a SentMessage) as one line."""
        self._write(sent_record(message))

    def _write(self, record: dict[str, Any]) -> None:
        with self._lock:  # the send API's thread writes too: one open, whole lines
            if self._fd is None:
                self._fd = self._open()
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            os.write(self._fd, line.encode("utf-8", "surrogatepass"))
        except OSError as exc:  # the disk filled up mid-run: the lines before stay whole
            raise _unwritable(self.path, exc.strerror) from None

    def close(self) -> None:
        """Close the file; appending again reopens it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _unwritable(path: Path, reason: str | None) -> WasimError:
    return WasimError(f"cannot write the history ({reason or 'unknown reason'})",
                      where=str(path),
                      hint="Pick another file with --history, or --no-history.")


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
    sent: list[SentRecord] = field(default_factory=list)  # what apps sent through the send API

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
        # O_NONBLOCK and a regular-file check: a FIFO or a device would block or never end.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise WasimError("no history here yet", where=str(path),
                         hint="`wasim fire` records every attempt there; or point --history "
                              "at another file.") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise WasimError(f"cannot read the history ({reason})", where=str(path)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise WasimError("cannot read the history (not a regular file)", where=str(path),
                             hint="Point --history at the file `wasim fire` wrote.")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read()
    except OSError as exc:
        raise WasimError(f"cannot read the history ({exc.strerror})", where=str(path)) from None
    finally:
        os.close(fd)
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
            if record.get("kind") == SENT_KIND:
                history.sent.append(from_sent_record(record))
            else:
                history.attempts.append(from_record(record))
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            # RecursionError: JSON nested thousands deep; ValueError also covers 5,000-digit
            # numbers. Either way the line is skipped and every other line is kept.
            bad += 1
            if torn_tail and number == len(lines):
                history.warnings.append(f"{path}:{number}: skipped an incomplete last line "
                                        "(the run that wrote it was probably killed)")
            else:
                reason = f"missing {exc}" if isinstance(exc, KeyError) else \
                    str(exc) if isinstance(exc, BadRecord) else type(exc).__name__
                history.warnings.append(f"{path}:{number}: skipped a line that is not a "
                                        f"history record ({reason[:120]})")
    if bad and not history.attempts and not history.sent:
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
        if REDACTED in value and name.lower() == "x-hub-signature-256":
            # The bytes below are the signed ones; the secret that signs them is not kept.
            lines.append(f"# {name} was redacted; `wasim replay {attempt.event.id} "
                         "--app-secret ...` signs these bytes again")
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
