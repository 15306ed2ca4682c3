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
import re
import shlex
import stat
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.delivery import (
    APP_BASE_URL,
    REDACTED,
    Attempt,
    Event,
    hide_url_secrets,
    redact_headers,
)
from simulator.errors import WasimError, named
from simulator.safefiles import check_no_links, open_to_write

DEFAULT_PATH = Path(".wasim") / "history.jsonl"
FORMAT_VERSION = 1


WITHHELD = "[withheld: a secret was sent with the request]"
# Answer headers whose values keep their shape when a secret was sent: anything else a target
# sets could carry an echo.
_SHAPED = {"content-length": re.compile(r"\d{1,12}"), "retry-after": re.compile(r"\d{1,12}"),
           "content-type": re.compile(r"[\w.+-]{1,64}/[\w.+-]{1,64}(; ?charset=[\w-]{1,32})?"),
           "date": re.compile(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT")}


def secret_sent(attempt: Attempt) -> bool:
    """Whether the request carried a credential: a header the history redacts (Authorization,
    a custom header, a signature, Basic auth from the URL)."""
    return any(REDACTED in value for _, value in redact_headers(attempt.request_headers))


def _withheld_headers(headers: Iterable[tuple[str, str]]) -> list[list[str]]:
    return [[name, value if (shape := _SHAPED.get(name.lower())) and shape.fullmatch(value)
             else REDACTED] for name, value in headers]


def to_record(attempt: Attempt) -> dict[str, Any]:
    """The JSON object one attempt is stored as, secrets redacted.

    Headers go through redact_headers again (whatever the source did: a response's
    Set-Cookie or an echoed credential arrives unredacted), URLs lose any `user:password@`
    and the values of query parameters named like credentials.

    When the request carried a secret, the answer's body is not kept (only its length) and
    its headers only where their value has a known harmless shape. A target can echo a
    secret in more spellings than any list foresees (JSON-escaped, percent-encoded, another
    case, base64, inside a longer base64, cut at the 64 KiB limit, or a secret of one or
    two characters that no search can tell from other text), so the history does not try.
    Nor does it keep a hash of the body: a body that echoes a short secret around known
    text could be recovered from its hash by trying every value.
    """
    event = attempt.event
    withhold = secret_sent(attempt)
    answer_headers = redact_headers(attempt.response_headers)
    record: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "event": event.id,
        "delivery": attempt.delivery_id,
        "attempt": attempt.number,
        "final": attempt.final,
        "at": round(attempt.started_at, 6),
        "outcome": attempt.outcome,
        "seed": event.seed,
        "target": hide_url_secrets(attempt.target),
        "method": attempt.method,
        "url": hide_url_secrets(attempt.url),
        "user": event.user,
        "name": event.name,
        "button": event.button,
        "message_id": event.message_id,
        "request_headers": [list(h) for h in redact_headers(attempt.request_headers)],
        "status": attempt.status,
        "latency_ms": round(attempt.latency_ms, 3),
        "error": hide_url_secrets(attempt.error) if attempt.error is not None else None,
        "error_kind": attempt.error_kind,
        "response_headers": _withheld_headers(answer_headers) if withhold
        else [list(h) for h in answer_headers],
        "response_body": attempt.response_body,
        "response_truncated": attempt.response_truncated,
        "replay_of": attempt.replay_of,
    }
    if withhold and (attempt.response_body or attempt.response_truncated):
        length = attempt.response_bytes or len(attempt.response_body.encode("utf-8", "replace"))
        record["response_body"] = WITHHELD
        record["response_withheld"] = length  # bytes kept of the answer (at most 64 KiB)
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
    # The world it was sent in (simulator.world), so a later tap on it comes from its
    # recipient to its business: `fire --context-id`. Blank in records written before.
    phone_number_id: str = ""
    waba_id: str = ""
    user_id: str = ""  # the recipient's BSUID
    ref: str = ""
    ref1: str = ""
    ref2: str = ""

    def as_record(self) -> dict[str, Any]:
        """The JSON object it is stored as."""
        return {"v": FORMAT_VERSION, "kind": SENT_KIND, "at": self.at, "version": self.version,
                "business": self.business, "to": self.to, "type": self.type,
                "text": self.text, "template": self.template, "buttons": list(self.buttons),
                "context_id": self.context_id, "message_id": self.message_id,
                "wamid": self.wamid, "to_kind": self.to_kind, "error": self.error,
                "phone_number_id": self.phone_number_id, "waba_id": self.waba_id,
                "user_id": self.user_id, "ref": self.ref, "ref1": self.ref1,
                "ref2": self.ref2}


def sent_record(message: Any) -> dict[str, Any]:
    """The JSON object a SentMessage (simulator.sendapi) is stored as."""
    return SentRecord(round(message.received_at, 6), message.version, message.business,
                      message.to, message.type, message.text, message.template,
                      tuple(b.payload for b in message.buttons), message.context_id,
                      message.recipient_id, message.wamid, message.to_kind,
                      message.error, getattr(message, "phone_number_id", ""),
                      getattr(message, "waba_id", ""), getattr(message, "user_id", ""),
                      message.ref, message.ref1, message.ref2).as_record()


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
                      to_kind, error or 0, *(_text(record, key, "") for key in (
                          "phone_number_id", "waba_id", "user_id", "ref", "ref1", "ref2")))


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
            # No link is followed, in the file or its folders (simulator.safefiles); a FIFO
            # made in its place fails at once instead of hanging.
            fd = open_to_write(self.path, "the history", append=True, mode=0o600,
                               readable=True)
        except (OSError, ValueError) as exc:
            raise _unwritable(self.path, getattr(exc, "strerror", None) or str(exc)) from None
        try:
            size = os.fstat(fd).st_size
            # A torn last line (from a crash) must not swallow the first line written now.
            if size and os.lseek(fd, -1, os.SEEK_END) >= 0 and os.read(fd, 1) != b"\n":
                os.write(fd, b"\n")
        except OSError as exc:
            os.close(fd)
            raise _unwritable(self.path, exc.strerror) from None
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
        check_no_links(self.path, "the history")
        if self.path.exists():
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
                      hint=f"Pick another file with {named('history')}, or "
                           f"{named('no_history')}.")


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
        return [a for a in self.attempts if matches(a, ident)]


def matches(attempt: Attempt, ident: str) -> bool:
    """Whether `attempt`'s event id, delivery id or message id is `ident` or starts with it."""
    return (attempt.event.id.startswith(ident) or attempt.delivery_id.startswith(ident)
            or (len(ident) > 8 and attempt.event.message_id == ident))


def _open_history(path: Path) -> int:
    """A read-only descriptor of the history at `path`, a regular file; else a WasimError."""
    try:
        # O_NONBLOCK and a regular-file check: a FIFO or a device would block or never end.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise WasimError("no history here yet", where=str(path),
                         hint="`wasim fire` records every attempt there; or point "
                              f"{named('history')} at another file.") from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise WasimError(f"cannot read the history ({reason})", where=str(path)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise WasimError("cannot read the history (not a regular file)", where=str(path),
                             hint=f"Point {named('history')} at the file `wasim fire` wrote.")
    except BaseException:
        os.close(fd)
        raise
    return fd


# A record longer than this is skipped unread: attempts keep bodies of 64 KiB at most, and a
# callback is far below it. Reading is by lines and chunks, never the whole file at once, so
# a history of any size is read within a few of these.
MAX_LINE = 16 << 20
_CHUNK = 1 << 20
MAX_WARNINGS = 1_000  # kept; past it, only counted


def _lines_forward(fd: int) -> Iterator[bytes | None]:
    """Every line of the file (without its newline; the last one too, b"" after a final
    newline), or None for a line longer than MAX_LINE, which is skipped without being kept."""
    with os.fdopen(fd, "rb", closefd=False, buffering=_CHUNK) as handle:
        while True:
            line = handle.readline(MAX_LINE + 1)
            if len(line) > MAX_LINE and not line.endswith(b"\n"):
                while line and not line.endswith(b"\n"):
                    line = handle.readline(_CHUNK)
                yield None
                continue
            if not line.endswith(b"\n"):
                yield line  # the last line: b"" after a final newline, else a torn tail
                return
            yield line[:-1]


def _lines_backward(fd: int) -> Iterator[bytes | None]:
    """The lines of _lines_forward, last first, reading the file from its end in chunks."""
    position = os.fstat(fd).st_size
    carry = b""  # the start of a line whose beginning is in a chunk not read yet
    too_long = False
    while position > 0:
        step = min(_CHUNK, position)
        position -= step
        chunk = os.pread(fd, step, position)
        if too_long:
            cut = chunk.rfind(b"\n")
            if cut < 0:
                continue
            yield None
            too_long, chunk = False, chunk[:cut]  # what precedes the long line's newline
        pieces = (chunk + carry).split(b"\n")
        carry = pieces[0]
        for piece in reversed(pieces[1:]):
            yield None if len(piece) > MAX_LINE else piece
        if len(carry) > MAX_LINE:
            too_long, carry = True, b""
    yield None if too_long or len(carry) > MAX_LINE else carry


def _count_lines(fd: int) -> int:
    """How many lines _lines_forward yields: one more than the newlines."""
    count, position = 1, 0
    while chunk := os.pread(fd, _CHUNK, position):
        count += chunk.count(b"\n")
        position += len(chunk)
    return count


def _parse_line(raw: bytes) -> Attempt | SentRecord:
    record = json.loads(raw)
    if not isinstance(record, dict):
        raise TypeError("not an object")
    if record.get("kind") == SENT_KIND:
        return from_sent_record(record)
    return from_record(record)


class _Reader:
    """Turns numbered lines into records, collecting the warnings of those it skips."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.good = self.bad = 0
        self.skipped = 0  # warnings past MAX_WARNINGS

    def read(self, number: int, raw: bytes | None,
             last: bool = False) -> Attempt | SentRecord | None:
        """The record on line `number` (`last`: the file's last line, maybe torn), or None."""
        if raw is None:
            self._warn(f"{self.history.path}:{number}: skipped a line longer than "
                       f"{MAX_LINE >> 20} MiB")
            return None
        if not raw.strip():
            return None
        try:
            record = _parse_line(raw)
            self.good += 1
            return record
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            # RecursionError: JSON nested thousands deep; ValueError also covers 5,000-digit
            # numbers. Either way the line is skipped and every other line is kept.
            self.bad += 1
            path = self.history.path
            if last:
                self._warn(f"{path}:{number}: skipped an incomplete last line "
                           "(the run that wrote it was probably killed)")
            else:
                reason = f"missing {exc}" if isinstance(exc, KeyError) else \
                    str(exc) if isinstance(exc, BadRecord) else type(exc).__name__
                self._warn(f"{path}:{number}: skipped a line that is not a history record "
                           f"({reason[:120]})")
            return None

    def _warn(self, warning: str) -> None:
        if len(self.history.warnings) < MAX_WARNINGS:
            self.history.warnings.append(warning)
        else:
            self.skipped += 1

    def check(self) -> None:
        """Refuse a file in which no line read is a history record."""
        if self.skipped:
            self.history.warnings.append(f"{self.skipped:,} more line(s) skipped")
        if self.bad and not self.good:
            raise WasimError("not a wasim history file (no line is a history record)",
                             where=str(self.history.path),
                             hint=f"Point {named('history')} at the file `wasim fire` wrote, "
                                  "or delete this one.")


def _scan(path: Path, visit: Callable[[Attempt | SentRecord], None]) -> History:
    """Read the history from its start, line by line, handing every record to `visit`."""
    fd = _open_history(path)
    history = History(path)
    reader = _Reader(history)
    try:
        # One line behind: the last line is known only once the next read finds nothing.
        number, previous = 0, None
        for raw in _lines_forward(fd):
            if number:
                record = reader.read(number, previous)
                if record is not None:
                    visit(record)
            number, previous = number + 1, raw
        record = reader.read(number, previous, last=True)
        if record is not None:
            visit(record)
    except OSError as exc:
        raise WasimError(f"cannot read the history ({exc.strerror})", where=str(path)) from None
    finally:
        os.close(fd)
    reader.check()
    return history


def read_history(path: Path) -> History:
    """Read every whole line of a history file; a torn or corrupt line is skipped with a warning."""
    kept: list[Attempt | SentRecord] = []
    history = _scan(path, kept.append)
    history.attempts = [r for r in kept if isinstance(r, Attempt)]
    history.sent = [r for r in kept if isinstance(r, SentRecord)]
    return history


def read_history_tail(path: Path, count: int,
                      keep: Callable[[Attempt | SentRecord], bool] | None = None, *,
                      events: bool = False) -> History:
    """The last `count` records that `keep` accepts, read from the end of the file (memory
    for those records only, whatever the file's size), in the file's order.

    `events`: the latest final attempt of each of the last `count` events instead (what
    History.events() ends with).
    """
    fd = _open_history(path)
    history = History(path)
    found: list[Attempt | SentRecord] = []
    seen: set[str] = set()
    reader = _Reader(history)
    try:
        total = _count_lines(fd)
        number = total + 1
        for raw in _lines_backward(fd):
            number -= 1
            if len(found) >= count:
                break
            record = reader.read(number, raw, last=number == total)
            if record is None or (keep is not None and not keep(record)):
                continue
            if events:
                if not isinstance(record, Attempt) or not record.final \
                        or record.event.id in seen:
                    continue
                seen.add(record.event.id)
            found.append(record)
    except OSError as exc:
        raise WasimError(f"cannot read the history ({exc.strerror})", where=str(path)) from None
    finally:
        os.close(fd)
    history.warnings.reverse()  # found last first; shown in the file's order
    reader.check()
    found.reverse()
    history.attempts = [r for r in found if isinstance(r, Attempt)]
    history.sent = [r for r in found if isinstance(r, SentRecord)]
    return history


def select_in_file(path: Path, ids: Iterable[str] = (), last: int | None = None,
                   failed: bool = False) -> History:
    """select() reading the file as a stream: what it returns are the History's attempts.

    Memory holds the chosen events (and, while reading, the latest attempt of each event
    that may still be chosen), never the whole file.
    """
    ids = list(ids)
    warnings: list[str] = []
    matching: dict[str, set[str]] = {ident: set() for ident in ids}
    if ids:
        def match(record: Attempt | SentRecord) -> None:
            if isinstance(record, Attempt):
                for ident, found in matching.items():
                    if matches(record, ident):
                        found.add(record.event.id)

        warnings = _scan(path, match).warnings
        for ident, found in matching.items():
            if not found:
                raise WasimError(f"no event {ident!r} in the history", where=str(path),
                                 hint="`wasim history` lists the recorded events and their "
                                      "ids.")
            if len(found) > 1:
                raise WasimError(f"{ident!r} matches {len(found)} events", where=str(path),
                                 hint="Give more characters of the id.")
    chosen: list[Attempt] = []
    if ids or failed:
        wanted: set[str] = set().union(*matching.values())
        latest: dict[str, Attempt] = {}  # in the order of each event's latest final attempt

        def collect(record: Attempt | SentRecord) -> None:
            if isinstance(record, Attempt) and record.final:
                latest.pop(record.event.id, None)
                if record.event.id in wanted or (failed and not record.delivered):
                    latest[record.event.id] = record

        warnings = _scan(path, collect).warnings
        chosen += [a for a in latest.values() if a.event.id in wanted]
        if failed:
            chosen += [a for a in latest.values() if not a.delivered]
    if last:
        tail = read_history_tail(path, last, events=True)
        warnings = warnings or tail.warnings
        chosen += tail.attempts
    # Asked for twice (by id and as failed, say), sent once.
    return History(path, list({a.event.id: a for a in chosen}.values()), warnings)


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
