"""What every ledger holds and promises, whichever database keeps it."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import typing as t
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

if t.TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterable

SCHEMA_VERSION = 3
"""1: raw keys; 2: canonical keys that could merge distinct values; 3: keys.py's form."""
SCHEMA_1_KEYS = "schema_1"
SCHEMA_2_KEYS = "schema_2"
"""Names of the earlier key forms a ledger may hold (keys_earlier.py)."""


class Status(StrEnum):
    """Where one key stands."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    UNKNOWN = "unknown"


UNCONFIRMED = (Status.PENDING, Status.UNKNOWN)
"""The statuses of a key that may or may not have been sent."""


class FailureKind(StrEnum):
    """Why a failed key failed, which decides whether a later run tries it again."""

    REJECTED = "rejected"
    """Chatra refused this row (400/403/404/422): retried only with `retry_failed`."""
    NOT_SENT = "not_sent"
    """The request surely had no effect (keys refused, retries used up): always retried."""


class LedgerError(RuntimeError):
    """The ledger cannot be used; the message names it and says what to do."""


class LedgerBusyError(LedgerError):
    """Another run holds the ledger."""

    def __init__(self, location: str, waited: float) -> None:
        super().__init__(
            f"Another run is using the ledger {location}; waited {waited:g}s. Run again once "
            "it has finished (one run per ledger at a time)."
        )


@dataclass
class LockWait:
    """How a run waits for a ledger another run holds."""

    seconds: float
    stop: threading.Event | None = None
    """Ends the wait at once when set (a stop signal)."""
    on_wait: Callable[[], None] | None = None
    """Called once, when the wait begins."""
    _waiting: bool = field(default=False, init=False)

    @classmethod
    def of(cls, wait: float | LockWait) -> LockWait:
        """`wait` as a LockWait: a number of seconds, or one already."""
        return wait if isinstance(wait, LockWait) else cls(wait)

    def started(self) -> None:
        """Note that the lock was busy; the first time, tell `on_wait`."""
        if not self._waiting and self.on_wait is not None:
            self.on_wait()
        self._waiting = True


class LedgerWaitStoppedError(LedgerError):
    """A stop signal came while the run waited for another run to release the ledger."""

    def __init__(self, location: str) -> None:
        super().__init__(f"Stopped while waiting for the ledger {location}; nothing was sent.")


def other_account(location: str) -> LedgerError:
    """The error for a ledger that records another account's sends."""
    return LedgerError(
        f"The ledger {location} records the sends of another Chatra account or API host. "
        "Give each account its own ledger (ledger_path or ledger_url), or check the keys and "
        "api_url."
    )


def newer_schema(location: str, version: int) -> LedgerError:
    """The error for a ledger written by a newer target."""
    return LedgerError(
        f"The ledger {location} was written by a newer target-chatra-push (schema {version}); "
        "upgrade the target."
    )


@dataclass(frozen=True)
class RunMark:
    """The run that claimed a key: it tells a crashed run's pending keys from a live one's."""

    host: str | None
    pid: int | None
    started: str | None

    @classmethod
    def of_this_process(cls) -> RunMark:
        """A mark for a run starting now in this process."""
        return cls(socket.gethostname(), os.getpid(), now())

    def __str__(self) -> str:
        return f"host {self.host}, pid {self.pid}, started {self.started}"


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
    run: RunMark | None = None


def now() -> str:
    """The time as stored in a ledger: ISO 8601 in UTC, to the millisecond."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def account_id(public_key: str, api_url: str) -> str:
    """What ties a ledger to one account: a hash of the public key and the API host."""
    host = (urlsplit(api_url).hostname or "").lower()
    return hashlib.sha256(f"{public_key}\n{host}".encode()).hexdigest()[:32]


def describe_failure(location: str, error: BaseException) -> str:
    """One line for a ledger that failed mid-run: which one, what happened, what to do."""
    if isinstance(error, LedgerError):
        return str(error)
    text = " ".join(str(error).split())[:300]
    lowered = text.lower()
    if "full" in lowered or "no space" in lowered:
        return (
            f"The ledger {location} could not be written: the disk is full ({text}). Free "
            "some space, then run again; rows not settled are tried again then."
        )
    if "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
        return (
            f"The ledger {location} is damaged ({text}). Keep the file: it still records "
            "what was sent. Restore it from a backup (or rebuild it with sqlite3's .recover), "
            "then run again; do not delete it, or every row would be sent again."
        )
    return (
        f"The ledger {location} failed ({text}). Check that it is reachable and writable, "
        "then run again; rows not settled are tried again then."
    )


class LedgerStore(t.Protocol):
    """What a run needs of a ledger, in SQLite (ledger.py) or PostgreSQL (ledger_postgres.py).

    Every write is committed before it returns.
    """

    read_only: bool
    location: str
    earlier_key_forms: tuple[str, ...]
    """The earlier key forms its rows may be stored under, newest first (keys_earlier.py)."""

    def close(self) -> None:
        """Release the ledger (and the run's lock on it)."""

    def is_blank(self) -> bool:
        """Whether no run has used it yet: no run, key or stream recorded."""

    def record_run(self, run: RunMark) -> None:
        """Note the run that opened it, which makes it a ledger in use."""

    def describe(self) -> str:
        """Which ledger this is, for a person: where, since when, how many keys."""

    def in_use(self) -> bool:
        """Whether a run holds the ledger now; if not, every pending key is from an ended run."""

    def bind_account(self, account: str) -> None:
        """Record the account on first use; LedgerError if the ledger belongs to another."""

    def key_properties(self, stream: str) -> tuple[str, ...] | None:
        """The properties that keyed the stream's rows so far; None if never recorded."""

    def record_key_properties(self, stream: str, properties: Iterable[str]) -> None:
        """Remember the properties that key a stream's rows."""

    def get(self, stream: str, key: str) -> Entry | None:
        """The ledger row of one key, if any."""

    def claim(
        self,
        stream: str,
        key: str,
        payload_hash: str,
        decide: Callable[[Entry | None], bool],
        run: RunMark | None = None,
    ) -> tuple[Entry | None, bool]:
        """Mark a key pending if `decide(current entry)` says to send it; atomic and durable."""

    def mark_sent(self, stream: str, key: str, message_id: str | None) -> None:
        """Record a confirmed send."""

    def mark_failed(self, stream: str, key: str, error: str, kind: FailureKind) -> None:
        """Record a send that surely did not happen."""

    def mark_unknown(self, stream: str, key: str, error: str) -> None:
        """Record a send that may or may not have happened."""

    def settle(self, stream: str, key: str, *, sent: bool) -> bool:
        """Settle an unconfirmed key by hand; False if it was not unconfirmed."""

    def entries(
        self, stream: str | None = None, statuses: Iterable[Status] | None = None
    ) -> list[Entry]:
        """All rows (of one stream, with one of `statuses`), oldest first."""
