"""The delivery ledger: one SQLite row per (stream, dedupe key), so nothing is sent twice.

Protocol for each message: check and mark ``pending`` in one transaction (committed), POST,
then mark ``sent`` with Chatra's message ID (committed). A crash between the two commits
leaves the key ``pending``; a POST whose answer was lost leaves it ``unknown``. Both mean
"may have been sent" and are never sent again unless the user asks for it.

The file is a write-ahead log (WAL) during a run. Every commit survives a killed process. The
claim (the `pending` mark) is also fsync'd before its POST, so it survives a power loss too;
the outcome marks are not, but the next claim's fsync carries them, and a power loss can only
turn the last outcome back into `pending`, which is reported and never resent. That is one
fsync per row, where the rollback journal needed several per commit. When a run closes the
ledger it switches the file back to a rollback journal, so a dry run can open it read-only
without creating any file beside it. WAL needs a local disk: keep `ledger_path` off network
file systems.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import typing as t
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

SCHEMA_VERSION = 1
_MAX_ERROR_LENGTH = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    stream TEXT NOT NULL,
    dedupe_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'unknown')),
    failure_kind TEXT CHECK (failure_kind IN ('rejected', 'not_sent')),
    payload_hash TEXT NOT NULL,
    message_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (stream, dedupe_key)
)
"""


class Status(StrEnum):
    """Where one key stands."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"


class FailureKind(StrEnum):
    """Why a failed key failed, which decides whether a later run tries it again."""

    REJECTED = "rejected"
    """Chatra refused this row (400/404/422): retried only with `retry_failed`."""
    NOT_SENT = "not_sent"
    """The request surely had no effect (keys refused, retries used up): always retried."""


class LedgerError(RuntimeError):
    """The ledger file cannot be used."""


@dataclass(frozen=True)
class Entry:
    """One ledger row."""

    stream: str
    key: str
    status: Status
    failure_kind: FailureKind | None
    payload_hash: str
    message_id: str | None
    attempts: int
    last_error: str | None
    created_at: str
    updated_at: str


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _entry(row: tuple[t.Any, ...]) -> Entry:
    return Entry(
        stream=row[0],
        key=row[1],
        status=Status(row[2]),
        failure_kind=FailureKind(row[3]) if row[3] else None,
        payload_hash=row[4],
        message_id=row[5],
        attempts=row[6],
        last_error=row[7],
        created_at=row[8],
        updated_at=row[9],
    )


_COLUMNS = (
    "stream, dedupe_key, status, failure_kind, payload_hash, message_id, attempts, "
    "last_error, created_at, updated_at"
)


class Ledger:
    """Read and record delivery outcomes. Every write is committed before it returns."""

    def __init__(self, connection: sqlite3.Connection, *, read_only: bool) -> None:
        self._db = connection
        self.read_only = read_only

    @classmethod
    def open(cls, path: Path) -> Ledger:
        """Open (creating if needed) the ledger for a real run."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        except (OSError, sqlite3.Error) as exc:
            reason = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) else exc
            msg = f"The ledger {path} cannot be created ({reason}); set ledger_path elsewhere."
            raise LedgerError(msg) from None
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                msg = (
                    f"The ledger {path} was written by a newer target-chatra-push (schema "
                    f"{version}); upgrade the target."
                )
                raise LedgerError(msg)
            db.execute(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            db.close()
            msg = f"The ledger {path} cannot be opened: {exc}."
            raise LedgerError(msg) from None
        except LedgerError:
            db.close()
            raise
        return cls(db, read_only=False)

    @classmethod
    def open_read_only(cls, path: Path) -> Ledger | None:
        """Open an existing ledger without changing it (dry runs); None when there is none."""
        if not path.exists():
            return None
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
        try:
            db.execute("SELECT 1 FROM deliveries LIMIT 1")
        except sqlite3.DatabaseError as exc:
            db.close()
            msg = f"The ledger {path} cannot be read: {exc}."
            raise LedgerError(msg) from None
        return cls(db, read_only=True)

    def close(self) -> None:
        """Close the database, leaving it in rollback-journal mode where no one else uses it."""
        if not self.read_only:
            try:
                # Leaving WAL needs the file to itself; a concurrent run switches it back.
                self._db.execute("PRAGMA busy_timeout = 0")
                self._db.execute("PRAGMA journal_mode = DELETE")
            except sqlite3.OperationalError:
                pass
        self._db.close()

    def get(self, stream: str, key: str) -> Entry | None:
        """The ledger row of one key, if any."""
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE stream = ? AND dedupe_key = ?",  # noqa: S608
            (stream, key),
        ).fetchone()
        return _entry(row) if row else None

    def claim(
        self,
        stream: str,
        key: str,
        payload_hash: str,
        decide: Callable[[Entry | None], bool],
    ) -> tuple[Entry | None, bool]:
        """Mark a key pending if `decide(current entry)` says to send it; atomic and durable.

        The check and the mark share one write transaction, so two runs sharing a ledger
        cannot both claim a key. The commit is fsync'd: the mark must outlive any crash
        before the POST it allows.

        Returns:
            The entry as it was before, and whether the key was claimed.
        """
        with self._fsynced_commits():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                entry = self.get(stream, key)
                claimed = decide(entry)
                if claimed:
                    now = _now()
                    self._db.execute(
                        "INSERT INTO deliveries (stream, dedupe_key, status, payload_hash, "
                        "attempts, created_at, updated_at) VALUES (?, ?, 'pending', ?, 1, ?, ?) "
                        "ON CONFLICT (stream, dedupe_key) DO UPDATE SET status = 'pending', "
                        "failure_kind = NULL, payload_hash = excluded.payload_hash, "
                        "attempts = attempts + 1, updated_at = excluded.updated_at",
                        (stream, key, payload_hash, now, now),
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return entry, claimed

    @contextmanager
    def _fsynced_commits(self) -> Iterator[None]:
        self._db.execute("PRAGMA synchronous = FULL")
        try:
            yield
        finally:
            self._db.execute("PRAGMA synchronous = NORMAL")

    def _update(self, stream: str, key: str, assignments: str, values: tuple[t.Any, ...]) -> None:
        self._db.execute(
            f"UPDATE deliveries SET {assignments}, updated_at = ? "  # noqa: S608
            "WHERE stream = ? AND dedupe_key = ?",
            (*values, _now(), stream, key),
        )

    def mark_sent(self, stream: str, key: str, message_id: str | None) -> None:
        """Record a confirmed send and Chatra's ID for it."""
        self._update(
            stream, key, "status = 'sent', message_id = ?, last_error = NULL", (message_id,)
        )

    def mark_failed(self, stream: str, key: str, error: str, kind: FailureKind) -> None:
        """Record a send that surely did not happen."""
        self._update(
            stream,
            key,
            "status = 'failed', failure_kind = ?, last_error = ?",
            (kind.value, error[:_MAX_ERROR_LENGTH]),
        )

    def mark_unknown(self, stream: str, key: str, error: str) -> None:
        """Record a send that may or may not have happened."""
        self._update(
            stream, key, "status = 'unknown', last_error = ?", (error[:_MAX_ERROR_LENGTH],)
        )

    def entries(self, stream: str | None = None) -> list[Entry]:
        """All rows (of one stream), oldest first; for reports and tests."""
        where, args = ("WHERE stream = ?", (stream,)) if stream else ("", ())
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM deliveries {where} ORDER BY created_at, rowid",  # noqa: S608
            args,
        ).fetchall()
        return [_entry(row) for row in rows]
