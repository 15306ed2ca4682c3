"""Captured callbacks as brands log them, read back one callback at a time for `wasim import`.

A capture is JSON Lines (one body, or one array of bodies, per line), a JSON array, or
wasim's own history (history.jsonl records), plain or gzipped. Each body is a Kaleyra V2
callback or a Meta envelope, batched or not; a batch is split into one callback per message
or status, as a handler must read it. Files are streamed line by line with the line length,
the bytes and the number of callbacks capped, so a hostile or huge file ends in a clear
error, never in exhausted memory. Every problem is one WasimError naming the file and line.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import os
import stat
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from simulator.errors import WasimError

MAX_LINE_BYTES = 1_000_000  # one logged callback is a few KB; a megabyte is not a callback
MAX_TOTAL_BYTES = 100_000_000  # every file of one import together (held while it runs)
MAX_DOCUMENT_BYTES = 16_000_000  # a whole-file JSON array, held whole while it is read
# Callbacks one import reads, batches split and copies included: each is held (~8 KB) until
# the scenario is written, so this bounds memory (20,000: about 160 MB).
MAX_CALLBACKS = 20_000


@dataclass(frozen=True)
class Callback:
    """One captured callback: one message or one status, with where it was read."""

    where: str  # file:line
    envelope: str  # "kaleyra" or "meta"
    value: dict[str, Any]  # Meta's value object holding exactly this message or status
    extra_info: dict[str, Any]  # Kaleyra's extra_info ({} for a Meta envelope)
    at: float | None  # when it arrived (history), else None: the timestamp on the wire
    fingerprint: str  # the same body logged twice has the same fingerprint (a redelivery)
    waba_id: str = ""  # the Meta envelope's entry id

    @property
    def message(self) -> dict[str, Any]:
        """The message (empty for a status)."""
        messages = self.value.get("messages")
        return messages[0] if isinstance(messages, list) and messages else {}

    @property
    def status(self) -> dict[str, Any]:
        """The status (empty for a message)."""
        statuses = self.value.get("statuses")
        return statuses[0] if isinstance(statuses, list) and statuses else {}

    @property
    def contact(self) -> dict[str, Any]:
        """The sender's (or recipient's) `contacts[]` entry, if any."""
        contacts = self.value.get("contacts")
        first = contacts[0] if isinstance(contacts, list) and contacts else {}
        return first if isinstance(first, dict) else {}

    @property
    def timestamp(self) -> float | None:
        """Unix seconds: the arrival time if logged, else the wire's timestamp."""
        if self.at is not None:
            return self.at
        raw = (self.message or self.status).get("timestamp")
        try:
            return float(raw) if raw is not None else None
        except (TypeError, ValueError):
            return None

    def kind(self) -> str:
        """The kind wasim names it by (button, text, image, voice, status...), or its type."""
        if self.status:
            return "status"
        message = self.message
        kind = message.get("type")
        if kind == "interactive":
            inner = message.get("interactive")
            kind = inner.get("type") if isinstance(inner, dict) else None
        elif kind == "audio" and isinstance(message.get("audio"), dict) \
                and message["audio"].get("voice"):
            kind = "voice"
        return str(kind) if isinstance(kind, str) and kind else "?"


@dataclass(frozen=True)
class Capture:
    """Everything read: the callbacks in captured order, and the template names wasim's
    history recorded for the app's own sends (the brand's, kept)."""

    callbacks: tuple[Callback, ...]
    template_names: tuple[str, ...]


def read_captures(paths: Sequence[str | Path], *, max_line: int = MAX_LINE_BYTES,
                  max_callbacks: int = MAX_CALLBACKS,
                  max_document: int = MAX_DOCUMENT_BYTES,
                  max_total: int = MAX_TOTAL_BYTES) -> Capture:
    """Read every file in order; a WasimError (file:line) on the first bad record."""
    callbacks: list[Callback] = []
    templates: list[str] = []
    budget = [max_total, max_total]  # bytes still allowed across files, and the limit
    for path in paths:
        for where, record in _records(Path(path), max_line, max_document, budget):
            for callback in _callbacks(record, where, templates):
                if len(callbacks) >= max_callbacks:
                    raise WasimError(f"more than {max_callbacks:,} callbacks (the limit of "
                                     "one import)", where=where,
                                     hint="Import a slice of the capture (split the file).")
                callbacks.append(callback)
    if not callbacks:
        raise WasimError("no callbacks in the capture", where=str(paths[0]) if paths else None,
                         hint="Give files of logged Kaleyra or Meta callback bodies.")
    return Capture(tuple(callbacks), tuple(dict.fromkeys(templates)))


def _spend(budget: list[int], size: int, where: str) -> None:
    budget[0] -= size
    if budget[0] < 0:
        raise WasimError(f"the capture is larger than {budget[1]:,} bytes in all (the "
                         "limit of one import)", where=where,
                         hint="Import a slice of the capture (split the file).")


def _records(path: Path, max_line: int, max_document: int, budget: list[int]
             ) -> Iterator[tuple[str, Any]]:
    """(file:line, JSON value) for each record of the file."""
    try:
        # O_NONBLOCK and a regular-file check: a FIFO or a device would block or never end.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else str(exc)
        raise WasimError(f"cannot read the capture ({why})", where=str(path)) from None
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        raise WasimError("not a regular file", where=str(path),
                         hint="Give a file of logged callbacks (save a stream to a file first).")
    with os.fdopen(descriptor, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        # A gzipped log is read as it is decompressed: the caps count decompressed bytes,
        # so a small file that inflates to gigabytes stops at the cap.
        file = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb")) if gzipped else raw
        try:
            # JSON Lines, or a JSON array when the first non-blank character is `[`.
            head = file.read(65_536).lstrip(b" \t\r\n\xef\xbb\xbf")[:1]
            file.seek(0)
            if head == b"[":
                yield from _document(file, path, max_document, budget)
            else:
                yield from _lines(file, path, max_line, budget)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise WasimError(f"the gzip file is damaged ({exc})", where=str(path)) from None


def _lines(file: IO[bytes], path: Path, max_line: int, budget: list[int]
           ) -> Iterator[tuple[str, Any]]:
    number = 0
    while True:
        raw = file.readline(max_line + 1)
        if not raw:
            return
        number += 1
        where = f"{path}:{number}"
        if len(raw) > max_line and not raw.endswith(b"\n"):
            raise WasimError(f"the line is longer than {max_line:,} bytes (the limit for one "
                             "logged callback)", where=where,
                             hint="Is this a capture of callback bodies, one per line?")
        _spend(budget, len(raw), where)
        text = _decode(raw, where).strip()
        if number == 1:
            text = text.removeprefix("\ufeff")
        if not text:
            continue
        try:
            yield where, json.loads(text)
        except json.JSONDecodeError as exc:
            raise WasimError(f"not JSON ({exc.msg} at column {exc.colno})", where=where,
                             hint="A capture holds one JSON body per line, or one JSON "
                                  "array.") from None
        except RecursionError:
            raise WasimError("the JSON is nested too deeply", where=where) from None


def _document(file: IO[bytes], path: Path, max_document: int, budget: list[int]
              ) -> Iterator[tuple[str, Any]]:
    """The elements of a whole-file JSON array, each with the line it starts on (parsed
    element by element, so the text is held once and each element only while it is read)."""
    data = file.read(max_document + 1)
    if len(data) > max_document:
        raise WasimError(f"the JSON array is larger than {max_document:,} bytes", where=str(path),
                         hint="Log one body per line (JSON Lines): those files are streamed.")
    _spend(budget, len(data), f"{path}:1")
    text = _decode(data, str(path))
    del data
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    expect_more = False
    counted = [0, 1]  # lines are counted forward only: a big array stays linear

    def _line(text: str, upto: int) -> int:
        if upto >= counted[0]:
            counted[1] += text.count("\n", counted[0], upto)
            counted[0] = upto
            return counted[1]
        return text.count("\n", 0, upto) + 1

    while True:
        pos = _skip_space(text, pos)
        if pos >= len(text):
            raise WasimError("the JSON array is not closed", where=f"{path}:{_line(text, pos)}",
                             hint="Is the file cut short?")
        if text[pos] == "]" and not expect_more:
            break
        try:
            element, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise WasimError(f"not JSON ({exc.msg})", where=f"{path}:{exc.lineno}") from None
        except RecursionError:
            raise WasimError("the JSON is nested too deeply",
                             where=f"{path}:{_line(text, pos)}") from None
        yield f"{path}:{_line(text, pos)}", element
        pos = _skip_space(text, end)
        if pos < len(text) and text[pos] == ",":
            pos, expect_more = pos + 1, True
        elif pos < len(text) and text[pos] == "]":
            expect_more = False
        else:
            raise WasimError("expected , or ] after an element of the array",
                             where=f"{path}:{_line(text, pos)}")
    if _skip_space(text, pos + 1) < len(text):
        raise WasimError("text after the end of the JSON array",
                         where=f"{path}:{_line(text, _skip_space(text, pos + 1))}")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n\ufeff":
        pos += 1
    return pos


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WasimError(f"not UTF-8 text (byte {exc.start})", where=where,
                         hint="Captures are UTF-8 JSON.") from None


def _callbacks(record: Any, where: str, templates: list[str]) -> Iterator[Callback]:
    """The callbacks in one record: a body, a list of bodies, or a history record."""
    if isinstance(record, list):
        for item in record:
            yield from _callbacks_of_body(item, where, None)
        return
    if isinstance(record, dict) and "v" in record and ("body" in record
                                                       or "body_base64" in record
                                                       or record.get("kind") == "sent"):
        yield from _history(record, where, templates)
        return
    yield from _callbacks_of_body(record, where, None)


def _history(record: dict[str, Any], where: str, templates: list[str]) -> Iterator[Callback]:
    """A wasim history record: an attempt's body (retries of one delivery count once), or
    the app's sent message (only its template name is kept)."""
    if record.get("kind") == "sent":
        name = record.get("template")
        if isinstance(name, str) and name:
            templates.append(name)
        return
    if record.get("attempt", 1) != 1:
        return  # a retry of the same delivery: the handler's answer made wasim send it again
    body = record.get("body")
    if body is None and isinstance(record.get("body_base64"), str):
        try:
            body = base64.b64decode(record["body_base64"], validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            raise WasimError("body_base64 is not base64 of UTF-8 text", where=where) from None
    if not isinstance(body, str):
        raise WasimError("a history record without a body", where=where)
    if not body:
        return  # a verification handshake (GET): no callback
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise WasimError(f"the record's body is not JSON ({exc.msg})", where=where) from None
    at = record.get("at")
    yield from _callbacks_of_body(document, where,
                                  float(at) if isinstance(at, int | float) else None)


def _not_a_callback(where: str, why: str) -> WasimError:
    return WasimError(f"not a callback ({why})", where=where,
                      hint="Expected a Kaleyra V2 body (meta_object, extra_info), a Meta "
                           "envelope (object, entry) or a wasim history record.")


def _callbacks_of_body(body: Any, where: str, at: float | None) -> Iterator[Callback]:
    if not isinstance(body, dict):
        raise _not_a_callback(where, f"a JSON {type(body).__name__}, not an object")
    if "meta_object" in body:
        change = body["meta_object"]
        extra = body.get("extra_info")
        if not isinstance(extra, dict):
            extra = {}
        if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
            raise _not_a_callback(where, "meta_object has no value object")
        yield from _split(change["value"], where, "kaleyra", extra, at, "")
        return
    if "entry" in body:
        entries = body["entry"]
        if not isinstance(entries, list):
            raise _not_a_callback(where, "entry is not a list")
        for entry in entries:
            changes = entry.get("changes") if isinstance(entry, dict) else None
            if not isinstance(changes, list):
                raise _not_a_callback(where, "an entry without changes")
            waba = entry.get("id") if isinstance(entry.get("id"), str) else ""
            for change in changes:
                value = change.get("value") if isinstance(change, dict) else None
                if not isinstance(value, dict):
                    raise _not_a_callback(where, "a change without a value object")
                yield from _split(value, where, "meta", {}, at, str(waba))
        return
    raise _not_a_callback(where, "neither meta_object nor entry")


def _split(value: dict[str, Any], where: str, envelope: str, extra: dict[str, Any],
           at: float | None, waba: str) -> Iterator[Callback]:
    """One callback per message and per status of `value` (Meta's batches)."""
    messages, statuses = value.get("messages"), value.get("statuses")
    given = value.get("contacts")
    contacts: list[Any] = given if isinstance(given, list) else []
    items: list[tuple[str, dict[str, Any]]] = []
    for key, group in (("messages", messages), ("statuses", statuses)):
        if group is None:
            continue
        if not isinstance(group, list) or not all(isinstance(i, dict) for i in group):
            raise _not_a_callback(where, f"{key} is not a list of objects")
        items.extend((key, item) for item in group)
    if not items:
        raise _not_a_callback(where, "no messages or statuses")
    for key, item in items:
        sender = item.get("from") if key == "messages" else item.get("recipient_id")
        mine = [c for c in contacts if isinstance(c, dict) and c.get("wa_id") == sender]
        if not mine and len(contacts) == 1:
            mine = contacts
        one = {k: v for k, v in value.items() if k not in ("messages", "statuses", "contacts")}
        if mine:
            one["contacts"] = mine[:1]
        one[key] = [item]
        # Logged twice (redelivered) gives the same item and the same Kaleyra trace; a
        # logger's key order or escaping does not change the canonical form.
        fingerprint = json.dumps([key, item, extra.get("trace_id")], sort_keys=True,
                                 ensure_ascii=True)
        yield Callback(where, envelope, one, extra, at, fingerprint, waba)
