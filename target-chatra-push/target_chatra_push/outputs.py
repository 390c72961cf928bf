"""Files a run writes besides the ledger: dead letters, the dry-run preview, sent IDs.

Each is opened on first use, so a run that has nothing to write leaves no file behind, and
each line is flushed at once, so a killed run loses nothing already reported. Dead letters and
previews hold row contents (personal data), so they are created readable by the owner only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
import typing as t

from target_chatra_push.values import json_default

if t.TYPE_CHECKING:
    from pathlib import Path

    from target_chatra_push.rendering import Outbound

_PRIVATE = 0o600


class OutputError(Exception):
    """A file the run writes failed mid-run; the message names it."""


class _LineFile:
    """A text file written one flushed line at a time, opened on first write."""

    def __init__(self, path: Path, *, replace: bool = False, private: bool = True) -> None:
        self.path = path
        self._replace = replace
        self._private = private
        self._file: t.TextIO | None = None

    def write_line(self, line: str) -> None:
        """Append one line.

        Raises:
            OutputError: When the file cannot be written (a full disk, a folder gone).
        """
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if self._replace else os.O_APPEND)
                fd = os.open(self.path, flags, _PRIVATE if self._private else 0o644)
                # A value that is not valid Unicode is kept as a JSON escape, never a crash.
                self._file = os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace")
            self._file.write(line + "\n")
            self._file.flush()
        except OSError as exc:
            msg = f"{self.path} could not be written ({exc.strerror or exc})"
            raise OutputError(msg) from None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def unwritable(path: Path) -> str | None:
    """Why the run could not write `path`, or None; makes its folder, and no file.

    An existing file is opened for appending, which changes nothing; for a new one, an
    unnamed file in its folder (gone when closed) proves the folder takes files.
    """
    try:
        if path.is_dir():
            return "it is a folder"
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND))
        else:
            tempfile.TemporaryFile(dir=path.parent).close()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _json_line(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, default=json_default)


def request_of(outbound: Outbound) -> dict[str, t.Any]:
    """The HTTP request a row becomes, as written to previews and dead letters."""
    return {"method": "POST", "path": outbound.path, "body": outbound.body}


class DeadLetterFile(_LineFile):
    """Rows never sent: invalid (kind ``invalid``) or refused by Chatra (kind ``rejected``).

    `code` names the reason for programs (``template_null``, ``missing_client_id``,
    ``http_404``...); `reason` says it for people.
    """

    def add(
        self,
        *,
        stream: str,
        key: str | None,
        kind: str,
        code: str,
        reason: str,
        record: t.Mapping[str, t.Any],
        status: int | None = None,
        outbound: Outbound | None = None,
    ) -> None:
        """Append one dead letter."""
        entry: dict[str, t.Any] = {
            "time": _now(),
            "stream": stream,
            "key": key,
            "kind": kind,
            "code": code,
            "reason": reason,
            "status": status,
            "record": dict(record),
        }
        if outbound is not None:
            entry["request"] = request_of(outbound)
        self.write_line(_json_line(entry))


class PreviewFile(_LineFile):
    """A dry run's account of every row: what would happen and the request it would make."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, replace=True)

    def add(
        self,
        *,
        stream: str,
        key: str | None,
        action: str,
        outbound: Outbound | None = None,
        reason: str | None = None,
        code: str | None = None,
    ) -> None:
        """Append one previewed row."""
        entry: dict[str, t.Any] = {"stream": stream, "key": key, "action": action}
        if code is not None:
            entry["code"] = code
        if reason is not None:
            entry["reason"] = reason
        if outbound is not None:
            entry["request"] = request_of(outbound)
        self.write_line(_json_line(entry))


class SentIdsFile(_LineFile):
    """Chatra IDs of sent messages, one per line: tap-chatra's `pushed_message_ids_file`."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, private=False)

    def add(self, message_id: str) -> None:
        """Append one ID."""
        self.write_line(message_id)
