"""Request pacing shared by every thread and process that uses one Chatra account's keys.

Each caller reserves the next free slot on one schedule and sleeps until it:

- Slots are spaced for PACE_SHARE (97.5%) of `requests_per_minute`. A server that counts a
  strict sliding window of W seconds sees, from a schedule exactly at its limit, limit + 1
  requests in some window; 2.5% under it, it never sees more than its limit, even when
  requests reach it up to 0.025 * W seconds unevenly late (1.5 s for a one-minute window).
- An idle period earns no credit: no burst followed by silence.
- After a 429 every caller slows down: the spacing doubles (up to MAX_SLOWDOWN times) and
  then narrows back linearly over `recovery_seconds`; the next slot also waits out any
  Retry-After.

The schedule lives in a store (chatra_client.pace_store): memory (one process), a locked
file in the temporary folder (every process on this machine; the default), or a PostgreSQL
row (every machine whose plugins name the same database in `rate_limit_store`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
import typing as t

from chatra_client.pace_store import FilePaceStore, MemoryPaceStore, Pace, default_state_dir

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from chatra_client.pace_store import PaceStore
    from chatra_client.settings import ConnectionSettings

#: Share of requests_per_minute actually used (see the module docstring).
PACE_SHARE = 0.975
#: How much wider the spacing gets with each 429, and at most.
BACKOFF_FACTOR = 2.0
MAX_SLOWDOWN = 8.0
#: Seconds for the spacing to narrow back to normal after a 429: Chatra counts a minute.
RECOVERY_SECONDS = 60.0
# A schedule further ahead than this is left over from a changed clock, not from real callers.
_MAX_LEAD_SECONDS = 3600.0


def slowdown_at(pace: Pace, now: float, recovery_seconds: float) -> float:
    """How many times the normal spacing applies at `now`: 1 once fully recovered."""
    if pace.slowdown <= 1 or recovery_seconds <= 0:
        return 1.0
    left = max(0.0, 1.0 - (now - pace.throttled_at) / recovery_seconds)
    return 1.0 + (pace.slowdown - 1.0) * left


class RateLimiter:
    """Paces calls of `acquire` to `requests_per_minute`, evenly; thread-safe.

    Args:
        requests_per_minute: The account's limit; 0 disables pacing.
        store: Where the schedule lives; by default this process's memory.
        sleep: Waits for a slot (injectable for tests).
        recovery_seconds: How long the pace takes to recover after a 429.
    """

    def __init__(
        self,
        requests_per_minute: float,
        *,
        store: PaceStore | None = None,
        sleep: Callable[[float], None] = time.sleep,
        recovery_seconds: float = RECOVERY_SECONDS,
    ) -> None:
        rate = requests_per_minute * PACE_SHARE
        self.interval = 60.0 / rate if rate > 0 else 0.0
        self.recovery_seconds = recovery_seconds
        self._store: PaceStore = store if store is not None else MemoryPaceStore()
        self._sleep = sleep
        self._lock = threading.Lock()

    @classmethod
    def for_settings(
        cls,
        settings: ConnectionSettings,
        *,
        state_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        **kwargs: t.Any,
    ) -> RateLimiter:
        """The limiter shared by every process using these keys, in the configured store.

        `state_dir` and `clock` apply to the local file (tests); PostgreSQL keeps its own.

        Raises:
            RateLimitStoreError: When the store cannot be reached.
        """
        if not settings.requests_per_minute:
            return cls(0, **kwargs)
        bucket = hashlib.sha256(settings.credentials.public_key.encode()).hexdigest()[:16]
        store: PaceStore
        if settings.rate_limit_store:
            # Imported here: SQLAlchemy and psycopg are loaded only by runs that use them.
            from chatra_client.pace_postgres import PostgresPaceStore  # noqa: PLC0415

            store = PostgresPaceStore(settings.rate_limit_store, bucket)
        else:
            folder = state_dir or default_state_dir()
            store = FilePaceStore(folder / f"pace-{bucket}.bin", clock)
        return cls(settings.requests_per_minute, store=store, **kwargs)

    def _update(self, change: Callable[[float, Pace], tuple[float, Pace]]) -> float:
        with self._lock:
            return self._store.update(change)

    def _reserve(self, now: float, pace: Pace) -> tuple[float, Pace]:
        next_slot = pace.next_slot if pace.next_slot <= now + _MAX_LEAD_SECONDS else now
        slot = max(now, next_slot)
        spacing = self.interval * slowdown_at(pace, slot, self.recovery_seconds)
        return slot - now, dataclasses.replace(pace, next_slot=slot + spacing)

    def acquire(self) -> float:
        """Block until the caller may send one request; return the seconds waited.

        Raises:
            RateLimitStoreError: When the shared schedule cannot be used.
        """
        if not self.interval:
            return 0.0
        wait = self._update(self._reserve)
        if wait > 0:
            self._sleep(wait)
        return max(wait, 0.0)

    def throttled(self, retry_after: float | None = None) -> None:
        """Slow every caller down after a 429, and hold the next slot `retry_after` seconds.

        429s to requests that were already on their way when the first one came count as
        that one: the spacing widens again only for a 429 more than one slowed interval
        after the last.

        Raises:
            RateLimitStoreError: When the shared schedule cannot be used.
        """
        if not self.interval:
            return

        def slow_down(now: float, pace: Pace) -> tuple[float, Pace]:
            current = slowdown_at(pace, now, self.recovery_seconds)
            next_slot = max(pace.next_slot, now + (retry_after or 0.0))
            if now - pace.throttled_at < self.interval * current:
                return 0.0, dataclasses.replace(pace, next_slot=next_slot)
            slowdown = min(MAX_SLOWDOWN, current * BACKOFF_FACTOR)
            return 0.0, Pace(next_slot=next_slot, throttled_at=now, slowdown=slowdown)

        self._update(slow_down)

    def close(self) -> None:
        """Release the store (a file or database connections)."""
        self._store.close()
