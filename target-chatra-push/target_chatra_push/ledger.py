"""The delivery ledger in a SQLite file: one row per (stream, dedupe key), so nothing is sent twice.

Protocol for each message: check and mark ``pending`` in one transaction (committed), POST,
then mark ``sent`` with Chatra's message ID (committed). A crash between the two commits
leaves the key ``pending``; a POST whose answer was lost leaves it ``unknown``. Both mean
"may have been sent" and are never sent again unless the user asks for it. A pending mark
names the run that made it (host, pid, start).

Besides the deliveries, the ledger keeps the account it belongs to (a hash of the public key
and the API host) and the properties that keyed each stream, so that neither another account
nor a changed key can make it send again what it already sent. A run holds an exclusive
lock on the file (`flock`, released by the system when the process dies), so two runs never
share one ledger.

The file is a write-ahead log (WAL) during a run. Every commit survives a killed process. The
claim (the `pending` mark) is also fsync'd before its POST, so it survives a power loss too;
the outcome marks are not, but the next claim's fsync carries them, and a power loss can only
turn the last outcome back into `pending`, which is reported and never resent. That is one
fsync per row, where the rollback journal needed several per commit. When a run closes the
ledger it switches the file back to a rollback journal, so a dry run can open it read-only
without creating any file beside it. WAL needs a local disk: keep `ledger_path` off network
file systems.

The PostgreSQL ledger (ledger_postgres.py) keeps the same tables and guarantees.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
import typing as t
from contextlib import contextmanager

from target_chatra_push.ledger_model import (
    SCHEMA_1_KEYS,
    SCHEMA_2_KEYS,
    SCHEMA_VERSION,
    Entry,
    FailureKind,
    LedgerBusyError,
    LedgerError,
    LedgerWaitStoppedError,
    LockWait,
    RunMark,
    Status,
    newer_schema,
    now,
    other_account,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

__all__ = ["Entry", "FailureKind", "Ledger", "LedgerError", "Status"]

_MAX_ERROR_LENGTH = 1000
_LOCK_POLL_SECONDS = 0.1

_SCHEMA = (
    """
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
    run_host TEXT,
    run_pid INTEGER,
    run_started TEXT,
    PRIMARY KEY (stream, dedupe_key)
)
""",
    """
CREATE TABLE IF NOT EXISTS stream_keys (
    stream TEXT PRIMARY KEY,
    key_properties TEXT NOT NULL,
    recorded_at TEXT NOT NULL
)
""",
    "CREATE TABLE IF NOT EXISTS ledger_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_FROM_SCHEMA_1 = (
    "ALTER TABLE deliveries ADD COLUMN run_host TEXT",
    "ALTER TABLE deliveries ADD COLUMN run_pid INTEGER",
    "ALTER TABLE deliveries ADD COLUMN run_started TEXT",
)
# The ledger_meta flag that says rows may be stored under an earlier key form.
_EARLIER_KEYS_FLAG = {SCHEMA_2_KEYS: "schema_2_keys", SCHEMA_1_KEYS: "legacy_keys"}

_COLUMNS = (
    "stream, dedupe_key, status, failure_kind, payload_hash, message_id, attempts, "
    "last_error, created_at, updated_at, run_host, run_pid, run_started"
)


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
        run=RunMark(row[10], row[11], row[12]) if row[10] else None,
    )


def _take_lock(path: Path, wait: LockWait) -> int:
    """Open `path` (creating it) and hold an exclusive flock on it.

    Gives up after `wait.seconds`, or at once when `wait.stop` is set.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait.seconds
    stop = wait.stop
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            wait.started()
            if stop is not None and stop.is_set():
                os.close(fd)
                raise LedgerWaitStoppedError(str(path.resolve())) from None
            if time.monotonic() >= deadline:
                os.close(fd)
                raise LedgerBusyError(str(path.resolve()), wait.seconds) from None
            if stop is not None:
                stop.wait(_LOCK_POLL_SECONDS)
            else:
                time.sleep(_LOCK_POLL_SECONDS)
        else:
            return fd


#: Bytes 18 and 19 of an SQLite file's header: 2 and 2 while the file is in WAL mode.
_WAL_HEADER = (18, b"\x02\x02")


def _wal_lost(path: Path) -> bool:
    """Whether the file is in WAL mode while its -wal file is missing.

    A run switches the file back to a rollback journal when it closes, so a WAL header means
    the last run was killed; its latest commits (sends among them) may live only in the -wal
    file. SQLite opening the main file without it would silently forget them, and even a
    read-only connection would create an empty -wal beside it, hiding the loss: so nothing
    connects to such a file.
    """
    offset, wal = _WAL_HEADER
    try:
        with path.open("rb") as file:
            file.seek(offset)
            header = file.read(len(wal))
    except OSError:
        return False  # a missing or unreadable file is reported when it is opened
    return header == wal and not path.with_name(f"{path.name}-wal").exists()


def _check_wal_present(path: Path) -> None:
    """Refuse a ledger left in WAL mode by a killed run whose -wal file is gone."""
    if _wal_lost(path):
        wal_file = path.with_name(f"{path.name}-wal")
        msg = (
            f"The ledger {path} was left open by a run that was killed, and its {wal_file.name} "
            "file, which may hold that run's last sends, is missing: nothing is sent. Put "
            f"{wal_file.name} back beside it (copy the two files together); if it is lost, "
            "check that run's last sends in Chatra, then accept the ledger as it is with "
            f"`sqlite3 {path} 'PRAGMA journal_mode=DELETE'`."
        )
        raise LedgerError(msg)


class Ledger:
    """Read and record delivery outcomes in SQLite. Every write is committed before it returns."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        read_only: bool,
        location: str,
        lock_fd: int | None = None,
    ) -> None:
        self._db = connection
        self.read_only = read_only
        self.location = location
        self._lock_fd = lock_fd
        self.earlier_key_forms = self._earlier_key_forms()

    def _earlier_key_forms(self) -> tuple[str, ...]:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        # A ledger opened read-only (a dry run) was not brought up to date: its version says.
        implied = {2: SCHEMA_2_KEYS, 1: SCHEMA_1_KEYS}.get(version)
        return tuple(
            form
            for form, flag in _EARLIER_KEYS_FLAG.items()
            if form == implied or self._meta(flag) == "1"
        )

    @staticmethod
    def exists(path: Path) -> bool:
        """Whether `path` holds a ledger (an empty or foreign file does not); changes nothing."""
        if not path.is_file() or path.stat().st_size == 0:
            return False
        if _wal_lost(path):
            return True  # a ledger, which open() refuses with the reason
        try:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
        except sqlite3.Error:
            return True  # unreadable: let open() say why
        try:
            found = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'"
            ).fetchone()
        except sqlite3.DatabaseError:
            return True
        finally:
            db.close()
        return found is not None

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        lock_wait: float | LockWait | None = None,
        create: bool = True,
    ) -> Ledger:
        """Open (creating if needed and allowed) the ledger for a real run.

        Args:
            path: The SQLite file.
            lock_wait: Take the run's exclusive lock, waiting up to this many seconds (or
                as a LockWait says) for another run to finish; None takes no lock.
            create: Create the file and its tables when missing; False opens an existing
                ledger only (maintenance commands).

        Raises:
            LedgerError: When the file cannot be created, opened or locked, or is missing
                and `create` is False; LedgerWaitStoppedError when a stop ended the wait.
        """
        location = str(path.resolve())
        if not create and not cls.exists(path):
            msg = f"There is no ledger at {location}."
            raise LedgerError(msg)
        lock_fd = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if lock_wait is not None:
                lock_fd = _take_lock(path, LockWait.of(lock_wait))
            _check_wal_present(path)
            db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        except (OSError, sqlite3.Error, LedgerError) as exc:
            if lock_fd is not None:
                os.close(lock_fd)
            if isinstance(exc, LedgerError):
                raise
            reason = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) else exc
            msg = f"The ledger {path} cannot be created ({reason}); set ledger_path elsewhere."
            raise LedgerError(msg) from None
        try:
            _prepare(db, path)
        except (sqlite3.DatabaseError, LedgerError) as exc:
            db.close()
            if lock_fd is not None:
                os.close(lock_fd)
            if isinstance(exc, LedgerError):
                raise
            msg = f"The ledger {path} cannot be opened: {exc}."
            raise LedgerError(msg) from None
        return cls(db, read_only=False, location=location, lock_fd=lock_fd)

    @classmethod
    def open_read_only(cls, path: Path) -> Ledger | None:
        """Open an existing ledger without changing it (dry runs); None when there is none.

        Raises:
            LedgerError: When it cannot be read, or a killed run's -wal file is missing.
        """
        if not path.exists():
            return None
        _check_wal_present(path)
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
        try:
            db.execute("SELECT 1 FROM deliveries LIMIT 1")
        except sqlite3.DatabaseError as exc:
            db.close()
            msg = f"The ledger {path} cannot be read: {exc}."
            raise LedgerError(msg) from None
        return cls(db, read_only=True, location=str(path.resolve()))

    def is_blank(self) -> bool:
        """Whether no run has used it yet: no run, key or stream recorded."""
        keyed = self._db.execute("SELECT 1 FROM deliveries LIMIT 1").fetchone()
        try:
            streams = self._db.execute("SELECT 1 FROM stream_keys LIMIT 1").fetchone()
        except sqlite3.OperationalError:  # a schema-1 ledger opened read-only
            streams = None
        return keyed is None and streams is None and self._meta("last_run") is None

    def record_run(self, run: RunMark) -> None:
        """Note the run that opened it, which makes it a ledger in use."""
        self._db.execute(
            "INSERT INTO ledger_meta (name, value) VALUES ('last_run', ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            (str(run),),
        )

    def describe(self) -> str:
        """Which ledger this is, for a person: where, since when, how many keys."""
        keys = self._db.execute("SELECT count(*) FROM deliveries").fetchone()[0]
        created = self._meta("created_at")
        since = f", created {created}" if created else ""
        return f"the SQLite ledger {self.location}{since}, {keys} key(s)"

    def close(self) -> None:
        """Close the database, leaving it in rollback-journal mode where no one else uses it."""
        if not self.read_only:
            try:
                # Leaving WAL needs the file to itself; a concurrent reader switches it back.
                self._db.execute("PRAGMA busy_timeout = 0")
                self._db.execute("PRAGMA journal_mode = DELETE")
            except sqlite3.Error:
                pass
        self._db.close()
        # Only now: closing any descriptor of the file drops SQLite's own POSIX locks on it.
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def in_use(self) -> bool:
        """Whether a run holds the ledger now (this object's own lock aside)."""
        if self._lock_fd is not None:
            return False
        fd = os.open(self.location, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            # Closing drops this process's POSIX locks on the file: call it between queries.
            os.close(fd)
        return False

    # Metadata: the account, and the properties that key each stream

    def _meta(self, name: str) -> str | None:
        try:
            row = self._db.execute("SELECT value FROM ledger_meta WHERE name = ?", (name,))
            found = row.fetchone()
        except sqlite3.OperationalError:  # a schema-1 ledger opened read-only
            return None
        return t.cast("str", found[0]) if found else None

    def bind_account(self, account: str) -> None:
        """Record the account on first use; refuse a ledger that belongs to another.

        Raises:
            LedgerError: When the ledger was written for another account or API host.
        """
        recorded = self._meta("account")
        if recorded is None and not self.read_only:
            self._db.execute(
                "INSERT OR IGNORE INTO ledger_meta (name, value) VALUES ('account', ?)",
                (account,),
            )
            recorded = self._meta("account")
        if recorded is not None and recorded != account:
            raise other_account(self.location)

    def key_properties(self, stream: str) -> tuple[str, ...] | None:
        """The properties that keyed the stream's rows so far; None if never recorded."""
        try:
            row = self._db.execute(
                "SELECT key_properties FROM stream_keys WHERE stream = ?", (stream,)
            ).fetchone()
        except sqlite3.OperationalError:  # a schema-1 ledger opened read-only
            return None
        return tuple(json.loads(row[0])) if row else None

    def record_key_properties(self, stream: str, properties: Iterable[str]) -> None:
        """Remember (or change, when told to) the properties that key a stream's rows."""
        self._db.execute(
            "INSERT INTO stream_keys (stream, key_properties, recorded_at) VALUES (?, ?, ?) "
            "ON CONFLICT (stream) DO UPDATE SET key_properties = excluded.key_properties, "
            "recorded_at = excluded.recorded_at",
            (stream, json.dumps(list(properties)), now()),
        )

    # Deliveries

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
        run: RunMark | None = None,
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
                    stamp = now()
                    mark = run or RunMark(None, None, None)
                    where = (mark.host, mark.pid, mark.started)
                    self._db.execute(
                        "INSERT INTO deliveries (stream, dedupe_key, status, payload_hash, "
                        "attempts, created_at, updated_at, run_host, run_pid, run_started) "
                        "VALUES (?, ?, 'pending', ?, 1, ?, ?, ?, ?, ?) "
                        "ON CONFLICT (stream, dedupe_key) DO UPDATE SET status = 'pending', "
                        "failure_kind = NULL, payload_hash = excluded.payload_hash, "
                        "attempts = attempts + 1, updated_at = excluded.updated_at, "
                        "run_host = excluded.run_host, run_pid = excluded.run_pid, "
                        "run_started = excluded.run_started",
                        (stream, key, payload_hash, stamp, stamp, *where),
                    )
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
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

    def _update(
        self, stream: str, key: str, assignments: str, values: tuple[t.Any, ...], where: str = ""
    ) -> int:
        cursor = self._db.execute(
            f"UPDATE deliveries SET {assignments}, updated_at = ? "  # noqa: S608
            f"WHERE stream = ? AND dedupe_key = ?{where}",
            (*values, now(), stream, key),
        )
        return cursor.rowcount

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

    def settle(self, stream: str, key: str, *, sent: bool) -> bool:
        """Settle an unconfirmed key by hand: sent, or not sent (then sent again when seen).

        Returns:
            Whether the key was unconfirmed (and is now settled).
        """
        if sent:
            assignments, values = "status = 'sent', last_error = ?", ("settled by hand: sent",)
        else:
            assignments = "status = 'failed', failure_kind = 'not_sent', last_error = ?"
            values = ("settled by hand: not sent",)
        changed = self._update(
            stream, key, assignments, values, " AND status IN ('pending', 'unknown')"
        )
        return changed == 1

    def entries(
        self, stream: str | None = None, statuses: Iterable[Status] | None = None
    ) -> list[Entry]:
        """All rows (of one stream, with one of `statuses`), oldest first."""
        clauses, args = [], []
        if stream is not None:
            clauses.append("stream = ?")
            args.append(stream)
        if statuses is not None:
            wanted = [status.value for status in statuses]
            clauses.append(f"status IN ({', '.join('?' for _ in wanted)})")
            args.extend(wanted)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM deliveries {where} ORDER BY created_at, rowid",  # noqa: S608
            args,
        ).fetchall()
        return [_entry(row) for row in rows]


def _prepare(db: sqlite3.Connection, path: Path) -> None:
    """Create the tables, or bring an earlier ledger up to date.

    An earlier ledger's rows keep the keys they were stored under: a flag in ledger_meta
    says which earlier forms to look them up by (keys_earlier.py).
    """
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise newer_schema(str(path), version)
    if version == SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        # Again inside the write lock: another process may have just upgraded it.
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            db.execute("COMMIT")
            return
        if version == 1:
            for statement in _FROM_SCHEMA_1:
                db.execute(statement)
        for statement in _SCHEMA:
            db.execute(statement)
        stamp = now()
        db.execute("INSERT OR IGNORE INTO ledger_meta VALUES ('created_at', ?)", (stamp,))
        earlier = {1: SCHEMA_1_KEYS, 2: SCHEMA_2_KEYS}.get(version)
        if earlier and db.execute("SELECT 1 FROM deliveries LIMIT 1").fetchone():
            db.execute(
                "INSERT OR IGNORE INTO ledger_meta VALUES (?, '1')", (_EARLIER_KEYS_FLAG[earlier],)
            )
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
