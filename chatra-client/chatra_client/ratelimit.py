"""Even request pacing, shared by every thread and process that uses the same Chatra keys.

Each caller reserves the next free slot on a schedule spaced 60/rpm seconds apart and sleeps
until it. An idle period earns no credit, so there is never a burst followed by silence.
With a `bucket`, the schedule lives in a small file under a file lock, so a tap and a target
running at the same time on one machine share the account's budget instead of each using all.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
import typing as t
from pathlib import Path

from filelock import FileLock

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from chatra_client.settings import ConnectionSettings

# A schedule further ahead than this is left over from a changed clock, not from real callers.
_MAX_LEAD_SECONDS = 3600.0


def default_state_dir() -> Path:
    """Folder of the shared pacing files: the system's temporary folder."""
    return Path(tempfile.gettempdir()) / "chatra-client"


class RateLimiter:
    """Paces calls of `acquire` to `requests_per_minute`, evenly; thread- and process-safe."""

    def __init__(
        self,
        requests_per_minute: float,
        *,
        bucket: str | None = None,
        state_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 60.0 / requests_per_minute if requests_per_minute > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_slot = 0.0
        self._path: Path | None = None
        self._file_lock: FileLock | None = None
        if bucket is not None and self.interval:
            folder = state_dir or default_state_dir()
            folder.mkdir(parents=True, exist_ok=True)
            self._path = folder / f"pace-{bucket}"
            self._file_lock = FileLock(str(self._path) + ".lock")

    @classmethod
    def for_settings(cls, settings: ConnectionSettings, **kwargs: t.Any) -> RateLimiter:
        """The limiter shared by all processes using these keys (bucket = hash of public key)."""
        digest = hashlib.sha256(settings.credentials.public_key.encode()).hexdigest()[:16]
        return cls(settings.requests_per_minute, bucket=digest, **kwargs)

    def _update(self, change: Callable[[float, float], tuple[float, float]]) -> float:
        """Apply `change(now, next_slot) -> (result, new_next_slot)` atomically."""
        with self._lock:
            if self._file_lock is None or self._path is None:
                result, self._next_slot = change(self._clock(), self._next_slot)
                return result
            with self._file_lock:
                try:
                    stored = float(self._path.read_text() or 0)
                except (OSError, ValueError):
                    stored = 0.0
                now = self._clock()
                if stored > now + _MAX_LEAD_SECONDS:
                    stored = now
                result, new_next = change(now, stored)
                self._path.write_text(repr(new_next))
                return result

    def acquire(self) -> float:
        """Block until the caller may send one request; return the seconds waited."""
        if not self.interval:
            return 0.0

        def reserve(now: float, next_slot: float) -> tuple[float, float]:
            slot = max(now, next_slot)
            return slot, slot + self.interval

        slot = self._update(reserve)
        wait = slot - self._clock()
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)

    def hold(self, seconds: float) -> None:
        """Push every caller's next slot at least `seconds` from now (after a 429)."""
        if not self.interval or seconds <= 0:
            return
        self._update(lambda now, next_slot: (0.0, max(next_slot, now + seconds)))
