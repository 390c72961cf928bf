"""Where one account's pace (its next free slot, and any slowdown after a 429) is kept.

A store applies a change to the pace atomically, reading the time from its own clock, so
that every process sharing it agrees on what "now" is. Two live here: memory (one process)
and a small file under an exclusive lock (every process on this machine, the default). The
PostgreSQL store for several machines is in chatra_client.pace_postgres.

Stores are not thread-safe on their own: RateLimiter calls them under its lock.
"""

from __future__ import annotations

import fcntl
import math
import os
import struct
import tempfile
import time
import typing as t
import weakref
from dataclasses import dataclass
from pathlib import Path

from chatra_client.errors import RateLimitStoreError

if t.TYPE_CHECKING:
    from collections.abc import Callable


@dataclass(frozen=True)
class Pace:
    """One account's shared pacing state, in the store's clock (epoch seconds).

    Attributes:
        next_slot: The earliest time the next request may go out.
        throttled_at: When the last 429 slowed the pace down (0: never).
        slowdown: How many times wider the spacing was made then (1: not slowed).
    """

    next_slot: float = 0.0
    throttled_at: float = 0.0
    slowdown: float = 1.0


#: A change of the pace: `(now, pace) -> (result, new pace)`.
Change: t.TypeAlias = "Callable[[float, Pace], tuple[float, Pace]]"


class PaceStore(t.Protocol):
    """Applies changes to one account's pace atomically."""

    def update(self, change: Change) -> float:
        """Apply `change` to the stored pace and return its result."""

    def close(self) -> None:
        """Release what the store holds open."""


class MemoryPaceStore:
    """The pace of this process only."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._pace = Pace()

    def update(self, change: Change) -> float:
        """Apply `change` to the pace kept in memory."""
        result, self._pace = change(self._clock(), self._pace)
        return result

    def close(self) -> None:
        """Nothing to release."""


def default_state_dir() -> Path:
    """Folder of the shared pacing files: the system's temporary folder."""
    return Path(tempfile.gettempdir()) / "chatra-client"


# Three doubles at offset 0. pread/pwrite of 24 bytes under flock on one open descriptor
# costs a few microseconds a request; opening, reading and rewriting a text file cost 0.5 ms.
_RECORD = struct.Struct("<ddd")


class FilePaceStore:
    """The pace of every process on this machine, in a 24-byte file under `flock`.

    Args:
        path: The schedule file; created if missing.
        clock: Epoch seconds; every process on one machine reads the same clock.

    Raises:
        RateLimitStoreError: When the file cannot be opened.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            msg = (
                f"The pacing file {path} cannot be opened ({exc.strerror}); make the "
                "temporary folder writable, or set rate_limit_store."
            )
            raise RateLimitStoreError(msg) from None
        self._path = path
        self._closer = weakref.finalize(self, os.close, self._fd)

    def update(self, change: Change) -> float:
        """Apply `change` to the pace in the file, holding its lock throughout."""
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                result, new = change(self._clock(), self._read())
                os.pwrite(self._fd, _RECORD.pack(new.next_slot, new.throttled_at, new.slowdown), 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        except OSError as exc:
            msg = f"The pacing file {self._path} cannot be used ({exc.strerror})."
            raise RateLimitStoreError(msg) from None
        return result

    def _read(self) -> Pace:
        raw = os.pread(self._fd, _RECORD.size, 0)
        if len(raw) != _RECORD.size:
            return Pace()
        values = _RECORD.unpack(raw)
        # A torn or foreign file must not stop pacing: start from an empty schedule.
        if not all(math.isfinite(value) for value in values) or values[2] < 1:
            return Pace()
        return Pace(*values)

    def close(self) -> None:
        """Close the file."""
        self._closer()
