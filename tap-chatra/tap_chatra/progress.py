"""Progress lines and periodic STATE for long runs: at 60 a minute, a backfill takes hours."""

from __future__ import annotations

import threading
import time
import typing as t

from tap_chatra.state_flush import FlushTimer

if t.TYPE_CHECKING:
    import logging
    from collections.abc import Callable
    from concurrent.futures import Future

    from tap_chatra.state_flush import FlushSchedule

R = t.TypeVar("R")


def format_duration(seconds: float) -> str:
    """Render seconds as e.g. ``2h 05m``, ``4m 10s`` or ``9s``."""
    whole = int(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


class RequestTimes:
    """How long a stream's requests took: one line at its end, not one per request.

    The SDK logs a METRIC line per request at INFO, which Meltano reads and logs again: 2,000
    of a 2,000-ID run's 2,048 lines. Those go to DEBUG; this sums them up. Requests end on
    the worker threads, hence the lock; a count, a sum and a maximum, so a backfill of a
    million IDs keeps no list of them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.failed = 0
        self._total = 0.0
        self._slowest = 0.0

    def add(self, seconds: float, *, failed: bool) -> None:
        """Count one request (an attempt: a retry is another) that took `seconds`."""
        with self._lock:
            self.count += 1
            self.failed += failed
            self._total += seconds
            self._slowest = max(self._slowest, seconds)

    def line(self, stream: str) -> str:
        """The summary: ``messages: 2000 requests, 1.2 ms on average, the slowest 15.0 ms, ...``."""
        mean = self._total / self.count if self.count else 0.0
        return (
            f"{stream}: {self.count} requests, {mean * 1000:.1f} ms on average, the slowest "
            f"{self._slowest * 1000:.1f} ms, {self.failed} answered an error."
        )


class Progress:
    """Counts the IDs one stream has done and logs done/total, rate and ETA now and then."""

    def __init__(
        self,
        stream: str,
        total: int,
        logger: logging.Logger,
        *,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream
        self.total = total
        self.done = 0
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._next_log = self._started + interval

    def advance(self) -> None:
        """Count one more ID as done (fetched, missing or failed for good)."""
        self.done += 1

    def seconds_until_due(self) -> float:
        """How long until the next progress line is due."""
        return max(0.0, self._next_log - self._clock())

    def maybe_log(self) -> None:
        """Log a progress line if one is due."""
        now = self._clock()
        if now >= self._next_log:
            self._next_log = now + self._interval
            self._logger.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        """The progress line: ``messages: 120/5000 IDs done, 1.0/s, ETA 1h 21m``."""
        elapsed = max((self._clock() if now is None else now) - self._started, 1e-9)
        rate = self.done / elapsed
        remaining = self.total - self.done
        eta = format_duration(remaining / rate) if rate > 0 else "unknown"
        return (
            f"{self.stream}: {self.done}/{self.total} IDs done, {rate:.1f}/s, "
            f"ETA {eta if remaining else '0s'}"
        )


class Periodic(t.Generic[R]):
    """STATE as the schedule says and a progress line now and then, even while waiting.

    `flush` writes a STATE and returns its size in bytes, from which the schedule sets the
    time of the next one; the first one is timed by `state_bytes`, the last STATE's size.
    """

    def __init__(
        self,
        progress: Progress,
        flush: Callable[[], int],
        schedule: FlushSchedule,
        *,
        state_bytes: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._progress = progress
        self._timer = FlushTimer(flush, schedule, state_bytes=state_bytes, clock=clock)

    def due_in(self) -> float:
        """Seconds until a STATE or a progress line is due."""
        return min(self._timer.due_in(), self._progress.seconds_until_due())

    def run_due(self) -> None:
        """Write STATE and log progress if either is due."""
        self._timer.run_due()
        self._progress.maybe_log()

    def wait(self, future: Future[R]) -> R:
        """Wait for a result, doing what falls due meanwhile."""
        while True:
            try:
                return future.result(timeout=self.due_in())
            except TimeoutError:
                self.run_due()
