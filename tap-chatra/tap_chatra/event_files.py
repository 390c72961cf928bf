"""Reading a JSONL file of webhook events from where the last run stopped.

A file that only grows is read from the byte offset reached last time, so each event is read
once across runs. The bookmark also keeps a hash of the file's first bytes: a file that is now
shorter than the offset (truncated) or starts differently (replaced, say by log rotation) is
read from the start, with a warning. Events are numbered on from the last `seq` either way,
so `seq` never repeats and stays in order.

Each line holds one webhook body, or one event as the inbox's read API and export give it
(`{"seq": ..., "received_at": ..., "body": {...}}`), whose body is taken. A last line without
its newline is read only once it is complete JSON: a writer may be in the middle of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import typing as t
from dataclasses import dataclass

from tap_chatra.id_sources import IdSourceError

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Iterator
    from pathlib import Path

SETTING = "webhook_events_file"
#: How much of the file's start identifies it.
HEAD_BYTES = 1024


@dataclass(frozen=True)
class FileEvent:
    """One event read from the file, and the position just after its line."""

    seq: int
    payload: dict[str, t.Any]
    received_at: str | None
    line: int
    end_offset: int


def _head_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _unwrap(value: dict[str, t.Any]) -> tuple[dict[str, t.Any], str | None]:
    """The webhook body of a line, and when the inbox received it (for exported events)."""
    body = value.get("body")
    if isinstance(body, dict) and "seq" in value and "eventName" not in value:
        received_at = value.get("received_at")
        return body, received_at if isinstance(received_at, str) else None
    return value, None


class EventFile:
    """One stream's reading position in the events file, kept in its bookmark under `file`."""

    def __init__(self, path: Path, bookmark: dict[str, t.Any], logger: logging.Logger) -> None:
        self.path = path
        self._bookmark = bookmark
        self._logger = logger
        position = bookmark.get("file")
        self._position: dict[str, t.Any] = position if isinstance(position, dict) else {}
        self._head = b""

    def _open(self) -> t.BinaryIO:
        try:
            return self.path.open("rb")
        except OSError as error:
            msg = f"{SETTING}: cannot read {self.path}: {error.strerror or type(error).__name__}."
            raise IdSourceError(msg) from None

    def check_readable(self) -> None:
        """Open the file once, for a connection test.

        Raises:
            IdSourceError: If it cannot be read.
        """
        self._open().close()

    def _start(self, size: int, stream: str) -> int:
        """Where to resume: the saved offset, or 0 for a file that was replaced or truncated."""
        offset = self._position.get("offset")
        head = self._position.get("head")
        if not isinstance(offset, int) or offset <= 0 or not isinstance(head, str):
            return 0
        if size >= offset and _head_hash(self._head[:offset]) == head:
            return offset
        self._logger.warning(
            "%s: %s %s was replaced or truncated since the last run; reading it from the start.",
            stream,
            SETTING,
            self.path,
        )
        return 0

    def events(self, stream: str) -> Iterator[FileEvent]:
        """Every complete event after the saved position, numbered on from the saved seq."""
        with self._open() as file:
            self._head = file.read(HEAD_BYTES)
            size = file.seek(0, os.SEEK_END)
            offset = self._start(size, stream)
            seq = self._last_seq()
            line = self._position.get("line")
            line_number = line if offset and isinstance(line, int) else 0
            file.seek(offset)
            while raw := file.readline():
                end = offset + len(raw)
                line_number += 1
                value = self._parse(raw, stream, line_number, complete=raw.endswith(b"\n"))
                if value is _INCOMPLETE:
                    return
                if isinstance(value, dict):
                    seq += 1
                    payload, received_at = _unwrap(value)
                    yield FileEvent(seq, payload, received_at, line_number, end)
                else:
                    # A line that is not an event still counts as read.
                    self.advance(seq, end, line_number)
                offset = end

    def _last_seq(self) -> int:
        # A replaced file continues the numbering, so seq never repeats in the warehouse.
        seq = self._position.get("seq")
        return seq if isinstance(seq, int) else 0

    def _parse(self, raw: bytes, stream: str, line: int, *, complete: bool) -> object:
        if not raw.strip():
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            if not complete:
                return _INCOMPLETE
            self._logger.warning(
                "%s: %s %s, line %d: not valid JSON; skipped.", stream, SETTING, self.path, line
            )
            return None
        if not isinstance(value, dict):
            self._logger.warning(
                "%s: %s %s, line %d: not a JSON object; skipped.", stream, SETTING, self.path, line
            )
            return None
        return value

    def advance(self, seq: int, end_offset: int, line: int) -> None:
        """Record that the file is done up to `end_offset` (line `line`), the last event `seq`."""
        self._position = {
            "offset": end_offset,
            "seq": seq,
            "line": line,
            "head": _head_hash(self._head[:end_offset]),
        }
        self._bookmark["file"] = self._position


_INCOMPLETE = object()
